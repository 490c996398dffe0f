"""Load and validate the declarative spec files into Clause objects.

Every spec file is read with ``tomllib`` and validated completely before any test
runs. Any problem raises SpecError naming the file, the clause id and the field.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnconform.family import Family, FamilyError, parse_conventions, parse_family
from nnconform.formula import Formula, FormulaError
from nnconform.vocabulary import (
    CHECK_KINDS, DTYPES, LAYOUTS, MODES, SCENARIO_PARAMETERS, STATE_MODES, VALUE_PROFILES,
)

SUITE_FILE = "suite.toml"
_PARAM_KINDS = ("float", "int", "bool", "shape")
# Values a parameter may take from the drawn input: its channel count, its trailing
# shape (a drawn number of trailing axes), or a divisor of another parameter.
_FROM_INPUT = ("channels", "trailing", "divisor")
_CLAUSE_FIELDS = {"id", "statement", "mode", "check", "params", "input", "tolerance", "examples",
                  "layers", "statistics", "expected", "trainable", "fields", "observe", "error", "when", "state",
                  "conventions", "applies_under"}
_ERRORS = ("ValueError", "TypeError", "RuntimeError")
_INPUT_FIELDS = {"dtypes", "ranks", "side", "values", "per_channel", "layouts"}
_STAT_FIELDS = {"power", "delta", "why", "n", "n_counts", "alpha"}


class SpecError(ValueError):
    """A spec file is malformed. The message names the file, the clause and the field."""

    def __init__(self, path: Path | str, clause: str | None, field_name: str | None, problem: str):
        self.path, self.clause, self.field, self.problem = str(path), clause, field_name, problem
        where = [self.path]
        if clause:
            where.append(f"clause {clause!r}")
        if field_name:
            where.append(f"field {field_name!r}")
        super().__init__(f"{': '.join(where)}: {problem}")


@dataclass(frozen=True)
class Parameter:
    """A layer constructor parameter: its full valid domain and its default."""
    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    default: Any = None
    from_input: str | None = None
    of: str | None = None                    # from_input = "divisor": the parameter it divides
    length: tuple[int, int] = (1, 1)         # from_input = "trailing": how many trailing axes
    int_when_single: bool = False            # a one-axis shape may be passed as a plain int


@dataclass(frozen=True)
class Domain:
    """The values a clause draws for one parameter."""
    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    include: tuple = ()
    nullable: bool = False


@dataclass(frozen=True)
class InputDomain:
    dtypes: tuple[str, ...] = ("float32",)
    ranks: tuple[int, int] = (1, 5)
    side: tuple[int, int] = (1, 8)
    values: tuple[str, ...] = ("standard",)
    per_channel: tuple[int, int] | None = None
    layouts: tuple[str, ...] = ("contiguous",)


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


@dataclass(frozen=True)
class Clause:
    id: str
    statement: str
    family: str
    layers: tuple[str, ...]
    modes: tuple[str, ...]
    check: str
    params: dict[str, Domain]
    input: InputDomain
    tolerances: dict[str, Tolerance]
    accumulation: float
    rounding: float
    examples: float
    options: dict[str, Any]
    statistics: dict[str, Any] | None
    source: str
    layer_ranks: dict[str, tuple[int, int]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, "Parameter"] = field(default_factory=dict)
    model: Family | None = None
    unbatched_ranks: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @property
    def statistical(self) -> bool:
        return CHECK_KINDS[self.check].statistical


@dataclass(frozen=True)
class SpecSet:
    clauses: tuple[Clause, ...]
    false_alarm_budget: float
    files: tuple[str, ...]

    def by_id(self, clause_id: str) -> Clause:
        return next(c for c in self.clauses if c.id == clause_id)


def default_spec_dir() -> Path:
    """specs/ in a checkout, or the copy shipped inside the installed package."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "specs", package.parent / "specs"):
        if (candidate / SUITE_FILE).is_file():
            return candidate
    raise SpecError(package.parent / "specs", None, None, "no spec directory with suite.toml was found")


def load_specs(directory: Path | str | None = None) -> SpecSet:
    directory = Path(directory) if directory else default_spec_dir()
    suite = _read_toml(directory / SUITE_FILE)
    budget = _number(suite.get("statistics", {}).get("false_alarm_budget"), directory / SUITE_FILE,
                     None, "statistics.false_alarm_budget", 0.0, 1.0, exclusive_min=True)
    try:
        suite_conventions = parse_conventions(suite, suite_wide=True)
    except FamilyError as error:
        raise SpecError(directory / SUITE_FILE, None, error.field, error.problem) from None
    clauses: list[Clause] = []
    seen: dict[str, str] = {}
    files = sorted(p for p in directory.glob("*.toml") if p.name != SUITE_FILE)
    if not files:
        raise SpecError(directory, None, None, "no layer-family spec files (*.toml) found")
    for path in files:
        for clause in _load_family(path, suite_conventions):
            if clause.id in seen:
                raise SpecError(path, clause.id, "id", f"duplicate clause id, first defined in {seen[clause.id]}")
            seen[clause.id] = str(path)
            clauses.append(clause)
    return SpecSet(tuple(clauses), budget, tuple(str(p) for p in files))


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SpecError(path, None, None, "file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError(path, None, None, f"malformed TOML: {error}") from None


def _load_family(path: Path, suite_conventions: dict | None = None) -> list[Clause]:
    data = _read_toml(path)
    family = data.get("family")
    if not isinstance(family, str) or not family:
        raise SpecError(path, None, "family", "missing or not a string")
    layers = data.get("layers")
    if not isinstance(layers, dict) or not layers:
        raise SpecError(path, None, "layers", "at least one [layers.NAME] table is required")
    layer_ranks, unbatched = {}, {}
    for name, spec in layers.items():
        if not isinstance(spec, dict) or set(spec) - {"ranks", "unbatched_ranks"}:
            raise SpecError(path, None, f"layers.{name}", "a layer table takes ranks and unbatched_ranks")
        layer_ranks[name] = _range(spec.get("ranks", [1, 5]), path, None, f"layers.{name}.ranks", 0, 8)
        raw_unbatched = spec.get("unbatched_ranks")
        unbatched[name] = None if raw_unbatched is None else _range(
            raw_unbatched, path, None, f"layers.{name}.unbatched_ranks", 0, 8)
        if unbatched[name] and not (unbatched[name][1] < layer_ranks[name][0] or unbatched[name][0] > layer_ranks[name][1]):
            raise SpecError(path, None, f"layers.{name}.unbatched_ranks", "must not overlap the batched ranks")
    raw_parameters = data.get("parameters", {})
    if not isinstance(raw_parameters, dict):
        raise SpecError(path, None, "parameters", "must be a table of [parameters.NAME] tables")
    parameters = {name: _parameter(name, spec, path) for name, spec in raw_parameters.items()}
    for name, param in parameters.items():
        if param.from_input == "divisor" and (param.of not in parameters or parameters[param.of].from_input != "channels"):
            raise SpecError(path, None, f"parameters.{name}.of", "a divisor must name a parameter taken from the input's channels")
    names = set(parameters) | set(SCENARIO_PARAMETERS)
    try:
        model = parse_family(family, data, parameters, names, suite_conventions)
    except FamilyError as error:
        raise SpecError(path, None, error.field, error.problem) from None
    base_tolerance = data.get("tolerance", {})
    clauses = data.get("clause")
    if not isinstance(clauses, list) or not clauses:
        raise SpecError(path, None, "clause", "at least one [[clause]] is required")
    context = dict(family=family, layer_ranks=layer_ranks, unbatched=unbatched, parameters=parameters,
                   base_tolerance=base_tolerance, model=model)
    return [_clause(raw, path=path, **context) for raw in clauses]


def _parameter(name: str, spec: dict, path: Path) -> Parameter:
    where = f"parameters.{name}"
    if not isinstance(spec, dict):
        raise SpecError(path, None, where, "must be a table")
    kind = spec.get("kind")
    if kind not in _PARAM_KINDS:
        raise SpecError(path, None, f"{where}.kind", f"must be one of {list(_PARAM_KINDS)}, got {kind!r}")
    low, high = spec.get("min"), spec.get("max")
    from_input = spec.get("from_input")
    if from_input not in (None, *_FROM_INPUT):
        raise SpecError(path, None, f"{where}.from_input", f"must be one of {list(_FROM_INPUT)}, got {from_input!r}")
    if kind in ("float", "int") and from_input is None and (low is None or high is None):
        raise SpecError(path, None, where, "a numeric parameter needs min and max")
    if kind == "shape" and from_input != "trailing":
        raise SpecError(path, None, f"{where}.from_input", "a shape parameter is taken from the input: 'trailing'")
    length = _range(spec.get("length", [1, 1]), path, None, f"{where}.length", 1, 8)
    return Parameter(name, kind, low, high, bool(spec.get("nullable", False)), spec.get("default"), from_input,
                     spec.get("of"), length, bool(spec.get("int_when_single", False)))


def _clause(raw: dict, *, family: str, layer_ranks, unbatched, parameters, base_tolerance, model: Family,
            path: Path) -> Clause:
    clause_id = raw.get("id")
    if not isinstance(clause_id, str) or not clause_id.startswith(family + "."):
        raise SpecError(path, clause_id, "id", f"must be a string starting with {family + '.'!r}")
    unknown = set(raw) - _CLAUSE_FIELDS
    if unknown:
        raise SpecError(path, clause_id, sorted(unknown)[0], f"unknown field; known fields are {sorted(_CLAUSE_FIELDS)}")
    statement = raw.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise SpecError(path, clause_id, "statement", "a one-sentence statement is required")
    check = raw.get("check")
    if check not in CHECK_KINDS:
        raise SpecError(path, clause_id, "check", f"unknown check kind {check!r}; known kinds are {sorted(CHECK_KINDS)}")
    kind = CHECK_KINDS[check]
    modes = raw.get("mode")
    modes = (modes,) if isinstance(modes, str) else tuple(modes or ())
    if not modes or any(m not in MODES for m in modes):
        raise SpecError(path, clause_id, "mode", f"must be one of {list(MODES)} or a list of them, got {raw.get('mode')!r}")
    layers = tuple(raw.get("layers", layer_ranks))
    if not layers or any(name not in layer_ranks for name in layers):
        raise SpecError(path, clause_id, "layers", f"must name layers of this family: {sorted(layer_ranks)}")

    params = {}
    for name, spec in raw.get("params", {}).items():
        params[name] = _domain(name, spec, parameters, path, clause_id)
    defaults = {name: p.default for name, p in parameters.items() if p.from_input is None}
    defaults.update({name: s["default"] for name, s in SCENARIO_PARAMETERS.items()})
    names = set(defaults) | {n for n, p in parameters.items() if p.from_input}
    if model.random is not None and model.random.rate not in parameters:
        raise SpecError(path, clause_id, "random.rate", "names no parameter")

    input_domain = _input(raw.get("input", {}), path, clause_id)
    for table in kind.needs:
        if getattr(model, table) is None:
            raise SpecError(path, clause_id, "check", f"check kind {check!r} needs the family's [{table}] table")
    if check == "mode-switching" and model.random is None and model.normalization is None:
        raise SpecError(path, clause_id, "check", "mode-switching needs the family's [random] or [normalization] table")
    for field_name in kind.required:
        if field_name not in raw:
            raise SpecError(path, clause_id, field_name, f"check kind {check!r} requires this field")
    for field_name in {"expected", "trainable", "fields", "observe", "error", "when", "statistics"} & set(raw):
        if field_name not in kind.required | kind.optional:
            raise SpecError(path, clause_id, field_name, f"check kind {check!r} does not take this field")
    options = _options(raw, check, names, model, path, clause_id)
    options.update(_conventions(raw, model, path, clause_id))
    if "state" in raw:
        if raw["state"] not in STATE_MODES:
            raise SpecError(path, clause_id, "state", f"must be one of {list(STATE_MODES)}, got {raw['state']!r}")
        if not kind.takes_state:
            raise SpecError(path, clause_id, "state", f"check kind {check!r} does not take drawn state")
        options["state"] = raw["state"]

    tolerance_table = {**base_tolerance, **raw.get("tolerance", {})}
    tolerances = {}
    # Checks that need a tolerance require one for every dtype; others (a statistical
    # check reading a random layer's dropped value) use the family's where it has one.
    if kind.needs_tolerance or any(d in tolerance_table for d in input_domain.dtypes):
        for dtype in input_domain.dtypes:
            entry = tolerance_table.get(dtype)
            if not kind.needs_tolerance and entry is None:
                continue
            if not isinstance(entry, dict):
                raise SpecError(path, clause_id, f"tolerance.{dtype}", f"check kind {check!r} needs a tolerance for every dtype it runs")
            tolerances[dtype] = Tolerance(
                _number(entry.get("rtol"), path, clause_id, f"tolerance.{dtype}.rtol", 0.0, 1.0),
                _number(entry.get("atol"), path, clause_id, f"tolerance.{dtype}.atol", 0.0, 1e3))
        if kind.needs_tolerance and not isinstance(tolerance_table.get("why"), str):
            raise SpecError(path, clause_id, "tolerance.why", "a tolerance must say why it is what it is")
    accumulation = _number(tolerance_table.get("accumulation", 0), path, clause_id, "tolerance.accumulation", 0, 1e6)
    rounding = _number(tolerance_table.get("rounding", 0), path, clause_id, "tolerance.rounding", 0, 1e3)

    statistics = None
    if kind.statistical:
        statistics = _statistics(raw["statistics"], path, clause_id)
    examples = _number(raw.get("examples", 1.0), path, clause_id, "examples", 0.0, 10.0, exclusive_min=True)
    return Clause(clause_id, statement.strip(), family, layers, modes, check, params, input_domain,
                  tolerances, accumulation, rounding, examples, options, statistics, str(path),
                  {name: layer_ranks[name] for name in layers}, defaults,
                  {n: p for n, p in parameters.items() if p.from_input and n not in params}, model,
                  {name: unbatched[name] for name in layers})


def _domain(name: str, spec: Any, parameters: dict[str, Parameter], path: Path, clause_id: str) -> Domain:
    where = f"params.{name}"
    if name in parameters:
        param = parameters[name]
        if param.from_input and not (isinstance(spec, dict) and set(spec) == {"choices"}):
            raise SpecError(path, clause_id, where, f"is derived from the input ({param.from_input}); "
                                                    "a clause may only pin it with choices")
    elif name in SCENARIO_PARAMETERS:
        param = Parameter(name, **SCENARIO_PARAMETERS[name])
    else:
        known = sorted(set(parameters) | set(SCENARIO_PARAMETERS))
        raise SpecError(path, clause_id, where, f"unknown parameter; this family's parameters are {known}")
    if not isinstance(spec, dict):
        raise SpecError(path, clause_id, where, "must be a table such as { min = 0.0, max = 1.0 } or { choices = [...] }")
    unknown = set(spec) - {"min", "max", "choices", "include", "nullable"}
    if unknown:
        raise SpecError(path, clause_id, f"{where}.{sorted(unknown)[0]}", "unknown field; use min, max, choices, include, nullable")
    nullable = bool(spec.get("nullable", False))
    if nullable and not param.nullable:
        raise SpecError(path, clause_id, f"{where}.nullable", f"{name} cannot be None")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpecError(path, clause_id, f"{where}.choices", "the domain is empty")
        values = tuple(_value(v, param, path, clause_id, f"{where}.choices", strict=False) for v in choices)
        return Domain(name, param.kind, choices=values, nullable=nullable)
    if param.kind == "bool":
        raise SpecError(path, clause_id, where, "a bool parameter takes choices")
    low = _number(spec.get("min", param.min), path, clause_id, f"{where}.min", param.min, param.max)
    high = _number(spec.get("max", param.max), path, clause_id, f"{where}.max", param.min, param.max)
    if low > high:
        raise SpecError(path, clause_id, where, f"the domain is empty: min {low} > max {high}")
    include = tuple(_number(v, path, clause_id, f"{where}.include", low, high) for v in spec.get("include", []))
    return Domain(name, param.kind, low, high, include=include, nullable=nullable)


def _value(value: Any, param: Parameter, path: Path, clause_id: str, where: str, strict: bool = True):
    """A single choice. Choices for a numeric parameter may lie outside its valid
    domain, because clauses of kind `raises` choose invalid values on purpose."""
    if value == "none":
        if not param.nullable:
            raise SpecError(path, clause_id, where, f"{param.name} cannot be None")
        return None
    if param.kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(path, clause_id, where, f"expected true or false, got {value!r}")
        return value
    if param.kind == "shape":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise SpecError(path, clause_id, where, f"expected a list of integers or an integer, got {value!r}")
        return tuple(value)
    low, high = (param.min, param.max) if strict else (None, None)
    number = _number(value, path, clause_id, where, low, high)
    return int(number) if param.kind == "int" else number


def _number(value: Any, path, clause_id, where, low=None, high=None, exclusive_min=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(path, clause_id, where, f"expected a finite number, got {value!r}")
    if (low is not None and (value < low or (exclusive_min and value == low))) or (high is not None and value > high):
        bound = f"({low}, {high}]" if exclusive_min else f"[{low}, {high}]"
        raise SpecError(path, clause_id, where, f"{value!r} is outside the valid domain {bound}")
    return value


def _range(value: Any, path, clause_id, where, low, high) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        raise SpecError(path, clause_id, where, f"expected [min, max] integers, got {value!r}")
    _number(value[0], path, clause_id, where, low, high)
    _number(value[1], path, clause_id, where, low, high)
    if value[0] > value[1]:
        raise SpecError(path, clause_id, where, f"the range is empty: {value[0]} > {value[1]}")
    return value[0], value[1]


def _input(raw: dict, path: Path, clause_id: str) -> InputDomain:
    unknown = set(raw) - _INPUT_FIELDS
    if unknown:
        raise SpecError(path, clause_id, f"input.{sorted(unknown)[0]}", f"unknown field; known are {sorted(_INPUT_FIELDS)}")
    dtypes = tuple(raw.get("dtypes", ["float32"]))
    bad = [d for d in dtypes if d not in DTYPES]
    if not dtypes or bad:
        raise SpecError(path, clause_id, "input.dtypes", f"unknown or empty dtypes {bad}; known are {list(DTYPES)}")
    values = tuple(raw.get("values", ["standard"]))
    if not values or any(v not in VALUE_PROFILES for v in values):
        raise SpecError(path, clause_id, "input.values", f"must be a non-empty list from {list(VALUE_PROFILES)}")
    layouts = raw.get("layouts", ["contiguous"])
    if not isinstance(layouts, list) or not layouts or any(v not in LAYOUTS for v in layouts):
        raise SpecError(path, clause_id, "input.layouts", f"must be a non-empty list from {list(LAYOUTS)}, got {layouts!r}")
    per_channel = raw.get("per_channel")
    return InputDomain(
        dtypes=dtypes,
        ranks=_range(raw.get("ranks", [0, 8]), path, clause_id, "input.ranks", 0, 8),
        side=_range(raw.get("side", [1, 8]), path, clause_id, "input.side", 1, 64),
        values=values,
        per_channel=None if per_channel is None else _range(per_channel, path, clause_id, "input.per_channel", 1, 1 << 20),
        layouts=tuple(layouts),
    )


def _options(raw: dict, check: str, names: set[str], model: Family, path: Path, clause_id: str) -> dict[str, Any]:
    state_fields = tuple(model.state)
    observables = ("output",) + state_fields
    options: dict[str, Any] = {}
    expected = raw.get("expected")
    try:
        if isinstance(expected, str):
            options["expected"] = Formula(expected, names)
        elif isinstance(expected, dict):
            for key in expected:
                if key not in state_fields:
                    raise SpecError(path, clause_id, f"expected.{key}", f"not a state field of this family; known are {list(state_fields)}")
            options["expected"] = {k: Formula(v, names) for k, v in expected.items()}
        elif expected is not None:
            raise SpecError(path, clause_id, "expected", "must be a formula string or a table of formulas")
    except FormulaError as error:
        raise SpecError(path, clause_id, "expected", str(error)) from None
    for key, allowed in (("fields", state_fields), ("trainable", state_fields), ("observe", observables)):
        if key in raw:
            value = raw[key]
            if not isinstance(value, list) or not value or any(v not in allowed for v in value):
                raise SpecError(path, clause_id, key, f"must be a non-empty list from {list(allowed)}")
            options[key] = tuple(value)
    if "error" in raw:
        # One exception type, or a list of the types any of which conforms (where the
        # documentation promises an error but not its type).
        errors = [raw["error"]] if isinstance(raw["error"], str) else raw["error"]
        if not isinstance(errors, list) or not errors or any(e not in _ERRORS for e in errors):
            raise SpecError(path, clause_id, "error", f"must be one of {list(_ERRORS)} or a list of them")
        options["error"] = tuple(errors)
    if "when" in raw:
        if raw["when"] not in ("build", "forward"):
            raise SpecError(path, clause_id, "when", "must be 'build' or 'forward'")
        options["when"] = raw["when"]
    return options


def _conventions(raw: dict, model: Family, path: Path, clause_id: str) -> dict[str, Any]:
    """`conventions`: the family conventions this clause's verdict depends on (the report
    names the variant it passed under); `applies_under`: variants outside which the
    clause does not apply (such items are unsupported by that backend)."""
    options = {}
    names = raw.get("conventions", [])
    if not isinstance(names, list) or any(n not in model.conventions for n in names):
        raise SpecError(path, clause_id, "conventions", f"must list conventions of this family: {sorted(model.conventions)}")
    options["conventions"] = tuple(names)
    applies = raw.get("applies_under", {})
    if not isinstance(applies, dict):
        raise SpecError(path, clause_id, "applies_under", "must be a table { CONVENTION = \"VARIANT\" }")
    for name, variant in applies.items():
        if name not in model.conventions or variant not in model.conventions[name].variants:
            raise SpecError(path, clause_id, f"applies_under.{name}", "must name a convention of this family and one of its variants")
    options["applies_under"] = dict(applies)
    return options


def _statistics(raw: Any, path: Path, clause_id: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SpecError(path, clause_id, "statistics", "must be a table with power, delta, n and why")
    unknown = set(raw) - _STAT_FIELDS
    if unknown:
        raise SpecError(path, clause_id, f"statistics.{sorted(unknown)[0]}", f"unknown field; known are {sorted(_STAT_FIELDS)}")
    power = _number(raw.get("power"), path, clause_id, "statistics.power", 0.5, 1.0, exclusive_min=True)
    delta = _number(raw.get("delta"), path, clause_id, "statistics.delta", 0.0, 1.0, exclusive_min=True)
    if not isinstance(raw.get("why"), str):
        raise SpecError(path, clause_id, "statistics.why", "a statistical clause must say what its test is")
    alpha = _number(raw.get("alpha"), path, clause_id, "statistics.alpha", 0.0, 1.0, exclusive_min=True)
    n = raw.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError(path, clause_id, "statistics.n",
                        f"must state the sample size drawn at the default alpha as a positive integer, got {n!r}")
    n_counts = raw.get("n_counts")
    if not isinstance(n_counts, str) or not n_counts.strip():
        raise SpecError(path, clause_id, "statistics.n_counts",
                        f"must say what n counts (units, pairs, calls, and on which input), got {n_counts!r}")
    return {"power": power, "delta": delta, "why": raw["why"], "alpha": alpha, "n": n, "n_counts": n_counts}
