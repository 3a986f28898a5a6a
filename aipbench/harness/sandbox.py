"""Run a code submission's attack, handing it only its context: in a child process with a time limit
(``isolation="process"``), or — for trusted reference code, e.g. the test suite's regression pipeline —
in this process (``isolation="none"``), with the same seeds and kernels, so both give the same images.

Trust model: code submissions are reviewed before they run; the child process gives them a clean
interpreter, a time limit and exactly their knowledge level's context (nothing else is loaded into
it), and turns any failure into one error line. It is not a security sandbox — untrusted input comes
as image submissions, which are validated in full.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np

from aipbench.errors import InputError

__all__ = ["DEFAULT_TIME_LIMIT", "ISOLATIONS", "run_attack"]

DEFAULT_TIME_LIMIT = 3600  # seconds per attack run
ISOLATIONS = ("process", "none")


class _Mapped:
    """A read-only memory-mapped array passed by file name (the catalog), not copied into the bundle."""

    def __init__(self, filename: str) -> None:
        self.filename = filename


def _pack(context) -> dict:
    public = {k: (_Mapped(str(v.filename)) if isinstance(v, np.memmap) else v) for k, v in context._public.items()}
    return {"knowledge": context.knowledge, "public": public, "granted": context._granted}


def _unpack(bundle: dict):
    from aipbench.attacks.context import AttackContext

    public = {k: (np.load(v.filename, mmap_mode="r") if isinstance(v, _Mapped) else v)
              for k, v in bundle["public"].items()}
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


def _one_line(err: BaseException) -> str:
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first}".rstrip(": ")


def run_attack(entry_file: Path, class_name: str, context, *, workdir: Path, time_limit: float = DEFAULT_TIME_LIMIT,
               isolation: str = "process") -> np.ndarray:
    """Instantiate ``class_name`` from ``entry_file``, call ``run(context)`` and return what it returned as
    an array (validated by the caller). Errors are one-line InputErrors; the traceback goes to a file."""
    entry_file, workdir = Path(entry_file).resolve(), Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if isolation == "none":
        try:
            return _attack_images(entry_file, class_name, context)
        except Exception as err:  # noqa: BLE001 — everything the attack does wrong is reported
            (workdir / "traceback.txt").write_text(traceback.format_exc())
            raise InputError(f"{entry_file}: {class_name} failed: {_one_line(err)} "
                             f"(traceback: {workdir / 'traceback.txt'})") from None
    if isolation != "process":
        raise ValueError(f"isolation {isolation!r} is not one of {ISOLATIONS}")
    import torch

    bundle, result, error = workdir / "context.pt", workdir / "images.npy", workdir / "error.json"
    for stale in (result, error):
        stale.unlink(missing_ok=True)
    torch.save(_pack(context), bundle)
    cmd = [sys.executable, "-m", "aipbench.harness.sandbox", str(entry_file), class_name, str(bundle), str(workdir)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    try:
        proc = subprocess.run(cmd, env=env, cwd=entry_file.parent, timeout=time_limit, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InputError(f"{entry_file}: the attack ran past its time limit of {time_limit:g} s") from None
    finally:
        bundle.unlink(missing_ok=True)
    if error.is_file():
        info = json.loads(error.read_text())
        raise InputError(f"{entry_file}: {class_name} failed: {info['error']} (traceback: {workdir / 'traceback.txt'})")
    if proc.returncode != 0 or not result.is_file():
        raise InputError(f"{entry_file}: the attack process exited with status {proc.returncode} and no images")
    try:
        return np.load(result, allow_pickle=False)
    finally:
        result.unlink(missing_ok=True)


def _child(entry_file: str, class_name: str, bundle: str, workdir: str) -> int:
    """The child's side: load the context and the attack, run it, save what it returns."""
    out = Path(workdir)
    try:
        import torch

        arr = _attack_images(entry_file, class_name, _unpack(torch.load(bundle, weights_only=False)))
        tmp = out / "images.tmp.npy"
        np.save(tmp, arr, allow_pickle=False)
        tmp.replace(out / "images.npy")
        return 0
    except BaseException as err:  # noqa: BLE001 — everything the attack does wrong is reported
        (out / "traceback.txt").write_text(traceback.format_exc())
        (out / "error.json").write_text(json.dumps({"error": _one_line(err)}))
        return 1


if __name__ == "__main__":
    # through the imported module, so that pickled classes (_Mapped) are the same objects
    from aipbench.harness import sandbox

    sys.exit(sandbox._child(*sys.argv[1:5]))
