"""The float64 numpy reference implementation: the oracle every backend is judged by.

Written from the behaviour in specs/, never from a framework's source, and never
importing one. Every function takes and returns float64 arrays.

STEPS maps each deterministic layer to its step function
``step(x, state, params, training) -> (output, new_state)`` and INITIAL_STATE to
its initial state; random layers take their mask explicitly (dropout_forward).
BACKWARDS maps each deterministic layer to its gradient function
``backward(x, state, params, training, grad_output) -> {"input", "weight", "bias"}``.
"""

from nnconform.reference import groupnorm, instancenorm, layernorm, rmsnorm
from nnconform.reference.batchnorm import batch_statistics, batchnorm_initial_state, batchnorm_step
from nnconform.reference.dropout import dropout_forward
from nnconform.reference.gradients import batchnorm_backward, dropout_backward

_BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
STEPS = {name: batchnorm_step for name in _BATCHNORMS}
INITIAL_STATE = {name: batchnorm_initial_state for name in _BATCHNORMS}
BACKWARDS = {name: batchnorm_backward for name in _BATCHNORMS}

__all__ = ["BACKWARDS", "INITIAL_STATE", "STEPS", "batch_statistics", "batchnorm_backward",
           "batchnorm_initial_state", "batchnorm_step", "dropout_backward", "dropout_forward",
           "groupnorm", "instancenorm", "layernorm", "rmsnorm"]
