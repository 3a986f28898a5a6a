"""CPU kernels are capped at AVX2 on x86-64 so that trained artifacts are the same bytes on every such CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aipbench import CPU_KERNEL_CAPS

HAS_AVX2 = Path("/proc/cpuinfo").is_file() and " avx2" in Path("/proc/cpuinfo").read_text(errors="replace")


def _capability(env: dict) -> str:
    code = "import aipbench, torch; print(torch.backends.cpu.get_cpu_capability())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(not HAS_AVX2, reason="the caps apply to x86-64 CPUs with AVX2 only")
def test_importing_aipbench_caps_the_kernels():
    assert _capability({k: v for k, v in os.environ.items() if k not in CPU_KERNEL_CAPS}) == "AVX2"


@pytest.mark.skipif(not HAS_AVX2, reason="the caps apply to x86-64 CPUs with AVX2 only")
def test_a_users_own_setting_is_kept(monkeypatch):
    import aipbench

    for name in CPU_KERNEL_CAPS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    aipbench._cap_cpu_kernels()
    assert os.environ["MKL_CBWR"] == "COMPATIBLE" and os.environ["ATEN_CPU_CAPABILITY"] == "avx2"


def test_results_record_the_cpu_and_its_kernels():
    import torch

    from aipbench.results.provenance import cpu_environment

    cpu = cpu_environment()
    assert cpu["threads"] == torch.get_num_threads() and cpu["capability"] == torch.backends.cpu.get_cpu_capability()
    if HAS_AVX2:
        assert cpu["kernel_caps"] == {k: os.environ[k] for k in CPU_KERNEL_CAPS}
