"""The tinygrad adapter: drives tinygrad's own layers on its CPU device.

This is the only module that imports tinygrad. It maps the suite's layers to
``Tensor.dropout`` and to ``tinygrad.nn``'s BatchNorm, InstanceNorm, LayerNorm,
GroupNorm and RMSNorm, converts numpy arrays to tensors and back (bfloat16 through a
uint16 bitcast, so no value is rounded twice) and never re-implements a layer.

Device: tinygrad's CPU device with its default renderer, C compiled by clang
(``DEV=CPU:CLANG``), set explicitly when the backend is created. tinygrad compiles
each kernel for its shapes with the ``clang`` on PATH (or ``$CC``); bfloat16 kernels
need a clang that computes with ``__bf16`` (17 or newer: Debian 12's clang 14 does
not), and where the compiler cannot, bfloat16 is left out of the declared dtypes
with a note. (The LLVM renderer, ``CPU:LLVM``, fails to compile float64 batch norm
in tinygrad 0.14.0: "integer constant must have integer type".) Kernels run on one
thread and compile without a worker pool (``NUM_CPU_THREADS=1``, ``PARALLEL=0``):
conformance inputs are small and xdist workers share few cores.

Speed: a train-mode dropout call costs tens of milliseconds eagerly (scheduling the
graph in Python), too slow for the clauses that make thousands of calls. Repeated
train calls on one shape therefore go through ``TinyJit``, cached per (shape,
dtype, p) and dropped whenever the backend is seeded: its replays draw the same
masks as eager calls (the RNG counter is a device buffer the captured kernels
advance), and a jit captured before ``Tensor.manual_seed`` would keep the old
generator's buffers.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from nnconform.backend_api import BackendError, Capabilities
from nnconform.vocabulary import DTYPES

try:
    import tinygrad
    from tinygrad import Tensor, TinyJit, dtypes, nn
    from tinygrad.helpers import DEV, NUM_CPU_THREADS, PARALLEL, Context
except ImportError as error:  # pragma: no cover - exercised only without tinygrad
    tinygrad = None
    _IMPORT_ERROR = error

DEVICE = "CPU"
TARGET = "CPU:CLANG"  # tinygrad's CPU device, its default renderer (C through clang)
_DROPOUTS = ("Dropout",)
_BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
_INSTANCENORMS = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
_LAYERS = _DROPOUTS + _BATCHNORMS + _INSTANCENORMS + ("LayerNorm", "GroupNorm", "RMSNorm")
_UNBATCHED_RANK = {"InstanceNorm1d": 2, "InstanceNorm2d": 3, "InstanceNorm3d": 4}
# The state fields of each family (its spec's [state] tables); the ones tinygrad's layer
# does not keep are None in state().
_BATCHNORM_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_INSTANCENORM_FIELDS = ("weight", "bias", "running_mean", "running_var")
_JIT_AFTER = 2  # eager calls of one shape before its jit is made: clauses that call once or twice never compile it


def _tiny_dtype(name: str):
    return {"float16": dtypes.float16, "bfloat16": dtypes.bfloat16, "float32": dtypes.float32,
            "float64": dtypes.float64}[name]


def _last_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1][:200] if text else type(error).__name__


def to_tensor(array: np.ndarray) -> "Tensor":
    """A tensor holding exactly the array's values, in its dtype (bfloat16 by its bits)."""
    array = np.ascontiguousarray(array)
    if array.dtype == ml_dtypes.bfloat16:
        return Tensor(array.view(np.uint16), device=DEVICE).bitcast(dtypes.bfloat16)
    return Tensor(array, device=DEVICE)


def to_numpy(tensor: "Tensor") -> np.ndarray:
    """The tensor's values as numpy, in its dtype. tinygrad hands bfloat16 out as float32,
    which holds every bfloat16 exactly."""
    if tensor.dtype == dtypes.bfloat16:
        return tensor.numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy()


class TinygradBackend:
    """tinygrad's layers on its CPU device (clang renderer)."""
    name = "tinygrad"

    def __init__(self):
        if tinygrad is None:
            raise BackendError(f"backend {self.name!r}: tinygrad is not installed; "
                               "install it with: pip install 'nnconform[tinygrad]'")
        from importlib.metadata import version
        self.version = version("tinygrad")
        DEV.value = TARGET
        NUM_CPU_THREADS.value = 1
        PARALLEL.value = 0
        self._jits: dict = {}
        self.stats = {"eager calls": 0, "jit replays": 0, "jits made": 0}
        notes = {"device": f"{TARGET} (tinygrad's CPU device with its default clang renderer), one thread",
                 "speed": "repeated train-mode dropout calls of one shape replay a TinyJit, dropped on every seed()"}
        declared = set(DTYPES)
        try:
            self._probe("float32")
        except Exception as error:  # no clang: every item is skipped with this reason
            self.unavailable = (f"tinygrad's {TARGET} device cannot run here ({type(error).__name__}: "
                                f"{_last_line(error)}); it needs clang on PATH")
        else:
            try:
                self._probe("bfloat16")
            except Exception as error:
                declared.discard("bfloat16")
                notes["bfloat16"] = (f"left out: this machine's clang cannot compile tinygrad's bfloat16 kernels "
                                     f"({_last_line(error)}); clang 17 or newer can")
        self.capabilities = Capabilities(
            layers=frozenset(_LAYERS), dtypes=frozenset(declared), device=f"tinygrad {TARGET}", autograd=True,
            # Tensor.dropout is a function: it checks p (ValueError) when it is called
            conventions={"validation": "at-first-call"},
            unsupported_values={
                "inplace": (True,),  # Tensor.dropout returns a new tensor; it has no in-place form
                "momentum": (None,),  # nn.BatchNorm computes (1 - momentum): no cumulative average
                "bias": (False,),  # LayerNorm, GroupNorm, InstanceNorm: affine means weight and bias together
                "eps": (None,),  # nn.RMSNorm takes a float eps (default 1e-6), no "machine epsilon"
                **{f"{layer}.track_running_stats": (True,) for layer in _INSTANCENORMS},  # no running statistics
            },
            notes=notes)

    @staticmethod
    def _probe(dtype: str) -> None:
        Tensor([1.0, 2.0], device=DEVICE, dtype=_tiny_dtype(dtype)).mul(3).sqrt().numpy()

    def seed(self, seed: int) -> None:
        Tensor.manual_seed(seed)
        self._jits.clear()  # a jit keeps the generator buffers it was captured with

    def evidence(self) -> dict[str, str]:
        stats, self.stats = self.stats, {"eager calls": 0, "jit replays": 0, "jits made": 0}
        return {name: str(count) for name, count in stats.items()}

    def build(self, layer: str, params: dict, dtype: str):
        if layer not in _LAYERS:
            raise BackendError(f"backend {self.name!r} has no layer {layer!r}")
        if layer in _DROPOUTS:
            return DropoutLayer(self, params["p"], dtype)
        # tinygrad's layers create their parameters in the default float dtype; they are
        # realized inside the context (a lazy constant made under DEFAULT_FLOAT=float16
        # and realized outside it fails tinygrad's UOp verification)
        with Context(DEFAULT_FLOAT=dtype):
            built = self._build(layer, params, dtype)
            if tensors := nn.state.get_parameters(built.module):
                Tensor.realize(*tensors)
        return built

    def _build(self, layer: str, params: dict, dtype: str):
        if layer in _BATCHNORMS:
            module = nn.BatchNorm(params["num_features"], eps=params["eps"], affine=params["affine"],
                                  track_running_stats=params["track_running_stats"], momentum=params["momentum"])
            return NormLayer(self, module, dtype, _BATCHNORM_FIELDS, tracks=params["track_running_stats"])
        if layer in _INSTANCENORMS:
            module = nn.InstanceNorm(params["num_features"], eps=params["eps"], affine=params["affine"])
            return NormLayer(self, module, dtype, _INSTANCENORM_FIELDS, unbatched_rank=_UNBATCHED_RANK[layer])
        if layer == "GroupNorm":
            module = nn.GroupNorm(params["num_groups"], params["num_channels"], eps=params["eps"],
                                  affine=params["affine"])
            return NormLayer(self, module, dtype, ("weight", "bias"))
        if layer == "LayerNorm":
            module = nn.LayerNorm(params["normalized_shape"], eps=params["eps"],
                                  elementwise_affine=params["elementwise_affine"])
            return NormLayer(self, module, dtype, ("weight", "bias"))
        shape = (params["normalized_shape"],) if isinstance(params["normalized_shape"], int) \
            else tuple(params["normalized_shape"])
        module = nn.RMSNorm(math.prod(shape), eps=params["eps"], elementwise_affine=params["elementwise_affine"])
        return NormLayer(self, module, dtype, ("weight",), trailing=shape)


class _Layer:
    requires_grad = False  # set by the suite before forward calls it will differentiate

    def __init__(self, backend: TinygradBackend, dtype: str):
        self.backend, self.dtype, self.training = backend, dtype, True
        self._graph = None

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def _run(self, function, x: np.ndarray) -> np.ndarray:
        """One call in the current mode. With requires_grad, the output is read with
        .numpy(), which keeps its graph for backward (Tensor.realize() would replace
        the graph by the buffer: see docs/findings.md#tinygrad-gradient-after-realize)."""
        leaf = to_tensor(x)
        with Context(TRAINING=int(self.training)):
            out = function(leaf)
            self.backend.stats["eager calls"] += 1
            if self.requires_grad:
                self._graph = (leaf, out)
                return to_numpy(out)
            self._graph = None
            Tensor.realize(out, *self._buffers())
            return to_numpy(out)

    def _buffers(self) -> list:
        return []

    def _gradients(self, grad_output: np.ndarray, names: tuple[str, ...]) -> dict:
        if self._graph is None:
            raise RuntimeError("backward needs a forward call made with requires_grad = True first")
        leaf, out = self._graph
        self._graph = None
        targets = [leaf] + [getattr(self.module, name) for name in names if getattr(self.module, name) is not None]
        with Context(TRAINING=int(self.training)):
            grads = out.gradient(*targets, gradient=to_tensor(grad_output))
        result = {"input": to_numpy(grads[0])}
        found = iter(grads[1:])
        for name in names:
            result[name] = None if getattr(self.module, name) is None else self._field(name, to_numpy(next(found)))
        return result

    def _field(self, name: str, value: np.ndarray) -> np.ndarray:
        return value


class DropoutLayer(_Layer):
    """Tensor.dropout(p): dropout in train mode (tinygrad's TRAINING context), the
    identity in eval mode. tinygrad checks p when it is called, not when a layer is made."""
    trainable = frozenset()

    def __init__(self, backend: TinygradBackend, p: float, dtype: str):
        super().__init__(backend, dtype)
        self.p = p

    def state(self) -> dict:
        return {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.training and not self.requires_grad:
            return self._repeated(x)
        return self._run(lambda t: t.dropout(self.p), x)

    def _repeated(self, x: np.ndarray) -> np.ndarray:
        """A train call through the (shape, dtype, p) jit of the backend: eager for the
        first calls, then captured, then replayed on an input buffer the array is copied into."""
        key = (x.shape, self.dtype, self.p)
        entry = self.backend._jits.get(key)
        if entry is None:
            entry = self.backend._jits[key] = {"calls": 0}
        entry["calls"] += 1
        if entry["calls"] <= _JIT_AFTER:
            return self._run(lambda t: t.dropout(self.p), x)
        if "jit" not in entry:
            storage = np.empty(x.shape, np.uint16 if self.dtype == "bfloat16" else x.dtype)
            tensor = Tensor.from_blob(storage.ctypes.data, x.shape, dtype=_tiny_dtype(self.dtype)
                                      if self.dtype != "bfloat16" else dtypes.uint16, device=DEVICE)
            p, bf16 = self.p, self.dtype == "bfloat16"

            def step(t):
                with Context(TRAINING=1):
                    if bf16:
                        return t.bitcast(dtypes.bfloat16).dropout(p).bitcast(dtypes.uint16).realize()
                    return t.dropout(p).realize()
            entry.update(jit=TinyJit(step), storage=storage, tensor=tensor)
            self.backend.stats["jits made"] += 1
        entry["storage"][...] = x.view(np.uint16) if self.dtype == "bfloat16" else x
        out = entry["jit"](entry["tensor"]).numpy()
        self.backend.stats["jit replays"] += 1
        return out.view(ml_dtypes.bfloat16) if self.dtype == "bfloat16" else out

    def backward(self, grad_output: np.ndarray) -> dict:
        grads = self._gradients(grad_output, ())
        return {"input": grads["input"], "weight": None, "bias": None}


class NormLayer(_Layer):
    """A tinygrad.nn normalization layer. Mode is tinygrad's TRAINING context, which
    BatchNorm reads (batch statistics and a running update in train mode); the others
    normalize the same way in both modes."""

    def __init__(self, backend: TinygradBackend, module, dtype: str, fields: tuple[str, ...], tracks: bool = False,
                 unbatched_rank: int | None = None, trailing: tuple[int, ...] | None = None):
        super().__init__(backend, dtype)
        self.module, self.fields, self.tracks = module, fields, tracks
        self.unbatched_rank, self.trailing = unbatched_rank, trailing

    @property
    def trainable(self) -> frozenset:
        return frozenset(name for name in ("weight", "bias") if getattr(self.module, name, None) is not None)

    def _call(self, t):
        if self.unbatched_rank is not None and t.ndim == self.unbatched_rank:
            # tinygrad's InstanceNorm takes (N, C, ...) only: an unbatched input is one sample
            return self.module(t.unsqueeze(0)).squeeze(0)
        if self.trailing is not None and len(self.trailing) > 1:
            # nn.RMSNorm normalizes the last axis: the normalized axes are folded into one
            k = len(self.trailing)
            return self.module(t.reshape(*t.shape[:-k], -1)).reshape(t.shape)
        return self.module(t)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._run(self._call, x)

    def _buffers(self) -> list:
        if not (self.tracks and self.training):
            return []
        return [self.module.running_mean, self.module.running_var, self.module.num_batches_tracked]

    def backward(self, grad_output: np.ndarray) -> dict:
        names = tuple(name for name in ("weight", "bias") if name in self.fields)
        grads = self._gradients(grad_output, names)
        return {"input": grads["input"], "weight": grads.get("weight"), "bias": grads.get("bias")}

    def _field(self, name: str, value: np.ndarray) -> np.ndarray:
        if self.trailing is not None and name in ("weight", "bias"):
            return value.reshape(self.trailing)
        return value

    def state(self) -> dict:
        """The family's state fields as the tinygrad layer keeps them (None where it keeps none)."""
        state = {}
        for name in self.fields:
            value = getattr(self.module, name, None)
            if value is None:
                state[name] = None
            elif not dtypes.is_float(value.dtype):
                state[name] = int(value.item())
            else:
                state[name] = self._field(name, to_numpy(value)).copy()
        return state

    def load_state(self, values: dict) -> None:
        for name, value in values.items():
            target = getattr(self.module, name)
            if isinstance(value, int):
                target.assign(Tensor(value, dtype=target.dtype, device=DEVICE)).realize()
            else:
                array = np.asarray(value).astype(to_numpy(target).dtype).reshape(target.shape)
                target.assign(to_tensor(array)).realize()
