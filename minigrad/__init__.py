"""minigrad: a small computational-graph autodiff framework on NumPy.

import minigrad as mg
import minigrad.functional as F
"""

from minigrad import data, functional, nn, optim
from minigrad.engine import (
    AnomalyError,
    Tensor,
    detect_anomaly,
    enable_grad,
    get_default_dtype,
    grad,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
    tensor,
)
from minigrad.ops import OPS
from minigrad.replay import Replay

__all__ = [
    "OPS",
    "Replay",
    "AnomalyError",
    "Tensor",
    "detect_anomaly",
    "enable_grad",
    "data",
    "functional",
    "nn",
    "optim",
    "get_default_dtype",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "set_default_dtype",
    "tensor",
]
