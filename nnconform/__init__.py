"""nnconform: a property-based conformance test suite for neural-network layers."""

from nnconform.backend_api import BackendError, Capabilities

__version__ = "0.1.0"
__all__ = ["BackendError", "Capabilities", "__version__"]
