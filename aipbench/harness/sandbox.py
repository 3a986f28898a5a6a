"""Run a code submission's attack, handing it only its context.

``isolation="sandbox"`` (the default): a child process in a bubblewrap sandbox — a read-only system, no
network, its own PID namespace, the artifact cache hidden under an empty tmpfs, nothing writable but a
private scratch folder, the catalog images bound read-only at a fixed path, killed with the harness
(``--die-with-parent``) and, whole process group, at the time limit. ``"process"``: the same child
without the sandbox (``--unsandboxed``: it could read the cache and write where the user can).
``"none"``: in this process, for trusted reference code (the test suite's regression pipeline), with the
same seeds and kernels, so all three give the same images. Every failure is one capped error line; the
traceback goes to a file; the child's stdout and stderr go to files, never the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from aipbench.errors import MAX_MESSAGE, InputError, one_line
from aipbench.harness.bwrap import bwrap_args, sandbox_problem
from aipbench.harness.scratch import (bind_image_file, child_limits, kill_group, open_child_file,
                                      remove_orphaned_scratch)

__all__ = ["DEFAULT_TIME_LIMIT", "ISOLATIONS", "MAX_MESSAGE", "one_line", "run_attack", "sandbox_record"]

DEFAULT_TIME_LIMIT = 3600  # seconds per attack run
ISOLATIONS = ("sandbox", "process", "none")


class _Mapped:
    """A read-only memory-mapped array passed by file name (the catalog), not copied into the bundle."""

    def __init__(self, filename: str) -> None:
        self.filename = filename


class _Packed:
    """Packed JPEG catalog images passed by file names (``aipbench.data.packed.PackedImages``)."""

    def __init__(self, blob: str, offsets: str, size: int) -> None:
        self.blob, self.offsets, self.size = blob, offsets, size


def _pack(context, *, sandboxed: bool, precision: str | None = None) -> tuple[dict, dict[str, str], tuple | None]:
    """The context as a bundle, the files the child must read (real path → path in the child), and for a
    black-box attack (oracle server, the harness's socket, the child's socket): the oracle stays here."""
    from aipbench.attacks.oracle import RankOracle
    from aipbench.data.packed import PackedImages

    binds: dict[str, str] = {}

    def seen(path) -> str:
        return bind_image_file(binds, path, sandboxed=sandboxed)

    public = {}
    for k, v in context._public.items():
        if isinstance(v, np.memmap):
            v = _Mapped(seen(v.filename))
        elif isinstance(v, PackedImages):
            v = _Packed(seen(v.blob), seen(v.offsets_path), v.size)
        public[k] = v
    granted, oracle = dict(context._granted), None
    for k, v in context._granted.items():
        if isinstance(v, RankOracle):
            client, mine = v.client()
            granted[k], oracle = client, (v, mine, client._keep)
    return {"knowledge": context.knowledge, "public": public, "granted": granted,
            "precision": precision}, binds, oracle


def _unpack(bundle: dict):
    from aipbench.attacks.context import AttackContext
    from aipbench.data.packed import PackedImages

    def restore(v):
        if isinstance(v, _Mapped):
            return np.load(v.filename, mmap_mode="r")
        if isinstance(v, _Packed):
            return PackedImages(v.blob, v.offsets, v.size)
        return v

    public = {k: restore(v) for k, v in bundle["public"].items()}
    return AttackContext(bundle["knowledge"], public=public, granted=bundle["granted"])


def _attack_images(entry_file: str | Path, class_name: str, context) -> np.ndarray:
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


def sandbox_record(isolation: str, *, code: bool) -> dict:
    """What a results document records of where the submission's code ran."""
    from aipbench.harness.bwrap import sandbox_description

    if not code:
        return {"isolation": "no code", "tool": None}
    if isolation == "sandbox":
        return {"isolation": "sandbox", "tool": sandbox_description()}
    return {"isolation": "unsandboxed child process" if isolation == "process" else "in-process (trusted reference)",
            "tool": None}


def _read_capped(path: Path, limit: int = 1 << 16) -> str:
    """The start of a file the child left (a regular file only: never through a link it made)."""
    try:
        with open_child_file(path) as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_attack(entry_file: Path, class_name: str, context, *, workdir: Path, time_limit: float = DEFAULT_TIME_LIMIT,
               isolation: str = "sandbox", precision: str | None = None, reads: tuple[Path, ...] = ()) -> np.ndarray:
    """Instantiate ``class_name`` from ``entry_file``, call ``run(context)`` and return what it returned as
    an array (validated by the caller). Errors are one-line InputErrors; the traceback goes to
    ``workdir/traceback.txt``."""
    entry_file, workdir = Path(entry_file).resolve(), Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if isolation == "none":
        try:
            return _attack_images(entry_file, class_name, context)
        except Exception as err:  # noqa: BLE001 — everything the attack does wrong is reported
            (workdir / "traceback.txt").write_text(traceback.format_exc())
            raise InputError(f"{entry_file}: {class_name} failed: {one_line(err)} "
                             f"(traceback: {workdir / 'traceback.txt'})") from None
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation {isolation!r} is not one of {ISOLATIONS}")
    if isolation == "sandbox" and (problem := sandbox_problem()):
        raise InputError(f"{entry_file}: code submissions run in a bubblewrap sandbox, which cannot run here "
                         f"({problem}); install bubblewrap, or pass --unsandboxed to run it without one")
    remove_orphaned_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=f"aipbench-attack-{os.getpid()}-"))
    try:
        return _run_child(entry_file, class_name, context, scratch=scratch, workdir=workdir, time_limit=time_limit,
                          sandboxed=isolation == "sandbox", precision=precision, reads=reads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_child(entry_file: Path, class_name: str, context, *, scratch: Path, workdir: Path, time_limit: float,
               sandboxed: bool, precision: str | None, reads: tuple[Path, ...] = ()) -> np.ndarray:
    import torch

    from aipbench.paths import aipbench_home

    bundle, binds, oracle = _pack(context, sandboxed=sandboxed, precision=precision)
    for folder in reads:  # e.g. the defense an adaptive attack runs against (its code is imported in the child)
        binds[str(Path(folder).resolve())] = str(Path(folder).resolve())
    torch.save(bundle, scratch / "context.pt")
    child = [sys.executable, "-m", "aipbench.harness.sandbox", str(entry_file), class_name, str(scratch / "context.pt"),
             str(scratch)]
    env = {k: v for k, v in os.environ.items() if k != "AIPBENCH_HOME"}
    env.update({"PYTHONHASHSEED": "0", "HOME": str(scratch), "TMPDIR": str(scratch)})
    if sandboxed:
        child = bwrap_args(scratch=scratch, workdir=entry_file.parent, hidden=[aipbench_home()], binds=binds,
                           env=env) + child
    with open(scratch / "stdout.txt", "wb") as out, open(scratch / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(child, env=env, cwd=entry_file.parent, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True, preexec_fn=child_limits,
                                pass_fds=() if oracle is None else (oracle[2].fileno(),))
        try:
            _wait(proc, time_limit, oracle)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise InputError(f"{entry_file}: the attack ran past its time limit of {time_limit:g} s") from None
        except BaseException:  # the harness itself is stopped: the child and its group go with it
            kill_group(proc)
            raise
        finally:
            kill_group(proc)  # anything the attack left running in its group dies with the run
            if oracle is not None:
                oracle[1].close()
                oracle[2].close()
    for name in ("traceback.txt", "stdout.txt", "stderr.txt"):  # kept for the submitter, capped
        if (scratch / name).is_file():
            (workdir / name).write_text(_read_capped(scratch / name))
    error = scratch / "error.json"
    if error.is_file():
        try:
            message = str(json.loads(_read_capped(error))["error"])[:MAX_MESSAGE]
        except (ValueError, KeyError, TypeError):
            message = "an unreadable error report"
        raise InputError(f"{entry_file}: {class_name} failed: {message} (traceback: {workdir / 'traceback.txt'})")
    result = scratch / "images.npy"
    if proc.returncode != 0 or not result.is_file():
        raise InputError(f"{entry_file}: the attack process exited with status {proc.returncode} and no images")
    try:
        with open_child_file(result) as fh:
            return np.load(fh, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"{entry_file}: the attack's images could not be read ({one_line(err)})") from None


def _wait(proc: subprocess.Popen, time_limit: float, oracle: tuple | None) -> None:
    """Wait for the child, answering a black-box attack's oracle queries meanwhile; TimeoutExpired past
    ``time_limit`` seconds."""
    if oracle is None:
        proc.wait(timeout=time_limit)
        return
    import time
    from multiprocessing.connection import Connection

    server, conn = oracle[0], Connection(os.dup(oracle[1].fileno()))
    oracle[2].close()  # the child's end: ours closed, so the child's exit ends the conversation
    deadline = time.monotonic() + time_limit
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(proc.args, time_limit)
            try:
                if conn.poll(0.05):
                    server.serve(conn)
            except (EOFError, OSError):  # the child closed its end, or sent what no query is: talk ends
                conn.close()
                oracle[1].close()
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        conn.close()


def _child(entry_file: str, class_name: str, bundle: str, scratch: str) -> int:
    """The child's side: load the context and the attack, run it, save what it returns."""
    out = Path(scratch)
    try:
        import torch

        from aipbench.rankers.precision import apply_precision

        loaded = torch.load(bundle, weights_only=False)
        apply_precision(loaded.get("precision"))
        arr = _attack_images(entry_file, class_name, _unpack(loaded))
        tmp = out / "images.tmp.npy"
        np.save(tmp, arr, allow_pickle=False)
        tmp.replace(out / "images.npy")
        return 0
    except BaseException as err:  # noqa: BLE001 — everything the attack does wrong is reported
        try:
            (out / "traceback.txt").write_text(traceback.format_exc()[-20000:])
            (out / "error.json").write_text(json.dumps({"error": one_line(err)}))
        except OSError:  # the attack removed its own scratch folder: the parent reports a missing result
            pass
        return 1


if __name__ == "__main__":
    # through the imported module, so that pickled classes (_Mapped) are the same objects
    from aipbench.harness import sandbox

    sys.exit(sandbox._child(*sys.argv[1:5]))
