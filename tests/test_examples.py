"""The chapter examples (examples/ch1_... to ch8_...) run and print the book's numbers.

Each script runs once, in its fast mode where it has one, as a subprocess in a
temporary directory (where its plots go). Numbers the book prints are checked
to the precision the book prints them with; timings are printed by the
scripts but never checked. The MNIST inference with the book's sample
weights (0.9352) needs the weights and the full MNIST: from ../shared/datasets
beside the checkout, or wherever $MINIGRAD_TEST_SAMPLE_WEIGHTS (the .npz) and
$MINIGRAD_TEST_MNIST (the directory of IDX files) say; it is skipped without them.
So is chapter 7's with the book's trained convnet (0.9600), which
$MINIGRAD_TEST_CONVNET_WEIGHTS can point at.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigrad.data import mnist

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
SAMPLE_WEIGHTS = Path(
    os.environ.get("MINIGRAD_TEST_SAMPLE_WEIGHTS")
    or SHARED / "book-sample-weights" / "sample_weight.npz"
)
MNIST_DIR = Path(os.environ.get("MINIGRAD_TEST_MNIST") or SHARED / "mnist")
CH3 = ("ch3_forward_networks.py", "--weights", str(SAMPLE_WEIGHTS), "--data-dir", str(MNIST_DIR))
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"


def _script(cwd: Path, script: str, args: tuple, env: dict) -> subprocess.CompletedProcess:
    environ = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT), **env)
    # One BLAS thread: the examples' matrices are small, and a second thread that
    # waits for a core taken by another job can make them ten times slower.
    environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run(cwd: Path, script: str, *args: str, **env: str) -> str:
    """Run examples/<script> in cwd and return its stdout; fail with its stderr."""
    proc = _script(cwd, script, args, env)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def failure(cwd: Path, script: str, *args: str, **env: str) -> str:
    """Run examples/<script>, expect it to fail without a traceback, and return its stderr."""
    proc = _script(cwd, script, args, env)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr


def line(out: str, start: str) -> str:
    """The rest of the first output line that contains `start`, after it."""
    for text in out.splitlines():
        if start in text:
            return text.split(start, 1)[1]
    raise AssertionError(f"no line with {start!r} in the output:\n{out}")


def numbers(text: str) -> np.ndarray:
    """The numbers in text, in order (a tensor's `dtype=int64` is not one of them)."""
    return np.array([float(x) for x in re.findall(NUMBER, re.sub(r"dtype=\w+", "", text))])


def as_printed(printed: np.ndarray | float, *book: str) -> None:
    """The printed numbers equal the book's to the precision the book prints each one."""
    printed = np.atleast_1d(printed)
    assert len(printed) >= len(book), (printed, book)
    for value, expected in zip(printed, book, strict=False):
        mantissa, _, exponent = expected.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        half_unit = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
        assert abs(value - float(expected)) <= half_unit * (1 + 1e-9), (value, expected)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Each example's stdout, run once per test session, and the directory it ran in."""
    cache = {}

    def get(script: str, *args: str) -> tuple[str, Path]:
        if (script, args) not in cache:
            cwd = tmp_path_factory.mktemp(Path(script).stem)
            cache[script, args] = run(cwd, script, *args), cwd
        return cache[script, args]

    return get


def plots(cwd: Path, *names: str) -> None:
    for name in names:
        path = cwd / "out" / name
        assert path.is_file() and path.stat().st_size > 1000, f"missing plot {path}"


def side_by_side(out: str) -> dict[str, tuple[str, str]]:
    """{expression: (what NumPy printed, what minigrad printed)} from ch1's paired blocks."""
    blocks, lines = {}, out.splitlines()
    for i, text in enumerate(lines):
        if i + 1 < len(lines) and lines[i + 1].startswith("  numpy:"):
            block = []
            for more in lines[i + 1 :]:
                if not more.startswith(" "):
                    break
                block.append(more)
            numpy_part, minigrad_part = "\n".join(block).split("  minigrad:")
            blocks[text] = numpy_part.removeprefix("  numpy:"), minigrad_part
    return blocks


# Every value chapter 1 prints, as the book prints it (for NumPy; minigrad's are the same).
CH1 = {
    "print(x)": [1, 2, 3],
    "x + y": [3, 6, 9],
    "x - y": [-1, -2, -3],
    "x * y": [2, 8, 18],
    "x / y": [0.5, 0.5, 0.5],
    "x / 2.0 (a scalar is broadcast)": [0.5, 1, 1.5],
    "print(A)": [1, 2, 3, 4],
    "print(B)": [3, 0, 0, 6],
    "A + B": [4, 2, 3, 10],
    "A * B (element-wise, not the matrix product)": [3, 0, 0, 24],
    "A * 10": [10, 20, 30, 40],
    "A * [10, 20]": [10, 40, 30, 80],
    "print(X)": [51, 55, 14, 19, 0, 4],
    "for row in X: print(row)  (a tensor, too, gives its rows)": [51, 55, 14, 19, 0, 4],
    "X[0]": [51, 55],
    "X[0][1]": [55],
    "X.flatten()": [51, 55, 14, 19, 0, 4],
    "X.flatten()[[0, 2, 4]]": [51, 14, 0],
    "X[X > 15] (a boolean mask)": [51, 55, 19],
}


def test_ch1_numpy_basics(outputs):
    out, cwd = outputs("ch1_numpy_basics.py")
    blocks = side_by_side(out)
    mask = blocks.pop("X.flatten() > 15 (comparisons give boolean arrays)")
    assert blocks.keys() == CH1.keys()
    for expr, expected in CH1.items():
        for printed in blocks[expr]:
            assert numbers(printed).tolist() == expected, (expr, printed)
    for printed in mask:
        assert re.findall("True|False", printed) == [
            "True",
            "True",
            "False",
            "True",
            "False",
            "False",
        ]
    assert blocks["print(A)"][0].strip() == "[[1 2]\n             [3 4]]"  # as print(A) shows it
    rows = blocks["for row in X: print(row)  (a tensor, too, gives its rows)"]
    assert rows[0].split() == ["[51", "55]", "[14", "19]", "[0", "4]"]  # one row a line
    assert rows[1].count("tensor(") == 3
    assert (
        "type(x): numpy <class 'numpy.ndarray'>, minigrad <class 'minigrad.engine.Tensor'>" in out
    )
    assert "A.shape = (2, 2), A.dtype = int64; tensor: (2, 2), int64" in out
    assert "x = [1. 2. 3.], (x * x).sum() = 14.0, its gradient 2x = [2. 4. 6.]" in out
    # 1.6.3: an image file written, read back with imread (RGBA floats), and shown.
    assert "img = imread('mnist_digit.png'): shape (28, 28, 4), dtype float32" in out
    plots(cwd, "ch1_sin.png", "ch1_sin_cos.png", "ch1_imshow.png")
    assert (cwd / "out" / "mnist_digit.png").is_file()


def test_ch2_perceptron(outputs):
    out, cwd = outputs("ch2_perceptron.py")
    assert "np.sum(w * x) + b = -0.19999999999999996 " in out
    table = out.split("x1 x2 |  AND NAND   OR  XOR\n", 1)[1].splitlines()[:4]
    assert [numbers(row).tolist() for row in table] == [
        [0, 0, 0, 1, 0, 0],
        [1, 0, 0, 1, 1, 1],
        [0, 1, 0, 1, 1, 1],
        [1, 1, 1, 0, 1, 0],
    ]
    assert "the best gets 3 of 4 XOR outputs right" in out
    learned = out.split("== Learning the gates", 1)[1]
    for name in ("AND", "NAND", "OR"):
        got, target = line(learned, f"{name}: ").rsplit("-> ", 1)[1].split(", target ")
        assert got == target, name
    got, target = (
        line(out.split("two-layer net", 1)[1], "XOR: ").rsplit("-> ", 1)[1].split(", target ")
    )
    assert got == target == "[0 1 1 0]"
    plots(cwd, "ch2_gates_book.png", "ch2_gates_learned.png")
    # 2.3.1: the threshold form of AND gives the bias form's table (AND's column above).
    theta = out.split("bias form: x1 w1 + x2 w2 + b > 0\n", 1)[1].splitlines()[:4]
    assert [numbers(row).tolist() for row in theta] == [
        [0, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [1, 1, 1, 1],
    ]
    # The perceptron and the two-layer XOR net drawn by minigrad.viz, and the naming.
    assert numbers(line(out, "the XOR net's graph: outputs")).tolist()[:4] == [0, 1, 1, 0]
    assert "2 layers of weights (layer1.W, layer2.W) between 3 layers of units" in out
    graphs = ("ch2_perceptron_graph.png", "ch2_xor_graph.png")
    if shutil.which("dot") is None:
        graphs = tuple(name.replace(".png", ".dot") for name in graphs)
    plots(cwd, *graphs)


def test_ch3_forward_networks(outputs):
    out, cwd = outputs(*CH3)
    as_printed(numbers(line(out, "sigmoid(x) =")), "0.26894142", "0.73105858", "0.88079708")
    products = out.split("== 3.3 Matrix products", 1)[1].split("== 3.4")[0]
    assert numbers(products.split("A @ B =\n")[1].split("B @ A")[0]).tolist() == [19, 22, 43, 50]
    assert numbers(products.split("B @ A =\n")[1].split("(the order")[0]).tolist() == [
        23, 34, 31, 46,
    ]  # fmt: skip
    two_by_three = products.split("a (2, 3) by a (3, 2): A @ B =\n")[1].split(
        "a (2, 3) by a (2, 2)"
    )
    assert numbers(two_by_three[0]).tolist() == [22, 28, 49, 64, 2, 2]  # and its shape (2, 2)
    assert line(products, "numpy:    ").startswith("ValueError: shapes (2,3) and (2,2) not aligned")
    assert line(products, "minigrad: ").startswith(
        "ValueError: matmul: shapes (2, 3) and (2, 2) are not aligned"
    )
    assert numbers(line(products, "a (3, 2) by a (2,): A @ B =")).tolist() == [23, 53, 83, 3]
    assert numbers(line(out, "X @ W =")).tolist() == [5, 11, 17]
    as_printed(numbers(line(out, "Z1 = sigmoid(A1) =")), "0.57444252", "0.66818777", "0.75026011")
    as_printed(numbers(line(out, "y = [")), "0.31682708", "0.69627909")
    # 3.5: the same sums through the identity (regression) and softmax (classification).
    as_printed(numbers(line(out, "identity_function(a3) =")), "0.31682708", "0.69627909")
    as_printed(numbers(line(out, "softmax(a3)           =")), "0.40625907", "0.59374093")
    # 3.6.3: a batch of 100 images in, 100 rows of 10 scores out.
    assert (
        "x (100, 784) @ W1 (784, 50) -> (100, 50) @ W2 (50, 100) -> (100, 100) @ W3 (100, 10) -> y (100, 10)"
        in out
    )
    assert "a batch of 100: y (100, 10)" in out
    graph = "ch3_network_graph.png" if shutil.which("dot") else "ch3_network_graph.dot"
    plots(cwd, graph)
    softmax = line(out, "softmax([0.3, 2.9, 4.0]) =")
    as_printed(numbers(softmax.split(", sum")[0]), "0.01821127", "0.24519181", "0.73659691")
    assert "[nan nan nan]" in line(out, "naive exp(a) / sum(exp(a))")
    as_printed(
        numbers(line(out, "minigrad (exp(a - max(a))").split(":", 1)[1]),
        "9.99954600e-01",
        "4.53978686e-05",
        "2.06106005e-09",
    )
    plots(cwd, "ch3_step_sigmoid.png", "ch3_relu.png")


@pytest.mark.skipif(
    not (SAMPLE_WEIGHTS.is_file() and MNIST_DIR.is_dir()),
    reason=f"the book's sample weights and MNIST are not at {SAMPLE_WEIGHTS} and {MNIST_DIR} "
    "(set MINIGRAD_TEST_SAMPLE_WEIGHTS and MINIGRAD_TEST_MNIST to a copy)",
)
def test_ch3_sample_weights_reach_0_9352(outputs):
    out, cwd = outputs(*CH3)
    assert "x_test (10000, 784)" in out
    assert line(out, "Accuracy, one image at a time:").strip() == "0.9352"
    assert line(out, "Accuracy, in batches of 100:").strip() == "0.9352"
    assert "batched is" in line(out, "time for 10,000 images")  # printed, never checked
    plots(cwd, "ch3_mnist_predictions.png")


def test_ch3_runs_without_the_shared_datasets(tmp_path, monkeypatch):
    """No sample weights: section 3.6 is skipped with the reason and how to convert the book's
    pickle (it said only that they "come with the book's code", whose file minigrad refuses);
    the rest still runs."""
    out = run(tmp_path, "ch3_forward_networks.py", "--weights", str(tmp_path / "none.npz"))
    assert "skipped: the book's sample weights are not at" in out
    assert "softmax([0.3, 2.9, 4.0])" in out
    assert "only for a file you trust" in out
    assert "W1 (784, 50), b1 (50,), W2 (50, 100), b2 (100,), W3 (100, 10), b3 (10,)" in out
    # The printed conversion works on a pickle shaped like the book's.
    import pickle

    shapes = {"W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10)}
    book = {k: np.ones(s, np.float32) for k, s in {**shapes, "b3": (10,)}.items()}
    (tmp_path / "sample_weight.pkl").write_bytes(pickle.dumps(book))
    snippet = [text[6:] for text in out.splitlines() if text.startswith("      ")]
    monkeypatch.chdir(tmp_path)
    exec("\n".join(snippet), {})
    with np.load(tmp_path / "sample_weight.npz") as npz:
        assert {k: npz[k].shape for k in npz.files} == {k: a.shape for k, a in book.items()}
    # Given the pickle itself, or arrays of other shapes, it says what is wrong.
    out = run(tmp_path, "ch3_forward_networks.py", "--weights", "sample_weight.pkl")
    assert "is not an .npz (zip) archive" in out and "pickle.load(f)" in out
    np.savez(tmp_path / "small.npz", **{**book, "W2": np.ones((50, 10))})
    out = run(tmp_path, "ch3_forward_networks.py", "--weights", "small.npz")
    assert "skipped: small.npz has W2 (50, 10); the book's sample weights are W1 (784, 50)" in out


def test_ch3_says_what_is_wrong_with_its_weights_and_data(tmp_path):
    """Tracebacks before: np.load's "pickled data" on a non-zip file, KeyError 'W1' on a
    model saved by `minigrad train`, CorruptFileError on a bad MNIST file."""
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "model.npz", **{"layers.0.W": np.zeros((2, 2))})
    out = run(tmp_path, "ch3_forward_networks.py", "--weights", str(tmp_path / "junk.npz"))
    assert "junk.npz is not an .npz (zip) archive of the book's sample weights" in out
    out = run(tmp_path, "ch3_forward_networks.py", "--weights", str(tmp_path / "model.npz"))
    assert "model.npz holds layers.0.W, not the book's sample weights (missing W1" in out
    shapes = {"W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10)}
    np.savez(tmp_path / "book.npz", b3=np.zeros(10), **{k: np.zeros(s) for k, s in shapes.items()})
    for pair in mnist.FILES.values():
        for name in pair:
            (tmp_path / f"{name}.gz").write_bytes(b"not gzip")
    args = ("--weights", str(tmp_path / "book.npz"), "--data-dir", str(tmp_path))
    out = run(tmp_path, "ch3_forward_networks.py", *args)
    assert "skipped: " in out and "has magic number" in out and "Accuracy" not in out


@pytest.mark.skipif(
    not SAMPLE_WEIGHTS.is_file(),
    reason=f"no sample weights at {SAMPLE_WEIGHTS} (set MINIGRAD_TEST_SAMPLE_WEIGHTS to a copy)",
)
def test_ch3_falls_back_to_the_embedded_subset(tmp_path):
    """Weights but no MNIST files: inference runs on the 1,000 embedded test images."""
    env = {"MINIGRAD_DATA_DIR": str(tmp_path), "MINIGRAD_CACHE_DIR": str(tmp_path)}
    args = ("--weights", str(SAMPLE_WEIGHTS), "--data-dir", str(tmp_path))
    out = run(tmp_path, "ch3_forward_networks.py", *args, **env)
    assert "using the 1,000 test images embedded in minigrad" in out
    assert float(line(out, "Accuracy, in batches of 100:")) > 0.9


def test_ch4_learning(outputs):
    out, cwd = outputs("ch4_learning.py", "--fast")
    mse_2, cee_2 = numbers(line(out, '"2" most likely:'))[[0, 1]]
    mse_7, cee_7 = numbers(line(out, '"7" most likely:'))[[0, 1]]
    as_printed(
        [mse_2, mse_7, cee_2, cee_7],
        "0.097500000000000031",
        "0.59750000000000003",
        "0.51082545709933802",
        "2.3025840929945458",
    )
    as_printed(numbers(line(out, "df/dx at x = 5:")), "0.1999999999990898", "0.2")
    as_printed(numbers(line(out, "df/dx at x = 10:")), "0.2999999999986347", "0.3")
    as_printed(numbers(line(out, "df/dx0 =")), "6.00000000000378")
    as_printed(numbers(line(out, "df/dx1 =")), "7.999999999999119")
    # The book prints [6. 8.]: NumPy's 8 decimals (the central difference is 6.00000000000378 ...).
    for point, grad in (("(3.0, 4.0)", (6, 8)), ("(0.0, 2.0)", (0, 4)), ("(3.0, 0.0)", (6, 0))):
        grad = [f"{g}.00000000" for g in grad]
        printed = line(out, f"at {point}:")
        as_printed(numbers(printed.split("backprop")[0]), *grad)  # numerically, as the book
        as_printed(numbers(printed.split("backprop")[1]), *grad)
    # Gradient descent from (-3, 4), 100 steps, with the book's numerical gradient.
    descent = {lr: line(out, f"lr = {lr}:").split("backprop") for lr in ("0.1", "10", "1e-10")}
    as_printed(numbers(descent["0.1"][0]), "-6.11110793e-10", "8.14814391e-10")
    as_printed(numbers(descent["10"][0]), "-2.58983747e+13", "-1.29524862e+12")
    as_printed(numbers(descent["1e-10"][0]), "-2.99999994", "3.99999992")
    near_zero, diverged = numbers(descent["0.1"][1]), numbers(descent["10"][1])
    assert near_zero.shape == diverged.shape == (2,)
    assert np.all(np.abs(near_zero) < 1e-9)  # backprop: the same outcomes
    assert np.all(np.abs(diverged) > 1e100)  # ... but the exact divergence
    as_printed(numbers(descent["1e-10"][1]), "-2.99999994", "3.99999992")
    # simpleNet with the W the book printed (to 8 decimals, so the loss agrees to ~1e-8).
    simple = line(out, "p = x W =")
    as_printed(numbers(simple.split("argmax")[0]), "1.05414809", "0.63071653", "1.1328074")
    assert abs(numbers(simple.split("loss")[1])[0] - 0.92806853663411326) < 1e-8
    book_dW = ["0.21924763", "0.14356247", "-0.36281009", "0.32887144", "0.2153437", "-0.54421514"]
    as_printed(numbers(out.split("dW numerical =\n")[1].split("dW")[0]), *book_dW)
    as_printed(numbers(out.split("dW backprop =\n")[1].split("==")[0]), *book_dW)
    assert numbers(line(out, "max |numerical - backprop| over"))[-1] < 1e-8
    # 4.2.5: accuracy and a step hidden layer give backprop a zero gradient; the loss and
    # sigmoid do not.
    acc = line(out, "a linear classifier on 100 images: accuracy")
    assert "max |d accuracy / dW| = 0.0;" in acc
    assert numbers(acc.split("cross-entropy's")[1])[0] > 1e-3
    for name, w1_moves in (("   step", False), ("sigmoid", True)):
        grads = line(out, f"hidden activation {name}:").split(" = ")[1:]  # W1's, then W2's
        w1, w2 = float(grads[0].split(",")[0]), float(grads[1])
        assert (w1 > 1e-5 if w1_moves else w1 == 0) and w2 > 1e-3, name
    # 4.4.1: stuck at the saddle, slowed near it, crawling on the plateau.
    ridge = line(out, "from (2, 0), on the ridge:")
    assert numbers(ridge).tolist()[:4] == [200, 0, 0, 1] and "never f < 0.01" in ridge
    escape = line(out, "from (2, 0.001), just off it:")
    assert numbers(escape).tolist()[:4] == [200, 0, 1, 0] and 20 < numbers(escape)[-1] < 200
    plateau = numbers(line(out, "from (3.5, 0.5), on the plateau:"))
    assert plateau[0] == 200 and 3.3 < plateau[1] < 3.5 and plateau[3] > 0.9
    # Gradient ascent on g = -(x0^2 + x1^2): the same numbers as descent on x0^2 + x1^2.
    as_printed(
        numbers(line(out, "step_num=100) ->").split("->")[-1]), "-6.11110793e-10", "8.14814391e-10"
    )
    # 4.2.3: a mini-batch's loss scatters around the whole training set's.
    whole = numbers(line(out, "loss on all 5,000 training images:"))[0]
    batches = numbers(line(out, "on 5 random batches of 100:"))[1:6]
    assert len(batches) == 5 and abs(batches.mean() - whole) < 0.2 * whole
    assert batches.min() != batches.max()
    # A 500-iteration run on the subset: well past chance (0.1); the book's 0.946
    # needs --full (10,000 iterations on 60,000 images; see examples/README.md).
    assert float(line(out, "final test accuracy")) > 0.6
    plots(
        cwd,
        "ch4_tangent.png",
        "ch4_gradient_field.png",
        "ch4_descent_path.png",
        "ch4_saddle_plateau.png",
        "ch4_learning_curve.png",
    )


def test_ch5_gradient_check(outputs):
    out, _ = outputs("ch5_gradient_check.py", "--fast")
    for name in ("W1", "b1", "W2", "b2"):
        diff = numbers(line(out, f"{name}:"))[0]
        assert 0 <= diff < 1e-9, (name, diff)  # the book: about 1e-10 to 1e-13
    assert line(out, "fast=True):").strip() == "True"


def test_train_mnist_takes_no_setup_to_mean_all_three(monkeypatch):
    # Python 3.11.7's argparse checked an empty setup list against the choices and refused it.
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "examples"))  # for its `_common`

    spec = importlib.util.spec_from_file_location(
        "train_mnist", ROOT / "examples" / "train_mnist.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.parse_args([]).setup == ["book", "relu", "adam"]
    assert module.parse_args(["adam"]).setup == ["adam"]
    with pytest.raises(SystemExit):
        module.parse_args(["lbfgs"])
    with pytest.raises(SystemExit):  # was a NumPy traceback once training began
        module.parse_args(["--seed", "-1"])


def test_examples_say_what_is_wrong_with_out_and_missing_mnist(tmp_path):
    (tmp_path / "afile").write_text("")
    err = failure(tmp_path, "ch1_numpy_basics.py", "--out", "afile")
    assert "--out afile: cannot make a directory there" in err
    # --full on damaged files (or none, and no network): the loader's message, no traceback
    for pair in mnist.FILES.values():
        for name in pair:
            (tmp_path / f"{name}.gz").write_bytes(b"not gzip")
    for script in ("ch4_learning.py", "train_mnist.py"):
        err = failure(tmp_path, script, "--full", "--data-dir", str(tmp_path))
        assert f"{script}: error: " in err and "magic number" in err


def test_the_readme_s_training_curves_are_minigrad_train_s_default_run(monkeypatch):
    # The picture showed a 15-epoch run beside the text about the 50-epoch default.
    import importlib.util

    from minigrad import train

    spec = importlib.util.spec_from_file_location(
        "draw_graphs", ROOT / "examples" / "draw_graphs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = {}

    def fit(model, optimizer, loader, epochs, **kwargs):
        seen.update(sizes=[p.shape for p in model.parameters()], lr=optimizer.lr, epochs=epochs)
        seen.update(batch=loader.batch_size)
        raise StopIteration

    monkeypatch.setattr(module, "fit", fit)
    with pytest.raises(StopIteration):
        module.train_on_mnist(*mnist.load_mnist_subset())
    assert seen == {
        "sizes": [(784, 50), (50,), (50, 10), (10,)],
        "lr": train.DEFAULT_LR["sgd"],
        "epochs": train.DEFAULT_EPOCHS,
        "batch": 100,
    }


def test_draw_graphs_help_prints_usage_and_writes_nothing(tmp_path):
    # It ignored its arguments: --help rewrote the pictures in docs/.
    out = run(tmp_path, "draw_graphs.py", "--help")
    assert out.startswith("usage: draw_graphs.py") and "writing" not in out


CONVNET_WEIGHTS = Path(
    os.environ.get("MINIGRAD_TEST_CONVNET_WEIGHTS")
    or SHARED / "book-sample-weights" / "simple_convnet.npz"
)
CH7 = ("ch7_convolution.py", "--fast", "--weights", str(CONVNET_WEIGHTS), "--data-dir", str(MNIST_DIR))  # fmt: skip


def test_ch7_convolution(outputs):
    out, cwd = outputs(*CH7)
    assert numbers(out.split("conv(x, W) =\n")[1].split("conv")[0]).tolist() == [15, 16, 6, 15]
    assert numbers(out.split("conv(x, W) + 3 =\n")[1].split("conv")[0]).tolist() == [18, 19, 9, 18]  # fmt: skip
    assert "(1, 1, 4, 4)" in line(out, "conv(x, W, pad=1), shape")
    assert line(out, "im2col(x of shape (1, 3, 7, 7), 5x5 kernel).shape =").strip() == "(9, 75)"
    assert line(out, "im2col(x of shape (10, 3, 7, 7), 5x5 kernel).shape =").strip() == "(90, 75)"
    assert numbers(out.split("max_pool2d(x, 2) =\n")[1].split("avg")[0]).tolist() == [2, 3, 4, 2]
    assert float(line(out, "final test accuracy").split()[0]) > 0.5  # 60 steps on the subset
    plots(cwd, "ch7_filter.png", "ch7_filters.png")


@pytest.mark.skipif(
    not (CONVNET_WEIGHTS.is_file() and MNIST_DIR.is_dir()),
    reason=f"the book's chapter-7 weights and MNIST are not at {CONVNET_WEIGHTS} and {MNIST_DIR} "
    "(set MINIGRAD_TEST_CONVNET_WEIGHTS and MINIGRAD_TEST_MNIST to a copy)",
)
def test_ch7_book_weights_reach_0_9600(outputs):
    out, _ = outputs(*CH7)
    assert line(out, "test accuracy on 10,000 images, float64 as the book:").split()[0] == "0.9600"


def test_ch7_runs_without_the_book_weights(tmp_path):
    out = run(tmp_path, "ch7_convolution.py", "--fast", "--weights", str(tmp_path / "none.npz"))
    assert "skipped: the book's chapter-7 weights are not at" in out
    assert "final test accuracy" in out


def test_ch8_deep_network(outputs):
    out, cwd = outputs("ch8_deep_network.py", "--fast")
    assert "MaxPool2d  -> (64, 4, 4)" in out and "123,552 parameters" in out
    accuracy = re.search(r"^test accuracy ([\d.]+): \d+ of 1,000 wrong$", out, re.MULTILINE)
    assert accuracy and 0.15 < float(accuracy[1]) <= 1  # 20 steps: past chance (0.1)
    plots(cwd, "ch8_misclassified.png")
