"""The ranker worker's side (``python -m aipbench.harness.isolation.ranker_child``, served by
``worker_child.serve``): import the submission's ranker class and ``train``, train it or rebuild it from its
checkpoint, and answer the harness with tensors only — its checkpoint, every user's and catalog item's side,
images' representations, new items' sides and the gradient norms of the masked-gradient check."""

from __future__ import annotations

import io
import sys

import numpy as np

from aipbench.errors import InputError
from aipbench.harness.isolation.worker_child import load_object

__all__ = ["main"]

BATCH = 256  # images encoded at once


class _Ranker:
    """The submission's ranker class (``init``), the ranker it trained or rebuilt, and its answers."""

    def __init__(self) -> None:
        self.cls = self.train = self.ranker = None
        self.source, self.name = "the ranker", ""

    def __call__(self, message: dict, buffers: dict, payload: bytes | None) -> tuple[dict, bytes | None]:
        import torch

        from aipbench.harness import ranker_submission as contract

        op = message["op"]
        if op == "init":
            from aipbench.rankers.precision import apply_precision

            torch.set_num_threads(int(message["threads"]))
            apply_precision(message.get("precision"))
            self.source, self.name = message["file"], message["name"]
            self.cls, self.train = contract.import_ranker(message["file"], message["class"],
                                                          needs_train=bool(message.get("train", True)))
            return {}, None
        if op == "train":
            from aipbench.pipeline.store import deterministic_torch

            fields = load_object(payload)
            context = contract.RankerTrainingContext(**fields)
            torch.manual_seed(fields["seed"])
            with deterministic_torch():
                ranker = self.train(context)
            if not isinstance(ranker, self.cls):
                raise InputError(f"{self.source}: train(context) must return a {self.cls.__name__}, got "
                                 f"{type(ranker).__name__}")
            ranker.name = self.name
            return {}, contract.checkpoint_bytes(ranker.eval())
        if op == "load":
            given = load_object(payload)
            self.ranker = contract.restore_ranker((self.source, self.cls.__name__, self.name, message["instance"]),
                                                  given["checkpoint"], (given["extractor"], given["features"],
                                                                        given["protocol"]))
            return {"image_model_name": str(self.ranker.image_model_name)[:40]}, None
        return self._score(op, message, buffers)

    @staticmethod
    def _side_array(side) -> "np.ndarray":
        """A side as one float32 array: its vectors, then its biases as the last column."""
        import torch

        vec, bias = side.vec.detach().float().cpu(), side.bias.detach().float().cpu().reshape(-1)
        if vec.ndim != 2 or bias.shape[0] != vec.shape[0]:
            raise InputError(f"a side must be (n × k) vectors and n biases, got {tuple(vec.shape)} and {tuple(bias.shape)}")
        return torch.cat([vec, bias[:, None]], 1).numpy()

    def _score(self, op: str, message: dict, buffers: dict) -> tuple[dict, bytes | None]:
        import torch

        ranker = self.ranker
        if op == "gradient_norms":  # through its own class, here where it lives (the harness never imports it)
            from aipbench.harness.checks import gradient_norms

            given = self._given(message, buffers)
            return self._answer(op, gradient_norms(ranker, given), message, buffers)
        with torch.no_grad():
            if op == "sides":
                users = self._side_array(ranker.user_side(ranker.all_users()))
                items = self._side_array(ranker.catalog_side())
                buffer = io.BytesIO()
                torch.save({"users": torch.from_numpy(users), "items": torch.from_numpy(items)}, buffer)
                return {}, buffer.getvalue()
            x = torch.from_numpy(self._given(message, buffers))
            if op == "encode":
                result = torch.cat([ranker.encode(x[s : s + BATCH]).float() for s in range(0, len(x), BATCH)]).numpy()
            elif op == "item_side":
                result = self._side_array(ranker.item_side(x))
            else:
                raise ValueError(f"no such request {op!r}")
        return self._answer(op, result, message, buffers)

    @staticmethod
    def _given(message: dict, buffers: dict) -> "np.ndarray":
        shape = tuple(message["in"]["shape"])
        return np.frombuffer(buffers["in"], message["in"]["dtype"], count=int(np.prod(shape))).reshape(shape).copy()

    def _answer(self, op: str, result, message: dict, buffers: dict) -> tuple[dict, bytes | None]:
        """``result`` left in the output buffer, if it has the shape the harness asked for."""
        out = message["out"]
        result = np.ascontiguousarray(result, dtype=out["dtype"])
        if list(result.shape) != list(out["shape"]):
            raise InputError(f"{self.source}: {op} gave shape {tuple(result.shape)}; the ranker's representation "
                             f"and sides must keep the shapes it was loaded with ({tuple(out['shape'])})")
        np.frombuffer(buffers["out"], np.uint8, count=result.nbytes)[:] = result.reshape(-1).view(np.uint8)
        return {"shape": list(result.shape)}, None


def main(fd: str, setup: str) -> int:
    """Answer the harness's requests until it closes the channel."""
    from aipbench.harness.isolation.worker_child import serve

    handler = _Ranker()
    return serve(fd, setup, handler, source=lambda: handler.source)


if __name__ == "__main__":
    from aipbench.harness.isolation import ranker_child

    sys.exit(ranker_child.main(*sys.argv[1:3]))
