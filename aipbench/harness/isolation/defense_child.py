"""The defense worker's side (``python -m aipbench.harness.isolation.defense_child``): enter the sandbox's user
and limits, load the submission's defense class, answer the harness's requests — transform, score, fit,
train, an attribute, the state — and never send a pickle back."""

from __future__ import annotations

import io
import json
import mmap
import os
import pickle
import sys
import traceback
from typing import Any

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, one_line

__all__ = ["main"]


def _load_object(data: bytes) -> Any:
    """Unpickle the harness's context fields, opening the data set's image files where they are handed over."""
    from aipbench.data.packed import PackedImages

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):  # ("memmap", path) or ("packed", blob, offsets, size): defense_worker
            return np.load(pid[1], mmap_mode="r") if pid[0] == "memmap" else PackedImages(*pid[1:])

    return Unpickler(io.BytesIO(data)).load()


def _serve(defense, message: dict, buffers: dict, payload: bytes | None) -> tuple[dict, bytes | None]:
    import torch

    from aipbench.defenses.guard import call_defense, checked_transform
    from aipbench.hashing import state_sha256

    op = message["op"]
    if op in ("transform", "score"):
        shape, out = tuple(message["in"]["shape"]), message["out"]
        images = np.frombuffer(buffers["in"], np.uint8, count=int(np.prod(shape))).reshape(shape)
        if op == "transform":
            result = checked_transform(defense, torch.from_numpy(images)).numpy()
        else:
            from aipbench.defenses.detector import detector_scores

            result = detector_scores(defense, images, batch_size=max(len(images), 1), device=message["device"])
        result = np.ascontiguousarray(result, dtype=out["dtype"])
        if list(result.shape) != list(out["shape"]):  # the checks above make this a fault of ours
            raise ValueError(f"{op} gave shape {result.shape}, expected {out['shape']}")
        np.frombuffer(buffers["out"], np.uint8, count=result.nbytes)[:] = result.reshape(-1).view(np.uint8)
        return {"shape": list(result.shape)}, None
    if op == "fit":
        from aipbench.defenses.detector import DetectorContext

        call_defense(defense, "fit", DetectorContext(cold_items=np.zeros(0, np.int64), **_load_object(payload)))
        if isinstance(defense, torch.nn.Module):
            defense.eval().requires_grad_(False)
        return {}, None
    if op == "digest":
        return {"sha256": state_sha256(defense) if isinstance(defense, torch.nn.Module) else None}, None
    if op == "train":
        from aipbench.defenses.training import TrainingContext, trained_ranker
        from aipbench.pipeline.store import deterministic_torch

        context = TrainingContext(**_load_object(payload))
        with deterministic_torch():
            ranker = trained_ranker(defense, call_defense(defense, "train", context))
        buffer = io.BytesIO()
        torch.save({"family": ranker.name, "state": ranker.state_dict(), "catalog": ranker.catalog}, buffer)
        return {"bytes": buffer.tell()}, buffer.getvalue()
    if op == "attr":
        value = getattr(defense, str(message["name"]), None)
        plain = value is None or isinstance(value, (bool, int, float, str))
        if isinstance(value, float) and not np.isfinite(value):
            plain = False
        return {"found": plain and value is not None, "value": (value[:1000] if isinstance(value, str) else value)
                if plain else None}, None
    if op == "state":
        data = pickle.dumps({k: v for k, v in defense.__dict__.items() if k != "_aipbench_source"},
                            protocol=pickle.HIGHEST_PROTOCOL)
        return {"bytes": len(data)}, data
    raise ValueError(f"no such request {op!r}")


def _receive_buffers(message: dict, fds: list[int], buffers: dict, held: dict) -> None:
    """Map the memory files whose descriptors came with ``message`` (``new`` names them, in order)."""
    for name, fd in zip(message.get("new", []), fds):
        if name in buffers:
            buffers.pop(name).close()
            os.close(held.pop(name))
        buffers[name], held[name] = mmap.mmap(fd, os.fstat(fd).st_size), fd


def main(fd: str, setup: str) -> int:
    """Answer the harness's requests until it closes the channel."""
    from aipbench.harness.isolation.channel import ChannelClosed, child_channel
    from aipbench.harness.isolation.entry import enter

    enter(setup)  # the sandbox's user and limits, before anything submitted is imported
    channel, buffers, held, defense, source = child_channel(fd), {}, {}, None, "the defense"
    while True:
        try:
            raw, fds = channel.recv_with_fds(max_bytes=1 << 20)
            message = json.loads(raw)
            payload = channel.recv(max_bytes=1 << 40) if message.get("payload") else None
        except (ChannelClosed, OSError, ValueError):
            return 0
        data = None
        try:
            _receive_buffers(message, fds, buffers, held)
            if message["op"] == "init":
                import torch

                from aipbench.defenses.transforms import load_defense
                from aipbench.rankers.precision import apply_precision

                torch.set_num_threads(int(message["threads"]))
                apply_precision(message.get("precision"))
                source = message["file"]
                defense = load_defense(source, message["class"], **message["params"])
                reply = {}
            else:
                reply, data = _serve(defense, message, buffers, payload)
        except InputError as err:
            reply = {"error": str(err)[:MAX_MESSAGE], "traceback": getattr(err, "traceback_text", None),
                     "report": getattr(err, "report_path", None)}
        except BaseException as err:  # noqa: BLE001 — a fault of the defense's that escaped the guard
            reply = {"error": f"{source}: {message.get('op')} failed: {one_line(err)}",
                     "traceback": traceback.format_exc()[-20000:]}
        try:
            channel.send(json.dumps(reply, allow_nan=False).encode())
            if data is not None and "error" not in reply:
                channel.send(data)
        except (OSError, ValueError):
            return 1


if __name__ == "__main__":
    from aipbench.harness.isolation import defense_child

    sys.exit(defense_child.main(*sys.argv[1:3]))
