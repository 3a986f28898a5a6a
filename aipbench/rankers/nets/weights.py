"""torchvision's ImageNet AlexNet weights, handed over offline: checked by torchvision's own hash rule, kept
in the artifact cache, never downloaded (machines that run benchmarks are often offline)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

from aipbench.errors import ArtifactError, InputError
from aipbench.hashing import sha256_file
from aipbench.paths import aipbench_home

__all__ = ["IMAGENET_ALEXNET", "WeightsFile", "install_weights", "locate_weights"]

# torch.hub's rule (load_state_dict_from_url(check_hash=True)): the file name's "-<hex>." part is the
# first hex digits of the file's SHA-256.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """A published weights file; its name carries the first hex digits of its SHA-256."""

    name: str
    url: str
    label: str

    @property
    def sha256_prefix(self) -> str:
        match = _HASH_IN_NAME.search(self.name)
        if match is None:
            raise ValueError(f"{self.name}: no '-<sha256 prefix>.' in the file name")
        return match.group(1)


# torchvision.models.AlexNet_Weights.IMAGENET1K_V1 (tests/test_weights.py checks these against torchvision)
IMAGENET_ALEXNET = WeightsFile(name="alexnet-owt-7be5be79.pth",
                               url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                               label="torchvision AlexNet_Weights.IMAGENET1K_V1")


def _kept(spec: WeightsFile) -> Path:
    return aipbench_home() / "weights" / spec.name


def _check(path: Path, spec: WeightsFile) -> str:
    """The file's SHA-256 after checking torchvision's rule; a one-line InputError naming the file if not."""
    digest = sha256_file(path)
    if not digest.startswith(spec.sha256_prefix):
        raise InputError(f"{path}: SHA-256 {digest} does not begin with {spec.sha256_prefix}, the prefix torchvision "
                         f"publishes in {spec.name}: not the {spec.label} weights")
    return digest


def _check_state(path: Path) -> None:
    """The file loads (without running pickled code) into torchvision's AlexNet layout."""
    import torch

    from aipbench.rankers.nets.alexnet import FeatureExtractor

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        FeatureExtractor((64, 192, 384, 256, 256), 4096, 1000).load_state_dict(state)
    except Exception as err:  # noqa: BLE001 — unpickling and shape errors alike mean "not these weights"
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(f"{path}: not a state dict of torchvision's AlexNet ({type(err).__name__}: {first})") from None


def install_weights(file: str | Path, spec: WeightsFile | None = None) -> tuple[Path, str]:
    """Check ``file`` (torchvision's hash rule, then that it loads into AlexNet) and keep a copy in the
    artifact cache (``$AIPBENCH_HOME/weights/``; where it came from is no part of any protocol). Returns
    the kept copy and its full SHA-256. ``spec``: the published file (default: ``IMAGENET_ALEXNET``)."""
    spec = spec or IMAGENET_ALEXNET
    file = Path(file)
    if not file.is_file():
        raise InputError(f"{file}: no such file (expected {spec.name}, from {spec.url})")
    digest = _check(file, spec)
    _check_state(file)
    target = _kept(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(file, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target, digest


def locate_weights(spec: WeightsFile | None = None) -> tuple[Path, str]:
    """The weights kept by `aipbench data weights`, else torch.hub's cached copy, checked by torchvision's
    rule (a file in either place that fails it is refused, not used). No download is attempted: where
    neither exists, a one-line ArtifactError says where the file comes from and how to hand it over."""
    import torch.hub

    spec = spec or IMAGENET_ALEXNET
    for path in (_kept(spec), Path(torch.hub.get_dir()) / "checkpoints" / spec.name):
        if path.is_file():
            try:
                return path, _check(path, spec)
            except InputError as err:
                raise ArtifactError(str(err)) from None
    raise ArtifactError(f"{spec.label} not found (no download is attempted): fetch {spec.url} on a connected machine, "
                        f"then run `aipbench data weights {spec.name}`")
