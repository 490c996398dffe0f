"""Load one backend and say what it is, as one line of JSON on stdout:

    python -m nnconform.matrix.probe SPEC
    {"name": "torch", "version": "2.13.0+cpu", "device": "cpu", "unavailable": null, "error": null}

``error`` holds the one-line BackendError of a backend that cannot be loaded (its
framework is not installed, a bad name). `nnconform matrix` runs this in a process
of its own before each backend's suite run, so that a missing framework or an
unavailable device is a column that says so, and the framework's version is known
even when the run itself crashes.
"""

from __future__ import annotations

import json
import os
import sys

from nnconform.backend_api import BackendError
from nnconform.backends import load_backend


def describe(spec: str) -> dict:
    try:
        backend = load_backend(spec)
    except BackendError as error:
        return {"name": spec, "version": None, "device": None, "unavailable": None,
                "error": " ".join(str(error).split())}
    capabilities = backend.capabilities
    return {"name": str(getattr(backend, "name", spec)), "version": str(getattr(backend, "version", "")) or None,
            "device": capabilities.device, "unavailable": getattr(backend, "unavailable", None) or None,
            "error": None}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m nnconform.matrix.probe BACKEND", file=sys.stderr)
        return 2
    sys.path.insert(0, os.getcwd())  # a backend module in the current directory, as the nnconform command finds it
    print(json.dumps(describe(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
