"""A from-scratch numpy implementation of Dropout and BatchNorm1d/2d/3d, plugged into
nnconform. It is the worked example of docs/backend-api.md. Run the suite on it with

    python -m pytest --backend examples.numpy_backend:NumpyBackend

It stays at those two families on purpose, as a page-long example; the suite's other
families are then reported as unsupported by it, never as passed.
"""

import ml_dtypes
import numpy as np

from nnconform import Capabilities

BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d")
DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}


def f64(array):
    return array.astype(np.float64)


class NumpyBackend:
    name = "numpy-example"
    version = np.__version__
    capabilities = Capabilities(layers=frozenset(("Dropout",) + BATCHNORMS), autograd=True)

    def __init__(self):
        self.rng = np.random.default_rng()

    def seed(self, seed):
        self.rng = np.random.default_rng(seed)

    def build(self, layer, params, dtype):
        if layer == "Dropout":
            return Dropout(params["p"], params["inplace"], self)
        return BatchNorm(params, DTYPES[dtype])


class Dropout:
    trainable = frozenset()

    def __init__(self, p, inplace, backend):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace, self.backend, self.training = p, inplace, backend, True

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {}

    def forward(self, x):
        self.scale = np.ones(x.shape) if not self.training else (
            np.zeros(x.shape) if self.p == 1 else (self.backend.rng.random(x.shape) >= self.p) / (1 - self.p))
        out = (f64(x) * self.scale).astype(x.dtype)
        if self.inplace:
            x[...] = out
            return x
        return out

    def backward(self, grad_output):
        return {"input": (f64(grad_output) * self.scale).astype(grad_output.dtype), "weight": None, "bias": None}


class BatchNorm:
    """Statistics and arithmetic in float64; state stored in the layer's dtype."""
    trainable = frozenset({"weight", "bias"})

    def __init__(self, params, dtype):
        c, self.eps, self.momentum = params["num_features"], params["eps"], params["momentum"]
        self.dtype, self.training = dtype, True
        tracked, affine = params["track_running_stats"], params["affine"]
        self.running_mean = np.zeros(c, self.dtype) if tracked else None
        self.running_var = np.ones(c, self.dtype) if tracked else None
        self.num_batches_tracked = 0 if tracked else None
        self.weight = np.ones(c, self.dtype) if affine else None
        self.bias = np.zeros(c, self.dtype) if affine else None

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def state(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var, "weight": self.weight,
                "num_batches_tracked": self.num_batches_tracked, "bias": self.bias}

    def load_state(self, values):
        """Set parameters and buffers (the suite draws them): stored in the layer's dtype."""
        for name, value in values.items():
            if getattr(self, name) is None:
                raise ValueError(f"this layer has no {name}")
            setattr(self, name, int(value) if name == "num_batches_tracked" else np.asarray(value).astype(self.dtype))

    def forward(self, x):
        x64, axes = f64(x), (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)  # broadcast per channel along axis 1
        self.batch_stats = self.training or self.running_mean is None
        if self.batch_stats:
            count = x.size // x.shape[1]
            if self.training and count < 2:
                raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
            mean, var = x64.mean(axis=axes), x64.var(axis=axes)
            if self.training and self.running_mean is not None:
                self.num_batches_tracked += 1
                f = 1 / self.num_batches_tracked if self.momentum is None else self.momentum
                self.running_mean = ((1 - f) * f64(self.running_mean) + f * mean).astype(self.dtype)
                self.running_var = ((1 - f) * f64(self.running_var) + f * var * count / (count - 1)).astype(self.dtype)
        else:
            mean, var = f64(self.running_mean), f64(self.running_var)
        self.inv_std = 1 / np.sqrt(var.reshape(shape) + self.eps)
        self.xhat, self.axes, self.shape = (x64 - mean.reshape(shape)) * self.inv_std, axes, shape
        if self.weight is None:
            return self.xhat.astype(x.dtype)
        return (self.xhat * f64(self.weight).reshape(shape) + f64(self.bias).reshape(shape)).astype(x.dtype)

    def backward(self, grad_output):
        g, axes, xhat = f64(grad_output), self.axes, self.xhat
        dxhat = g if self.weight is None else g * f64(self.weight).reshape(self.shape)
        if self.batch_stats:  # the batch mean and variance depend on the input too
            dxhat = dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        affine = self.weight is not None
        return {"input": (dxhat * self.inv_std).astype(grad_output.dtype),
                "weight": (g * xhat).sum(axis=axes).astype(self.dtype) if affine else None,
                "bias": g.sum(axis=axes).astype(self.dtype) if affine else None}
