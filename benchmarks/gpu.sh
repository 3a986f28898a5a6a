#!/usr/bin/env bash
# Every GPU figure of issue #20 on a fresh GPU machine, in under 10 minutes of wall time: install as the
# README says (into .venv-gpu), then benchmarks/gpu_bench.py — a reduced-epoch synthetic-paper-v1 prepare
# projected to its full epochs, INSA and EXPA on all four rankers, scoring, each with its ratio to this GPU's
# own forward+backward throughput, determinism, CPU vs GPU on tiny, and the top kernels (torch.profiler).
#
#   benchmarks/gpu.sh [--device cuda:N] [--skip expa,determinism,cpu-vs-gpu,profile]
#
# The whole output is the report; gpu-report.json keeps it. Set PYTHON to an environment that already has
# aipbench installed to skip the install.
set -euo pipefail
cd "$(dirname "$0")/.."
began=$(date +%s)
if [ -z "${PYTHON:-}" ]; then
    python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e ".[test]"
    PYTHON=.venv-gpu/bin/python
    echo "== install: $(( $(date +%s) - began )) s"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
export PYTHONUNBUFFERED=1
"$PYTHON" benchmarks/gpu_bench.py --out gpu-report.json "$@"
echo "== wall: $(( $(date +%s) - began )) s (goal < 600 s)"
