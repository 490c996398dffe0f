"""The torch adapter: drives the real torch.nn modules on CPU or CUDA.

This is the only module that imports torch. It converts numpy arrays to tensors
and back (bfloat16 through an int16 view, so no value is rounded twice) and never
re-implements a layer.
"""

from __future__ import annotations

import inspect

import ml_dtypes
import numpy as np

from nnconform.backend_api import BackendError, Capabilities
from nnconform.vocabulary import DTYPES

try:
    import torch
except ImportError as error:  # pragma: no cover - exercised only without torch
    torch = None
    _IMPORT_ERROR = error

# The torch.nn modules this adapter maps. Each is built by its own class with the spec's
# parameters under torch's names, plus device= and dtype= where its constructor takes them.
_LAYERS = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
           "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
           "LayerNorm", "GroupNorm", "RMSNorm")


def _torch_dtype(name: str):
    return getattr(torch, name)


def to_tensor(array: np.ndarray, device: str):
    """A tensor sharing memory with ``array`` on the CPU (a copy on other devices)."""
    if array.dtype == ml_dtypes.bfloat16:
        tensor = torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    else:
        tensor = torch.from_numpy(array)
    return tensor.to(device)


def to_numpy(tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


class TorchBackend:
    """torch.nn on the CPU."""
    name = "torch"
    device = "cpu"

    def __init__(self):
        if torch is None:
            raise BackendError(f"backend {self.name!r}: torch is not installed ({_IMPORT_ERROR}); "
                               "install it with: pip install torch")
        self.version = torch.__version__
        # Conformance inputs are small, and with xdist several workers share few
        # cores: more than one intra-op thread only adds contention (a 0.02 ms call
        # took 36 ms with two threads on a loaded 2-core machine).
        torch.set_num_threads(1)
        self.capabilities = Capabilities(layers=frozenset(_LAYERS), dtypes=frozenset(DTYPES),
                                         device=self.device, autograd=True)

    def seed(self, seed: int) -> None:
        # Only the generator this backend draws from. torch.manual_seed also seeds the
        # CUDA, MPS, XPU and MTIA generators, and where those are not initialized it
        # queues each call with a formatted stack trace: about 0.3 ms a call, a tenth
        # of a profiled conformance run (benchmarks/RESULTS.md, "Profile before").
        torch.default_generator.manual_seed(seed)

    def build(self, layer: str, params: dict, dtype: str):
        if layer not in _LAYERS:
            raise BackendError(f"backend {self.name!r} has no layer {layer!r}")
        module_class = getattr(torch.nn, layer)
        accepted = inspect.signature(module_class.__init__).parameters
        kwargs = dict(params)
        if "device" in accepted:
            kwargs["device"] = self.device
        if "dtype" in accepted:
            kwargs["dtype"] = _torch_dtype(dtype)
        return TorchLayer(module_class(**kwargs), self.device)


class TorchCudaBackend(TorchBackend):
    """torch.nn on the first CUDA device."""
    name = "torch-cuda"
    device = "cuda"

    def __init__(self):
        super().__init__()
        if not torch.cuda.is_available():
            self.unavailable = "no CUDA device is available to torch on this machine"
        else:
            self.capabilities = Capabilities(
                layers=frozenset(_LAYERS), dtypes=frozenset(DTYPES), device=torch.cuda.get_device_name(0),
                autograd=True)

    def seed(self, seed: int) -> None:
        # The CPU generator and the current device's: the layers run on the current
        # device (cuda:0 unless the caller changes it), and none on other devices.
        torch.default_generator.manual_seed(seed)
        torch.cuda.manual_seed(seed)


class TorchLayer:
    requires_grad = False  # set by the suite before forward calls it will differentiate

    def __init__(self, module, device: str):
        self.module, self.device = module, device
        self._graph = None

    @property
    def trainable(self) -> frozenset:
        return frozenset(name for name, value in self.module._parameters.items()
                         if value is not None and value.requires_grad)

    def train(self):
        self.module.train()

    def eval(self):
        self.module.eval()

    def forward(self, x: np.ndarray) -> np.ndarray:
        tensor = to_tensor(x, self.device)
        if self.requires_grad:
            return self._forward_recording(tensor)
        with torch.no_grad():
            out = self._run(tensor)
        if self.device != "cpu":
            x[...] = to_numpy(tensor)  # mirror an in-place write back into the caller's array
        return to_numpy(out)

    def _run(self, tensor):
        """The module's call on a tensor; the torch-compile adapter runs it compiled."""
        return self.module(tensor)

    def _forward_recording(self, tensor) -> np.ndarray:
        """Forward with autograd on, from a leaf copy of the input, keeping the graph
        for backward. Only gradient clauses pay for this; the others run no_grad."""
        leaf = tensor.detach().clone().requires_grad_(True)
        self.module.zero_grad(set_to_none=True)
        out = self._run(leaf)
        self._graph = (leaf, out)
        return to_numpy(out)

    def backward(self, grad_output: np.ndarray) -> dict:
        """Gradients of the last forward call (made with requires_grad) with respect to
        its input and to the module's weight and bias."""
        if self._graph is None:
            raise RuntimeError("backward needs a forward call made with requires_grad = True first")
        leaf, out = self._graph
        self._graph = None
        # (out * g).sum().backward() gives out's gradient g exactly (the sum's gradient is
        # ones, the product's is ones * g), bit for bit what out.backward(g) gives; but
        # out.backward(g) goes through autograd's _make_grads, which imports sympy (about
        # half a second, once per process).
        (out * to_tensor(grad_output, self.device)).sum().backward()
        grads = {"input": leaf.grad}
        for name, parameter in self.module._parameters.items():
            grads[name] = None if parameter is None else parameter.grad
        return {name: None if value is None else to_numpy(value) for name, value in grads.items()}

    def state(self) -> dict:
        """Every parameter and buffer of the module, None where torch registered none."""
        state = {}
        for name, value in {**self.module._parameters, **self.module._buffers}.items():
            if value is None:
                state[name] = None
            elif not value.is_floating_point():
                state[name] = int(value.item())
            else:
                state[name] = to_numpy(value).copy()
        return state

    def load_state(self, values: dict) -> None:
        with torch.no_grad():
            for name, value in values.items():
                target = getattr(self.module, name)
                if isinstance(value, int):
                    target.fill_(value)
                else:
                    target.copy_(to_tensor(np.ascontiguousarray(np.asarray(value).astype(to_numpy(target).dtype)),
                                           self.device))
