"""The backend API: what a backend must provide for nnconform to test it.

A backend is any object with these attributes (no base class is needed):

    name: str                   # shown in reports
    version: str                # the version of the implementation under test
    capabilities: Capabilities  # what it declares it supports
    def build(self, layer: str, params: dict, dtype: str) -> Layer
    def seed(self, seed: int) -> None      # optional: seeds the backend's RNG

``layer`` is a layer name from a spec file ("Dropout", "BatchNorm2d"), ``params`` the
constructor parameters by their spec names (p, inplace, num_features, eps, momentum,
affine, track_running_stats) and ``dtype`` one of float16, bfloat16, float32, float64.

A built Layer has:

    def forward(self, x: numpy.ndarray) -> numpy.ndarray
    def train(self) -> None
    def eval(self) -> None
    def state(self) -> dict[str, numpy.ndarray | int | None]
        # the family's state fields (spec [state] table), e.g. running_mean, running_var,
        # num_batches_tracked, weight, bias; None where absent
    def load_state(self, values: dict[str, numpy.ndarray | int]) -> None
        # sets the named fields (a subset of state()); unless capabilities.load_state is False
    trainable: frozenset[str]   # optional: names in state() that are trainable parameters

and, when the backend declares ``autograd=True``:

    requires_grad: bool         # set to True by the suite before the forward calls it differentiates
    def backward(self, grad_output: numpy.ndarray) -> dict[str, numpy.ndarray | None]
        # gradients of the LAST forward call: {"input": ..., "weight": ..., "bias": ...}, None where absent

Arrays cross the boundary as numpy arrays; bfloat16 is ``ml_dtypes.bfloat16``. A
layer's output keeps the dtype it computed in, so that dtype preservation is
testable. Inputs may be non-contiguous (strided views, channels-last). When a layer
runs in place, it writes into the numpy array it was given.

A clause outside the declared Capabilities is reported as "not supported by backend"
and counted separately; docs/backend-api.md has the full guide and a worked example
(examples/numpy_backend.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnconform.vocabulary import DTYPES


@dataclass(frozen=True)
class Capabilities:
    """What a backend declares it supports. Clauses outside it are reported as
    "not supported by backend" and counted separately, never as passed."""
    layers: frozenset[str]
    dtypes: frozenset[str] = frozenset(DTYPES)
    device: str = "cpu"
    autograd: bool = False
    notes: dict[str, str] = field(default_factory=dict)
    # Parameter values the backend cannot build, by parameter name: for example
    # {"momentum": (None,), "track_running_stats": (False,)}; a key "Layer.name"
    # (e.g. "InstanceNorm2d.track_running_stats") holds for that layer only. Draws never take them;
    # an item whose clause can only take such values is unsupported, never failed.
    unsupported_values: dict[str, tuple] = field(default_factory=dict)
    # Whether layers implement load_state(values). Without it, clauses that need drawn
    # state run with the layer's own initial state, and the summary says they were limited.
    load_state: bool = True
    # The named conventions the backend follows where the spec allows several
    # (for example {"running_var": "biased"}); absent names follow the spec's default.
    conventions: dict[str, str] = field(default_factory=dict)
    # Dtypes per layer, for the layers whose dtypes differ from `dtypes` (a framework
    # whose kernels exist for some dtypes only, op by op): for example
    # {"Dropout": frozenset({"float32", "float64"})}. A layer not named here has `dtypes`.
    layer_dtypes: dict[str, frozenset[str]] = field(default_factory=dict)
    # Float parameters whose every value the backend compiles into its code, so that a new
    # value costs a compile (torch.compile specializes eps, momentum and p), with how many
    # values a run draws of each: for example {"eps": 2}. A run then draws that parameter
    # from `count` values of each domain, fixed by the run's seed (another seed, other
    # values), instead of the whole range; the domain's `include` values still run pinned,
    # and the report lists the pools under backend.value_pools.
    value_pools: dict[str, int] = field(default_factory=dict)

    def unsupported_reason(self, layer: str, dtype: str | None, needs_autograd: bool = False) -> str | None:
        if layer not in self.layers:
            return f"layer {layer} is not in the backend's declared layers {sorted(self.layers)}"
        if dtype is not None and layer in self.layer_dtypes and dtype not in self.layer_dtypes[layer]:
            return f"dtype {dtype} is not in the backend's declared dtypes for {layer} {sorted(self.layer_dtypes[layer])}"
        if dtype is not None and dtype not in self.dtypes:
            return f"dtype {dtype} is not in the backend's declared dtypes {sorted(self.dtypes)}"
        if needs_autograd and not self.autograd:
            return "the backend does not declare autograd"
        return None

    def supports_value(self, name: str, value, layer: str | None = None) -> bool:
        """False when the backend declared ``value`` of parameter ``name`` unsupported, for
        every layer (key ``name``) or for this layer (key ``"Layer.name"``)."""
        declared = (*self.unsupported_values.get(name, ()),
                    *(self.unsupported_values.get(f"{layer}.{name}", ()) if layer else ()))
        return not any(value is bad or (value == bad and type(value) is type(bad)) for bad in declared)


class BackendError(RuntimeError):
    """A backend could not be loaded or broke the backend API. The message names the
    backend and what is missing."""
