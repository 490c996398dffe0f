"""Find a backend by name: a built-in, an installed entry point, or ``package.module:attr``."""

from __future__ import annotations

import importlib
import importlib.metadata
import traceback

from nnconform.backend_api import BackendError, Capabilities

ENTRY_POINT_GROUP = "nnconform.backends"
BUILTIN = {
    "torch": "nnconform.backends.torch_backend:TorchBackend",
    "torch-cuda": "nnconform.backends.torch_backend:TorchCudaBackend",
    "torch-compile": "nnconform.backends.torch_compile_backend:TorchCompileBackend",
    "reference": "nnconform.backends.reference_backend:ReferenceBackend",
    "onnxruntime": "nnconform.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "tinygrad": "nnconform.backends.tinygrad_backend:TinygradBackend",
    "flax": "nnconform.backends.flax_backend:FlaxBackend",
    "keras": "nnconform.backends.keras_backend:KerasBackend",
}


def available_backends() -> list[str]:
    names = set(BUILTIN)
    names.update(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def load_backend(spec: str):
    """Load, instantiate and validate a backend. Raises BackendError with a message
    that names the backend and what went wrong."""
    if ":" in spec:
        target = spec
    elif spec in BUILTIN:
        target = BUILTIN[spec]
    else:
        found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            raise BackendError(
                f"unknown backend {spec!r}; available backends are {', '.join(available_backends())}, "
                "or give package.module:attr for your own")
        target = found[0].value
    backend = _instantiate(spec, _import_target(spec, target))
    validate_backend(spec, backend)
    return backend


def _import_target(spec: str, target: str):
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise BackendError(f"backend {spec!r}: expected the form package.module:attr")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        last = traceback.extract_tb(error.__traceback__)[-1]
        raise BackendError(
            f"backend {spec!r}: importing module {module_name!r} failed with "
            f"{type(error).__name__}: {error} (at {last.filename}:{last.lineno})") from error
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        public = sorted(n for n in dir(module) if not n.startswith("_"))
        raise BackendError(f"backend {spec!r}: module {module_name!r} has no attribute {attr!r}; "
                           f"it has {public}") from None
    return obj


def _instantiate(spec: str, obj):
    if isinstance(obj, type):
        try:
            return obj()
        except BackendError:
            raise
        except Exception as error:
            raise BackendError(f"backend {spec!r}: creating {obj.__name__}() failed with "
                               f"{type(error).__name__}: {error}") from error
    return obj


def validate_backend(spec: str, backend) -> None:
    """Check the backend API's required attributes, with one message per gap."""
    missing = [name for name in ("name", "capabilities", "build") if not hasattr(backend, name)]
    if missing:
        raise BackendError(f"backend {spec!r}: {type(backend).__name__} is missing {missing}; "
                           "see the backend API in docs/backend-api.md")
    if not callable(backend.build):
        raise BackendError(f"backend {spec!r}: build must be callable")
    if not isinstance(backend.capabilities, Capabilities):
        raise BackendError(f"backend {spec!r}: capabilities must be nnconform.Capabilities, "
                           f"got {type(backend.capabilities).__name__}")
    pools = backend.capabilities.value_pools
    bad = {name: count for name, count in dict(pools).items()
           if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, int) or count < 1}
    if bad:
        raise BackendError(f"backend {spec!r}: capabilities.value_pools must map parameter names to a count of "
                           f"at least 1 (values a run draws of each), got {bad}")
