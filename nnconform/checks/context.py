"""What a check function receives: the clause, the drawn case and guarded access to
the backend. Every call into the backend goes through here, so that a broken
backend fails the clause with a message that names the backend and the call."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
from hypothesis import reject

from nnconform.dtypes import NUMPY_DTYPES, dtype_name, numpy_dtype
from nnconform.hangs import BACKEND_CALLS
from nnconform.spec import Clause
from nnconform.strategies import Case

_LAYER_METHODS = ("forward", "train", "eval", "state")


class NotExercised(Exception):
    """A pinned example did not exercise the clause's property: the runner counts it as
    no evidence and moves on (drawing replacements for a pinned value repeats its cost)."""


class ClauseFailure(AssertionError):
    """The backend broke the clause. The message starts with the clause id."""


@dataclass
class CheckContext:
    clause: Clause
    case: Case
    backend: Any
    alpha: float | None = None
    evidence: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)  # item-wide: why examples were not evidence, limits
    conventions: dict = field(default_factory=dict)  # the family's conventions, as the backend follows them
    pinned: bool = False  # a pinned example (a domain's include value): not replaced when not exercised

    @property
    def backend_name(self) -> str:
        return getattr(self.backend, "name", type(self.backend).__name__)

    def fail(self, message: str) -> NoReturn:
        __tracebackhide__ = True
        raise ClauseFailure(f"[{self.clause.id}] {message}")

    def not_exercised(self, why: str) -> NoReturn:
        """This example did not exercise the clause's property (no kept unit, no state
        to watch): it is not evidence, and Hypothesis draws another in its place (a
        pinned example is not replaced: NotExercised ends it). An item none of whose
        drawn examples exercised it fails, saying why."""
        self.notes["not exercised"] = why
        if self.pinned:
            raise NotExercised(why)
        reject()

    def seed(self, offset: int = 0) -> None:
        seed = getattr(self.backend, "seed", None)
        if seed is not None:
            self._call("seed", seed, (self.case.seed + offset) % 2**32)

    def build_layer(self, params: dict | None = None):
        """The backend's build call, unchecked; with the input shape of the first call as
        ``shape=`` where the backend's build takes that keyword (frameworks that fix the
        input's rank when a layer is built)."""
        extra = {"shape": tuple(self.case.shape)} if _takes_shape(self.backend.build) else {}
        return self.backend.build(self.case.layer, dict(params or self.case.params), self.case.dtype, **extra)

    def build(self, params: dict | None = None):
        """Build the case's layer; check the result has the Layer methods."""
        layer = self._call(f"build({self.case.layer!r}, ..., {self.case.dtype!r})", self.build_layer, params)
        missing = [m for m in _LAYER_METHODS if not callable(getattr(layer, m, None))]
        if missing:
            self.fail(f"backend {self.backend_name!r}: build({self.case.layer!r}) returned "
                      f"{type(layer).__name__}, which lacks {missing} of the Layer API")
        return layer

    def set_mode(self, layer, mode: str) -> None:
        self._call(mode, getattr(layer, mode))

    def forward(self, layer, x: np.ndarray) -> np.ndarray:
        """Call forward on x in the case's memory layout, and check the result is a
        numpy array of the input's shape. Whatever the layer writes into the array it
        was given (in-place layers) is copied back into x."""
        given = self.case.arrange(x)
        out = self._call("forward", layer.forward, given)
        if given is not x:
            x[...] = given
        if not isinstance(out, np.ndarray):
            self.fail(f"backend {self.backend_name!r}: forward returned {type(out).__module__}.{type(out).__name__}, "
                      f"expected numpy.ndarray of shape {x.shape} and dtype {dtype_name(x.dtype)}")
        if not is_real(out.dtype):
            self.fail(f"backend {self.backend_name!r}: forward returned an array of dtype {dtype_name(out.dtype)}, "
                      f"expected real numbers in the input's dtype {dtype_name(x.dtype)}")
        if out.shape != x.shape:
            self.fail(f"backend {self.backend_name!r}: forward returned an array of shape {out.shape}, "
                      f"expected the input's shape {x.shape}")
        return out

    def require_grad(self, layer) -> None:
        """Tell the layer that the suite will ask for gradients of its next forward calls
        (the optional ``requires_grad`` attribute of the Layer API)."""
        if not callable(getattr(layer, "backward", None)):
            self.fail(f"backend {self.backend_name!r} declares autograd, but its {self.case.layer} layer "
                      f"({type(layer).__name__}) has no backward(grad_output) method")
        self._call("setting requires_grad", setattr, layer, "requires_grad", True)

    def backward(self, layer, grad_output: np.ndarray) -> dict:
        """The layer's gradients for its last forward call; checks their types and shapes."""
        grads = self._call("backward", layer.backward, grad_output)
        if not isinstance(grads, dict):
            self.fail(f"backend {self.backend_name!r}: backward returned {type(grads).__name__}, "
                      "expected a dict with keys input, weight and bias")
        for name, value in grads.items():
            if value is not None and not isinstance(value, np.ndarray):
                self.fail(f"backend {self.backend_name!r}: backward returned {type(value).__module__}."
                          f"{type(value).__name__} for {name!r}, expected numpy.ndarray or None")
            if value is not None and not is_real(value.dtype):
                self.fail(f"backend {self.backend_name!r}: backward returned an array of dtype "
                          f"{dtype_name(value.dtype)} for {name!r}, expected real numbers")
        return grads

    def state(self, layer) -> dict:
        state = self._call("state", layer.state)
        if not isinstance(state, dict):
            self.fail(f"backend {self.backend_name!r}: state() returned {type(state).__name__}, expected dict")
        reference = self.clause.model.initial_state(self.case.params, self.conventions)
        for name, value in state.items():
            if name in reference and reference[name] is None and value is not None:
                self.fail(f"state()[{name!r}] is present, but with {_params_text(self.case.params)} the layer "
                          f"has no {name} (spec {self.clause.source}, [state.{name}])")
            if value is None and reference.get(name) is not None:
                self.fail(f"state()[{name!r}] is None, but with {_params_text(self.case.params)} the layer has "
                          f"{name} (spec {self.clause.source}, [state.{name}]){self._absent_hint(name)}")
            problem = _state_problem(value, reference.get(name), self.case.dtype)
            if problem:
                self.fail(f"backend {self.backend_name!r}: state()[{name!r}] is {problem}")
        return state

    def _absent_hint(self, name: str) -> str:
        """How a backend whose layer keeps no such field says so, where the spec allows it."""
        spec = self.clause.model.state.get(name)
        convention = spec.convention if spec is not None else None
        if convention is None:
            return ""
        allowed = [v for v in self.clause.model.conventions[convention[0]].variants if v != convention[1]]
        return (f"; a backend whose layer keeps no {name} declares "
                f"Capabilities(conventions={{{convention[0]!r}: {allowed[0]!r}}})" if allowed else "")

    def load_state(self, layer) -> None:
        """Load the case's drawn state, and check the layer holds it afterwards (the values
        rounded to the layer's dtype), so a layer that ignores load_state cannot pass by
        having the reference adopt its own state."""
        values = self.case.drawn_state(self.clause.model, self.conventions)
        if not values:
            return
        capabilities = getattr(self.backend, "capabilities", None)
        if capabilities is not None and not capabilities.load_state:
            self.notes["limited"] = "the backend cannot load state: drawn state was not used"
            return
        if not callable(getattr(layer, "load_state", None)):
            self.fail(f"backend {self.backend_name!r}: its {self.case.layer} layer has no load_state(values) method; "
                      "declare Capabilities(load_state=False) if it cannot set state")
        self._call("load_state", layer.load_state, dict(values))
        held = self.state(layer)
        dtype = numpy_dtype(self.case.dtype)
        for name, value in values.items():
            want = value if isinstance(value, int) else np.asarray(value).astype(dtype).astype(np.float64)
            got = held.get(name)
            if got is None or np.shape(got) != np.shape(want) or not np.array_equal(
                    np.asarray(got).astype(np.float64), want):
                self.fail(f"backend {self.backend_name!r}: after load_state, state()[{name!r}] does not hold the "
                          f"loaded values: loaded {_brief(np.asarray(want, dtype=np.float64))}, state() has "
                          f"{'None' if got is None else _brief(np.asarray(got))}")

    def reference_step(self, x, before: dict, training: bool):
        """The family's reference step, under the backend's conventions."""
        extra = {"conventions": self.conventions} if self.clause.model.reference_conventions else {}
        return self.clause.model.step_for(self.case.layer)(x, before, self.case.params, training, self.case.dtype, **extra)

    def _call(self, what: str, function, *args):
        __tracebackhide__ = True
        try:
            return BACKEND_CALLS.run(what, function, *args)
        except ClauseFailure:
            raise
        except (Exception, SystemExit) as error:
            self.fail(f"backend {self.backend_name!r} raised {type(error).__name__} in {what}: {error_text(error)}")

    def prepare(self, warmup: bool = True):
        """Seed the backend, build the layer, load any drawn state, make the `warmup`
        training calls and switch to the case's mode. Returns the layer."""
        self.seed()
        layer = self.build()
        self.load_state(layer)
        self.set_mode(layer, "train")
        for index in range(self.case.scenario["warmup"] if warmup else 0):
            self.forward(layer, self.case.warmup_batch(index))
        self.set_mode(layer, self.case.mode)
        return layer

    def run(self) -> tuple[Any, list[np.ndarray], list[np.ndarray]]:
        """The clause's scenario: `warmup` training calls, then `calls` calls in the
        case's mode. Returns the layer, the inputs and the outputs of the mode calls."""
        layer = self.prepare()
        inputs, outputs = [], []
        for index in range(self.case.scenario["warmup"], self.case.scenario["warmup"] + self.case.scenario["calls"]):
            x = self.case.batch(index)
            inputs.append(x)
            outputs.append(self.forward(layer, x.copy()))
        return layer, inputs, outputs


def is_real(dtype: np.dtype) -> bool:
    """Real numbers that widen to float64 exactly: bool, integers, floats and bfloat16."""
    return dtype.kind in "biuf" or dtype_name(dtype) in NUMPY_DTYPES


def error_text(error: BaseException) -> str:
    """str(error), even when a backend's exception cannot print itself."""
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__} whose str() failed>"


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _takes_shape(build) -> bool:
    """Whether a backend's build method takes the keyword ``shape`` (cached per function)."""
    function = getattr(build, "__func__", build)
    try:
        return _TAKES_SHAPE[function]
    except (KeyError, TypeError):
        pass
    try:
        parameters = inspect.signature(build).parameters
        takes = "shape" in parameters and parameters["shape"].kind in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    except (TypeError, ValueError):
        takes = False
    try:
        _TAKES_SHAPE[function] = takes
    except TypeError:
        pass
    return takes


_TAKES_SHAPE: dict = {}


def _state_problem(value, reference, dtype: str | None = None) -> str | None:
    """What is wrong with one value of state(), given the reference's value of the same
    name (None where the reference has none) and the layer's dtype: the end of a
    'state()[name] is ...' message. A floating-point state array is held in the
    layer's dtype (docs/backend-api.md, "The layer")."""
    if value is None:
        return None
    try:
        array = np.asarray(value)
    except Exception as error:
        return f"{type(value).__name__}, which numpy cannot read ({type(error).__name__}: {error_text(error)})"
    def found() -> str:  # formatted only for a problem: array2string costs ~0.1 ms a call
        return f"{type(value).__name__} {_brief(array)}"
    if isinstance(reference, int):
        if array.ndim != 0 or array.dtype.kind not in "iu":
            return f"{found()}, expected an int"
    elif not is_real(array.dtype):
        return f"{found()}, expected a numeric array, an int or None"
    elif reference is not None and array.shape != np.shape(reference):
        return f"an array of shape {array.shape}, expected shape {np.shape(reference)} as the reference's"
    elif (dtype is not None and reference is not None and not isinstance(reference, int)
          and _is_float(array.dtype) and dtype_name(array.dtype) != dtype):
        return f"an array of dtype {dtype_name(array.dtype)}, expected the layer's dtype {dtype}"
    return None


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype_name(dtype) == "bfloat16"


def _brief(array: np.ndarray) -> str:
    text = np.array2string(array, threshold=6) if array.dtype != object else repr(array.tolist())
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} (shape {array.shape}, dtype {dtype_name(array.dtype)})" if array.ndim else text


def describe_positions(mask: np.ndarray, limit: int = 5) -> str:
    """'N of M units, first at (i, j), ...' for a boolean mask of offending units."""
    positions = [tuple(int(i) for i in p) for p in np.argwhere(mask)[:limit]]
    more = ", ..." if mask.sum() > limit else ""
    return f"{int(mask.sum())} of {mask.size} units, at {', '.join(map(str, positions))}{more}"


def check_finite(ctx: CheckContext, name: str, values: np.ndarray, reference: np.ndarray | None = None) -> None:
    """Fail with the count and positions of non-finite values where finite ones are expected."""
    __tracebackhide__ = True
    values64 = np.asarray(values).astype(np.float64)
    bad = ~np.isfinite(values64)
    if reference is not None:
        bad &= np.isfinite(reference)
    if bad.any():
        ctx.fail(f"{name} has non-finite values (NaN or inf) where finite ones are expected: {describe_positions(bad)} "
                 f"(values {ctx.case.values}, layout {ctx.case.layout})")
