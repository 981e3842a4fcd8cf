"""The numerical checker itself: the book's numbers, and that it catches wrong gradients."""

import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad.cli import main
from minigrad.engine import unwrap
from minigrad.gradcheck import (
    GradcheckError,
    compare,
    gradcheck,
    gradgradcheck,
    numerical_diff,
    numerical_gradient,
)
from minigrad.ops import op
from minigrad.testing import SPECS, Spec, shapes


@pytest.fixture
def wrong_ops():
    """Ops with deliberately wrong gradients and their specs, removed from the registry
    and the table afterwards."""

    @op(lambda g, y, x: g * 2 * x * 1.01)  # 1% off
    def bad_square(x):
        return x * x

    @op(lambda g, y, x: g * unwrap(y))  # right first order, wrong second
    def flat_exp(x):
        return np.exp(x)

    SPECS["bad_square"] = SPECS["flat_exp"] = Spec()
    yield bad_square, flat_exp
    for name in ("bad_square", "flat_exp"):
        mg.OPS.pop(name)
        SPECS.pop(name)


def test_numerical_diff_reproduces_the_book():
    f = lambda x: 0.01 * x**2 + 0.1 * x
    assert numerical_diff(f, 5) == 0.1999999999990898
    assert numerical_diff(f, 10) == 0.2999999999986347


def test_numerical_gradient_reproduces_the_book():
    f = lambda x: x[0] ** 2 + x[1] ** 2
    for point, expected in [
        ([3.0, 4.0], [6.0, 8.0]),
        ([0.0, 2.0], [0.0, 4.0]),
        ([3.0, 0.0], [6.0, 0.0]),
    ]:
        np.testing.assert_allclose(numerical_gradient(f, np.array(point)), expected, atol=1e-7)


def test_numerical_gradient_on_integer_input_is_not_truncated():
    f = lambda x: x[0] ** 2 + x[1] ** 2
    np.testing.assert_allclose(numerical_gradient(f, np.array([3, 4])), [6.0, 8.0], atol=1e-7)


def test_numerical_gradient_perturbs_in_place_for_closures():
    w = mg.tensor(np.array([[1.0, -2.0]]))
    x = np.array([[3.0], [0.5]])
    loss = lambda _: (mg.tensor(w.data) @ x).sum().item()  # reads w, ignores its argument
    np.testing.assert_allclose(numerical_gradient(loss, w), x.T, atol=1e-7)
    np.testing.assert_array_equal(w.data, [[1.0, -2.0]])  # restored


def test_numerical_gradient_leaves_x_as_it_was_when_f_raises():
    w = np.array([1.0, 2.0, 3.0])

    def f(_):
        raise RuntimeError("f failed")

    with pytest.raises(RuntimeError, match="f failed"):
        numerical_gradient(f, w)
    np.testing.assert_array_equal(w, [1.0, 2.0, 3.0])  # it was left at 1.0001


def test_numerical_gradient_takes_a_one_element_result_and_refuses_float16():
    w, x = np.array([1.0, 2.0]), np.array([[0.5, -1.0]])
    np.testing.assert_allclose(numerical_gradient(lambda _: x @ w, w), [0.5, -1.0], atol=1e-7)
    with pytest.raises(ValueError, match=r"f must return one number, got shape \(2,\)"):
        numerical_gradient(lambda _: w * 2, w)
    with pytest.raises(TypeError, match="needs float32 or float64, got float16"):  # all zeros
        numerical_gradient(lambda z: (z.astype(float) ** 2).sum(), np.array([1.0, 3.0], np.float16))


def test_gradcheck_catches_a_gradient_of_the_wrong_shape():
    # Flattened, a (6,) gradient for a (2, 3) input passed, and a () one was stretched.
    @op(lambda g, y, x: np.broadcast_to(g, (x.size,)) * 1.0)
    def flat_sum(x):
        return np.sum(x)

    try:
        with pytest.raises(
            GradcheckError, match=r"gradient of shape \(6,\) for an input of shape \(2, 3\)"
        ):
            gradcheck(flat_sum, np.ones((2, 3)))
        with pytest.raises(GradcheckError, match="gradient of shape"):
            gradcheck(flat_sum, np.ones((2, 3)), fast=True)
    finally:
        mg.OPS.pop("flat_sum")


def test_a_nan_gradient_reports_nan_error_not_zero():
    @op(lambda g, y, x: g * np.nan)
    def nan_grad(x):
        return x * 1.0

    try:
        result = compare(nan_grad, np.ones(2))
        assert result.failure and np.isnan(result.max_abs)  # max(0.0, nan) gave 0.0
    finally:
        mg.OPS.pop("nan_grad")


def test_gradgradcheck_of_a_function_its_input_does_not_reach():
    assert gradgradcheck(lambda t: mg.Tensor(np.ones(3)), np.ones(3))  # np.concatenate of nothing


@pytest.mark.parametrize(
    "cut",
    [lambda a: (a * a * a).detach(), lambda a: mg.Tensor(np.sin(a.data))],
    ids=["detach", "data"],
)
def test_gradgradcheck_fails_a_function_cut_from_the_graph(cut):
    # Its first derivatives are wrong (backprop 0), and gradgradcheck returned True: with no
    # output in the graph it compared nothing.
    with pytest.raises(GradcheckError, match="the first derivatives are wrong"):
        gradgradcheck(cut, np.array([0.3, 0.7]))


def test_gradcheck_refuses_bad_tolerances_and_a_none_output():
    with pytest.raises(ValueError, match="eps > 0, atol >= 0, rtol >= 0"):
        gradcheck(lambda t: t * 2, np.ones(2), eps=0)
    with pytest.raises(ValueError, match="eps > 0"):
        gradcheck(lambda t: t * 2, np.ones(2), atol=-1)
    with pytest.raises(TypeError, match="fn returned None"):
        gradcheck(lambda t: None, np.ones(2))


def test_gradcheck_says_how_to_pass_labels_that_have_no_gradient():
    # The op's own advice, "pass t as an array", was wrong here: t was an array, and
    # gradcheck differentiates every float array.
    y, t = np.zeros((2, 3)), np.eye(3)[[0, 2]]
    with pytest.raises(RuntimeError, match=r"pass an input .* as mg\.Tensor"):
        gradcheck(mg.functional.softmax_cross_entropy, y, t)
    assert gradcheck(mg.functional.softmax_cross_entropy, y, mg.Tensor(t))


def test_gradcheck_passes_correct_gradients():
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert gradcheck(lambda t: mg.functional.tanh(t) * t, x)
    assert gradcheck(lambda t: mg.functional.tanh(t) * t, x, fast=True)
    assert gradgradcheck(lambda t: mg.functional.tanh(t) * t, x)


def test_gradcheck_catches_a_wrong_gradient_and_says_where(wrong_ops):
    bad_square, _ = wrong_ops
    x = np.array([[0.5, -1.0], [2.0, 0.1]])
    with pytest.raises(GradcheckError) as info:
        gradcheck(bad_square, x)
    message = str(info.value)
    assert "input 0 (shape (2, 2)), element (1, 0)" in message  # the largest |x| is the worst
    assert "backprop 4.04" in message and "numerical 4" in message
    assert "tolerance" in message and "atol 1e-05" in message
    with pytest.raises(GradcheckError, match=r"projection of all inputs .*\(fast mode\): backprop"):
        gradcheck(bad_square, x, fast=True)


def test_gradcheck_names_the_worst_input_not_the_first_failing_one(wrong_ops):
    bad_square, _ = wrong_ops
    small, large = np.array([0.5, -1.0]), np.array([3.0, -20.0])
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2,\)\), element \(1,\)"):
        gradcheck(lambda a, b: bad_square(a) + bad_square(b), small, large)


def test_gradcheck_fails_on_a_nan_gradient():
    nan_grad = op(lambda g, y, x: g * np.nan, name="nan_grad")(lambda x: x * 1.0)
    try:
        with pytest.raises(GradcheckError, match="backprop nan"):
            gradcheck(nan_grad, np.array([1.0, 2.0]))
    finally:
        mg.OPS.pop("nan_grad")


@pytest.mark.parametrize("inputs", [(1.0,), (np.array([1, 2]),), (mg.tensor([1.0]),), ()])
def test_gradcheck_needs_something_to_differentiate(inputs):
    with pytest.raises(ValueError, match="no input to differentiate"):
        gradcheck(lambda *xs: mg.tensor(1.0), *inputs)


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable(wrong_ops):
    _, flat_exp = wrong_ops
    x = np.array([0.3, -0.2])
    assert gradcheck(flat_exp, x)
    with pytest.raises(GradcheckError, match="gradgradcheck failed"):
        gradgradcheck(flat_exp, x)


def test_gradcheck_reports_nan_and_inf_inputs():
    with pytest.raises(ValueError, match=r"input 0 has a NaN or inf at index \(1,\)"):
        gradcheck(lambda t: t * 2, np.array([1.0, np.nan]))


def test_gradcheck_leaves_non_float_inputs_alone():
    x = np.array([[1.0, 2.0, 3.0]])
    labels = np.array([2])
    assert gradcheck(mg.functional.softmax_cross_entropy, x, labels)


def test_cli_gradcheck_prints_a_table_and_passes(capsys):
    assert main(["gradcheck", "add", "softmax_cross_entropy", "--examples", "3"]) == 0
    out = capsys.readouterr().out
    assert "max abs err" in out and "all passed" in out
    assert out.count("pass") >= 4  # two ops, first and second order


def test_cli_gradcheck_shows_its_rule_and_which_column_decides(capsys):
    # "max rel err 1.00e+00 ... pass" was printed with no rule to read it by. At x = 0 the
    # derivative of x^3 is 0 and central differences give h^2: a relative error of 1 that
    # the absolute tolerance passes.
    @op(lambda g, y, x: g * 3 * x * x)
    def cube(x):
        return x * x * x

    SPECS["cube"] = Spec(
        case=lambda draw: ((np.zeros(draw(shapes(min_dims=1))),), {}), ref=lambda x: x**3
    )
    try:
        assert main(["gradcheck", "cube", "--examples", "5"]) == 0
    finally:
        mg.OPS.pop("cube")
        SPECS.pop("cube")
    out = capsys.readouterr().out
    rule = "|analytic - numerical| <= atol + rtol * |numerical|, atol 1e-05, rtol 0.001"
    assert out.splitlines()[0] == f"An entry passes when {rule}."
    rows = [line.split(None, 5) for line in out.splitlines()[2:4]]
    assert [row[:2] for row in rows] == [["cube", "1"], ["cube", "2"]]
    assert float(rows[0][4]) > 0.5 and rows[0][5] == "pass (abs err <= atol)"
    for row in rows:
        assert float(row[3]) <= 1e-5 and row[5] == "pass (abs err <= atol)"
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    assert rule.replace(" ", "") in capsys.readouterr().out.replace("\n", "").replace(" ", "")


def test_cli_gradcheck_fails_on_a_wrong_op(wrong_ops, capsys):
    assert main(["gradcheck", "bad_square", "--examples", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 failed" in out


def test_cli_gradcheck_rejects_unknown_ops(capsys):
    assert main(["gradcheck", "no_such_op"]) == 2
    assert capsys.readouterr().err.startswith(
        "minigrad gradcheck: error: unknown op(s): no_such_op"
    )
    assert main(["gradcheck", "--examples", "0"]) == 2
    assert "minigrad gradcheck: error: --examples must be at least 1" in capsys.readouterr().err


def test_cli_gradcheck_says_when_an_op_has_nothing_to_check(capsys):
    # `minigrad gradcheck accuracy` printed "all passed" having checked nothing.
    assert main(["gradcheck", "accuracy"]) == 2
    assert "error: nothing to check: no gradient to compare for accuracy" in capsys.readouterr().err
    assert main(["gradcheck", "accuracy", "add", "--examples", "2"]) == 0
    assert "skipped, not differentiable: accuracy" in capsys.readouterr().out


def test_cli_gradcheck_without_hypothesis_says_which_extra(monkeypatch, capsys):
    # As if hypothesis were not installed: minigrad.testing, loaded by this run, is imported
    # anew and stops at it.
    for name in [m for m in sys.modules if m.split(".")[0] == "hypothesis"]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.startswith("minigrad.testing")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    assert main(["gradcheck", "add"]) == 1
    assert capsys.readouterr().err == (
        "minigrad gradcheck: error: this needs hypothesis, which is not installed; "
        "install it with: pip install 'minigrad[test]'\n"
    )
    with pytest.raises(SystemExit) as info:  # its help needs no hypothesis
        main(["gradcheck", "--help"])
    assert info.value.code == 0 and "--examples" in capsys.readouterr().out
