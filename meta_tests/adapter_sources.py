"""Source text of small faulty backends, for the meta tests that write a backend
module to disk and run the ``nnconform`` command on it in a subprocess (from the
current directory, from an installed downstream project, as a built-in backend with a
known-deviations file, as the gate's faulty backends). The modules stand alone: they
import only nnconform.

``EVAL_FAULT`` is a wrapper class ``_EvalFault(layer, fault)`` around a reference layer
whose eval-mode forward returns ``fault(output)``; ``eval_scaling_backend`` makes a
whole module whose eval-mode ``Dropout`` returns ``2 * x + 1`` instead of ``x``, so
``dropout.eval.identity`` fails and train-mode clauses pass.
"""

from __future__ import annotations

EVAL_FAULT = '''
class _EvalFault:
    """Wraps a reference layer; eval-mode forward calls the fault."""

    def __init__(self, layer, fault):
        self._layer, self._fault, self._training = layer, fault, True

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def train(self):
        self._training = True
        self._layer.train()

    def eval(self):
        self._training = False
        self._layer.eval()

    def forward(self, x):
        out = self._layer.forward(x)
        return out if self._training else self._fault(out)
'''

_EVAL_SCALES = '''
from nnconform.backends.reference_backend import ReferenceBackend
''' + EVAL_FAULT + '''

def _scales(out):
    return (out * 2 + 1).astype(out.dtype)


class Backend(ReferenceBackend):
    """{doc}"""
    name = {name!r}
{version}
    def build(self, layer, params, dtype):
        built = super().build(layer, params, dtype)
        return _EvalFault(built, _scales) if layer == "Dropout" else built
'''


def eval_scaling_backend(name: str, doc: str = "The reference, except that eval-mode dropout is broken.",
                         version: str | None = None) -> str:
    """The module text of a backend class ``Backend`` named ``name`` whose eval-mode
    Dropout scales its input; ``version`` sets its ``version`` attribute."""
    version_line = f"    version = {version!r}\n" if version is not None else ""
    return f'"""{doc}"""\n' + _EVAL_SCALES.format(doc=doc, name=name, version=version_line)
