"""Every GPU figure of issue #20 in one run: a reduced-epoch ``synthetic-paper-v1`` prepare projected to the
full epochs, INSA and EXPA on all four rankers, scoring, each against this GPU's own forward+backward
throughput of the same network at the same batch, determinism, CPU vs GPU, and the top kernels.

Called by ``benchmarks/gpu.sh`` (which installs first). The same flow runs on any protocol and device, so it
is checked on the CPU with the tiny protocol::

    python benchmarks/gpu_bench.py --base tiny --device cpu --skip cpu-vs-gpu,profile

Prints a report and writes it as JSON (``--out``), with the catalog's contact sheet beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Epochs of the reduced prepare (the full protocol's epochs are read from its file): enough to time an
# epoch of each training; the projection is fixed cost + epoch time × the protocol's epochs.
QUICK_EPOCHS = {"bpr": 4, "rankers.extractor.pretrain": 1, "rankers.vbpr.train": 2, "rankers.dvbpr.train": 1,
                "rankers.amr.train": 2}
GOALS = {"prepare_min": 20.0, "insa_min": 2.0, "expa_min": 3.0, "scoring_ms": 10.0, "insa_hw_ratio": 0.5}
BATCH = 250  # the reference attacks' batch of cold items


def _say(line: str = "") -> None:
    print(line, flush=True)


def quick_protocol(base: str, folder: Path) -> str:
    """Write ``<base>-quick.toml`` into ``folder`` (named by AIPBENCH_PROTOCOLS): the base protocol with the
    epochs of QUICK_EPOCHS; returns its name."""
    from aipbench.paths import protocols_dir

    text, section, out = (protocols_dir() / f"{base}.toml").read_text(), "", []
    for line in text.splitlines():
        header = re.match(r"\[([\w.]+)\]", line)
        section = header.group(1) if header else section
        if section in QUICK_EPOCHS and re.match(r"epochs\s*=", line):
            line = f"epochs = {QUICK_EPOCHS[section]}"
        out.append(line)
    name = f"{base}-quick"
    (folder / f"{name}.toml").write_text("\n".join(out).replace(f'name = "{base}"', f'name = "{name}"', 1) + "\n")
    return name


def hardware(device: str) -> dict:
    import torch

    from aipbench.results.provenance import cpu_environment, gpu_environment

    return {"device": device, "torch": torch.__version__, "cores": os.cpu_count(), "cpu": cpu_environment(),
            "gpu": gpu_environment(device)}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def prepare(name: str, base: str, device: str) -> dict:
    """Build every artifact of the quick protocol, timing each epoch; project each training to the base
    protocol's epochs."""
    import aipbench.data.synthetic as synthetic
    import aipbench.firststage.triples as triples
    from aipbench.protocol import load_protocol
    from aipbench.pipeline.steps import open_store

    epochs: dict[str, list[float]] = {}
    fixed: dict[str, float] = {}
    update, render = triples.BestEpoch.update, synthetic.pretraining_set

    def timed_update(self, *a, **k):  # an epoch ends at its update: record when
        epochs.setdefault(self.name, []).append(time.perf_counter())
        return update(self, *a, **k)

    def timed_render(*a, **k):
        start = time.perf_counter()
        try:
            return render(*a, **k)
        finally:
            fixed["extractor"] = time.perf_counter() - start

    triples.BestEpoch.update, synthetic.pretraining_set = timed_update, timed_render
    quick, full = load_protocol(name), load_protocol(base)
    store = open_store(quick, device=device)
    targets = ["candidates", "alexrank", "vbpr", "dvbpr", "amr"]
    start = time.perf_counter()
    try:
        store.prepare(targets)
    finally:
        triples.BestEpoch.update, synthetic.pretraining_set = update, render
    wall = time.perf_counter() - start
    manifest = json.loads((store.root / "manifest.json").read_text())["artifacts"]
    seconds = {k: v["seconds"] for k, v in manifest.items()}
    runs = {"bpr": ("BPR", full.bpr.epochs, quick.bpr.epochs),
            "vbpr": ("VBPR", full.rankers.vbpr.train.epochs, quick.rankers.vbpr.train.epochs),
            "amr": ("AMR", full.rankers.amr.train.epochs, quick.rankers.amr.train.epochs),
            "dvbpr": ("DVBPR", full.rankers.dvbpr.train.epochs, quick.rankers.dvbpr.train.epochs),
            "extractor": (None, full.rankers.extractor.pretrain.epochs, quick.rankers.extractor.pretrain.epochs)}
    projected = dict(seconds)
    for artifact, (label, n_full, n_quick) in runs.items():
        if artifact not in seconds:
            continue
        if label and label in epochs and len(epochs[label]) >= 2:  # the epochs after the first: steady state
            per_epoch = (epochs[label][-1] - epochs[label][0]) / (len(epochs[label]) - 1)
        else:
            per_epoch = (seconds[artifact] - fixed.get(artifact, 0.0)) / n_quick
        projected[artifact] = seconds[artifact] + per_epoch * (n_full - n_quick)
    return {"wall_s": wall, "artifact_s": seconds, "projected_s": projected,
            "projected_total_s": sum(projected.values()), "root": str(store.root)}


def network_throughput(name: str, device: str) -> dict:
    """Images per second of a forward+backward pass to the pixels through each attacked network at the
    attacks' batch (what one INSA / EXPA step costs), under the protocol's precision."""
    import torch

    from aipbench.rankers.precision import apply_precision
    from aipbench.protocol import load_protocol
    from aipbench.rankers.extractor import make_extractor
    from aipbench.rankers.nets.cnnf import CNNF

    p = load_protocol(name)
    apply_precision(p.compute.precision if p.compute else None)
    d = p.rankers.dvbpr
    nets = {"extractor": make_extractor(p),
            "cnn-f": CNNF(d.conv_widths, d.fc_widths, out_dim=d.embedding_length, dropout=d.dropout,
                          lrn=d.local_response_norm)}
    size, out = p.data.image_size, {}
    for label, net in nets.items():
        net = net.to(device).eval().requires_grad_(False)
        x = torch.rand(BATCH, 3, size, size, device=device)

        def step():
            d = torch.zeros_like(x, requires_grad=True)
            net((x + d).clamp(0, 1) * 255).sum().backward()

        for _ in range(3):
            step()
        _sync(device)
        n, start = 10, time.perf_counter()
        for _ in range(n):
            step()
        _sync(device)
        out[label] = n * BATCH / (time.perf_counter() - start)
    return out


def insa_loop_rate(name: str, device: str) -> dict:
    """Image-steps per second of the INSA loop itself (one batch of 250 cold items, 10 Adam steps, in this
    process): what the attack reaches without its sandboxed child's start-up (Python, torch, CUDA, context)."""
    from aipbench.attacks.insa import DEFAULT_OBJECTIVE, insa
    from aipbench.pipeline.prepared import Prepared

    prepared = Prepared(name, device=device)
    images = prepared.cooperative_images(prepared.dataset.cold_items[:BATCH])
    out = {}
    for ranker_name in ("alexrank", "vbpr", "dvbpr", "amr"):
        ranker, steps = prepared.ranker(ranker_name), 10
        kw = dict(epsilon=32, learning_rate=0.01, objective=DEFAULT_OBJECTIVE[ranker_name], batch_size=BATCH)
        insa(ranker, images, steps=2, **kw)  # warm-up
        _sync(device)
        start = time.perf_counter()
        insa(ranker, images, steps=steps, **kw)
        _sync(device)
        out[ranker_name] = len(images) * steps / (time.perf_counter() - start)
    return out


def evaluate(submission: str, name: str, device: str, out: Path, rankers: str | None = None) -> dict:
    """``aipbench evaluate`` as a user runs it; its wall time and the document's per-row timings."""
    cmd = [sys.executable, "-m", "aipbench", "evaluate", str(ROOT / "submissions" / submission), "--protocol", name,
           "--device", device, "--out", str(out)] + (["--rankers", rankers] if rankers else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    doc = json.loads(out.read_text())
    rows = {}
    for r in doc["results"]:
        rows[r["ranker"]] = {"attack_s": r["timing"].get("attack_s"), "scoring_s": r["timing"].get("scoring_s")}
    return {"wall_s": wall, "rows": rows, "doc": doc}


def _numbers(doc: dict) -> str:
    """The document without what may differ between identical runs (timings, environment, seal)."""
    drop = {"timing", "environment", "sha256", "aipbench", "generated"}

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in drop}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(doc), sort_keys=True)


def determinism(name: str, device: str, first: dict, work: Path, root: Path) -> dict:
    """INSA again from an empty run cache on AlexRank and DVBPR: the same numbers in every row."""
    for run in (root / "runs").glob("insa-*"):
        shutil.rmtree(run)
    again = evaluate("insa", name, device, work / "insa-again.json", rankers="alexrank,dvbpr")
    # the numbers of those rows (the examples sheet and the file seals cover the rankers a run was asked for)
    before = [r for r in first["doc"]["results"] if r["ranker"] in ("alexrank", "dvbpr")]
    a, b = json.loads(_numbers({"results": before})), json.loads(_numbers({"results": again["doc"]["results"]}))
    return {"identical": a == b, "artifacts_identical": first["doc"]["artifacts"] == again["doc"]["artifacts"]}


def cpu_vs_gpu(device: str, work: Path) -> dict:
    """The tiny protocol prepared and attacked (INSA) on the CPU and on this device, each in its own cache:
    the largest difference of any HR@N / Δ in the two documents (reported, not hidden)."""
    docs = {}
    for dev in ("cpu", device):
        env = {**os.environ, "AIPBENCH_HOME": str(work / f"tiny-{dev.replace(':', '')}")}
        out = work / f"tiny-insa-{dev.replace(':', '')}.json"
        subprocess.run([sys.executable, "-m", "aipbench", "evaluate", str(ROOT / "submissions" / "insa"), "--protocol",
                        "tiny", "--device", dev, "--out", str(out)], env=env, check=True, capture_output=True)
        docs[dev] = json.loads(out.read_text())

    def flat(v, prefix=""):
        if isinstance(v, dict):
            for k, x in v.items():
                yield from flat(x, f"{prefix}.{k}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                yield from flat(x, f"{prefix}[{i}]")
        elif isinstance(v, float):
            yield prefix, v

    a, b = (dict(flat(docs[d]["results"])) for d in ("cpu", device))
    diffs = {k: abs(a[k] - b[k]) for k in a if k in b and "timing" not in k}
    worst = max(diffs, key=diffs.get) if diffs else None
    return {"numbers": len(diffs), "differ": sum(v > 0 for v in diffs.values()),
            "max_abs_diff": diffs.get(worst, 0.0), "where": worst}


def profile(name: str, device: str) -> str:
    """The top kernels of INSA steps on the AlexNet-sized Φ and on CNN-F (torch.profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from aipbench.protocol import load_protocol
    from aipbench.rankers.extractor import make_extractor
    from aipbench.rankers.nets.cnnf import CNNF

    p = load_protocol(name)
    d = p.rankers.dvbpr
    tables = []
    for label, net in (("extractor", make_extractor(p)),
                       ("cnn-f", CNNF(d.conv_widths, d.fc_widths, out_dim=d.embedding_length, lrn=d.local_response_norm,
                                      dropout=d.dropout))):
        net = net.to(device).eval().requires_grad_(False)
        x = torch.rand(BATCH, 3, p.data.image_size, p.data.image_size, device=device)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
        with torch_profile(activities=activities) as prof:
            for _ in range(3):
                delta = torch.zeros_like(x, requires_grad=True)
                net((x + delta).clamp(0, 1) * 255).sum().backward()
            _sync(device)
        key = "cuda_time_total" if device.startswith("cuda") else "cpu_time_total"
        tables.append(f"{label}:\n" + prof.key_averages().table(sort_by=key, row_limit=10))
    return "\n".join(tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="synthetic-paper-v1")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--skip", default="", help="comma-separated: expa, determinism, cpu-vs-gpu, profile")
    parser.add_argument("--out", default="gpu-report.json")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="aipbench-gpu-"))
    os.environ.setdefault("AIPBENCH_HOME", str(work / "home"))
    os.environ["AIPBENCH_PROTOCOLS"] = str(work / "protocols")
    os.environ["AIPBENCH_PROGRESS"] = "0"
    (work / "protocols").mkdir()
    name = quick_protocol(args.base, work / "protocols")
    report: dict = {"hardware": hardware(args.device), "protocol": name, "goals": GOALS}
    _say(f"== hardware: {json.dumps(report['hardware'])}")

    report["prepare"] = prep = prepare(name, args.base, args.device)
    _say(f"== prepare {name}: {prep['wall_s']:.0f} s measured; {args.base} projected "
         f"{prep['projected_total_s'] / 60:.1f} min (goal < {GOALS['prepare_min']:.0f} min)")
    for k in prep["artifact_s"]:
        _say(f"   {k:12s} {prep['artifact_s'][k]:8.1f} s   projected {prep['projected_s'][k]:8.1f} s")

    quality = subprocess.run([sys.executable, "-m", "aipbench", "rankers", "report", name, "--device", args.device],
                             capture_output=True, text=True)
    report["quality"] = quality.stdout
    _say(f"== ranker quality after the reduced epochs\n{quality.stdout}{quality.stderr[-2000:]}")
    subprocess.run([sys.executable, "-m", "aipbench", "data", "preview", name, "--out",
                    str(Path(args.out).with_name(f"{Path(args.out).stem}-sheet.png"))],
                   capture_output=True)

    report["throughput"] = hw = network_throughput(name, args.device)
    _say(f"== fwd+bwd to the pixels at batch {BATCH}: " + ", ".join(f"{k} {v:,.0f} img/s" for k, v in hw.items()))

    insa = evaluate("insa", name, args.device, work / "insa.json")
    net_of = {"alexrank": "extractor", "vbpr": "extractor", "amr": "extractor", "dvbpr": "cnn-f"}
    steps = 50  # submissions/insa: Adam steps per item
    n_items = insa["doc"]["results"][0]["n_items"]
    report["insa"] = {"wall_s": insa["wall_s"], "rows": insa["rows"]}
    _say(f"== evaluate submissions/insa: {insa['wall_s']:.0f} s wall (goal < {GOALS['insa_min'] * 60:.0f} s)")
    for ranker, row in insa["rows"].items():
        rate = n_items * steps / row["attack_s"] if row["attack_s"] else float("nan")
        ratio = rate / hw[net_of[ranker]]
        row.update(images_per_s=rate, hw_ratio=ratio)
        _say(f"   {ranker:9s} attack {row['attack_s']:.1f} s = {rate:,.0f} img-steps/s = {ratio:.0%} of fwd+bwd "
             f"(goal >= {GOALS['insa_hw_ratio']:.0%}); scoring {1000 * row['scoring_s']:.0f} ms "
             f"(goal < {GOALS['scoring_ms']:.0f} ms)")

    report["insa_loop"] = loop = insa_loop_rate(name, args.device)
    _say("== the INSA loop alone (250 items, in-process): " + ", ".join(
        f"{r} {v:,.0f} img-steps/s = {v / hw[net_of[r]]:.0%}" for r, v in loop.items()))

    if "expa" not in skip:
        expa = evaluate("expa", name, args.device, work / "expa.json")
        report["expa"] = {"wall_s": expa["wall_s"], "rows": expa["rows"]}
        _say(f"== evaluate submissions/expa: {expa['wall_s']:.0f} s wall (goal < {GOALS['expa_min'] * 60:.0f} s)")
    if "determinism" not in skip:
        report["determinism"] = determinism(name, args.device, insa, work, Path(prep["root"]))
        _say(f"== INSA again from an empty run cache (AlexRank, DVBPR): identical numbers: "
             f"{report['determinism']['identical']}")
    if "cpu-vs-gpu" not in skip and args.device != "cpu":
        report["cpu_vs_gpu"] = cpu_vs_gpu(args.device, work)
        _say(f"== tiny, INSA, CPU vs {args.device}: {json.dumps(report['cpu_vs_gpu'])}")
    if "profile" not in skip:
        report["profile"] = profile(name, args.device)
        _say("== top kernels of an INSA step\n" + report["profile"])
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    _say(f"== report: {args.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
