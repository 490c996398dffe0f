"""A layer family as data: what the generic checks, strategies and adapters need to
know about a family, read from the family's spec file and validated on load.

- ``[state.NAME]``: the layer's parameters and buffers, each with its shape as a
  constructor parameter, its initial value, when it is present and how it broadcasts.
- ``[normalization]``: for deterministic normalizing layers, over which axes each
  statistic is taken; the tolerance model and the gradient probe are derived from it.
- ``[random]``: for random layers, the rate parameter, the random unit (an element
  or a whole channel) and what a dropped and a kept unit become, as formulas.
- ``[reference]``: the float64 reference functions, as ``module:attribute`` paths:
  one for the family, or one per layer (a table keyed by layer name) where the
  layers' reference functions differ.

Nothing here knows a family by name: every behaviour comes from these tables.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from nnconform.dtypes import accumulation_eps, dtype_eps
from nnconform.formula import Formula, FormulaError

REDUCTIONS = ("all-but-channel", "spatial", "groups", "trailing")
UNITS = ("element", "channel")
BROADCASTS = ("channel", "trailing")
# What eps = None means: the machine epsilon of the input dtype, or of the type the
# computation runs in (float32 for 16- and 32-bit inputs, float64 for float64).
EPS_NONE = ("dtype-eps", "opmath-eps")
_STATE_KEYS = {"shape", "init", "present", "trainable", "broadcast", "count", "positive", "why", "convention"}
_NORM_KEYS = {"over", "groups", "trailing", "centered", "eps", "eps_none", "running_mean", "running_var"}
_RANDOM_KEYS = {"rate", "unit", "dropped", "scale", "shift"}
_CONVENTION_KEYS = {"default", "variants", "why"}


class FamilyError(ValueError):
    """A family table is malformed: ``field`` names the table and key."""

    def __init__(self, field_name: str, problem: str):
        self.field, self.problem = field_name, problem
        super().__init__(f"{field_name}: {problem}")


@dataclass(frozen=True)
class StateField:
    """One parameter or buffer of the layer."""
    name: str
    shape: str | None        # a constructor parameter (an int or a shape), None for a scalar
    init: float
    present: tuple[str, ...]  # bool constructor parameters that must all be true
    trainable: bool = False
    broadcast: str = "channel"
    count: bool = False       # an integer counter (num_batches_tracked)
    positive: bool = False    # only positive values are valid (a variance)
    convention: tuple[str, str] | None = None  # present only under this (name, variant)

    def is_present(self, params: dict, conventions: dict | None = None) -> bool:
        if self.convention and (conventions or {}).get(self.convention[0], self.convention[1]) != self.convention[1]:
            return False
        return all(bool(params.get(name)) for name in self.present)

    def shape_of(self, params: dict) -> tuple[int, ...]:
        if self.shape is None:
            return ()
        value = params[self.shape]
        return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),)


@dataclass(frozen=True)
class Normalization:
    """Over which axes a statistic is taken, on the batched form (N, C, ...) of the input."""
    over: str
    groups: str | None = None       # parameter naming the number of channel groups
    trailing: str | None = None     # parameter naming the normalized trailing shape
    centered: bool = True           # False: a root-mean-square, no mean is subtracted
    eps: str = "eps"
    eps_none: str | None = None     # what eps = None means: EPS_NONE
    running_mean: str | None = None  # state fields used in place of batch statistics
    running_var: str | None = None

    def eps_value(self, params: dict, dtype: str) -> float:
        """The eps the layer adds for a layer of this dtype name; eps = None per ``eps_none``."""
        value = params.get(self.eps)
        if value is not None:
            return float(value)
        return accumulation_eps(dtype) if self.eps_none == "opmath-eps" else dtype_eps(dtype)

    def grouped(self, x: np.ndarray, params: dict) -> tuple[np.ndarray, tuple[int, ...]]:
        """x reshaped so that each statistic is over ``axes``; reshape back with x.shape."""
        if self.over == "groups":
            groups = int(params[self.groups])
            return x.reshape((x.shape[0], groups, -1)), (2,)
        if self.over == "trailing":
            k = len(_as_shape(params[self.trailing]))
            return x, tuple(range(x.ndim - k, x.ndim))
        if self.over == "spatial":
            return x, tuple(range(2, x.ndim))
        return x, (0,) + tuple(range(2, x.ndim))

    def statistics(self, x: np.ndarray, params: dict) -> dict[str, np.ndarray]:
        """Per-element (broadcast to x.shape) mean, biased variance (mean square when not
        centered), largest magnitude and member count of each element's statistic."""
        view, axes = self.grouped(x, params)
        count = math.prod(view.shape[a] for a in axes)
        mean = view.mean(axis=axes, keepdims=True) if self.centered else np.zeros_like(view.mean(axis=axes, keepdims=True))
        var = ((view - mean) ** 2).mean(axis=axes, keepdims=True)
        largest = np.abs(view).max(axis=axes, keepdims=True)
        full = lambda a: np.broadcast_to(a, view.shape).reshape(x.shape)
        return {"mean": full(mean), "var": full(var), "largest": full(largest), "count": count}

    def reduced_axes(self, rank: int, params: dict | None = None) -> tuple[int, ...]:
        """Axes of a batched input whose extent adds members to a statistic (shape strategy)."""
        if self.over == "trailing":
            return tuple(range(1, rank)) if rank > 1 else (0,)
        if self.over == "spatial":
            return tuple(range(2, rank))
        if self.over == "groups":
            return tuple(range(2, rank))
        return (0,) + tuple(range(2, rank))


@dataclass(frozen=True)
class RandomUnit:
    """A random layer: each unit is dropped with probability ``rate``; a dropped unit
    becomes ``dropped`` and a kept one ``scale * x + shift`` (formulas of the parameters)."""
    rate: str
    unit: str
    dropped: Formula
    scale: Formula
    shift: Formula

    def values(self, names: dict) -> tuple[float, float, float]:
        """(dropped, scale, shift) at these parameters; at a rate of 1 no unit is kept and
        scale and shift are NaN when their formulas cannot be evaluated there."""
        out = []
        for formula in (self.dropped, self.scale, self.shift):
            try:
                out.append(formula(names))
            except FormulaError:
                out.append(math.nan)
        return tuple(out)

    def unit_axes(self, batched_rank: int) -> tuple[int, ...]:
        """Axes of a batched input that a unit spans (reduced when reading a unit's fate)."""
        return tuple(range(2, batched_rank)) if self.unit == "channel" else ()


@dataclass(frozen=True)
class Convention:
    """Where frameworks legitimately differ: the named variants a conforming layer may
    follow, and the one assumed unless a backend declares another."""
    name: str
    default: str
    variants: tuple[str, ...]
    why: str = ""
    suite_wide: bool = False  # declared in suite.toml: the checks read it, the family's reference does not


@dataclass(frozen=True)
class Family:
    name: str
    state: dict[str, StateField] = field(default_factory=dict)
    normalization: Normalization | None = None
    random: RandomUnit | None = None
    step_path: str | None = None
    backward_path: str | None = None
    # name -> (min, max, divides): each numeric constructor parameter's valid domain, and
    # for a divisor the parameter it must divide; the reference backend validates with it.
    bounds: dict[str, tuple] = field(default_factory=dict)
    conventions: dict[str, Convention] = field(default_factory=dict)
    # layer -> path, where [reference] names one function per layer
    layer_steps: dict[str, str] = field(default_factory=dict)
    layer_backwards: dict[str, str] = field(default_factory=dict)

    def resolve(self, declared: dict | None) -> dict[str, str]:
        """The variant of each of the family's conventions: the backend's declared one,
        else the default. A declared variant the spec does not allow raises FamilyError."""
        resolved = {}
        for name, convention in self.conventions.items():
            value = (declared or {}).get(name, convention.default)
            if value not in convention.variants:
                raise FamilyError(f"conventions.{name}", f"the backend declares {value!r}; the spec allows "
                                                         f"{list(convention.variants)}")
            resolved[name] = value
        return resolved

    @property
    def reference_conventions(self) -> bool:
        """Whether the family's reference step takes its conventions (it declares its own)."""
        return any(not convention.suite_wide for convention in self.conventions.values())

    @property
    def trainable(self) -> tuple[str, ...]:
        return tuple(name for name, f in self.state.items() if f.trainable)

    def initial_state(self, params: dict, conventions: dict | None = None) -> dict[str, Any]:
        """The state of a new layer: float64 arrays, ints for counters, None where absent."""
        state = {}
        for name, spec in self.state.items():
            if not spec.is_present(params, conventions):
                state[name] = None
            elif spec.count:
                state[name] = int(spec.init)
            else:
                state[name] = np.full(spec.shape_of(params), float(spec.init))
        return state

    def broadcast(self, name: str, values: np.ndarray, ndim: int) -> np.ndarray:
        """A state field's values shaped to broadcast against a batched input of rank ndim."""
        values = np.asarray(values, dtype=np.float64)
        if self.state[name].broadcast == "trailing":
            return values
        return values.reshape((1, -1) + (1,) * (ndim - 2)) if ndim >= 2 else values

    @property
    def step(self) -> Callable:
        if self.step_path is None:
            raise FamilyError("reference.step", f"family {self.name!r} names one step per layer: use step_for(layer)")
        return load_function(self.step_path)

    @property
    def backward(self) -> Callable | None:
        if self.layer_backwards:
            raise FamilyError("reference.backward", f"family {self.name!r} names one backward per layer: "
                                                    "use backward_for(layer)")
        return load_function(self.backward_path) if self.backward_path else None

    def step_for(self, layer: str) -> Callable:
        """The reference step of one of the family's layers."""
        return load_function(self.layer_steps.get(layer, self.step_path))

    def backward_for(self, layer: str) -> Callable | None:
        """The reference backward of one of the family's layers; None when it has none."""
        path = self.layer_backwards.get(layer, self.backward_path)
        return load_function(path) if path else None


_FUNCTIONS: dict[str, Callable] = {}


def load_function(path: str) -> Callable:
    """Import ``module:attribute`` once."""
    if path not in _FUNCTIONS:
        module, _, attr = path.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        _FUNCTIONS[path] = obj
    return _FUNCTIONS[path]


def _as_shape(value) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),)


def parse_conventions(data: dict, suite_wide: bool = False) -> dict[str, Convention]:
    """The [conventions.NAME] tables of a spec file (a family's, or suite.toml's, which
    hold for every family). A malformed table raises FamilyError naming it."""
    conventions = {}
    for conv_name, raw in _table(data, "conventions").items():
        where = f"conventions.{conv_name}"
        _known(raw, _CONVENTION_KEYS, where)
        variants = raw.get("variants")
        if not isinstance(variants, list) or not variants or any(not isinstance(v, str) for v in variants):
            raise FamilyError(f"{where}.variants", "must be a non-empty list of variant names")
        if raw.get("default") not in variants:
            raise FamilyError(f"{where}.default", f"must be one of the variants {variants}")
        conventions[conv_name] = Convention(conv_name, raw["default"], tuple(variants), str(raw.get("why", "")),
                                            suite_wide)
    return conventions


def parse_family(name: str, data: dict, parameters: dict, formula_names: set[str],
                 suite_conventions: dict[str, Convention] | None = None) -> Family:
    """Build a Family from a spec file's tables; FamilyError names the table and key."""
    bools = {n for n, p in parameters.items() if p.kind == "bool"}
    sized = {n for n, p in parameters.items() if p.kind in ("int", "shape")}
    state = {}
    for field_name, raw in _table(data, "state").items():
        where = f"state.{field_name}"
        _known(raw, _STATE_KEYS, where)
        shape = raw.get("shape")
        if shape is not None and shape not in sized:
            raise FamilyError(f"{where}.shape", f"must name an int or shape parameter of this family: {sorted(sized)}")
        present = raw.get("present", [])
        present = [present] if isinstance(present, str) else present
        if not isinstance(present, list) or any(p not in bools for p in present):
            raise FamilyError(f"{where}.present", f"must name bool parameters of this family: {sorted(bools)}")
        init = raw.get("init", 0)
        if isinstance(init, bool) or not isinstance(init, (int, float)):
            raise FamilyError(f"{where}.init", f"must be a number, got {init!r}")
        broadcast = raw.get("broadcast", "channel")
        if broadcast not in BROADCASTS:
            raise FamilyError(f"{where}.broadcast", f"must be one of {list(BROADCASTS)}")
        convention = raw.get("convention")
        if convention is not None:
            if not isinstance(convention, dict) or len(convention) != 1:
                raise FamilyError(f"{where}.convention", "must be a table { NAME = \"VARIANT\" }")
            convention = next(iter(convention.items()))
        state[field_name] = StateField(field_name, shape, float(init), tuple(present), bool(raw.get("trainable", False)),
                                       broadcast, bool(raw.get("count", False)), bool(raw.get("positive", False)),
                                       convention)
    normalization = None
    if "normalization" in data:
        raw = _table(data, "normalization")
        _known(raw, _NORM_KEYS, "normalization")
        if raw.get("over") not in REDUCTIONS:
            raise FamilyError("normalization.over", f"must be one of {list(REDUCTIONS)}, got {raw.get('over')!r}")
        for key, needs in (("groups", "groups"), ("trailing", "trailing")):
            if raw["over"] == needs and raw.get(key) not in parameters:
                raise FamilyError(f"normalization.{key}", f"over = {needs!r} needs the parameter that gives it")
        for key in ("running_mean", "running_var"):
            if key in raw and raw[key] not in state:
                raise FamilyError(f"normalization.{key}", f"must name a state field: {sorted(state)}")
        if raw.get("eps_none") not in (None, *EPS_NONE):
            raise FamilyError("normalization.eps_none", f"must be one of {list(EPS_NONE)}, got {raw.get('eps_none')!r}")
        normalization = Normalization(raw["over"], raw.get("groups"), raw.get("trailing"), bool(raw.get("centered", True)),
                                      raw.get("eps", "eps"), raw.get("eps_none"), raw.get("running_mean"),
                                      raw.get("running_var"))
    random = None
    if "random" in data:
        raw = _table(data, "random")
        _known(raw, _RANDOM_KEYS, "random")
        if raw.get("rate") not in parameters:
            raise FamilyError("random.rate", "must name the family's rate parameter")
        if raw.get("unit") not in UNITS:
            raise FamilyError("random.unit", f"must be one of {list(UNITS)}")
        formulas = {}
        for key, default in (("dropped", "0"), ("scale", None), ("shift", "0")):
            text = raw.get(key, default)
            if text is None:
                raise FamilyError(f"random.{key}", "a formula of the parameters is required")
            try:
                formulas[key] = Formula(text, formula_names)
            except FormulaError as error:
                raise FamilyError(f"random.{key}", str(error)) from None
        random = RandomUnit(raw["rate"], raw["unit"], **formulas)
    reference = _table(data, "reference") if "reference" in data else {}
    _known(reference, {"step", "backward"}, "reference")
    per_layer: dict[str, dict[str, str]] = {"step": {}, "backward": {}}
    layers = sorted(data.get("layers", {})) if isinstance(data.get("layers"), dict) else []
    for key, value in reference.items():
        if isinstance(value, dict):  # one function per layer
            if sorted(value) != layers:
                raise FamilyError(f"reference.{key}", f"a per-layer table must name exactly the family's layers "
                                                      f"{layers}, got {sorted(value)}")
            per_layer[key] = {layer: _import_path(f"reference.{key}.{layer}", path) for layer, path in value.items()}
        else:
            _import_path(f"reference.{key}", value)
    if normalization is not None and "step" not in reference:
        raise FamilyError("reference.step", "a normalizing family needs its reference step function")
    bounds = {n: (p.min, p.max, p.of if p.from_input == "divisor" else None) for n, p in parameters.items()
              if p.kind in ("int", "float")}
    conventions = parse_conventions(data)
    for conv_name in conventions.keys() & (suite_conventions or {}).keys():
        raise FamilyError(f"conventions.{conv_name}", "is declared in suite.toml for every family; a family cannot redeclare it")
    conventions = {**(suite_conventions or {}), **conventions}
    for spec in state.values():
        if spec.convention and (spec.convention[0] not in conventions
                                or spec.convention[1] not in conventions[spec.convention[0]].variants):
            raise FamilyError(f"state.{spec.name}.convention", f"must name a declared convention and one of its variants")
    single = {key: value for key, value in reference.items() if isinstance(value, str)}
    return Family(name, state, normalization, random, single.get("step"), single.get("backward"), bounds,
                  conventions, per_layer["step"], per_layer["backward"])


def _import_path(where: str, path) -> str:
    """A 'module:function' path that imports; FamilyError naming ``where`` otherwise."""
    if not isinstance(path, str) or ":" not in path:
        raise FamilyError(where, f"must be a 'module:function' path, got {path!r}")
    try:
        load_function(path)
    except Exception as error:
        raise FamilyError(where, f"cannot import {path!r}: {type(error).__name__}: {error}") from None
    return path


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise FamilyError(key, "must be a table")
    if any(not isinstance(v, (dict, str, bool, int, float, list)) for v in value.values()):
        raise FamilyError(key, "malformed table")
    return value


def _known(raw, keys: set[str], where: str) -> None:
    if not isinstance(raw, dict):
        raise FamilyError(where, "must be a table")
    unknown = set(raw) - keys
    if unknown:
        raise FamilyError(f"{where}.{sorted(unknown)[0]}", f"unknown key; known are {sorted(keys)}")
