"""Evaluations over several processes started by ``torchrun``: which rank this process is, the start-up check
that every rank runs the same thing, and the exchange of the shards of cold items each rank attacked.

Every rank runs the same evaluation; only the attack runs are divided. The cold items are cut into shards
of ``shard_items()`` (250: the reference attacks' batch) in item order, and rank r attacks shards r, r + W,
r + 2W, ... (W ranks), each shard in its own sandboxed child whose context holds that shard only, kept in
the rank's run cache as it finishes. All ranks then exchange their shards (``torch.distributed``, gloo for
these host objects, NCCL beside it on GPUs), score the same images and rank 0 writes the document. An attack
run is always made shard by shard, also in one process, so 1, 2 or 8 ranks give the same bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import socket
from datetime import timedelta
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aipbench.errors import USER_ERRORS, InputError, one_line

__all__ = ["SHARD_ITEMS", "World", "check_same", "code_sha256", "exchange", "from_rank0", "join", "shard_items", "shards",
           "world"]

SHARD_ITEMS = 250
# A rank waits at most this long for the others to finish their shards (an attack run's own time limit
# bounds each shard; a rank that died is noticed at once, through its closed connection or torchrun).
EXCHANGE_TIMEOUT = timedelta(hours=24)


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    def owns(self, shard: int) -> bool:
        return shard % self.size == self.rank


_WORLD = World()
_EXCHANGES = [0]  # exchanges made so far: the same sequence on every rank


def world() -> World:
    """This process's world (one process unless ``join`` joined a torchrun job)."""
    return _WORLD


def shard_items() -> int:
    """Cold items per shard: ``AIPBENCH_SHARD_ITEMS`` if set (tests use small shards), else 250. Results record it."""
    text = os.environ.get("AIPBENCH_SHARD_ITEMS", "").strip()
    if not text:
        return SHARD_ITEMS
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"AIPBENCH_SHARD_ITEMS={text!r}: expected a positive whole number of cold items")
    return int(text)


def shards(n_items: int) -> list[slice]:
    """The shards of ``n_items`` cold items, in item order."""
    size = shard_items()
    return [slice(s, min(n_items, s + size)) for s in range(0, n_items, size)]


def join(device: str) -> tuple[World, str]:
    """Join the torchrun job this process was started in (``WORLD_SIZE`` > 1 in its environment), once, and
    return the world and this rank's device (``cuda`` becomes ``cuda:LOCAL_RANK``). A single process returns
    its world of one and ``device`` unchanged."""
    global _WORLD
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return _WORLD, device
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda and device in ("auto", "cuda"):
        device = f"cuda:{local}"
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=EXCHANGE_TIMEOUT)
        _WORLD = World(dist.get_rank(), dist.get_world_size(), local)
        _store().set(f"aipbench/rank/{_WORLD.rank}", json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        signal.signal(signal.SIGTERM, _stopped_by_torchrun)
    return _WORLD, device


def code_sha256() -> str:
    """SHA-256 over aipbench's own files (path and bytes of every .py, .json and .html in the package)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".json", ".html") and p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def check_same(fingerprint: dict[str, Any]) -> None:
    """Refuse to start unless every rank runs the same code, protocol, submission and arguments: one line
    naming the first rank and field that differ from rank 0's."""
    if _WORLD.size == 1:
        return
    import torch.distributed as dist

    everyone: list[Any] = [None] * _WORLD.size
    dist.all_gather_object(everyone, {**fingerprint, "code": code_sha256()})
    for rank, theirs in enumerate(everyone[1:], start=1):
        for key in everyone[0]:
            if theirs.get(key) != everyone[0][key]:
                raise InputError(f"rank {rank} differs from rank 0 in {key}: {_short(theirs.get(key))} against "
                                 f"{_short(everyone[0][key])}; every rank must run the same aipbench, protocol, "
                                 "submission and arguments")


def exchange(mine: dict[int, Any], error: BaseException | None) -> dict[int, Any]:
    """Every rank's ``mine`` (shard index → what it made) merged, in every rank; or, if a rank failed (its
    ``error``, or its process ended), one error naming the rank, raised in every rank. In one process:
    ``mine``, or ``error`` itself."""
    if _WORLD.size == 1:
        if error is not None:
            raise error
        return mine
    import torch.distributed as dist

    _EXCHANGES[0] += 1
    sent = f"aipbench/exchange/{_EXCHANGES[0]}/{_WORLD.rank}"
    message = None if error is None else (str(error) if isinstance(error, USER_ERRORS) else one_line(error))
    everyone: list[Any] = [None] * _WORLD.size
    try:
        _store().set(sent, "1")
        dist.all_gather_object(everyone, (message, mine))
    except Exception as err:  # noqa: BLE001 — a rank's process ended: gloo's connection to it closed
        raise InputError(_who_stopped(one_line(err))) from None
    merged: dict[int, Any] = {}
    for rank, (failed, theirs) in enumerate(everyone):
        if failed is not None:
            raise InputError(f"rank {rank}: {failed}")
        merged.update(theirs)
    return merged


def from_rank0(decide: Callable[[], Any]) -> Any:
    """``decide()`` on rank 0, its answer (or its one-line error) handed to every rank, so that ranks that see
    different files (another node's results folder) still take the same path. In one process: ``decide()``."""
    if _WORLD.size == 1:
        return decide()
    import torch.distributed as dist

    answer: list[Any] = [None]
    if _WORLD.rank == 0:
        try:
            answer[0] = (None, decide())
        except USER_ERRORS as err:
            answer[0] = (str(err), None)
    try:
        dist.broadcast_object_list(answer, src=0)
    except Exception as err:  # noqa: BLE001
        raise InputError(_who_stopped(one_line(err))) from None
    if answer[0][0] is not None:
        raise InputError(answer[0][0])
    return answer[0][1]


def _stopped_by_torchrun(signum: int, frame) -> None:
    raise InputError(_who_stopped("stopped by torchrun (SIGTERM)"))


def _who_stopped(how: str) -> str:
    """One line naming the ranks whose processes ended (on this node), else those that had not sent their
    shards, and saying that the finished shards are kept."""
    gone, silent = [], []
    store = _store()
    for rank in range(_WORLD.size):
        if rank == _WORLD.rank:
            continue
        try:
            info = json.loads(store.get(f"aipbench/rank/{rank}"))
        except Exception:  # noqa: BLE001 — the store itself is gone
            continue
        if info["host"] == socket.gethostname() and not _alive(info["pid"]):
            gone.append(f"rank {rank} (pid {info['pid']}) ended")
        elif not store.check([f"aipbench/exchange/{_EXCHANGES[0]}/{rank}"]):
            silent.append(f"rank {rank} (on {info['host']}) had not sent its shards")
    who = "; ".join(gone or silent) or "another rank stopped"
    return (f"{who} ({how}); the shards each rank finished are kept in its run cache: the same command "
            "resumes from them")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped by torchrun) is gone too
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _store():
    import torch.distributed.distributed_c10d as c10d

    return c10d._get_default_store()


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
