"""The sandbox and the harness's own processes as a hostile submitter finds them, as root and as not: no
capability, no secret, no cache anywhere, limits that stop bombs within seconds, a conversation that cannot
hang the harness, and what a defense worker returns checked before anything is built from it. Each through
the command line: one ``Error:`` line naming the rule, no traceback, nothing left behind."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import attack_folder, cache_snapshot, defense_folder, evaluate_refused, leftovers, sandbox_marker

from aipbench.cli import main

REPO = Path(__file__).resolve().parents[1]
needs_sandbox = sandbox_marker()
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="a case of a harness run as root")


@pytest.fixture
def home(private_home):
    """A private copy of the tiny cache (the tests below try to reach it)."""
    return private_home


def _attack(tmp_path: Path, body: str, **options) -> Path:
    return attack_folder(tmp_path / options.pop("name", "hostile"), body, **options)


def _evaluate(home: Path, folder: Path, *extra: str, env: dict | None = None):
    return CliRunner().invoke(main, ["evaluate", "--skip-determinism-check", str(folder), "--protocol", "tiny",
                                     "--rankers", "vbpr", "--items", "10", *extra],
                              env={"AIPBENCH_HOME": str(home), **(env or {})})


PROBE_PRIVILEGES = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
caps = {k: int(v, 16) for k, v in (l.split(":", 1) for l in open("/proc/self/status") if l.startswith("Cap"))}
done = [what for what, worked in [
    ("unmounted /tmp", libc.umount2(b"/tmp", 2) == 0),                         # MNT_DETACH
    ("remounted /usr writable", libc.mount(None, b"/usr", None, 32 | 4096, None) == 0),  # MS_REMOUNT | MS_BIND
    ("is root", os.getuid() == 0),
] if worked]
if any(caps.values()) or done:
    raise RuntimeError(f"privileged: {done} {caps}")
return ctx.cold_images
"""


@needs_sandbox
def test_the_child_holds_no_capability_no_secret_and_no_command_line_shows_one(home, tmp_path):
    """Run as root, bwrap keeps the caller's capabilities unless told: the child must hold none (every set
    empty), be no root, and unmount or remount nothing. The harness's environment holds tokens: none is in
    the child's, and none is on a command line of any process on the machine while the attack runs (bwrap
    reads its arguments from a descriptor). The results record the sandbox's user and limits."""
    body = PROBE_PRIVILEGES.replace("return ctx.cold_images", """import time
leaked = [k for k, v in os.environ.items() if "sekrit" in v]
if leaked:
    raise RuntimeError(f"leaked {leaked}")
time.sleep(2)
return ctx.cold_images""")
    out = tmp_path / "r.json"
    env = {**os.environ, "AIPBENCH_HOME": str(home), "AWS_SECRET_ACCESS_KEY": "sekrit-aws", "HF_TOKEN": "sekrit-hf"}
    proc = subprocess.Popen([sys.executable, "-m", "aipbench", "evaluate", "--skip-determinism-check",
                             str(_attack(tmp_path, body)), "--protocol", "tiny", "--rankers", "vbpr", "--items", "10",
                             "--memory-limit", "3", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen, deadline = False, time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        lines = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            except OSError:
                pass
        assert not any(b"sekrit" in line for line in lines)
        seen = seen or any(b"isolation.attack_child" in line for line in lines)
        time.sleep(0.2)
    assert proc.wait(timeout=120) == 0, proc.stdout.read().decode()[-2000:]
    assert seen  # the command lines were looked at while the child ran
    sandbox = json.loads(out.read_text())["sandbox"]
    assert sandbox["isolation"] == "sandbox" and sandbox["limits"]["memory_bytes"] == 3 << 30
    assert sandbox["limits"]["processes"] == 512 and sandbox["limits"]["cpu_seconds"] >= 3600
    assert sandbox["user"] == ("a user of its own (run as root)" if os.geteuid() == 0 else "a user namespace of its own")


@as_root
def test_the_probe_finds_root_unsandboxed(home, tmp_path):
    """The control: the same probe, unsandboxed as root, finds the privileges (so the test above can fail)."""
    line = evaluate_refused(home, _attack(tmp_path, PROBE_PRIVILEGES), tmp_path / "r.json", "privileged:",
                            "--unsandboxed")
    assert "is root" in line


@needs_sandbox
def test_no_cache_anywhere_is_visible_whatever_links_lead_to_it(home, tmp_path):
    """The protocol's folder in the cache is a link to another disk, a second cache lies elsewhere, the
    default cache holds another: the child can open none of them, even by the paths its mount table names."""
    (root,) = [p for p in home.iterdir() if p.name.startswith("tiny-")]
    disk = tmp_path / "other-disk"
    disk.mkdir()
    shutil.move(root, disk / root.name)
    root.symlink_to(disk / root.name)
    second = tmp_path / "second-cache" / root.name
    shutil.copytree(disk / root.name / "vbpr", second / "vbpr")
    default = tmp_path / "user" / ".cache" / "aipbench"
    shutil.copytree(disk / root.name / "vbpr", default / root.name / "vbpr")
    targets = [str(p / "vbpr" / "vbpr.pt") for p in (root, disk / root.name, second, default / root.name)]
    body = f"""
    named = [f.split()[3] for f in open("/proc/self/mountinfo")]  # where each mount comes from
    opened = []
    for path in {targets!r} + [p for p in named if "vbpr" in p or "manifest" in p]:
        try:
            open(path, "rb").read(1)
            opened.append(path)
        except OSError:
            pass
    if opened:
        raise RuntimeError(f"opened {{opened}}")
    return ctx.cold_images
    """
    before = cache_snapshot(home)
    result = _evaluate(home, _attack(tmp_path, body), "--out", str(tmp_path / "r.json"),
                       env={"HOME": str(tmp_path / "user")})
    assert result.exit_code == 0, result.output
    assert cache_snapshot(home) == before and not leftovers()


BOMBS = {
    "memory": ("x = []\nwhile True:\n    x.append(np.ones(1 << 25))",
               "ran into its memory limit of 1 GiB (RLIMIT_DATA"),
    "fork": ("while True:\n    os.fork()", "ran into its limit of 512 processes and threads (RLIMIT_NPROC)"),
    "threads": ("import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(600,)).start()",
                "ran into its limit of 512 processes and threads (RLIMIT_NPROC)"),
    "/dev/shm": ("for i in range(10 ** 6):\n    open(f'/dev/shm/f{i}', 'wb').write(b'x' * (64 << 20))",
                 "ran into its scratch space"),
    "scratch": ("for i in range(10 ** 6):\n    open(os.environ['HOME'] + f'/f{i}', 'wb').write(b'x' * (64 << 20))",
                "ran into its scratch space"),
    "open files": ("x = [open('/dev/null') for _ in range(10 ** 6)]", "ran into its limit of 4096 open files"),
}


@needs_sandbox
@pytest.mark.parametrize("bomb", [pytest.param(b, marks=pytest.mark.slow) if b in ("threads", "scratch", "open files")
                                  else b for b in BOMBS])  # the others: memory, fork, /dev/shm
def test_a_bomb_is_stopped_by_its_limit(home, tmp_path, bomb):
    """Each stops at its own limit, long before the time limit, in one line naming the limit; nothing of it
    is left running or in /dev/shm, and the cache is intact."""
    body, rule = BOMBS[bomb]
    before = cache_snapshot(home)
    evaluate_refused(home, _attack(tmp_path, body), tmp_path / "r.json", rule, "--memory-limit", "1", "--time-limit",
                     "300", before=before)


@needs_sandbox
@pytest.mark.parametrize("body", [
    # announces a megabyte, sends a hundred bytes, goes quiet
    "ctx.oracle._channel.sock.sendall((1 << 20).to_bytes(8, 'big') + b'Q' + bytes(100))\nimport time\ntime.sleep(600)",
    # asks and asks, never reading an answer: the harness's replies fill the socket
    "import io\nbuf = io.BytesIO()\nnp.save(buf, np.asarray(ctx.cold_images[:1]))\n"
    "while True:\n    ctx.oracle._channel.send(b'Q' + buf.getvalue())",
], ids=["half-a-message", "deaf"])
def test_an_oracle_conversation_cannot_hang_the_harness(home, tmp_path, body):
    evaluate_refused(home, _attack(tmp_path, body, knowledge="blackbox"), tmp_path / "r.json",
                     "the attack ran past its time limit of 3 s", "--time-limit", "3", before=cache_snapshot(home))


def _training(tmp_path: Path, body: str) -> Path:
    code = f"import torch\n\n\nclass D:\n    def train(self, context):\n        r = context.undefended\n{body}\n        return r\n"
    return defense_folder(tmp_path / "trainer", code, kind="training", extra='defends = "vbpr"\n')


@needs_sandbox
def test_a_checkpoint_that_claims_gigabytes_is_refused_before_a_model_is_shaped_by_it(home, tmp_path):
    """A few bytes that become 8 GB once a model is built from their shape: refused by the returned
    checkpoint's name, the harness's memory untouched."""
    body = "        r.gamma_user = torch.nn.Parameter(torch.zeros(1, r.gamma_user.shape[1]).expand(10 ** 8, -1))"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = evaluate_refused(home, _training(tmp_path, body), tmp_path / "r.json",
                            "the ranker D.train returned: tensor 'gamma_user' of shape (100000000, 20) is a view larger",
                            before=cache_snapshot(home))
    assert "vbpr.pt" not in line
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < (1 << 20)  # KiB: under 1 GiB more


@needs_sandbox
def test_a_ranker_with_nan_weights_is_named_as_such(home, tmp_path):
    body = "        with torch.no_grad():\n            r.theta_user.fill_(float('nan'))"
    evaluate_refused(home, _training(tmp_path, body), tmp_path / "r.json",
                     "returned a ranker whose weights are not all finite (NaN or infinity in 'theta_user')")


@needs_sandbox
@pytest.mark.parametrize("value", ["-5", "'many'"])
def test_a_detectors_bad_training_items_is_one_line(home, tmp_path, value):
    code = f"class D:\n    training_items = {value}\n    def fit(self, context):\n        pass\n" \
           "    def score(self, x):\n        return x.float().mean((1, 2, 3))\n"
    evaluate_refused(home, defense_folder(tmp_path / "detector", code, kind="detector"), tmp_path / "r.json",
                     "defense.py: training_items must be a whole number from 1 to")


@needs_sandbox
def test_a_defense_that_shrinks_the_harnesss_buffers_is_refused_by_their_seals(home, tmp_path):
    """Shrinking a file the harness keeps mapped would kill it with SIGBUS (exit 135, no Error line): the
    memory files are sealed, so the attempt fails and the harness stays to say what the defense did."""
    code = """
import os
class D:
    def transform(self, x):
        shrunk = refused = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                name = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if "memfd:aipbench" in name:
                try:
                    os.ftruncate(int(fd), 0)
                    shrunk += 1
                except OSError:
                    refused += 1
        raise RuntimeError(f"shrunk {shrunk} refused {refused}")
"""
    line = evaluate_refused(home, defense_folder(tmp_path / "shrinker", code), tmp_path / "r.json",
                            "D.transform failed: RuntimeError: shrunk 0 refused ", before=cache_snapshot(home))
    assert int(line.split("refused ")[1].split()[0]) >= 2  # both buffers (and the mappings' own descriptors)


def test_a_sparse_multi_gigabyte_file_is_refused_unread(home, tiny_documents, tmp_path):
    """Hashing reads no file whole, and a folder over the size limit is refused by the sizes it claims."""
    folder = _attack(tmp_path, "return ctx.cold_images")
    with open(folder / "weights.bin", "wb") as fh:
        fh.truncate(64 << 30)
    rule = "a submission folder holds at most 20000 files of 2048 MiB in all"
    evaluate_refused(home, folder, tmp_path / "r.json", rule)
    result = CliRunner().invoke(main, ["submission", "package", str(folder), "--results", str(tiny_documents["noise"]),
                                       "--out", str(tmp_path / "p.tar.gz")])
    assert result.exit_code == 1 and rule in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "p.tar.gz").exists()
    result = CliRunner().invoke(main, ["verify", str(tiny_documents["noise"]), "--submission", str(folder)],
                                env={"AIPBENCH_HOME": str(home)})
    assert result.exit_code == 1 and rule in result.output and "Traceback" not in result.output, result.output


def test_package_refuses_links_and_special_files(tiny_documents, tmp_path):
    folder = _attack(tmp_path, "return ctx.cold_images")
    (folder / "passwd").symlink_to("/etc/passwd")
    result = CliRunner().invoke(main, ["submission", "package", str(folder), "--results", str(tiny_documents["noise"]),
                                       "--out", str(tmp_path / "p.tar.gz")])
    assert result.exit_code == 1 and "passwd: a symbolic link; a submission folder holds regular files" \
        in result.output and "Traceback" not in result.output, result.output
    (folder / "passwd").unlink()
    os.mkfifo(folder / "pipe")
    result = CliRunner().invoke(main, ["evaluate", str(folder), "--protocol", "tiny"])
    assert result.exit_code == 1 and "pipe: not a regular file" in result.output, result.output


def test_only_a_reference_submission_runs_in_the_harnesss_process(tmp_path):
    """``isolation="none"`` is no free argument: a folder that is not byte for byte a reference submission is
    refused before any work (a copy of one is trusted: its code is the reference's)."""
    import aipbench
    from aipbench.errors import InputError

    hostile = _attack(tmp_path, "return ctx.cold_images")
    with pytest.raises(InputError, match="only aipbench's own reference submissions run in the harness's process"):
        aipbench.evaluate(hostile, protocol="tiny", isolation="none", home=tmp_path / "home", log=lambda m: None)
    assert not (tmp_path / "home").exists()
    copy = shutil.copytree(REPO / "submissions" / "noise", tmp_path / "noise")
    from aipbench.harness.isolation.trust import is_reference

    assert is_reference(copy) and not is_reference(hostile)
    (copy / "attack.py").write_text((copy / "attack.py").read_text() + "\n# edited\n")
    assert not is_reference(copy)


def test_a_cache_inside_a_folder_the_child_must_see_is_refused(monkeypatch):
    """The child sees the system, this Python and aipbench: a cache placed inside one of them would be seen
    too, so the sandbox refuses to start rather than show it."""
    from aipbench.errors import InputError
    from aipbench.harness.isolation.bwrap import bwrap_args
    from aipbench.harness.isolation.limits import default_limits

    monkeypatch.setenv("AIPBENCH_HOME", str(Path(sys.prefix) / "aipbench-cache"))
    with pytest.raises(InputError, match="lies inside .*; set AIPBENCH_HOME to a folder outside it"):
        bwrap_args(binds={}, workdir="/", env={}, limits=default_limits())
