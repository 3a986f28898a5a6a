"""1 vs 2 processes on this machine: ``aipbench evaluate submissions/insa`` on synthetic-v2 (AlexRank and
VBPR, 1,000 cold items; 4 shards each), from an empty run cache each time, as one process with 1 thread,
one process with 2 threads and ``torchrun --nproc-per-node 2`` (1 thread each).

Run (about 10 minutes on 2 cores; synthetic-v2 prepared in ``$AIPBENCH_HOME``)::

    .venv/bin/python benchmarks/bench_distributed.py [--protocol synthetic-v2] [--rankers alexrank,vbpr]

Prints a Markdown table: wall time, attack seconds summed over shards, the speed-up over one process at 1
and at 2 threads, and whether the numbers equal the 1-thread run's (they must for 2 ranks of 1 thread;
2 threads may sum convolution gradients in another order).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(label: str, cmd: list[str], env: dict, out: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{label} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    doc = json.loads(out.read_text())
    numbers = [{k: v for k, v in r.items() if k != "timing"} for r in doc["results"]]
    return {"label": label, "wall_s": wall, "attack_s": sum(r["timing"]["attack_s"] for r in doc["results"]),
            "numbers": numbers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="synthetic-v2")
    parser.add_argument("--rankers", default="alexrank,vbpr")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aipbench-bench-dist-"))
    rows = []
    try:
        configs = [("1 process, 1 thread", 1, "1"), ("1 process, 2 threads", 1, "2"),
                   ("torchrun, 2 processes x 1 thread", 2, "1")]
        for i, (label, ranks, threads) in enumerate(configs):
            sub = work / f"insa-{i}"  # its own submission hash: an empty run cache
            shutil.copytree(ROOT / "submissions" / "insa", sub)
            (sub / "NOTE.txt").write_text(f"benchmark copy {i}\n")
            out = work / f"{i}.json"
            cli = ["-m", "aipbench", "evaluate", str(sub), "--protocol", args.protocol, "--rankers", args.rankers,
                   "--device", "cpu", "--out", str(out)]
            cmd = [sys.executable, *cli] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run", "--log-dir",
                                                              str(work / "torchrun"), "--nproc-per-node", str(ranks), *cli]
            env = {**os.environ, "OMP_NUM_THREADS": threads, "AIPBENCH_PROGRESS": "0"}
            rows.append(_run(label, cmd, env, out))
            print(f"{label}: {rows[-1]['wall_s']:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base1, base2 = rows[0]["wall_s"], rows[1]["wall_s"]
    print(f"\ninsa on {args.protocol}, rankers {args.rankers}, fresh run caches; {os.cpu_count()} cores")
    print("| run | wall | attack (sum over shards) | vs 1 process, 1 thread | vs 1 process, 2 threads | numbers = 1-thread run |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        same = "yes" if r["numbers"] == rows[0]["numbers"] else "no"
        print(f"| {r['label']} | {r['wall_s']:.0f} s | {r['attack_s']:.0f} s | {base1 / r['wall_s']:.2f}x | "
              f"{base2 / r['wall_s']:.2f}x | {same} |")


if __name__ == "__main__":
    main()
