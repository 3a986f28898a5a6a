"""A black-box attack's oracle across the boundary: the attack (sandboxed) holds an ``OracleClient`` that
sends its query images over its channel; the harness answers each with ``answer``, so nothing of the ranker
ever reaches the attack. Queries are parsed as bytes, never objects."""

from __future__ import annotations

import io
import threading

import numpy as np

from aipbench.attacks.oracle import QueryBudgetExceeded, RankOracle

__all__ = ["OracleClient", "answer", "client_for"]

QUERY, ANSWER, REFUSED, BAD = b"Q", b"A", b"B", b"E"


def client_for(oracle: RankOracle) -> "OracleClient":
    """What a child's context holds in place of ``oracle``."""
    return OracleClient(oracle.budget, oracle.n_probe_users, oracle.image_size)


def answer(oracle: RankOracle, payload: bytes) -> bytes:
    """The harness's reply to one query message (its payload after ``QUERY``)."""
    try:
        # allow_pickle=False: a hostile message is bytes to parse, never objects to build
        return ANSWER + _npy(oracle.query(np.load(io.BytesIO(payload), allow_pickle=False)))
    except QueryBudgetExceeded as err:
        return REFUSED + str(err).encode()
    except Exception as err:  # noqa: BLE001 — whatever the message was, the answer is one refusal
        return BAD + f"an oracle query must be one .npy array: {type(err).__name__}: {err}"[:500].encode()


class OracleClient:
    """The attack's side of a ``RankOracle`` in the harness: ``query(images) -> ranks`` over the child's
    channel (set by the child when it unpacks its context)."""

    response = "rank"

    def __init__(self, budget: int, n_probe_users: int, image_size: int) -> None:
        self.budget, self.n_probe_users, self.image_size = budget, n_probe_users, image_size
        self.used, self._channel, self._lock = 0, None, threading.Lock()

    def __getstate__(self) -> dict:
        return {"budget": self.budget, "n_probe_users": self.n_probe_users, "image_size": self.image_size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["budget"], state["n_probe_users"], state["image_size"])

    def connect(self, channel) -> None:
        self._channel = channel

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def query(self, images) -> np.ndarray:
        """Ranks (int32, N × probe users: 0 is the top of a user's list) of N uint8 images (N×3×S×S)."""
        import torch

        arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        with self._lock:  # one question, one answer, also from several threads
            self._channel.send(QUERY + _npy(np.ascontiguousarray(arr)))
            reply = self._channel.recv(max_bytes=1 << 31)
        if reply[:1] == REFUSED:
            raise QueryBudgetExceeded(reply[1:].decode())
        if reply[:1] != ANSWER:
            raise ValueError(reply[1:].decode())
        self.used += len(arr)
        return np.load(io.BytesIO(reply[1:]), allow_pickle=False)

    def describe(self) -> dict:
        return {"response": self.response, "probe_users": self.n_probe_users, "budget": self.budget, "used": self.used}


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()
