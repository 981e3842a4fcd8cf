"""Chapter 1: NumPy and Matplotlib as the book introduces them, with minigrad alongside.

Every expression of sections 1.5.2-1.5.6 runs twice: on NumPy arrays, as in
the book, and on minigrad tensors, which accept the same expressions and give
the same numbers (printing, iterating over rows, arithmetic, indexing).
Section 1.6 draws the sin and cos curves, then reads an image file with
`matplotlib.image.imread` and shows it: the file is an MNIST digit from the
subset shipped with minigrad, written as a PNG first, so nothing is downloaded.

    python examples/ch1_numpy_basics.py [--out DIR] [--show]
"""

import numpy as np
from _common import parse, parser, save

import minigrad as mg
import minigrad.functional as F
from minigrad import data


def side_by_side(expr, fn, *arrays):
    """Evaluate fn on NumPy arrays and on tensors made from them; print both results."""
    a = fn(*arrays)
    t = fn(*(mg.tensor(x) for x in arrays))
    assert np.array_equal(a, np.asarray(t)), expr  # the same numbers, whatever the type
    print(expr)
    print("  numpy:    " + str(a).replace("\n", "\n" + " " * 12))
    print("  minigrad: " + repr(t).replace("\n", "\n" + " " * 12))


def main():
    args = parse(parser(__doc__))

    print("== 1.5.2 Making an array")
    x = np.array([1.0, 2.0, 3.0])
    side_by_side("print(x)", lambda x: x, x)
    print(f"type(x): numpy {type(x)}, minigrad {type(mg.tensor(x))}")

    print("\n== 1.5.3 Arithmetic, element by element (x and y have the same shape)")
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    side_by_side("x + y", lambda x, y: x + y, x, y)
    side_by_side("x - y", lambda x, y: x - y, x, y)
    side_by_side("x * y", lambda x, y: x * y, x, y)
    side_by_side("x / y", lambda x, y: x / y, x, y)
    side_by_side("x / 2.0 (a scalar is broadcast)", lambda x: x / 2.0, x)

    print("\n== 1.5.4 N-dimensional arrays")
    A, B = np.array([[1, 2], [3, 4]]), np.array([[3, 0], [0, 6]])
    side_by_side("print(A)", lambda A: A, A)
    print(
        f"A.shape = {A.shape}, A.dtype = {A.dtype}; tensor: {mg.tensor(A).shape}, {mg.tensor(A).dtype}"
    )
    side_by_side("print(B)", lambda B: B, B)
    side_by_side("A + B", lambda A, B: A + B, A, B)
    side_by_side("A * B (element-wise, not the matrix product)", lambda A, B: A * B, A, B)
    side_by_side("A * 10", lambda A: A * 10, A)

    print("\n== 1.5.5 Broadcasting: [10, 20] is stretched to [[10, 20], [10, 20]]")
    side_by_side("A * [10, 20]", lambda A, b: A * b, A, np.array([10, 20]))

    print("\n== 1.5.6 Accessing elements")
    X = np.array([[51, 55], [14, 19], [0, 4]])
    side_by_side("print(X)", lambda X: X, X)
    print("for row in X: print(row)  (a tensor, too, gives its rows)")
    print("  numpy:    " + "\n            ".join(str(row) for row in X))
    print("  minigrad: " + "\n            ".join(repr(row) for row in mg.tensor(X)))
    side_by_side("X[0]", lambda X: X[0], X)
    side_by_side("X[0][1]", lambda X: X[0][1], X)
    side_by_side("X.flatten()", lambda X: X.flatten(), X)
    side_by_side("X.flatten()[[0, 2, 4]]", lambda X: X.flatten()[np.array([0, 2, 4])], X)
    side_by_side(
        "X.flatten() > 15 (comparisons give boolean arrays)", lambda X: X.flatten() > 15, X
    )
    side_by_side("X[X > 15] (a boolean mask)", lambda X: X[X > 15], X)

    print("\n== What a tensor adds: it remembers how it was computed (chapter 5 onwards)")
    x = mg.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    print(f"x = {x.data}, (x * x).sum() = {loss.item()}, its gradient 2x = {x.grad.data}")

    import matplotlib.pyplot as plt

    print("\n== 1.6.1 A simple graph: sin on [0, 6) in steps of 0.1")
    x = np.arange(0, 6, 0.1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, np.sin(x))
    save(fig, args, "ch1_sin.png")

    print("== 1.6.2 Labels, title and legend: sin and cos, computed here by minigrad ops")
    xt = mg.tensor(x)  # matplotlib plots tensors directly (they convert with np.asarray)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, F.sin(xt), label="sin")
    ax.plot(x, F.cos(xt), linestyle="--", label="cos")
    ax.set(xlabel="x", ylabel="y", title="sin & cos")
    ax.legend()
    save(fig, args, "ch1_sin_cos.png")

    print("== 1.6.3 Reading and showing an image (the book's lena.png: here an MNIST digit)")
    from matplotlib.image import imread, imsave

    (x_train, t_train), _ = data.load_mnist_subset(normalize=False, flatten=False)
    path = args.out / "mnist_digit.png"
    imsave(path, x_train[0, 0], cmap="gray")  # the image file to read, made here
    print(f"  [image written: {path}, the first training digit of the subset]")
    img = imread(path)  # as the book: img = imread('lena.png')
    print(f"img = imread({path.name!r}): shape {img.shape}, dtype {img.dtype} (RGBA in [0, 1])")
    fig, ax = plt.subplots(figsize=(4, 4.3))
    ax.imshow(img)
    ax.set_title(f"imread('{path.name}'): training digit 0, label {t_train[0]}", fontsize=10)
    save(fig, args, "ch1_imshow.png")


if __name__ == "__main__":
    main()
