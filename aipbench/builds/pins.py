"""A protocol's pinned reference build, written from an exported archive (``aipbench build export --pin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aipbench.pipeline.builds import core_steps
from aipbench.pipeline.store import INPUT_PREFIX

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol

__all__ = ["pin_text"]


def pin_text(protocol: "Protocol", manifest: dict, *, archive_sha256: str, archive_bytes: int) -> str:
    """``protocols/builds/<protocol>.toml`` for an exported build (its ``urls`` empty until it is published)."""
    lines = [f"# The reference build of {protocol.name}: the artifacts its committed entries were made on. Import it",
             "# with `aipbench build import URL --sha256 ARCHIVE_SHA256` (or `aipbench prepare --protocol PROTOCOL --build ID` once",
             "# a maintainer has published the archive — a release asset — and listed it in urls).",
             "", "[protocol]", f'name = "{protocol.name}"', f'sha256 = "{protocol.sha256}"', "", "[build]",
             f'id = "{manifest["build_id"]}"', f'archive_sha256 = "{archive_sha256}"', f"archive_bytes = {archive_bytes}",
             "urls = []", "", "[made_by]"]
    for key, value in sorted(manifest["made_by"].items()):
        text = ("{" + ", ".join(f'{k} = "{v}"' for k, v in sorted(value.items())) + "}") if isinstance(value, dict) \
            else f'"{value}"'
        lines.append(f"{key} = {text}")
    for step, record in manifest["artifacts"].items():
        if step in core_steps(protocol):
            files = {**record["files"], **{INPUT_PREFIX + n: h for n, h in record.get("inputs", {}).items()}}
            lines += ["", f'[artifacts."{step}"]'] + [f'"{f}" = "{h}"' for f, h in sorted(files.items())]
    return "\n".join(lines) + "\n"
