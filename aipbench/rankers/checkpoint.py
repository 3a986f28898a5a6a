"""Writing a trained model's artifact: its state with every tensor on the CPU, and its training history."""

from __future__ import annotations

import json
from pathlib import Path

import torch

__all__ = ["own_state", "save_state", "write_history"]


def save_state(state: dict, path: Path) -> None:
    """A state dict with every tensor on the CPU: artifacts load anywhere, whatever device trained them (a
    CPU-trained state is saved as it is, module metadata included: the same bytes as ever)."""
    if any(isinstance(v, torch.Tensor) and v.device.type != "cpu" for v in state.values()):
        on_cpu = type(state)((k, v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in state.items())
        if hasattr(state, "_metadata"):
            on_cpu._metadata = state._metadata
        state = on_cpu
    torch.save(state, path)


def write_history(history: dict, out: Path) -> None:
    """``history.json`` in the artifact folder ``out``: the training's epochs, losses and chosen epoch."""
    (out / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")


def own_state(model: torch.nn.Module) -> dict:
    """The ranker's own parameters: the frozen extractor lives in its own artifact."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("extractor.")}
