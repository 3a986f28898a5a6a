"""How the networks compute on a GPU: a protocol's ``compute.precision`` applied to torch's switches."""

from __future__ import annotations

__all__ = ["apply_precision", "autocast"]


def apply_precision(precision: str | None) -> None:
    """Set this process's CUDA matrix-product and convolution precision from a protocol's
    ``compute.precision`` (absent: float32): TF32 only where the protocol says "tf32" or "bf16" — PyTorch
    would otherwise allow TF32 convolutions by default, and a result must not depend on that default. The
    CPU always computes in float32; cuDNN picks deterministic kernels."""
    import torch

    tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def autocast(precision: str | None, device: str):
    """bfloat16 autocast for a CNN's training forward passes where the protocol says "bf16" on CUDA; else a
    no-op (the CPU's numbers never depend on the setting)."""
    import contextlib

    import torch

    if precision == "bf16" and str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
