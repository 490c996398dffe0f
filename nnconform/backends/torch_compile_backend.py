"""The torch.compile adapter: the torch.nn layers of the torch adapter, each forward
call run through ``torch.compile`` (TorchDynamo, AOTAutograd and the inductor
backend, which generates and compiles C++ on the CPU).

It reuses the torch adapter whole (modules, numpy conversion, state, load_state and
backward) and changes one thing: a layer's module is called through a compiled
function. What it adds is what makes that a fair test of the compiler:

- Compiled per layer kind, not per example. One compiled function per (layer, dtype,
  structure, mode, grad mode, input rank), each with its own TorchDynamo cache; shapes
  are dynamic, so a new size reuses a graph. The float hyperparameters (eps, momentum,
  p) cannot be runtime inputs in torch 2.13: each reaches an ATen ``float`` argument,
  where torch specializes it even with ``specialize_float = False``, so a new value
  compiles a new graph of the same function (counted as a recompile, never a fallback).
- No silent eager fallback. A graph break is an error (``fullgraph=True``), hitting the
  recompile limit is an error (``fail_on_recompile_limit_hit``), and every forward call
  must run a graph the inductor compiled: the compiled code is wrapped in a counter, and
  a call that did not go through it raises. ``evidence()`` reports, per item, the graphs
  compiled, recompiles, compiled calls and fallbacks.
- Gradients through the compiled graph (AOTAutograd): a forward recorded for backward
  must come back with a compiled autograd node.
"""

from __future__ import annotations

import types
from collections import Counter

from nnconform.backend_api import BackendError, Capabilities
from nnconform.backends.torch_backend import _LAYERS, TorchBackend, TorchLayer, torch
from nnconform.vocabulary import DTYPES

EXTRA = "torch-compile"
# Graphs one compiled function may hold before TorchDynamo raises (never falls back):
# a function serves one layer, dtype, structure, mode, grad mode and rank over the run,
# and each value of a float hyperparameter costs one graph (see _configure_dynamo).
RECOMPILE_LIMIT = 100_000
# Values of each float hyperparameter a run draws per domain (Capabilities.value_pools).
VALUE_POOL = 2


class EagerFallback(RuntimeError):
    """A forward call that torch.compile ran without compiled code."""


class CompileStats:
    """What the compiler did: graphs compiled (per compiled function), calls that ran
    compiled code, forward calls, and calls that ran without it."""

    def __init__(self):
        self.graphs = Counter()  # per compiled-function key
        self.compiled_calls = 0
        self.forward_calls = 0
        self.fallbacks = 0
        self.compiled_backward = 0

    def snapshot(self) -> dict:
        return {"graphs": sum(self.graphs.values()),
                "recompiles": sum(max(0, n - 1) for n in self.graphs.values()),
                "functions": len(self.graphs), "compiled_calls": self.compiled_calls,
                "forward_calls": self.forward_calls, "fallbacks": self.fallbacks,
                "compiled_backward": self.compiled_backward}


def _invoke(module, x):
    return module(x)


class TorchCompileBackend(TorchBackend):
    """torch.nn on the CPU, every forward call through torch.compile (inductor)."""
    name = "torch-compile"
    device = "cpu"

    def __init__(self):
        if torch is None:
            raise BackendError(f"backend {self.name!r}: torch is not installed; "
                               f"install it with: pip install 'nnconform[{EXTRA}]'")
        super().__init__()
        _configure_dynamo()
        self.stats = CompileStats()
        self._functions: dict[tuple, object] = {}
        self._reported = self.stats.snapshot()
        self.capabilities = Capabilities(
            layers=frozenset(_LAYERS), dtypes=frozenset(DTYPES), device=self.device, autograd=True,
            # BatchNorm's momentum=None (a cumulative average) computes 1/float(num_batches_tracked)
            # in Python: a data-dependent float that TorchDynamo cannot put in one graph
            # ("Could not guard on data-dependent expression FloatTrueDiv(1.0, ToFloat(u0))"),
            # so torch.compile can run it only with a graph break, i.e. partly eager.
            unsupported_values={"momentum": (None,)},
            # Every value of eps, momentum and p is compiled into the graph (see the module
            # docstring): a run draws each from VALUE_POOL values per domain, fixed by the
            # run's seed, so that float values add a few graphs, not one per example (new
            # shapes and structures still do: docs/backend-api.md, "What bounds the graphs").
            value_pools={"eps": VALUE_POOL, "momentum": VALUE_POOL, "p": VALUE_POOL},
            notes={"unsupported": "BatchNorm momentum=None: torch.compile cannot capture the cumulative "
                                  "average 1/float(num_batches_tracked) in one graph (a graph break, partly eager)",
                   "compiler": "torch.compile(backend=inductor, fullgraph=True, dynamic=True) on the CPU; "
                               "shapes dynamic; eps, momentum and p specialized by torch (a new value is a new "
                               "graph of the same compiled function)",
                   "fallbacks": "none allowed: a graph break, a hit recompile limit or a forward call that "
                                "ran no compiled code is an error; per-item counts in the report's backend notes"})

    def build(self, layer: str, params: dict, dtype: str):
        module = super().build(layer, params, dtype).module
        return TorchCompileLayer(module, self.device, self, (layer, dtype, _structure(params)))

    def compiled(self, key: tuple):
        """The compiled function of one key. Each has a code object of its own, so that
        TorchDynamo's cache and recompile limit are per key, not shared by every layer."""
        function = self._functions.get(key)
        if function is None:
            name = f"nnconform_{len(self._functions)}"
            code = _invoke.__code__.replace(co_name=name, co_qualname=name)
            plain = types.FunctionType(code, _invoke.__globals__, name)
            function = torch.compile(plain, backend=self._counting_inductor(key), fullgraph=True, dynamic=True)
            self._functions[key] = function
        return function

    def _counting_inductor(self, key: tuple):
        """The inductor backend, counting the graphs it compiles and the calls of their code."""
        from torch._inductor.compile_fx import compile_fx
        stats = self.stats

        def backend(graph_module, example_inputs):
            compiled = compile_fx(graph_module, example_inputs)
            stats.graphs[key] += 1  # after: a compile TorchDynamo restarts is not a graph

            def run(*args):
                stats.compiled_calls += 1
                return compiled(*args)
            run._boxed_call = getattr(compiled, "_boxed_call", False)
            return run
        return backend

    def evidence(self) -> dict[str, str]:
        """What the compiler did since the last call (one item): the report's backend notes."""
        now, before = self.stats.snapshot(), self._reported
        self._reported = now
        delta = {name: now[name] - before[name] for name in now}
        return {"compiled graphs": str(delta["graphs"]), "recompiles": str(delta["recompiles"]),
                "compiled calls": f"{delta['compiled_calls']} of {delta['forward_calls']} forward calls",
                "compiled backward": str(delta["compiled_backward"]),
                "eager fallbacks": str(delta["fallbacks"]),
                "process totals": f"{now['graphs']} graphs for {now['functions']} compiled functions, "
                                  f"{now['recompiles']} recompiles, {now['fallbacks']} fallbacks"}


def _configure_dynamo() -> None:
    """torch.compile settings for a conformance run (process-wide; this backend's process
    runs nothing else through TorchDynamo). Measured on torch 2.13 (docs/backend-api.md):

    - floats stay unspecialized where torch allows (``specialize_float = False``), but a
      float that reaches an ATen argument of type ``float`` (eps, momentum, p of every
      layer here) is specialized by torch: a new value compiles a new graph;
    - sizes: dynamic from the first compile (``dynamic=True``), parameter shapes and
      integer module attributes too (num_groups, normalized_shape) where torch can; no
      duck sizing (``use_duck_shape = False``): two dimensions that happen to be equal in
      one example get symbols of their own, so that an example where they differ reuses
      the graph (sizes 0 and 1 are still specialized by torch: a new pattern of unit
      dimensions, or a new layout's strides, is a new graph);
    - the recompile limit stays an error (``fail_on_recompile_limit_hit``), never a
      silent switch to eager, and is raised so that the specialized floats of a whole
      run fit under it;
    - one inductor compile thread: the suite's workers already use the cores.
    """
    import torch._dynamo
    import torch._inductor.config
    import torch.fx.experimental._config
    config = torch._dynamo.config
    config.specialize_float = False
    config.force_parameter_static_shapes = False
    config.force_nn_module_property_static_shapes = False
    config.allow_unspec_int_on_nn_module = True
    config.fail_on_recompile_limit_hit = True
    config.recompile_limit = RECOMPILE_LIMIT
    config.accumulated_recompile_limit = RECOMPILE_LIMIT
    config.suppress_errors = False
    torch._inductor.config.compile_threads = 1
    torch.fx.experimental._config.use_duck_shape = False


def _structure(params: dict) -> tuple:
    """The parameters that change the graph's structure: booleans, a None (momentum,
    eps), and the number of normalized axes. Floats and sizes are runtime values."""
    out = []
    for name, value in sorted(params.items()):
        if value is None or isinstance(value, bool):
            out.append((name, value))
        elif isinstance(value, (tuple, list)):
            out.append((name, len(value)))
    return tuple(out)


class TorchCompileLayer(TorchLayer):
    def __init__(self, module, device: str, backend: TorchCompileBackend, key: tuple):
        super().__init__(module, device)
        self.backend, self.key = backend, key

    def _run(self, tensor):
        stats = self.backend.stats
        key = self.key + (self.module.training, torch.is_grad_enabled(), tensor.dim())
        before = stats.compiled_calls
        stats.forward_calls += 1
        out = self.backend.compiled(key)(self.module, tensor)
        if stats.compiled_calls == before:
            stats.fallbacks += 1
            raise EagerFallback(f"torch.compile ran {self.key[0]} without compiled code (an eager fallback)")
        if out.requires_grad and _compiled_autograd(out.grad_fn):
            stats.compiled_backward += 1
        return out


def _compiled_autograd(node, depth: int = 3) -> bool:
    """Whether the output's autograd graph goes through AOTAutograd's compiled function
    (an output that aliases the input, as eval-mode dropout's, may reach it through a
    view node, or not at all: then there is nothing to differentiate but the identity)."""
    if node is None or depth < 0:
        return False
    if "CompiledFunction" in type(node).__name__:
        return True
    return any(_compiled_autograd(child, depth - 1) for child, _ in node.next_functions)
