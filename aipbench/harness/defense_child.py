"""The defense worker's side (``harness.defense_worker``): load the submission's defense class, answer the
harness's requests — transform, score, fit, train, an attribute, the state — and never send a pickle back."""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, one_line

__all__ = ["worker"]

_MAX_REPLY = 1 << 16  # bytes of one JSON reply (the harness reads no more)


def _load_object(path: Path) -> Any:
    """Unpickle the harness's context fields, opening the data set's image files where they are bound."""
    from aipbench.data.packed import PackedImages

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):  # ("memmap", path) or ("packed", blob, offsets, size): harness.defense_worker
            return np.load(pid[1], mmap_mode="r") if pid[0] == "memmap" else PackedImages(*pid[1:])

    with open(path, "rb") as fh:
        return Unpickler(fh).load()


_MAPS: dict[str, tuple[tuple[int, int], np.memmap]] = {}


def _mapped(path: Path) -> np.memmap:
    """The worker's mapping of a harness buffer, kept while the file is the same (the harness replaces it to
    grow it): mapped once, its pages are not faulted in again on every call."""
    stat = os.stat(path)
    key = (stat.st_ino, stat.st_size)
    if path.name not in _MAPS or _MAPS[path.name][0] != key:
        _MAPS[path.name] = (key, np.memmap(path, dtype=np.uint8, mode="r+"))
    return _MAPS[path.name][1]


def _serve(defense, message: dict, scratch: Path) -> dict:
    import torch

    from aipbench.defenses.guard import call_defense, checked_transform
    from aipbench.hashing import state_sha256

    op = message["op"]
    if op in ("transform", "score"):
        shape, out = tuple(message["in"]["shape"]), message["out"]
        images = _mapped(scratch / message["in"]["file"])[: int(np.prod(shape))].reshape(shape)
        if op == "transform":
            result = checked_transform(defense, torch.from_numpy(images)).numpy()
        else:
            from aipbench.defenses.detector import detector_scores

            result = detector_scores(defense, images, batch_size=max(len(images), 1), device=message["device"])
        result = np.ascontiguousarray(result, dtype=out["dtype"])
        if list(result.shape) != list(out["shape"]):  # the checks above make this a fault of ours
            raise ValueError(f"{op} gave shape {result.shape}, expected {out['shape']}")
        _mapped(scratch / out["file"])[: result.nbytes] = result.reshape(-1).view(np.uint8)
        return {"shape": list(result.shape)}
    if op == "fit":
        from aipbench.defenses.detector import DetectorContext

        fields = _load_object(scratch / message["context"])
        call_defense(defense, "fit", DetectorContext(cold_items=np.zeros(0, np.int64), **fields))
        if isinstance(defense, torch.nn.Module):
            defense.eval().requires_grad_(False)
        return {}
    if op == "digest":
        return {"sha256": state_sha256(defense) if isinstance(defense, torch.nn.Module) else None}
    if op == "train":
        from aipbench.defenses.training import TrainingContext, trained_ranker
        from aipbench.pipeline.store import deterministic_torch

        context = TrainingContext(**_load_object(scratch / message["context"]))
        with deterministic_torch():
            ranker = trained_ranker(defense, call_defense(defense, "train", context))
        torch.save({"family": ranker.name, "state": ranker.state_dict(), "catalog": ranker.catalog},
                   scratch / "ranker.pt")
        return {}
    if op == "attr":
        value = getattr(defense, str(message["name"]), None)
        plain = value is None or isinstance(value, (bool, int, float, str))
        return {"found": plain and value is not None, "value": value if plain else None}
    if op == "state":
        state = {k: v for k, v in defense.__dict__.items() if k != "_aipbench_source"}
        (scratch / "state.pkl").write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        return {}
    raise ValueError(f"no such request {op!r}")


def worker(scratch: str, fd: str) -> int:
    """Answer the harness's requests until it closes the connection."""
    from multiprocessing.connection import Connection

    conn, scratch_dir, defense, source = Connection(int(fd)), Path(scratch), None, "the defense"
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return 0
        try:
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
                reply = _serve(defense, message, scratch_dir)
        except InputError as err:
            reply = {"error": str(err)[:MAX_MESSAGE]}
        except BaseException as err:  # noqa: BLE001 — a fault of the defense's that escaped the guard
            try:
                (scratch_dir / "traceback.txt").write_text(traceback.format_exc()[-20000:])
            except OSError:
                pass
            reply = {"error": f"{source}: {message.get('op')} failed: {one_line(err)}"}
        try:
            conn.send_bytes(json.dumps(reply, allow_nan=False).encode()[:_MAX_REPLY])
        except (OSError, ValueError):
            return 1


if __name__ == "__main__":
    from aipbench.harness import defense_child

    sys.exit(defense_child.worker(*sys.argv[1:3]))
