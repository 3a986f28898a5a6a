"""The attack child's side (``python -m aipbench.harness.isolation.attack_child``): enter the sandbox's user
and limits, load the context the harness handed over, run the submission's attack on it, and send its images
— or its error — back over the channel."""

from __future__ import annotations

import io
import json
import sys
import traceback
from pathlib import Path

import numpy as np

from aipbench.errors import one_line

__all__ = ["FAILED", "PROGRESS", "RESULT", "MappedFile", "PackedFiles", "attack_images", "main", "unpack"]

RESULT, FAILED = b"R", b"X"  # the child's last message: its images (.npy), or its error (JSON)
PROGRESS = b"P"  # before it: [done, total] (JSON) as often as context.progress is called, throttled


class MappedFile:
    """A read-only memory-mapped array handed over by file name (the catalog), not copied into the context."""

    def __init__(self, filename: str) -> None:
        self.filename = filename


class PackedFiles:
    """Packed JPEG catalog images handed over by file names (``aipbench.data.packed.PackedImages``)."""

    def __init__(self, blob: str, offsets: str, size: int) -> None:
        self.blob, self.offsets, self.size = blob, offsets, size


def unpack(bundle: dict, channel=None):
    """The context the harness packed (``attack_run.pack``), its oracle client talking over ``channel``."""
    from aipbench.attacks.context import AttackContext
    from aipbench.data.packed import PackedImages

    def restore(v):
        if isinstance(v, MappedFile):
            return np.load(v.filename, mmap_mode="r")
        if isinstance(v, PackedFiles):
            return PackedImages(v.blob, v.offsets, v.size)
        return v

    granted = dict(bundle["granted"])
    for value in granted.values():
        if hasattr(value, "connect"):  # the oracle's client: its questions go over the channel
            value.connect(channel)
    public = {k: restore(v) for k, v in bundle["public"].items()}
    return AttackContext(bundle["knowledge"], public=public, granted=granted)


def attack_images(entry_file: str | Path, class_name: str, context) -> np.ndarray:
    """Instantiate the attack, run it on ``context`` (seeded, deterministic kernels), return an array."""
    import torch

    from aipbench.pipeline.store import deterministic_torch
    from aipbench.registry import import_from_file

    torch.manual_seed(context.seed)
    cls = import_from_file(entry_file, class_name, module=f"aipbench_submission_{Path(entry_file).stem}")
    attack = cls()
    if not callable(getattr(attack, "run", None)):
        raise TypeError(f"{class_name} has no run(context) method")
    with deterministic_torch():
        images = attack.run(context)
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.dtype == object:
        raise TypeError("run(context) must return an array of images, not Python objects")
    return arr


def main(argv: list[str]) -> int:
    """``<channel fd> <setup> <entry file> <class> <context file>``: run the attack, send what it made."""
    from aipbench.harness.isolation.channel import child_channel
    from aipbench.harness.isolation.entry import enter

    fd, setup, entry_file, class_name, context_file = argv
    enter(setup)  # the sandbox's user and limits, before anything submitted is imported
    channel = child_channel(fd)
    try:
        import torch

        from aipbench.progress import Throttle, reporting
        from aipbench.rankers.precision import apply_precision

        loaded = torch.load(context_file, weights_only=False)  # the harness's own objects
        apply_precision(loaded.get("precision"))
        with reporting(Throttle(lambda done, total: channel.send(PROGRESS + json.dumps([done, total]).encode()))):
            arr = attack_images(entry_file, class_name, unpack(loaded, channel))
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=False)
        channel.send(RESULT + buffer.getvalue())
        return 0
    except BaseException as err:  # noqa: BLE001 — everything the attack does wrong is reported
        report = {"error": one_line(err), "traceback": traceback.format_exc()[-20000:]}
        try:
            channel.send(FAILED + json.dumps(report).encode())
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    from aipbench.harness.isolation import attack_child  # pickled classes resolve to this module's objects

    sys.exit(attack_child.main(sys.argv[1:6]))
