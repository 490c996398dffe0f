"""Example backends for nnconform; see docs/backend-api.md."""
