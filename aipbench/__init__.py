"""aipbench: a benchmark for Adversarial Item Promotion on visually-aware recommenders.

``aipbench.evaluate(submission, protocol=...)`` mirrors ``aipbench evaluate`` and returns ``Results``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__", "evaluate"]

try:
    __version__ = version("aipbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"


def __getattr__(name: str):
    # imported on first use, so that `import aipbench` (and `aipbench --help`) stays instant
    if name == "evaluate":
        from aipbench.harness import evaluate

        return evaluate
    raise AttributeError(f"module 'aipbench' has no attribute {name!r}")
