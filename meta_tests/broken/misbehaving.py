"""Run-time misuse of the backend API, one fault per backend: a method that raises
or exits, and results of the wrong type, dtype or shape from build, forward and
state. meta_tests/test_broken_backends.py runs every clause against each, to show
that each fault ends as a clause failure naming the backend and the call, never as
an error of the harness."""

import sys

import numpy as np

from meta_tests.broken._wrapper import LayerWrapper, WrappingBackend

LAYERS = ("Dropout", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d")


def _backend(fault: str, layer_methods: dict | None = None, **backend_methods) -> type:
    """A backend class named after the fault, whose layers override layer_methods."""
    wrapper = type(f"_{fault}_layer", (LayerWrapper,), layer_methods or {})
    return type(fault, (WrappingBackend,), {"name": fault.replace("_", "-"),
                                             "wrappers": dict.fromkeys(LAYERS, wrapper), **backend_methods})


def _raises(what: str):
    def method(self, *args):
        raise RuntimeError(f"{what} is broken")
    return method


def _each_array(change):
    """state() with every array value replaced by change(value)."""
    def state(self):
        return {name: value if value is None or isinstance(value, int) else change(value)
                for name, value in self._layer.state().items()}
    return state


def _each_count(change):
    """state() with num_batches_tracked, where the layer has one, replaced by change(value)."""
    def state(self):
        found = self._layer.state()
        return {name: change(value) if name == "num_batches_tracked" and value is not None else value
                for name, value in found.items()}
    return state


FAULTS = {backend.name: backend for backend in (
    _backend("seed_raises", seed=_raises("seed")),
    _backend("build_returns_none", build=lambda self, layer, params, dtype: None),
    _backend("train_raises", {"train": _raises("train")}),
    _backend("eval_raises", {"eval": _raises("eval")}),
    _backend("state_raises", {"state": _raises("state")}),
    _backend("forward_exits", {"forward": lambda self, x: sys.exit(3)}),
    _backend("forward_returns_object", {"forward": lambda self, x: object()}),
    _backend("forward_returns_scalar", {"forward": lambda self, x: np.float32(1.0)}),
    _backend("forward_returns_strings", {"forward": lambda self, x: np.full(x.shape, "0.5")}),
    _backend("forward_returns_objects", {"forward": lambda self, x: np.empty(x.shape, dtype=object)}),
    _backend("forward_returns_complex", {"forward": lambda self, x: self._layer.forward(x).astype(np.complex128)}),
    _backend("state_returns_list", {"state": lambda self: list(self._layer.state().items())}),
    _backend("state_returns_strings", {"state": _each_array(lambda value: "zeros")}),
    _backend("state_wrong_shape", {"state": _each_array(lambda value: np.concatenate([value, value[:1]]))}),
    _backend("state_scalar", {"state": _each_array(lambda value: np.float32(0.5))}),
    _backend("state_count_not_int", {"state": _each_count(lambda count: "many")}),
    _backend("trainable_not_a_set", {"trainable": 3}),
)}
