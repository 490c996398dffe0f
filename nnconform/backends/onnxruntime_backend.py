"""The onnxruntime adapter: each layer is one ONNX operator node, built with
``onnx.helper`` and run by onnxruntime's CPU execution provider.

This is the only module that imports onnx and onnxruntime. It never re-implements a
layer: every output comes from the operator's own kernel. The adapter builds a one-node
graph per (operator, attribute values, dtype, input rank), caches its
InferenceSession (creating one costs milliseconds, a run tens of microseconds), and
keeps what the layer must remember between calls (weight, bias, running statistics)
as numpy arrays that it feeds to the node as inputs and, for BatchNormalization's
running statistics, takes back from the node's outputs.

The mapping, operator by operator (docs/backend-api.md, "Built-in framework backends"):

- Dropout -> Dropout (the model's opset; ratio and training_mode are graph inputs, so a
  new p or a mode switch reuses the session). No seed attribute: the node draws from
  onnxruntime's process-wide generator, which ``seed`` resets with
  ``onnxruntime.set_seed``; each call then takes that generator's next seed, so each
  call draws a fresh mask and a seeded run replays.
- BatchNorm1d/2d/3d -> BatchNormalization (opset 15): training_mode=1 in train mode,
  whose running_mean/running_var outputs the layer keeps and feeds back; training_mode=0
  in eval mode with the kept statistics. ONNX's momentum weights the old running value
  and its running variance is the biased batch variance: the backend declares the
  conventions momentum="old-weight", running_var="biased" and batches_tracked="absent"
  and passes the spec's momentum unchanged. With track_running_stats=False the node
  runs with training_mode=1 in both modes and its running outputs are dropped.
- InstanceNorm1d/2d/3d -> InstanceNormalization (no running statistics, so
  track_running_stats=True is unsupported). An unbatched (C, *) input gets a batch axis
  of one and loses it again.
- LayerNorm -> LayerNormalization (opset 17) with axis = -len(normalized_shape).
- GroupNorm -> GroupNormalization (opset 21: one scale and bias per channel).
- RMSNorm -> RMSNormalization (opset 23) with axis = -len(normalized_shape); eps=None is
  passed as the machine epsilon of the computation type, which is what torch's None means.
- Channel dropout (Dropout1d/2d/3d), AlphaDropout and FeatureAlphaDropout have no ONNX
  operator and are not declared.

Absent parameters are fed as constants the operator needs (ones for a scale, zeros for
a bias). Float parameters that ONNX takes as attributes (epsilon, momentum) are part of
the session's cache key; ONNX attributes are float32, which the findings record.
Normalization nodes set stash_type (the precision of their statistics) to float32 for
16- and 32-bit inputs and to float64 for float64 inputs, as torch computes.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from nnconform.backend_api import BackendError, Capabilities
from nnconform.dtypes import numpy_dtype

try:
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper
except ImportError:  # pragma: no cover - exercised only without the framework
    onnx = onnxruntime = None

NAME = "onnxruntime"
MISSING = (f"backend {NAME!r}: onnxruntime is not installed; install it with: "
           f"pip install 'nnconform[{NAME}]'")

BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
INSTANCENORMS = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d")
LAYERS = ("Dropout",) + BATCHNORMS + INSTANCENORMS + ("LayerNorm", "GroupNorm", "RMSNorm")

# The dtypes the CPU execution provider has kernels for, operator by operator (measured
# on onnxruntime 1.32.0: a session for any other dtype fails with NOT_IMPLEMENTED).
_ALL = frozenset({"float16", "bfloat16", "float32", "float64"})
LAYER_DTYPES = {
    "Dropout": frozenset({"float16", "float32", "float64"}),
    **{name: frozenset({"float16", "float32", "float64"}) for name in BATCHNORMS},
    **{name: frozenset({"float16", "float32"}) for name in INSTANCENORMS},
    "LayerNorm": _ALL,
    "GroupNorm": frozenset({"float16", "float32", "float64"}),
    "RMSNorm": frozenset({"float16", "float32", "float64"}),
}

# The ONNX operator each layer runs (its version is the latest at the model's opset).
OPERATORS = {"Dropout": "Dropout", **{n: "BatchNormalization" for n in BATCHNORMS},
             **{n: "InstanceNormalization" for n in INSTANCENORMS}, "LayerNorm": "LayerNormalization",
             "GroupNorm": "GroupNormalization", "RMSNorm": "RMSNormalization"}
_MIN_OPSET = 23  # RMSNormalization

_SESSIONS_KEPT = 256  # sessions cached per process, least recently used first out
_TRUE, _FALSE = np.array(True), np.array(False)  # Dropout's training_mode input


def _elem_types() -> dict:
    return {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16,
            "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "bool": TensorProto.BOOL}


def _stash_type(dtype: str) -> int:
    """The precision of a normalization node's statistics: float64 for float64 inputs,
    float32 otherwise (torch's opmath type)."""
    return TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT


class _Session:
    """One InferenceSession and how to feed it: numpy arrays directly, or bfloat16
    through OrtValues (onnxruntime's numpy conversion has no bfloat16)."""

    def __init__(self, session, outputs: list[str], bfloat16: bool):
        self.session, self.outputs, self.bfloat16 = session, outputs, bfloat16

    def run(self, feeds: dict, output_shapes: list[tuple]) -> list[np.ndarray]:
        if not self.bfloat16:
            return self.session.run(self.outputs, feeds)
        import ml_dtypes
        binding = self.session.io_binding()
        for name, array in feeds.items():
            if array.dtype == ml_dtypes.bfloat16:
                binding.bind_ortvalue_input(name, onnxruntime.OrtValue.ortvalue_from_numpy_with_onnx_type(
                    np.ascontiguousarray(array).view(np.uint16), TensorProto.BFLOAT16))
            else:
                binding.bind_cpu_input(name, array)
        results = []
        for name, shape in zip(self.outputs, output_shapes):
            buffer = np.empty(shape, np.uint16)
            binding.bind_ortvalue_output(name, onnxruntime.OrtValue.ortvalue_from_numpy_with_onnx_type(
                buffer, TensorProto.BFLOAT16))
            results.append(buffer)
        self.session.run_with_iobinding(binding)
        return [buffer.view(ml_dtypes.bfloat16) for buffer in results]


class OnnxRuntimeBackend:
    """ONNX operators run by onnxruntime's CPU execution provider."""
    name = NAME

    def __init__(self):
        if onnxruntime is None or onnx is None:
            raise BackendError(MISSING)
        self.version = onnxruntime.__version__
        onnxruntime.set_default_logger_severity(4)  # a failing node raises; its log line would only repeat it
        self.options = onnxruntime.SessionOptions()
        # Conformance inputs are small and xdist workers share few cores: one thread.
        self.options.intra_op_num_threads = 1
        self.options.inter_op_num_threads = 1
        self.options.log_severity_level = 3
        self.opset = self._highest_opset()
        self._sessions: OrderedDict = OrderedDict()
        self._built = self._runs = 0
        versions = {layer: f"{op}-{onnx.defs.get_schema(op, self.opset).since_version}"
                    for layer, op in OPERATORS.items()}
        self.capabilities = Capabilities(
            layers=frozenset(LAYERS), dtypes=_ALL, device="cpu (CPUExecutionProvider)", autograd=False,
            layer_dtypes=dict(LAYER_DTYPES),
            # p=1 is outside ONNX Dropout's ratio domain [0, 1) (the node raises); ONNX has
            # no in-place operators; ONNX BatchNormalization has no cumulative average
            # (momentum=None), and InstanceNormalization no running statistics.
            unsupported_values={"p": (1.0,), "inplace": (True,), "momentum": (None,),
                                **{f"{name}.track_running_stats": (True,) for name in INSTANCENORMS}},
            conventions={"momentum": "old-weight", "running_var": "biased", "batches_tracked": "absent",
                         "validation": "at-first-call"},
            notes={"onnx": onnx.__version__, "opset": str(self.opset),
                   "operators": ", ".join(sorted(set(versions.values()))),
                   "seed": "Dropout draws from onnxruntime's global generator, reset by onnxruntime.set_seed"})

    def _highest_opset(self) -> int:
        """The highest default-domain opset both onnx and onnxruntime know."""
        for opset in range(onnx.defs.onnx_opset_version(), _MIN_OPSET - 1, -1):
            try:
                self._session(helper.make_node("Identity", ["x"], ["y"]), [("x", "float32", 1)],
                              [("y", "float32", 1)], opset)
                return opset
            except Exception:  # noqa: BLE001 - onnxruntime's own error types for an unknown opset
                continue
        raise BackendError(f"backend {NAME!r}: onnxruntime {onnxruntime.__version__} runs no opset "
                           f">= {_MIN_OPSET} (RMSNormalization); install a newer one")

    def seed(self, seed: int) -> None:
        onnxruntime.set_seed(int(seed))

    def evidence(self) -> dict[str, str]:
        """Sessions built and node runs since the previous item."""
        notes = {"sessions built": str(self._built), "node runs": str(self._runs)}
        self._built = self._runs = 0
        return notes

    def build(self, layer: str, params: dict, dtype: str):
        if layer not in LAYERS:
            raise BackendError(f"backend {NAME!r} has no layer {layer!r}")
        if layer == "Dropout":
            return Dropout(self, dtype, params)
        if layer in BATCHNORMS:
            return BatchNorm(self, dtype, params)
        if layer in INSTANCENORMS:
            return InstanceNorm(self, dtype, params, batched_rank=int(layer[-2]) + 2)
        return {"LayerNorm": LayerNorm, "GroupNorm": GroupNorm, "RMSNorm": RMSNorm}[layer](self, dtype, params)

    def session(self, key: tuple, graph) -> _Session:
        """The cached session of a one-node graph. ``graph()``, called only when the
        key is new, returns (node, inputs, outputs); inputs and outputs are
        (name, dtype, rank) triples, every axis of unknown size."""
        found = self._sessions.get(key)
        if found is not None:
            self._sessions.move_to_end(key)
            return found
        node, inputs, outputs = graph()
        session = self._session(node, inputs, outputs, self.opset)
        found = _Session(session, [name for name, _, _ in outputs], any(dt == "bfloat16" for _, dt, _ in inputs))
        self._sessions[key] = found
        self._built += 1
        if len(self._sessions) > _SESSIONS_KEPT:
            self._sessions.popitem(last=False)
        return found

    def _session(self, node, inputs, outputs, opset: int):
        types = _elem_types()

        def info(name, dtype, rank):
            shape = None if rank is None else [f"{name}{axis}" for axis in range(rank)]
            return helper.make_tensor_value_info(name, types[dtype], shape)

        graph = helper.make_graph([node], "nnconform", [info(*i) for i in inputs], [info(*o) for o in outputs])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return onnxruntime.InferenceSession(model.SerializeToString(), self.options,
                                            providers=["CPUExecutionProvider"])


class _Layer:
    trainable = frozenset()

    def __init__(self, backend: OnnxRuntimeBackend, dtype: str):
        self.backend, self.dtype, self.np_dtype = backend, dtype, numpy_dtype(dtype)
        self.training = True

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self) -> dict:
        return {}

    def _run(self, key: tuple, graph, feeds: dict, output_shapes: list[tuple]) -> list[np.ndarray]:
        """Run the layer's node, from the session cached under ``key`` (``graph()``
        describes the node when the key is new)."""
        session = self.backend.session((type(self).__name__, self.dtype) + key, graph)
        self.backend._runs += 1
        return session.run(feeds, output_shapes)

    def _param(self, shape, value: float) -> np.ndarray:
        return np.full(shape, value, self.np_dtype)


class Dropout(_Layer):
    def __init__(self, backend, dtype, params):
        super().__init__(backend, dtype)
        self.ratio = np.array(float(params["p"]), np.float64)  # the node reads it as its T1 = double

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        rank = x.ndim

        def graph():
            node = helper.make_node("Dropout", ["x", "ratio", "training_mode"], ["y"])
            return (node, [("x", self.dtype, rank), ("ratio", "float64", 0), ("training_mode", "bool", 0)],
                    [("y", self.dtype, rank)])
        feeds = {"x": x, "ratio": self.ratio, "training_mode": _TRUE if self.training else _FALSE}
        return self._run((rank,), graph, feeds, [x.shape])[0]


class _Affine(_Layer):
    """A layer with an optional weight (scale) and bias, fed as inputs."""
    trainable = frozenset({"weight", "bias"})

    def _init_affine(self, shape, weight: bool, bias: bool):
        self.shape = shape
        self.weight = self._param(shape, 1) if weight else None
        self.bias = self._param(shape, 0) if bias else None
        self.trainable = frozenset(name for name in ("weight", "bias") if getattr(self, name) is not None)

    def scale_input(self) -> np.ndarray:
        return self.weight if self.weight is not None else self._param(self.shape, 1)

    def bias_input(self) -> np.ndarray:
        return self.bias if self.bias is not None else self._param(self.shape, 0)

    def state(self) -> dict:
        return {name: None if getattr(self, name) is None else getattr(self, name).copy()
                for name in self.state_fields}

    def load_state(self, values: dict) -> None:
        for name, value in values.items():
            if name not in self.state_fields or getattr(self, name) is None:
                raise ValueError(f"this layer has no {name}")
            setattr(self, name, np.ascontiguousarray(np.asarray(value).astype(self.np_dtype)))


class BatchNorm(_Affine):
    state_fields = ("weight", "bias", "running_mean", "running_var")

    def __init__(self, backend, dtype, params):
        super().__init__(backend, dtype)
        c = params["num_features"]
        self.eps, self.momentum = float(params["eps"]), float(params["momentum"])
        self._init_affine((c,), params["affine"], params["affine"])
        tracked = params["track_running_stats"]
        self.running_mean = self._param((c,), 0) if tracked else None
        self.running_var = self._param((c,), 1) if tracked else None

    def state(self) -> dict:
        return {**super().state(), "num_batches_tracked": None}

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        tracked = self.running_mean is not None
        batch_stats = self.training or not tracked
        c = x.shape[1]
        feeds = {"x": x, "scale": self.scale_input(), "bias": self.bias_input(),
                 "mean": self.running_mean if tracked else self._param((c,), 0),
                 "var": self.running_var if tracked else self._param((c,), 1)}
        rank = x.ndim
        inputs = [("x", self.dtype, rank)] + [(name, self.dtype, 1) for name in ("scale", "bias", "mean", "var")]
        if batch_stats:
            # Untracked layers use batch statistics in both modes; their running outputs are dropped.
            momentum = self.momentum if tracked else 0.9

            def train_graph():
                node = helper.make_node("BatchNormalization", list(feeds), ["y", "running_mean", "running_var"],
                                        epsilon=self.eps, momentum=momentum, training_mode=1)
                return node, inputs, [("y", self.dtype, rank), ("running_mean", self.dtype, 1),
                                      ("running_var", self.dtype, 1)]
            y, mean, var = self._run(("train", rank, self.eps, momentum), train_graph, feeds, [x.shape, (c,), (c,)])
            if self.training and tracked:
                self.running_mean, self.running_var = mean, var
            return y

        def eval_graph():
            node = helper.make_node("BatchNormalization", list(feeds), ["y"], epsilon=self.eps, training_mode=0)
            return node, inputs, [("y", self.dtype, rank)]
        return self._run(("eval", rank, self.eps), eval_graph, feeds, [x.shape])[0]


class InstanceNorm(_Affine):
    state_fields = ("weight", "bias", "running_mean", "running_var")
    running_mean = running_var = None

    def __init__(self, backend, dtype, params, batched_rank: int):
        super().__init__(backend, dtype)
        if params["track_running_stats"]:
            raise ValueError("ONNX InstanceNormalization keeps no running statistics")
        self.eps, self.batched_rank = float(params["eps"]), batched_rank
        affine = params["affine"]
        self._init_affine((params["num_features"],), affine, affine and params["bias"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        unbatched = x.ndim == self.batched_rank - 1
        x = np.ascontiguousarray(x[None] if unbatched else x)
        rank = x.ndim

        def graph():
            node = helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=self.eps)
            return (node, [("x", self.dtype, rank), ("scale", self.dtype, 1), ("bias", self.dtype, 1)],
                    [("y", self.dtype, rank)])
        feeds = {"x": x, "scale": self.scale_input(), "bias": self.bias_input()}
        y = self._run((rank, self.eps), graph, feeds, [x.shape])[0]
        return y[0] if unbatched else y


def _normalized_shape(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),)


class LayerNorm(_Affine):
    state_fields = ("weight", "bias")

    def __init__(self, backend, dtype, params):
        super().__init__(backend, dtype)
        self.eps = float(params["eps"])
        affine = params["elementwise_affine"]
        self._init_affine(_normalized_shape(params["normalized_shape"]), affine, affine and params["bias"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        k, has_bias, rank = len(self.shape), self.bias is not None, x.ndim
        feeds = {"x": x, "scale": self.scale_input(), **({"bias": self.bias} if has_bias else {})}

        def graph():
            node = helper.make_node("LayerNormalization", list(feeds), ["y"], axis=-k, epsilon=self.eps,
                                    stash_type=_stash_type(self.dtype))
            return (node, [("x", self.dtype, rank)] + [(name, self.dtype, k) for name in list(feeds)[1:]],
                    [("y", self.dtype, rank)])
        return self._run((rank, k, self.eps, has_bias), graph, feeds, [x.shape])[0]


class RMSNorm(_Affine):
    state_fields = ("weight",)

    def __init__(self, backend, dtype, params):
        super().__init__(backend, dtype)
        eps = params["eps"]
        # torch's eps=None is the machine epsilon of the computation type (float64's for
        # float64 inputs, float32's otherwise); ONNX needs the number itself.
        self.eps = float(np.finfo(np.float64 if dtype == "float64" else np.float32).eps) if eps is None else float(eps)
        self._init_affine(_normalized_shape(params["normalized_shape"]), params["elementwise_affine"], False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        k, rank = len(self.shape), x.ndim

        def graph():
            node = helper.make_node("RMSNormalization", ["x", "scale"], ["y"], axis=-k, epsilon=self.eps,
                                    stash_type=_stash_type(self.dtype))
            return node, [("x", self.dtype, rank), ("scale", self.dtype, k)], [("y", self.dtype, rank)]
        return self._run((rank, k, self.eps), graph, {"x": x, "scale": self.scale_input()}, [x.shape])[0]


class GroupNorm(_Affine):
    state_fields = ("weight", "bias")

    def __init__(self, backend, dtype, params):
        super().__init__(backend, dtype)
        self.eps, self.groups = float(params["eps"]), int(params["num_groups"])
        affine = params["affine"]
        self._init_affine((params["num_channels"],), affine, affine and params["bias"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        rank = x.ndim

        def graph():
            node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], epsilon=self.eps,
                                    num_groups=self.groups, stash_type=_stash_type(self.dtype))
            return (node, [("x", self.dtype, rank), ("scale", self.dtype, 1), ("bias", self.dtype, 1)],
                    [("y", self.dtype, rank)])
        feeds = {"x": x, "scale": self.scale_input(), "bias": self.bias_input()}
        return self._run((rank, self.groups, self.eps), graph, feeds, [x.shape])[0]
