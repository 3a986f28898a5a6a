"""The defense worker's side (``python -m aipbench.harness.isolation.defense_child``, served by
``worker_child.serve``): load the submission's defense class, answer the harness's requests — transform,
score, fit, train, an attribute, the state — and never send a pickle back."""

from __future__ import annotations

import io
import pickle
import sys

import numpy as np

from aipbench.harness.isolation.worker_child import load_object

__all__ = ["main"]


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

        call_defense(defense, "fit", DetectorContext(cold_items=np.zeros(0, np.int64), **load_object(payload)))
        if isinstance(defense, torch.nn.Module):
            defense.eval().requires_grad_(False)
        return {}, None
    if op == "digest":
        return {"sha256": state_sha256(defense) if isinstance(defense, torch.nn.Module) else None}, None
    if op == "train":
        from aipbench.defenses.training import TrainingContext, trained_ranker
        from aipbench.pipeline.store import deterministic_torch

        context = TrainingContext(**load_object(payload))
        with deterministic_torch():
            ranker = trained_ranker(defense, call_defense(defense, "train", context))
        returned = {"family": ranker.name, "state": ranker.state_dict(), "catalog": ranker.catalog}
        if not type(ranker).__module__.startswith("aipbench."):  # a family of its own: where its class is
            import inspect

            returned.update({"class": type(ranker).__qualname__, "file": inspect.getfile(type(ranker))})
        buffer = io.BytesIO()
        torch.save(returned, buffer)
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


class _Defense:
    """The defense this worker loaded (``init``) and its answers to the harness's requests."""

    def __init__(self) -> None:
        self.defense, self.source = None, "the defense"

    def __call__(self, message: dict, buffers: dict, payload: bytes | None) -> tuple[dict, bytes | None]:
        if message["op"] != "init":
            return _serve(self.defense, message, buffers, payload)
        import torch

        from aipbench.defenses.transforms import load_defense
        from aipbench.rankers.precision import apply_precision

        torch.set_num_threads(int(message["threads"]))
        apply_precision(message.get("precision"))
        self.source = message["file"]
        self.defense = load_defense(self.source, message["class"], **message["params"])
        return {}, None


def main(fd: str, setup: str) -> int:
    """Answer the harness's requests until it closes the channel."""
    from aipbench.harness.isolation.worker_child import serve

    handler = _Defense()
    return serve(fd, setup, handler, source=lambda: handler.source)


if __name__ == "__main__":
    from aipbench.harness.isolation import defense_child

    sys.exit(defense_child.main(*sys.argv[1:3]))
