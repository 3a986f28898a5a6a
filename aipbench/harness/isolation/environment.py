"""The environment a child starts with: an allowlist, never the harness's own (which may hold tokens and
cloud keys), and none of it on a command line (bwrap reads its arguments from a file descriptor)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

__all__ = ["PASSED", "child_environment"]

# Settings a child's numbers depend on (threads, kernels, the GPU it may use) or its output (progress),
# passed on from the harness when set; everything else is dropped.
PASSED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
          "CUBLAS_WORKSPACE_CONFIG", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "AIPBENCH_PROGRESS")
_PLAIN = re.compile(r"\A[A-Za-z0-9:,._=-]{0,64}\Z")  # a setting, not a secret or a path


def child_environment(*, home: str) -> dict[str, str]:
    """The whole environment of a child whose only writable folder is ``home`` (its HOME and TMPDIR)."""
    import aipbench

    from aipbench.harness.isolation.bwrap import user_site

    # aipbench itself, also when the harness runs from a checkout that is not installed, and the user's own
    # site-packages where this Python imports from it (the child starts with -s, which would leave it out)
    paths = [str(Path(aipbench.__file__).resolve().parent.parent), *filter(None, [user_site()])]
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": home, "USER": "sandbox", "LOGNAME": "sandbox", "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": os.pathsep.join(paths),
    }
    for name in PASSED:
        value = os.environ.get(name)
        if value is not None and _PLAIN.match(value):
            env[name] = value
    return env
