"""Input-transformation defenses: JPEG compression and bit-depth reduction of uint8 images, batched,
and a straight-through (BPDA) wrapper that lets gradient attacks see through them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aipbench.defenses.guard import checked_transform

__all__ = ["EOT", "EOT_SAMPLES", "BitDepth", "JPEG", "Transformed", "apply_transform", "in_worker", "is_randomized",
           "load_defense", "portable", "restore", "restore_state"]

EOT_SAMPLES = 8  # draws of a randomized transform an adaptive attack's gradient averages over

_SOURCE = "aipbench-defense-source"


def load_defense(entry_file, class_name: str, **params):
    """Instantiate a defense class from a submission file (reviewed code, run in-process: the transform
    sits inside every ranker call) and set its level parameters. The instance remembers where it came
    from, so it can be re-created in an attack's child process."""
    from pathlib import Path

    from aipbench.registry import import_from_file

    from aipbench.defenses.guard import load_guarded

    path = Path(entry_file).resolve()
    module = f"aipbench_defense_{path.parent.name.replace('-', '_')}"
    defense = load_guarded(lambda: import_from_file(path, class_name, module=module)(), path, class_name)
    for key, value in params.items():
        setattr(defense, key, value)
    defense.__dict__["_aipbench_source"] = (str(path), class_name, dict(params))
    return defense


def in_worker(defense) -> bool:
    """Whether ``defense`` stands for one in a worker process (``harness.isolation.defense_worker``)."""
    return bool(getattr(type(defense), "_aipbench_in_worker", False))


def portable(defense):
    """What pickles in place of a defense loaded from a submission file: its source (file, class, level
    parameters) and its attributes (e.g. a fitted detector's weights), so a child process that imports
    the file again gets an equal object. Other objects pickle as they are."""
    source = getattr(defense, "_aipbench_source", None)
    if source is None or in_worker(defense):  # a worker's stand-in pickles itself
        return defense
    return (_SOURCE, source, {k: v for k, v in defense.__dict__.items() if k != "_aipbench_source"})


def restore(value):
    """Inverse of ``portable``."""
    if not (isinstance(value, tuple) and value and value[0] == _SOURCE):
        return value
    path, cls, params = value[1]
    defense = load_defense(path, cls, **params)
    defense.__dict__.update(value[2])
    return defense


def restore_state(source: tuple, state: bytes):
    """A defense from a worker process (``harness.isolation.defense_worker``), re-created in an attack's child: the
    class from its file, with the worker's attributes (pickled there; unpickled only here, in the child)."""
    import pickle

    return restore((_SOURCE, source, pickle.loads(state)))


class JPEG:
    """JPEG compression at ``quality`` (libjpeg through torchvision), decoded back to RGB uint8."""

    quality = 75

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        import warnings

        from torchvision.io import decode_jpeg, encode_jpeg

        with warnings.catch_warnings():  # torchvision 0.29 announces a move of its codecs to TorchCodec
            warnings.simplefilter("ignore", DeprecationWarning)
            encoded = encode_jpeg(list(images.contiguous()), quality=self.quality)
            return torch.stack(decode_jpeg(encoded))


class BitDepth:
    """Bit-depth reduction (Xu et al.'s feature squeezing) to ``bits`` per channel: each value is
    rounded to the nearest of 2^bits evenly spaced levels in [0, 255]."""

    bits = 5

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        levels = 2**self.bits - 1
        return torch.round(images.float() * levels / 255).mul(255 / levels).round().to(torch.uint8)


def apply_transform(defense, images, *, batch_size: int = 1000) -> np.ndarray:
    """``defense.transform`` on uint8 N×3×H×W images (numpy or tensor) in batches; checks its output."""
    out = []
    for s in range(0, len(images), batch_size):
        part = images[s : s + batch_size]
        x = part.clone() if isinstance(part, torch.Tensor) else torch.from_numpy(np.array(part))
        out.append(checked_transform(defense, x).numpy())
    return np.concatenate(out) if out else np.zeros((0,), np.uint8)


class Wrapped(nn.Module):
    """A module in front of ``model`` that behaves like it otherwise (e.g. ``classifier``) and pickles
    the defense object held in ``_portable_attr`` by its source (see ``portable``)."""

    _portable_attr = "defense"

    def __getstate__(self) -> dict:  # a submission's class is re-imported from its file, not pickled
        return {**self.__dict__, self._portable_attr: portable(getattr(self, self._portable_attr))}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__({**state, self._portable_attr: restore(state[self._portable_attr])})

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)


class Transformed(Wrapped):
    """``model`` behind the defense: uint8 inputs are transformed; float inputs in [0, 1] are transformed
    in the forward pass with an identity gradient (straight-through / BPDA, Athalye et al. 2018), so an
    adaptive attack can optimize through a non-differentiable transform."""

    def __init__(self, model: nn.Module, defense) -> None:
        super().__init__()
        self.model, self.defense = model, defense

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            return self.model(checked_transform(self.defense, images.cpu()).to(images.device))
        with torch.no_grad():
            pixels = torch.round(images.clamp(0, 1) * 255).to(torch.uint8).cpu()
            target = checked_transform(self.defense, pixels).to(images.device).float() / 255
        return self.model(images + (target - images).detach())


class EOT(nn.Module):
    """Expectation over transformation (Athalye et al. 2018): float inputs pass ``samples`` times through
    ``model`` (a randomized transform in front of a ranker's image model) and the outputs are averaged, so
    an attack's gradient is that of the expected output; uint8 inputs (scoring) pass once, as deployed."""

    def __init__(self, model: nn.Module, samples: int = EOT_SAMPLES) -> None:
        super().__init__()
        self.model, self.samples = model, int(samples)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:
            return self.model(images)
        return torch.stack([self.model(images) for _ in range(self.samples)]).mean(0)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)


def is_randomized(defense, images: np.ndarray) -> int:
    """How many of ``images`` come out differently from a second pass of ``defense.transform``."""
    first, second = apply_transform(defense, images), apply_transform(defense, images)
    return int((first != second).reshape(len(first), -1).any(axis=1).sum())
