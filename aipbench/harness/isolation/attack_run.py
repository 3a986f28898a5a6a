"""Run a code submission's attack, handing it only its context.

``isolation="sandbox"`` (the default): a child process in the bubblewrap sandbox (``bwrap``), its context
and the catalog handed over read-only, its oracle queries answered here, its images received over its channel
— every read under the time limit, every message under a size cap. ``"process"``: the same child without
the sandbox (``--unsandboxed``). ``"none"``: in this process, for the repository's own reference submissions
only (``trust.check_in_process``), with the same seeds and kernels, so all three give the same images. Every
failure is one capped error line; the traceback goes to a file; the child's output is kept, capped."""

from __future__ import annotations

import io
import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, one_line
from aipbench.harness.isolation.attack_child import FAILED, PROGRESS, RESULT, MappedFile, PackedFiles, attack_images
from aipbench.harness.isolation.channel import ChannelClosed, ChannelTimeout, ChannelTooLarge
from aipbench.harness.isolation.limits import current_limits, limit_hit
from aipbench.harness.isolation.oracle_link import QUERY, answer, client_for
from aipbench.harness.isolation.process import Child
from aipbench.harness.isolation.scratch import Binds, make_scratch
from aipbench.harness.isolation.trust import ISOLATIONS, check_in_process, require_sandbox
from aipbench.progress import forward, reporting

__all__ = ["DEFAULT_TIME_LIMIT", "run_attack"]

DEFAULT_TIME_LIMIT = 3600  # seconds per attack run
MAX_QUERY_BYTES = 1 << 30  # one oracle query message (a larger one ends the run)
MAX_PROGRESS = 200  # bytes of a progress message read


def pack(context, binds: Binds, precision: str | None) -> tuple[dict, object | None]:
    """The context as a bundle for the child (the catalog by the file names it sees), and the oracle of a
    black-box attack, which stays here (the child holds a client)."""
    from aipbench.attacks.oracle import RankOracle
    from aipbench.data.packed import PackedImages

    public = {}
    for k, v in context._public.items():
        if isinstance(v, np.memmap):
            v = MappedFile(binds.file(v.filename, f"catalog/{Path(v.filename).name}"))
        elif isinstance(v, PackedImages):
            v = PackedFiles(binds.file(v.blob, f"catalog/{Path(v.blob).name}"),
                            binds.file(v.offsets_path, f"catalog/{Path(v.offsets_path).name}"), v.size)
        public[k] = v
    granted, oracle = dict(context._granted), None
    for k, v in context._granted.items():
        if isinstance(v, RankOracle):
            granted[k], oracle = client_for(v), v
    return {"knowledge": context.knowledge, "public": public, "granted": granted, "precision": precision}, oracle


def run_attack(entry_file: Path, class_name: str, context, *, workdir: Path, time_limit: float = DEFAULT_TIME_LIMIT,
               isolation: str = "sandbox", precision: str | None = None, reads: tuple[Path, ...] = (),
               progress: Callable[[float, float], None] | None = None) -> np.ndarray:
    """Instantiate ``class_name`` from ``entry_file``, call ``run(context)`` and return what it returned as
    an array (validated by the caller). ``reads``: other submission folders the child may read (the defense
    an adaptive attack runs against, whose code it imports); ``progress``: gets the (done, total) the attack
    reports (``context.progress``). Errors are one-line InputErrors; the traceback goes to
    ``workdir/traceback.txt``."""
    entry_file, workdir = Path(entry_file).resolve(), Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation {isolation!r} is not one of {ISOLATIONS}")
    if isolation == "none":
        check_in_process(entry_file.parent, *reads)
        try:
            with reporting(progress):
                return attack_images(entry_file, class_name, context)
        except Exception as err:  # noqa: BLE001 — everything the attack does wrong is reported
            (workdir / "traceback.txt").write_text(traceback.format_exc())
            raise InputError(f"{entry_file}: {class_name} failed: {one_line(err)} "
                             f"(traceback: {workdir / 'traceback.txt'})") from None
    if isolation == "sandbox":
        require_sandbox(entry_file)
    import torch

    binds = Binds(isolation == "sandbox", make_scratch("attack"))
    child = None
    try:
        bundle, oracle = pack(context, binds, precision)
        torch.save(bundle, binds.scratch / "context.pt")
        os.chmod(binds.scratch / "context.pt", 0o644)  # a child running as a user of its own reads it
        handed = binds.file(binds.scratch / "context.pt")
        folder = binds.folder(entry_file.parent)
        for other in reads:
            binds.folder(other)
        limits = current_limits().with_cpu(time_limit)
        child = Child("aipbench.harness.isolation.attack_child", [str(entry_file), class_name, handed], binds=binds,
                      workdir=folder, limits=limits)
        # a message: float64 images of the right shape at most, or an oracle query of up to 1 GiB
        cap = max(8 * int(np.prod(context.cold_images.shape)) + (1 << 20), MAX_QUERY_BYTES)
        return _converse(child, oracle, entry_file=entry_file, class_name=class_name, workdir=workdir,
                         deadline=time.monotonic() + time_limit, time_limit=time_limit, cap=cap, limits=limits,
                         progress=progress)
    finally:
        if child is not None:
            child.close()
            for name, text in zip(("stdout.txt", "stderr.txt"), child.output()):
                (workdir / name).write_text(text)
        else:
            import shutil

            shutil.rmtree(binds.scratch, ignore_errors=True)


def _converse(child: Child, oracle, *, entry_file: Path, class_name: str, workdir: Path, deadline: float,
              time_limit: float, cap: int, limits, progress=None) -> np.ndarray:
    """Answer the child's oracle queries and pass on its progress until it sends its images or its error, exits,
    or runs out of time."""
    while True:
        try:
            message = child.channel.recv(max_bytes=cap, deadline=deadline)
            if message[:1] == QUERY and oracle is not None:
                child.channel.send(answer(oracle, message[1:]), deadline=deadline)
                continue
            if message[:1] == PROGRESS:
                try:
                    forward(progress, json.loads(message[1:MAX_PROGRESS]))
                except ValueError:  # not JSON: dropped, it is only a display
                    pass
                continue
        except ChannelTimeout:
            raise InputError(f"{entry_file}: the attack ran past its time limit of {time_limit:g} s") from None
        except ChannelTooLarge as err:
            raise InputError(f"{entry_file}: the attack sent {err}: its images, or one oracle query, are at most "
                             f"{cap} bytes") from None
        except ChannelClosed:
            status = child.exit_status()
            hit = limit_hit(limits, status=status)
            raise InputError(f"{entry_file}: the attack process " + (f"ran into {hit}" if hit else
                             f"exited with status {status} and no images")) from None
        break
    if message[:1] == FAILED:
        try:
            report = json.loads(message[1:])
            error, trace = str(report["error"])[:MAX_MESSAGE], str(report.get("traceback", ""))[-20000:]
        except (ValueError, KeyError, TypeError):
            error, trace = "an unreadable error report", ""
        (workdir / "traceback.txt").write_text(trace)
        hit = limit_hit(limits, error=error)
        raise InputError(f"{entry_file}: {class_name} " + (f"ran into {hit} ({error})" if hit else f"failed: {error}")
                         + f" (traceback: {workdir / 'traceback.txt'})")
    if message[:1] != RESULT:
        raise InputError(f"{entry_file}: the attack process sent what is neither images nor an error")
    try:
        return np.load(io.BytesIO(message[1:]), allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{entry_file}: the attack's images could not be read ({one_line(err)})") from None
