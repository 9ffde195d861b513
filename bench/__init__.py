"""Benchmarks (printed figures, not tests). They run without live reload (HARNESS_RELOAD=0)."""

import os

os.environ.setdefault("HARNESS_RELOAD", "0")
