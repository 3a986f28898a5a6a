"""Checks on what comes back across the boundary, before the harness builds anything from it: a trained
ranker's checkpoint (its size before it is read, its tensors before a model is shaped by them; its weights
are checked once rebuilt, by defenses.training), a detector's settings."""

from __future__ import annotations

import io
from typing import Any

from aipbench.errors import InputError, one_line

__all__ = ["MAX_TRAINING_ITEMS", "checkpoint_cap", "checked_training_items", "read_checkpoint"]

MAX_TRAINING_ITEMS = 100_000  # catalog items a detector may ask to be trained on


def checkpoint_cap(undefended) -> int:
    """The most bytes a trained ranker's checkpoint may have: four times the undefended ranker's weights and
    catalog representation, at least 256 MiB (another family may be larger; none is that much larger)."""
    size = sum(t.numel() * t.element_size() for t in undefended.state_dict().values())
    size += undefended.catalog.numel() * undefended.catalog.element_size()
    return max(256 << 20, 4 * size)


def read_checkpoint(data: bytes, *, source: str, cap: int) -> dict:
    """A trained ranker as tensors (``{"family", "state", "catalog"}``, and ``"class"``/``"file"`` for a family
    of its own), from the bytes a worker sent: their
    size checked first, read tensors-only (``weights_only``), and no tensor a view larger than its storage
    (a few bytes that claim gigabytes once copied); one-line errors naming ``source``."""
    import torch

    if len(data) > cap:
        raise InputError(f"{source}: {len(data)} bytes, more than a ranker of this protocol can need ({cap})")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — whatever the worker sent
        raise InputError(f"{source}: not a readable tensors-only checkpoint ({one_line(err)})") from None
    own = {"class", "file"}  # a family of the submission's own: where its class is, rebuilt in a ranker worker
    if not isinstance(payload, dict) or set(payload) - own != {"family", "state", "catalog"} \
            or set(payload) & own not in (set(), own) or not all(isinstance(payload[k], str) for k in own & set(payload)) \
            or not isinstance(payload["state"], dict) or not isinstance(payload["catalog"], torch.Tensor):
        raise InputError(f"{source}: malformed (a ranker is {{family, state, catalog}} and, for a family of its own, "
                         "{class, file}; tensors and strings only)")
    tensors = {**payload["state"], "catalog": payload["catalog"]}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise InputError(f"{source}: {str(name)[:60]!r} is not a tensor")
        if t.numel() * t.element_size() > t.untyped_storage().nbytes():
            raise InputError(f"{source}: tensor {str(name)[:60]!r} of shape {tuple(t.shape)} is a view larger than "
                             "the bytes it holds")
    return payload


def checked_training_items(value: Any, *, source: str, available: int) -> int:
    """A detector's ``training_items``: a whole number of catalog items, 1 to what the catalog offers."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= min(available, MAX_TRAINING_ITEMS):
        raise InputError(f"{source}: training_items must be a whole number from 1 to "
                         f"{min(available, MAX_TRAINING_ITEMS)} (catalog items besides the cold and hook items), "
                         f"got {str(value)[:40]!r}")
    return value
