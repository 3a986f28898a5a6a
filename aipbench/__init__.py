"""aipbench: a benchmark for Adversarial Item Promotion on visually-aware recommenders.

``aipbench.evaluate(submission, protocol=...)`` mirrors ``aipbench evaluate`` and returns ``Results``;
``aipbench.dry_run(aipbench.load_submission(folder))`` mirrors ``aipbench submission check --dry-run``;
``aipbench.load_protocol(name)`` reads a protocol. docs/api.md is the reference.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

__all__ = ["CPU_KERNEL_CAPS", "__version__", "dry_run", "evaluate", "load_protocol", "load_submission"]

try:
    __version__ = version("aipbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# Trained artifacts are the same bytes on two x86-64 machines only if both run the same kernels. ATen's
# vectorized kernels, MKL's BLAS and oneDNN's convolutions each choose their code by the CPU's
# instruction set, and AVX2 and AVX-512 code sum floats in other orders: the tiny protocol's pins,
# measured on one CPU, failed on an AMD EPYC (AVX2) with 314 of 482 numbers moved. Every x86-64 CPU
# from the last decade has AVX2, so all three are capped there (set before torch reads them, which it
# does at first use; a value the user set is kept, and results record what was in effect).
CPU_KERNEL_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _cap_cpu_kernels() -> None:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:  # not Linux: no MKL / oneDNN x86 dispatch to pin
        return
    if " avx2" in flags:
        for name, value in CPU_KERNEL_CAPS.items():
            os.environ.setdefault(name, value)


_cap_cpu_kernels()
# cuBLAS is deterministic only with a fixed workspace (read when CUDA starts, so set before torch uses it);
# builds and attacks run with torch's deterministic algorithms, and results record the value in effect.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def __getattr__(name: str):
    # imported on first use, so that `import aipbench` (and `aipbench --help`) stays instant
    if name == "evaluate":
        from aipbench.harness.evaluate import evaluate

        return evaluate
    if name == "dry_run":
        from aipbench.harness.dry_run import dry_run

        return dry_run
    if name == "load_submission":
        from aipbench.harness.submission import load_submission

        return load_submission
    if name == "load_protocol":
        from aipbench.protocol import load_protocol

        return load_protocol
    raise AttributeError(f"module 'aipbench' has no attribute {name!r}")
