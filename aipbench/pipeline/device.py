"""Where torch computes: ``--device auto|cpu|cuda[:N]`` resolved once, with a one-line error for a device
this machine does not have."""

from __future__ import annotations

from aipbench.errors import InputError

__all__ = ["DEVICE_CHOICES", "resolve_device"]

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str | None) -> str:
    """``auto`` (or None): ``cuda`` where torch sees a GPU, else ``cpu``; ``cpu``; ``cuda`` / ``cuda:N`` if
    that GPU exists. Anything else is a one-line InputError."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise InputError(f"--device {name!r}: expected {DEVICE_CHOICES}")
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: torch {torch.__version__} sees no CUDA GPU here; use --device cpu "
                             "(or auto)")
        if index and int(index) >= torch.cuda.device_count():
            raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return name
    raise InputError(f"--device {name!r}: expected {DEVICE_CHOICES}")
