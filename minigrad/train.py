"""Training: the `fit` loop and the `minigrad train` command.

`minigrad train` with no options trains the book's two-layer net (784-50-10,
sigmoid, 0.01 * randn init, SGD, batch 100) on the MNIST subset shipped with
minigrad (5,000 training / 1,000 test images). It differs from the book's
chapter-4 run in two numbers so that it passes 0.90 test accuracy on the
subset in seconds: lr 0.5 instead of 0.1 (with 0.1 the test accuracy stalls
near 0.90) and 50 epochs (2,500 steps) instead of 10,000 steps.

`--model simple-cnn` and `--model deep-cnn` train the book's chapter-7 and
chapter-8 convolutional nets on images (N, 1, 28, 28), with the book's
settings as their defaults: Adam, lr 0.001, 20 epochs.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from minigrad import data, nn, optim
from minigrad import functional as F
from minigrad._files import write_atomically
from minigrad.cli import output_path
from minigrad.engine import Tensor, get_default_dtype, no_grad

History = dict[str, list[float]]
Arrays = tuple[np.ndarray, np.ndarray]

# Learning rates when --lr is not given, each reaching 0.90 test accuracy on the
# subset with the default net and epochs. SGD 1.0 would be faster still but
# diverges with deeper ReLU nets (--hidden 100,100 --activation relu --init he).
DEFAULT_LR = {"sgd": 0.5, "momentum": 0.05, "adagrad": 0.05, "rmsprop": 0.001, "adam": 0.001}
DEFAULT_EPOCHS = 50
# The convolutional nets' defaults: the book's chapters 7 and 8 (Adam, lr 0.001, 20 epochs).
CNN_DEFAULTS = {"optimizer": "adam", "epochs": 20}
CNN_INIT = {"simple-cnn": "book", "deep-cnn": "he"}
# A mean epoch loss this many times the first step's loss is divergence: no run that
# learns comes back from it, and letting it run on only grows the numbers to inf.
DIVERGED = 1e3


def train_step(
    model: nn.Module,
    optimizer: optim.Optimizer,
    x: Tensor,
    t: Any,
    loss_fn: Callable[[Tensor, Any], Tensor] = F.softmax_cross_entropy,
) -> float:
    """One update on one batch; returns the batch loss. The step's graph dies on return."""
    loss = loss_fn(model(x), t)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def evaluate(model: nn.Module, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
    """Accuracy of `model` on arrays x and labels t, in eval mode, recording no graph.

    Every module's mode is restored afterwards, a Dropout the user froze included.
    """
    _check_set("x", x, t)
    _check_positive_int("batch_size", batch_size)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    correct = 0.0
    try:
        with no_grad():
            for i in range(0, len(x), batch_size):
                y = model(Tensor(x[i : i + batch_size]))
                correct += F.accuracy(y, t[i : i + batch_size]) * len(y)
    finally:
        for m, training in modes:
            m.training = training
    return correct / len(x)


def _check_positive_int(name: str, n: Any) -> None:
    if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1):
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")


def _check_set(name: str, x: Any, t: Any) -> None:
    if len(x) == 0:
        raise ValueError(f"cannot evaluate on an empty set: {name} has no samples")
    if len(x) != len(t):
        raise ValueError(f"{name} has {len(x)} samples but {len(t)} labels")


def fit(
    model: nn.Module,
    optimizer: optim.Optimizer,
    train_loader: Any,
    epochs: int = 1,
    *,
    iters: int | None = None,
    loss_fn: Callable[[Tensor, Any], Tensor] = F.softmax_cross_entropy,
    eval_sets: dict[str, Arrays] | None = None,
    progress: bool = True,
    evaluator: Callable[[nn.Module, np.ndarray, np.ndarray], float] = evaluate,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    stop: Callable[[], bool] | None = None,
) -> History:
    """Train for `epochs` passes over `train_loader` (or exactly `iters` steps, if given).

    After each epoch (and after the last, possibly partial, one) the model is
    evaluated on each `name: (x, t)` of `eval_sets`. Returns the history:
    "epoch" (epochs done, fractional after a partial one), "loss" (the mean
    batch loss of each epoch), "<name>_acc" per evaluation set, and
    "batch_loss" (every step's loss). `progress` shows a tqdm bar per epoch
    with the running loss and prints a line per epoch. A loss that is not
    finite, or an epoch's mean loss over 1000 times the first step's, stops
    training with FloatingPointError: the weights are lost to it.
    `evaluator(model, x, t)` gives the accuracies (`distributed.evaluate`
    sums them over MPI ranks).

    With a `checkpoint`, the whole training state is saved at the end of every
    epoch (and every `checkpoint.every` steps); `resume=True` first restores
    it from there, and the run then ends exactly as if it had never stopped.
    `stop` is asked after every step: when it returns True, fit saves the
    checkpoint (if any) and returns the history of the epochs finished so far.
    """
    if iters is None:
        _check_positive_int("epochs", epochs)
    else:
        _check_positive_int("iters", iters)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError(
            "train_loader yields no batches (an empty dataset, or drop_last with fewer "
            "samples than one batch)"
        )
    if iters is not None:
        epochs = math.ceil(iters / steps_per_epoch)
    eval_sets = eval_sets or {}
    for name, (x_eval, t_eval) in eval_sets.items():  # now, not after the first epoch
        _check_set(f"eval set {name!r}", x_eval, t_eval)
    history: History = {"epoch": [], "loss": [], "batch_loss": []}
    history.update({f"{name}_acc": [] for name in eval_sets})
    model.train()
    first_epoch, step, resumed = 1, 0, []
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs the checkpoint to resume from")
        first_epoch, step, resumed = _restore(checkpoint, model, optimizer, train_loader, history)
    for epoch in range(first_epoch, epochs + 1):
        losses, resumed = resumed, []
        before = step - len(losses)  # steps done before this epoch
        total = steps_per_epoch if iters is None else min(steps_per_epoch, iters - before)
        if total <= 0:
            break
        # The order of an epoch is drawn when it starts: a checkpoint taken inside the
        # epoch records the generator as it was then, and how many batches were done.
        epoch_start = train_loader.state_dict() if checkpoint else {}
        bar = tqdm(
            itertools.islice(train_loader, len(losses), total),
            total=total,
            initial=len(losses),
            desc=f"epoch {epoch}/{epochs}",
            unit="batch",
            leave=False,
            disable=not progress,
            file=sys.stderr,
        )
        running = 0.0
        for loss in losses:  # one by one, as the uninterrupted run added them
            running += loss
        for x, t in bar:
            losses.append(train_step(model, optimizer, x, t, loss_fn))
            running += losses[-1]
            step += 1
            first = history["batch_loss"][0] if history["batch_loss"] else losses[0]
            _check_divergence(losses[-1], running / len(losses), first, step, epoch, bar)
            bar.set_postfix(loss=f"{running / len(losses):.4f}", refresh=False)
            if len(losses) == total:
                break
            stopping = stop is not None and stop()
            if checkpoint and (stopping or (checkpoint.every and step % checkpoint.every == 0)):
                state = _training_state(model, optimizer, epoch_start, epoch, step, losses, history)
                checkpoint.save(state)
            if stopping:
                bar.close()
                return history
        bar.close()
        if checkpoint and len(losses) < steps_per_epoch:
            # Cut short by iters: saved as the epoch in progress, so that a resumed run
            # with more iters goes on with this epoch's order, as a longer run would.
            state = _training_state(model, optimizer, epoch_start, epoch, step, losses, history)
            checkpoint.save(state)
        history["epoch"].append(epoch - 1 + len(losses) / steps_per_epoch)
        history["loss"].append(running / len(losses))
        history["batch_loss"] += losses
        line = f"epoch {epoch}/{epochs}  loss {history['loss'][-1]:.4f}"
        for name, (x_eval, t_eval) in eval_sets.items():
            history[f"{name}_acc"].append(evaluator(model, x_eval, t_eval))
            line += f"  {name} acc {history[f'{name}_acc'][-1]:.4f}"
        if progress:
            tqdm.write(line)
        if checkpoint and len(losses) == steps_per_epoch:
            state = _training_state(
                model, optimizer, train_loader.state_dict(), epoch + 1, step, [], history
            )
            checkpoint.save(state)
        if stop is not None and stop():
            break
    return history


def _check_divergence(
    loss: float, mean: float, first: float, step: int, epoch: int, bar: Any
) -> None:
    if math.isfinite(loss) and not (first > 0 and mean > DIVERGED * first):
        return
    bar.close()
    if math.isfinite(loss):
        what = (
            f"the mean loss of epoch {epoch} so far is {mean:.3g}, over {DIVERGED:g} times "
            f"the first step's {first:.3g},"
        )
    else:
        what = f"the loss is {loss}"
    raise FloatingPointError(
        f"training diverged: {what} at step {step} (epoch {epoch}); try a smaller learning rate"
    )


# ---------------------------------------------------------------- checkpoints


class Checkpoint:
    """Where `fit` keeps its training state: `directory/checkpoint.npz`, one `.npz` of arrays.

    It is rewritten whole (atomically) at each epoch end and, with `every`,
    every that many steps. `options` (name -> text) describe the run and are
    saved with it as "options.<name>", so that a resumed run can be compared.
    """

    FILENAME = "checkpoint.npz"

    def __init__(
        self,
        directory: str | os.PathLike,
        every: int | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        if every is not None:
            _check_positive_int("every", every)
        self.directory = os.fspath(directory)
        self.every = every
        self.options = dict(options or {})

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.FILENAME)

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def save(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Write `arrays` and the options atomically (a crash leaves the previous checkpoint),
        creating the directory if need be."""
        arrays = {**arrays, **{f"options.{k}": np.array(v) for k, v in self.options.items()}}
        os.makedirs(self.directory, exist_ok=True)
        # The keys all have a prefix, so none can clash with savez's own arguments.
        write_atomically(self.path, lambda f: np.savez(f, **arrays))

    def load(self) -> dict[str, np.ndarray]:
        """The arrays of the checkpoint (never pickled objects)."""
        if not self.exists():
            raise FileNotFoundError(f"no checkpoint at {self.path!r}")
        try:
            if not zipfile.is_zipfile(self.path):
                raise ValueError("it is not an .npz (zip) archive")
            with np.load(self.path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"cannot read the checkpoint {self.path!r}: {e}") from None

    def saved_options(self) -> dict[str, str]:
        """The options the checkpoint was saved with."""
        return {
            k.removeprefix("options."): str(v)
            for k, v in self.load().items()
            if k.startswith("options.")
        }


def _training_state(
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader_state: Mapping[str, np.ndarray],
    epoch: int,
    step: int,
    losses: list[float],
    history: History,
) -> dict[str, np.ndarray]:
    """Everything the next step depends on: `epoch` is the one to run next (or in
    progress), `losses` those of its steps done so far."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    state.update({f"loader.{k}": v for k, v in loader_state.items()})
    state.update({f"history.{k}": np.array(v, dtype=np.float64) for k, v in history.items()})
    state.update(
        {
            f"random.{k}": np.array(json.dumps(g.bit_generator.state))
            for k, g in _generators(model).items()
        }
    )
    state.update(epoch=np.array(epoch), step=np.array(step))
    state["epoch_losses"] = np.array(losses, dtype=np.float64)
    return state


def _restore(
    checkpoint: Checkpoint,
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: Any,
    history: History,
) -> tuple[int, int, list[float]]:
    """Load a checkpoint into the arguments; returns (epoch, step, losses of that epoch).

    Nothing changes unless all of it loads.
    """
    arrays = checkpoint.load()

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

    saved = part("history.")
    try:
        if set(saved) != set(history):
            raise ValueError(
                f"its history has {sorted(saved)}, this run's {sorted(history)} (other "
                "evaluation sets)"
            )
        epoch, step, losses = int(arrays["epoch"]), int(arrays["step"]), arrays["epoch_losses"]
        generators = _generators(model)
        states = {}  # checked now, set last: every check comes before any change
        for k, g in generators.items():
            bits = type(g.bit_generator)()
            bits.state = json.loads(str(arrays[f"random.{k}"]))
            states[k] = bits.state
        before = model.state_dict()
        model.load_state_dict(part("model."))
        try:
            optimizer.load_state_dict(part("optimizer."))
            loader.load_state_dict(part("loader."))
        except Exception:
            model.load_state_dict(before)
            raise
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"cannot resume from {checkpoint.path!r}: {e}") from None
    for k, state in states.items():
        generators[k].bit_generator.state = state
    for k, v in saved.items():
        history[k] = v.tolist()
    return epoch, step, losses.tolist()


def _generators(model: nn.Module) -> dict[str, np.random.Generator]:
    """The generators the model's modules draw from (Dropout's masks), by module position."""
    return {
        f"{i}.{name}": value
        for i, m in enumerate(model.modules())
        for name, value in vars(m).items()
        if isinstance(value, np.random.Generator)
    }


# ---------------------------------------------------------------- command line


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            what = "> 0" if kind is int else "a finite number > 0"
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive layer sizes separated by commas (e.g. 50 or 100,100), got {text!r}"
        )
    return sizes


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return seed


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none or the help gives it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `minigrad train`."""
    parser.description = (
        "Train a network with softmax cross-entropy. Defaults: the book's two-layer net "
        "(784-50-10, sigmoid, 0.01*randn init, SGD, batch 100) on the embedded MNIST subset, "
        f"lr {DEFAULT_LR['sgd']}, {DEFAULT_EPOCHS} epochs. --model simple-cnn and deep-cnn "
        "train the book's convolutional nets (chapters 7 and 8) with the book's Adam, lr "
        f"{DEFAULT_LR['adam']}, {CNN_DEFAULTS['epochs']} epochs."
    )
    parser.formatter_class = _HelpWithDefaults
    parser.add_argument(
        "--model",
        choices=("mlp", "simple-cnn", "deep-cnn"),
        default="mlp",
        help="mlp: fully connected (--hidden, --activation); simple-cnn: the book's chapter-7 "
        "convnet (conv 30x5x5, pool, 100, 10); deep-cnn: its chapter-8 net (six 3x3 "
        "convolutions, three pools, 50, dropout, 10). The convnets take MNIST images (not "
        "spiral)",
    )
    parser.add_argument(
        "--data",
        choices=("subset", "mnist", "spiral"),
        default="subset",
        help="subset: the 5,000/1,000 MNIST images shipped with minigrad; mnist: the full set "
        "(found via --data-dir, $MINIGRAD_DATA_DIR or the cache, else downloaded); "
        "spiral: 3-class 2-D toy set (300 training, 300 test points), which the book's "
        "defaults do not learn; --hidden 30 --activation relu --init he --optimizer adam "
        "--lr 0.05 --epochs 200 reaches 0.99",
    )
    parser.add_argument(
        "--data-dir", help="directory holding the MNIST IDX files (for --data mnist)"
    )
    parser.add_argument(
        "--hidden",
        type=_hidden,
        default="50",  # a string default goes through type= too, and shows as typed
        metavar="N[,N...]",
        help="hidden layer sizes, e.g. 50 or 100,100",
    )
    parser.add_argument(
        "--activation",
        choices=("sigmoid", "relu", "tanh"),
        default="sigmoid",
        help="between the layers (mlp)",
    )
    parser.add_argument(
        "--init",
        choices=("book", "xavier", "he"),
        help="weights: book = 0.01*randn, xavier = randn/sqrt(n), he = randn*sqrt(2/n), n the "
        "inputs of one unit (default: he for deep-cnn, else book)",
    )
    parser.add_argument(
        "--optimizer",
        choices=tuple(DEFAULT_LR),
        help="momentum is SGD with momentum 0.9 (default: sgd for mlp, adam for the convnets)",
    )
    parser.add_argument(
        "--lr",
        type=_positive(float),
        help="learning rate (default per optimizer: "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_LR.items())
        + ")",
    )
    parser.add_argument("--batch-size", type=_positive(int), default=100, help="samples per step")
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=_positive(int),
        help=f"passes over the training set (default: {DEFAULT_EPOCHS} for mlp, "
        f"{CNN_DEFAULTS['epochs']} for the convnets)",
    )
    length.add_argument(
        "--iters", type=_positive(int), help="train for this many steps instead of --epochs"
    )
    parser.add_argument("--seed", type=_seed, default=0, help="seeds the weights and the shuffling")
    parser.add_argument(
        "--save",
        type=output_path((".npz",)),
        metavar="MODEL.npz",
        help="save the trained parameters (the command prints the nn.MLP(...).load call)",
    )
    parser.add_argument(
        "--plot",
        type=output_path((".png", ".svg", ".pdf")),
        metavar="CURVES.png",
        help="plot loss and train/test accuracy per epoch",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help=f"save the training state to DIR/{Checkpoint.FILENAME} at the end of every epoch "
        "and on Ctrl-C or SIGTERM (the directory is created if need be)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=_positive(int),
        metavar="N",
        help="also save the checkpoint every N steps",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --checkpoint DIR (to --epochs or --iters in all); "
        "it ends exactly as the run would have without the stop",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI ranks: launch as mpiexec -n N minigrad train --distributed; "
        "--batch-size is per rank, so the global batch is N times it (needs the distributed extra)",
    )


def _load(args: argparse.Namespace) -> tuple[Arrays, Arrays]:
    flatten = args.model == "mlp"  # the convnets take images (N, 1, 28, 28)
    if args.data == "subset":
        return data.load_mnist_subset(flatten=flatten)
    if args.data == "mnist":
        return data.load_mnist(data_dir=args.data_dir, progress=not args.quiet, flatten=flatten)
    # Two draws of the same spirals: the test points are new noise on the same arms.
    return data.spiral(seed=0), data.spiral(seed=1)


def _optimizer(name: str, params: Any, lr: float) -> optim.Optimizer:
    if name == "sgd":
        return optim.SGD(params, lr)
    if name == "momentum":
        return optim.SGD(params, lr, momentum=0.9)
    return {"adagrad": optim.AdaGrad, "rmsprop": optim.RMSProp, "adam": optim.Adam}[name](
        params, lr
    )


def _summary(
    args: argparse.Namespace, x_train: np.ndarray, x_test: np.ndarray, model: nn.Module, lr: float
) -> str:
    """One line on what is about to run: the data, the model and the optimizer."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    sizes = [linears[0].W.shape[0], *(m.W.shape[1] for m in linears)] if linears else []
    shape = " " + "-".join(map(str, sizes)) if sizes else ""
    n = sum(p.size for p in model.parameters())
    count, unit = (args.iters, "step") if args.iters else (args.epochs, "epoch")
    length = f"{count} {unit}{'s' * (count != 1)}"
    samples = f"{x_train.shape[1]} features" if x_train.ndim == 2 else f"shape {x_train.shape[1:]}"
    if args.model == "mlp":
        shape += f" {args.activation}"
    else:  # a convnet: its name says what it is
        shape = ""
    return (
        f"data {args.data}: {len(x_train):,} training and {len(x_test):,} test samples of "
        f"{samples}; model {type(model).__name__}{shape}, "
        f"{n:,} parameters; optimizer {args.optimizer}, lr {lr:g}, batch {args.batch_size}, "
        f"{length}"
    )


def resolve_defaults(args: argparse.Namespace) -> str | None:
    """Fill in the defaults that depend on --model; an error message if options clash."""
    cnn = args.model != "mlp"
    if cnn and args.data == "spiral":
        return f"--model {args.model} takes MNIST images; use --data subset or mnist"
    if cnn and (args.hidden != _hidden("50") or args.activation != "sigmoid"):
        return "--hidden and --activation are for --model mlp"
    if args.init is None:
        args.init = CNN_INIT.get(args.model, "book")
    if args.optimizer is None:
        args.optimizer = CNN_DEFAULTS["optimizer"] if cnn else "sgd"
    if args.epochs is None:
        args.epochs = CNN_DEFAULTS["epochs"] if cnn else DEFAULT_EPOCHS
    return None


def _model(args: argparse.Namespace, sizes: list[int]) -> tuple[nn.Module, str]:
    """The model, and the Python that makes one to load its saved parameters into."""
    if args.model == "mlp":
        return (
            nn.MLP(sizes, args.activation, args.init, rng=args.seed),
            f"nn.MLP({sizes}, {args.activation!r})",
        )
    cls = nn.SimpleConvNet if args.model == "simple-cnn" else nn.DeepConvNet
    return cls(output_size=sizes[-1], init=args.init, rng=args.seed), f"nn.{cls.__name__}()"


def run(args: argparse.Namespace) -> int:
    """`minigrad train`: train, print the final accuracies, optionally save and plot."""
    if not args.distributed:
        return _run(args, None)
    from minigrad import distributed as dist  # mpi4py: only a distributed run needs it

    dist.init()
    if dist.rank() != 0:  # rank 0 alone prints and writes files; every rank's errors show
        sys.stdout = open(os.devnull, "w")  # for the life of the process
        args.quiet, args.save, args.plot = True, None, None
    code = _run(args, dist)
    if code:  # the other ranks may be waiting for this one in an all-reduce
        dist.abort(code)
    return code


def _run(args: argparse.Namespace, dist: Any) -> int:
    """`run`, alone or (dist: the minigrad.distributed module) as one rank of an MPI job."""
    start = time.perf_counter()
    if args.plot:  # the plot comes after training: a missing matplotlib should stop it before
        import matplotlib  # noqa: F401
    if args.data_dir is not None and args.data != "mnist":
        print(
            f"minigrad train: error: --data-dir is for --data mnist, not {args.data}",
            file=sys.stderr,
        )
        return 2
    clash = resolve_defaults(args)
    if dist and args.checkpoint:
        clash = "--checkpoint and --resume are not yet supported with --distributed"
    if clash:
        print(f"minigrad train: error: {clash}", file=sys.stderr)
        return 2
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    checkpoint, status = _prepare_checkpoint(args, _run_options(args, lr))
    if status:
        return status
    if dist and dist.rank() != 0:
        dist.barrier()  # rank 0 loads (downloads MNIST) first, alone
    try:
        (x_train, t_train), (x_test, t_test) = _load(args)
    except (OSError, data.CorruptFileError) as e:  # the message says which file and what to do
        message = (  # the loader's words are the library's; these are the command's
            str(e)
            .replace("pass data_dir=...", "pass --data-dir")
            .replace("minigrad.data.load_mnist_subset()", "--data subset")
        )
        print(f"minigrad train: error: {message}", file=sys.stderr)
        return 1
    empty = [name for name, x in (("training", x_train), ("test", x_test)) if len(x) == 0]
    if empty:
        print(f"minigrad train: error: the {' and '.join(empty)} set is empty", file=sys.stderr)
        return 1
    if dist and dist.rank() == 0:
        dist.barrier()
    problem = _check_data(x_train, t_train, x_test, t_test)
    sizes = [math.prod(x_train.shape[1:]), *args.hidden, int(t_train.max()) + 1]
    if problem is None and args.model == "mlp":  # the convnets' sizes are the book's
        problem = _check_memory(sizes, args.optimizer)
    if problem:
        print(f"minigrad train: error: {problem}", file=sys.stderr)
        return 1
    model, maker = _model(args, sizes)
    optimizer = _optimizer(args.optimizer, model.parameters(), lr)
    loader = data.DataLoader(
        data.TensorDataset(x_train, t_train), args.batch_size, shuffle=True, generator=args.seed
    )
    evaluator = evaluate
    if dist:
        dist.broadcast_parameters(model)
        for m in model.modules():  # else every rank draws the same dropout masks
            if isinstance(m, nn.Dropout):
                m.rng = np.random.default_rng([args.seed, dist.rank()])
        optimizer = dist.DistributedOptimizer(optimizer)
        loader = dist.DistributedLoader(
            loader.dataset, args.batch_size, shuffle=True, generator=args.seed
        )
        evaluator = dist.evaluate
    if not args.quiet:
        print(_summary(args, x_train, x_test, model, lr))
        if dist:
            left = len(x_train) % loader.global_batch
            print(
                f"distributed: {_ranks(dist.size())} x batch {args.batch_size} = global batch "
                f"{loader.global_batch}"
                + (f"; the last {left} samples of each epoch's order are left out" if left else "")
            )
    interrupts = _Interrupts()
    try:
        # A diverging run overflows on its way to inf and NaN; fit's error says so once.
        # Over MPI a rank that stopped alone would leave the others in an all-reduce: there
        # the signals keep their usual effect.
        signals = interrupts if dist is None else contextlib.nullcontext()
        with np.errstate(over="ignore", invalid="ignore"), signals:
            history = fit(
                model,
                optimizer,
                loader,
                args.epochs,
                iters=args.iters,
                eval_sets={"train": (x_train, t_train), "test": (x_test, t_test)},
                progress=not args.quiet,
                evaluator=evaluator,
                checkpoint=checkpoint,
                resume=args.resume,
                stop=interrupts.requested,
            )
    except FloatingPointError as e:  # nothing is saved: the weights are inf or NaN
        print(f"minigrad train: error: {e} (--lr {lr:g})", file=sys.stderr)
        return 1
    except ValueError as e:  # a checkpoint that does not fit this model
        print(f"minigrad train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second signal: no more saving
        print(
            f"minigrad train: stopped at once by a second {interrupts.name}; nothing more "
            "was saved",
            file=sys.stderr,
        )
        return 128 + interrupts.signal
    if interrupts.signal:
        return _save_interrupted(args, checkpoint, model, maker, interrupts)
    if dist:  # each rank's losses are of its share: the mean over ranks is the global one
        history["loss"] = dist.average(history["loss"]).tolist()
        history["batch_loss"] = dist.average(history["batch_loss"]).tolist()
    print(
        f"train accuracy {history['train_acc'][-1]:.4f}  test accuracy "
        f"{history['test_acc'][-1]:.4f}  ({time.perf_counter() - start:.1f} s)"
        + (f" on {_ranks(dist.size())}" if dist else "")
    )
    # The paths were checked before training, but a disk can still fill up; a failed
    # save must not cost the plot, nor the other way round.
    failed = False
    if args.save:
        if _write(model.save, args.save):
            print(f"saved to {args.save}; load with model = {maker}; model.load(path)")
        else:
            failed = True
    if args.plot:
        from minigrad.viz import plot_history  # matplotlib is slow to import: only if asked

        shape = "-".join(str(n) for n in sizes) + f" {args.activation}"
        if args.model != "mlp":
            shape = args.model
        title = f"{args.data}: {shape}, {args.optimizer} lr {lr:g}"
        failed |= not _write(lambda path: plot_history(history, title=title, path=path), args.plot)
    return 1 if failed else 0


# ---------------------------------------------------------------- long runs


def _run_options(args: argparse.Namespace, lr: float) -> dict[str, str]:
    """What a resumed run must share with the checkpoint (the length may change)."""
    return {
        "data": args.data,
        "model": args.model,
        "hidden": ",".join(map(str, args.hidden)),
        "activation": args.activation,
        "init": args.init,
        "optimizer": args.optimizer,
        "lr": repr(lr),
        "batch-size": str(args.batch_size),
        "seed": str(args.seed),
    }


def _prepare_checkpoint(
    args: argparse.Namespace, options: dict[str, str]
) -> tuple[Checkpoint | None, int]:
    """The run's checkpoint, or an exit status after saying what is wrong."""
    if not args.checkpoint:
        for flag, given in (
            ("--resume", args.resume),
            ("--checkpoint-every", args.checkpoint_every),
        ):
            if given:
                print(f"minigrad train: error: {flag} needs --checkpoint DIR", file=sys.stderr)
                return None, 2
        return None, 0
    checkpoint = Checkpoint(args.checkpoint, args.checkpoint_every, options)
    if os.path.exists(checkpoint.directory) and not os.path.isdir(checkpoint.directory):
        print(
            f"minigrad train: error: --checkpoint {args.checkpoint!r} is a file; give a directory",
            file=sys.stderr,
        )
        return None, 2
    if not args.resume:
        if checkpoint.exists():  # an hour of training is not overwritten by a typo
            print(
                f"minigrad train: error: {checkpoint.path} already holds a checkpoint; pass "
                "--resume to continue it, or remove it to start again",
                file=sys.stderr,
            )
            return None, 1
        return checkpoint, 0
    try:
        saved = checkpoint.saved_options()
    except (OSError, ValueError) as e:
        print(f"minigrad train: error: cannot resume: {e}", file=sys.stderr)
        return None, 1
    differ = [
        f"--{k} {options[k]} (the checkpoint has {saved.get(k, 'none')})"
        for k in options
        if saved.get(k) != options[k]
    ]
    if differ:
        print(
            f"minigrad train: error: cannot resume {checkpoint.path} with other options: "
            + "; ".join(differ),
            file=sys.stderr,
        )
        return None, 2
    return checkpoint, 0


class _Interrupts:
    """SIGINT and SIGTERM during training: the first asks fit to stop after the current step
    (`requested`), a second raises KeyboardInterrupt at once. Handlers are restored on exit."""

    def __init__(self) -> None:
        self.signal = 0
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""

    def requested(self) -> bool:
        return bool(self.signal)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"minigrad train: {signal.Signals(signum).name}: stopping after this step "
            "(again to stop at once)",
            file=sys.stderr,
        )

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():  # else signal() refuses
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _save_interrupted(
    args: argparse.Namespace,
    checkpoint: Checkpoint | None,
    model: nn.Module,
    maker: str,
    interrupts: _Interrupts,
) -> int:
    """After a stop by signal: save the model if asked, say what was saved; the exit status."""
    saved = []
    if checkpoint:
        saved.append(f"the checkpoint to {checkpoint.path} (continue with --resume)")
    if args.save and _write(model.save, args.save):
        saved.append(
            f"the model as of the last finished step to {args.save} (load with model = "
            f"{maker}; model.load(path))"
        )
    what = "saved " + " and ".join(saved) if saved else "nothing saved (no --checkpoint or --save)"
    print(f"minigrad train: interrupted by {interrupts.name}; {what}", file=sys.stderr)
    return 128 + interrupts.signal


def _check_data(
    x_train: np.ndarray, t_train: np.ndarray, x_test: np.ndarray, t_test: np.ndarray
) -> str | None:
    """What makes a data set untrainable by the command, before any work: None if nothing."""
    if x_train.ndim < 2 or math.prod(x_train.shape[1:]) == 0:
        return f"the training samples have shape {x_train.shape[1:]}; expected at least 1 feature"
    if x_test.shape[1:] != x_train.shape[1:]:
        return (
            f"the training samples have {math.prod(x_train.shape[1:])} features and the test samples "
            f"{math.prod(x_test.shape[1:])}; expected the same (images of one size)"
        )
    for name, t in (("training", t_train), ("test", t_test)):
        if t.ndim != 1 or t.dtype.kind not in "iu" or t.min() < 0:
            return f"the {name} labels must be integers >= 0, one per sample"
    if t_test.max() > t_train.max():
        return (
            f"the test labels go up to {t_test.max()} but the training labels only to "
            f"{t_train.max()}: the model would have {t_train.max() + 1} classes"
        )
    return None


def _check_memory(sizes: list[int], optimizer: str) -> str | None:
    """A model whose parameters, gradients and optimizer state would not fit in memory."""
    n = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    copies = 2 + {"sgd": 0, "momentum": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}[optimizer]
    need = n * copies * get_default_dtype().itemsize
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # not every system says
        return None
    if need <= have:
        return None
    return (
        f"the model {'-'.join(map(str, sizes))} has {n:,} parameters: with their gradients "
        f"and the {optimizer} state about {need / 1e9:,.1f} GB, more than this machine's "
        f"{have / 1e9:,.1f} GB of memory; use smaller --hidden sizes"
    )


def _ranks(n: int) -> str:
    return f"{n} rank{'s' * (n != 1)}"


def _write(save: Callable[[Any], Any], path: Any) -> bool:
    """save(path), reporting an OSError as the command's error; whether it worked."""
    try:
        save(path)
    except OSError as e:
        print(f"minigrad train: error: {e}", file=sys.stderr)
        return False
    return True
