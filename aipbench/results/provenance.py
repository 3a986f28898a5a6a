"""What every results document records about how it was measured: software, protocol, artifacts, machine."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol

__all__ = ["cpu_environment", "git_commit", "gpu_environment", "provenance"]


def provenance(proto: "Protocol", artifacts: dict[str, dict[str, str]], device: str) -> dict:
    """Software, protocol, the artifacts a document was computed from (name → file → SHA-256) and their build
    (``aipbench.pipeline.builds``: its id over the core steps present, and whether all are), device."""
    import torch

    import aipbench
    from aipbench.pipeline.builds import build_id, core_steps

    return {
        "aipbench": {"version": aipbench.__version__, "git_commit": git_commit()},
        "protocol": {"name": proto.name, "version": proto.protocol.version, "sha256": proto.sha256},
        "artifacts": dict(sorted(artifacts.items())),
        "build": {"id": build_id(proto, artifacts), "complete": all(s in artifacts for s in core_steps(proto))},
        "environment": {"device": device, "torch": torch.__version__, "python": platform.python_version(),
                        "cpu": cpu_environment(), "gpu": gpu_environment(device)},
    }


def gpu_environment(device: str) -> dict | None:
    """The GPU a CUDA device names — model, CUDA and driver versions, the deterministic-kernel settings in
    effect — or None on the CPU."""
    import torch

    if not str(device).startswith("cuda"):
        return None
    index = torch.device(device).index or 0
    driver = None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", f"--id={index}"],
                             capture_output=True, text=True, timeout=10)
        driver = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"model": torch.cuda.get_device_name(index), "cuda": torch.version.cuda, "driver": driver,
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}


def git_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and len(out.stdout.strip()) == 40 else None


def cpu_environment() -> dict:
    """The CPU and the kernels torch runs on it (see ``aipbench.CPU_KERNEL_CAPS``)."""
    import torch

    from aipbench import CPU_KERNEL_CAPS

    model = None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), None)
    except OSError:
        pass
    return {"model": model, "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "kernel_caps": {k: os.environ[k] for k in CPU_KERNEL_CAPS if k in os.environ}}
