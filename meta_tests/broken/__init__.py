"""Deliberately broken backends for the meta tests. Each module takes the float64
reference backend and breaks one thing, and exposes it as ``Backend`` so a run can
name it: ``--backend meta_tests.broken.MODULE:Backend``."""
