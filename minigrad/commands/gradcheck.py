"""`minigrad gradcheck`: check registered ops' gradients numerically and print a table.

Each op is checked on calls drawn from its spec in `minigrad.testing.SPECS`,
first and (where the spec says so) second order, against central differences.
Needs the `test` extra (hypothesis).
"""

from __future__ import annotations

import argparse
import sys

from minigrad.gradcheck import compare
from minigrad.ops import OPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    atol, rtol = compare.__kwdefaults__["atol"], compare.__kwdefaults__["rtol"]  # what run uses
    parser.description = (
        "Check every registered op's first derivatives (and second, where it has them) "
        "against central differences in float64, on inputs drawn by hypothesis. An entry "
        f"passes when |analytic - numerical| <= atol + rtol * |numerical|, atol {atol:g}, "
        f"rtol {rtol:g}: where the numerical gradient is near 0, the absolute term decides, so a "
        "relative error of 1 can pass. The result column says which test decided."
    )
    parser.add_argument("ops", nargs="*", help="op names to check (default: all registered ops)")
    parser.add_argument("--examples", type=int, default=20, help="drawn inputs per op (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")


def run(args: argparse.Namespace) -> int:
    from minigrad.testing import SPECS, check_op  # hypothesis: only once the command runs

    names = args.ops or sorted(OPS)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        _error(f"unknown op(s): {', '.join(unknown)}; registered: {', '.join(sorted(OPS))}")
        return 2
    if args.examples < 1:
        _error("--examples must be at least 1")
        return 2
    no_spec = [n for n in names if n not in SPECS]
    if no_spec:
        _error(f"no spec in minigrad.testing.SPECS for {', '.join(no_spec)}")
        return 2
    skipped = [n for n in names if not SPECS[n].differentiable]
    if args.ops and len(skipped) == len(names):
        _error(f"nothing to check: no gradient to compare for {', '.join(skipped)}")
        return 2
    atol, rtol = compare.__kwdefaults__["atol"], compare.__kwdefaults__["rtol"]  # check_op's
    print(
        f"An entry passes when |analytic - numerical| <= atol + rtol * |numerical|, "
        f"atol {atol:g}, rtol {rtol:g}."
    )
    print(
        f"{'op':24} {'order':>5} {'shapes tried':>12} {'max abs err':>12} {'max rel err':>12}  result"
    )
    failed = 0
    for name in (n for n in names if n not in skipped):
        orders = (1, 2) if SPECS[name].second_order else (1,)
        for order in orders:
            summary = check_op(OPS[name], order, examples=args.examples, seed=args.seed)
            ok = summary.failure is None
            failed += not ok
            # Which column shows the pass: every entry within atol, or within rtol of
            # |numerical|; else each entry needed the sum of the two.
            if not ok:
                result = "FAIL"
            elif summary.max_abs <= atol:
                result = "pass (abs err <= atol)"
            elif summary.max_rel <= rtol:
                result = "pass (rel err <= rtol)"
            else:
                result = "pass (each within atol + rtol * |numerical|)"
            print(
                f"{name:24} {order:>5} {summary.shapes:>12} {summary.max_abs:>12.2e} "
                f"{summary.max_rel:>12.2e}  {result}"
            )
            if not ok:
                print(f"    {summary.failure}")
    if skipped:
        print(f"skipped, not differentiable: {', '.join(skipped)}")
    print(f"{failed} failed" if failed else "all passed")
    return 1 if failed else 0


def _error(message: str) -> None:
    print(f"minigrad gradcheck: error: {message}", file=sys.stderr)
