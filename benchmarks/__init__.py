"""Measurements against the sandbox: `make bench` (full) and `make bench-small` (CI)."""
