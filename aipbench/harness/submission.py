"""Submissions: a folder with a ``submission.toml``, validated strictly into a frozen dataclass."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import field
from pathlib import Path
from typing import Literal

from aipbench.errors import ConfigError, InputError
from aipbench.hashing import folder_files
from aipbench.protocol.config import Range, build, read_toml
from aipbench.registry import Registry

__all__ = ["REFERENCE_ATTACKS", "SUBMISSION_FILE", "DefenseSpec", "Submission", "SubmissionInfo", "ThreatModel",
           "load_submission", "reference_submission", "reference_submissions"]

SUBMISSION_FILE = "submission.toml"
_ENTRY = re.compile(r"^(?P<file>[A-Za-z0-9_][A-Za-z0-9_\-]*\.py):(?P<cls>[A-Za-z_][A-Za-z0-9_]*)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]{0,62}$")


@dataclasses.dataclass(frozen=True)
class ThreatModel:
    """``linf``: every pixel moves at most ``epsilon`` 8-bit steps; ``unbounded``: any image (semantic edits)."""

    norm: Literal["linf", "unbounded"]
    epsilon: int | None = field(default=None, metadata={"range": Range(1, 255)})

    def __post_init__(self) -> None:
        if self.norm == "linf" and self.epsilon is None:
            raise ValueError("norm 'linf' needs epsilon (in 8-bit units, 1..255)")
        if self.norm == "unbounded" and self.epsilon is not None:
            raise ValueError("norm 'unbounded' takes no epsilon")


@dataclasses.dataclass(frozen=True)
class SubmissionInfo:
    """Who made it and what it is; shown on the leaderboard (escaped)."""

    name: str
    kind: Literal["attack", "defense", "ranker"]
    authors: tuple[str, ...]
    description: str
    link: str
    # attacks only — insider: everything (the ranker, its user embeddings); expert: the ranker's image
    # model only; semantic: the catalog images, no model; classifier: a public pre-trained classifier only.
    knowledge: Literal["insider", "expert", "semantic", "classifier", "blackbox"] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be 1-63 lowercase letters, digits and dashes")
        if not self.authors or any(not a.strip() for a in self.authors):
            raise ValueError("authors must list at least one non-empty name")
        if self.link and not self.link.startswith(("https://", "http://")):
            raise ValueError(f"link {self.link!r} must be an http(s) URL or empty")


@dataclasses.dataclass(frozen=True)
class DefenseSpec:
    """A defense of one ``type``: ``transform`` (uint8 images → uint8 images, applied to every image the
    ranker sees); ``training`` (trains a defended ranker that replaces the ranker named by ``defends``);
    ``detector`` (scores uploads, higher = more suspicious; flagged uploads are rejected).
    ``parameter``/``levels`` make a transform a family evaluated level by level (e.g. JPEG quality 90 … 10)."""

    type: Literal["transform", "training", "detector"]
    parameter: str | None = None
    levels: tuple[int, ...] | None = None
    defends: str | None = None

    def __post_init__(self) -> None:
        if bool(self.parameter) != bool(self.levels):
            raise ValueError("give both parameter and levels, or neither")
        if self.parameter is not None and not re.match(r"^[a-z_][a-z0-9_]*$", self.parameter):
            raise ValueError(f"parameter {self.parameter!r} must be a lowercase attribute name")
        if self.parameter is not None and self.type != "transform":
            raise ValueError("only a transform defense takes parameter and levels")
        if (self.type == "training") != (self.defends is not None):
            raise ValueError("a training defense names the ranker it replaces (defends = \"vbpr\"); other types do not")
        if self.defends is not None:
            from aipbench.rankers.registry import ranker_spec  # every ranker module: imported only when named

            try:
                ranker_spec(self.defends)
            except InputError as err:  # "unknown ranker 'vbrp'; did you mean 'vbpr'?"
                raise ValueError(f"defends: {err}") from None


@dataclasses.dataclass(frozen=True)
class Submission:
    """A validated submission: exactly one of ``entry`` (code: ``"attack.py:ClassName"``) or ``images``
    (a folder of pre-made ``<cold_item_id>.png``), both inside the submission folder."""

    submission: SubmissionInfo
    threat: ThreatModel | None = None
    defense: DefenseSpec | None = None
    entry: str | None = None
    images: str | None = None
    folder: Path = field(default=Path("."), metadata={"internal": True})

    def __post_init__(self) -> None:
        if self.submission.kind == "attack":
            if self.threat is None or self.submission.knowledge is None:
                raise ValueError("an attack needs submission.knowledge and a [threat] table")
            if self.defense is not None:
                raise ValueError("an attack takes no [defense] table")
        elif self.submission.kind == "ranker":
            if self.entry is None or self.images is not None:
                raise ValueError("a ranker needs entry = \"ranker.py:ClassName\" (a Ranker subclass; the module "
                                 "defines train(context) too)")
            if self.threat is not None or self.defense is not None or self.submission.knowledge is not None:
                raise ValueError("a ranker takes no [threat] or [defense] table and no knowledge level")
        else:
            if self.defense is None or self.entry is None:
                raise ValueError("a defense needs a [defense] table and entry = \"defense.py:ClassName\"")
            if self.threat is not None or self.submission.knowledge is not None:
                raise ValueError("a defense takes no [threat] table and no knowledge level")
        if (self.entry is None) == (self.images is None):
            raise ValueError("give exactly one of entry = \"attack.py:ClassName\" or images = \"images/\"")
        if self.entry is not None and not _ENTRY.match(self.entry):
            raise ValueError(f"entry {self.entry!r} must look like \"attack.py:ClassName\" (a file in the folder)")

    @property
    def entry_file(self) -> Path | None:
        return None if self.entry is None else self.folder / self.entry.split(":")[0]

    @property
    def entry_class(self) -> str | None:
        return None if self.entry is None else self.entry.split(":")[1]

    @property
    def images_dir(self) -> Path | None:
        return None if self.images is None else self.folder / self.images


def _inside(folder: Path, path: Path, source: Path, key: str) -> None:
    """Refuse links and paths that leave the submission folder."""
    if path.is_symlink():
        raise ConfigError(source, key, f"{path.name} is a symbolic link; links are not allowed")
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        raise ConfigError(source, key, "path leaves the submission folder") from None


def load_submission(folder: str | Path) -> Submission:
    """Load and validate ``folder/submission.toml``; every violation is a one-line error naming the file."""
    folder = Path(folder)
    source = folder / SUBMISSION_FILE
    if not folder.is_dir():
        raise ConfigError(folder, "", "not a folder")
    if not source.is_file():
        raise ConfigError(source, "", "missing: a submission folder holds a submission.toml")
    raw = read_toml(source)
    sub = dataclasses.replace(build(Submission, raw, source), folder=folder)
    if sub.entry is not None:
        path = sub.entry_file
        _inside(folder, path, source, "entry")
        if not path.is_file():
            raise ConfigError(source, "entry", f"file {path.name} not found in the submission folder")
    else:
        path = sub.images_dir
        _inside(folder, path, source, "images")
        if not path.is_dir():
            raise ConfigError(source, "images", f"folder {sub.images!r} not found in the submission folder")
    folder_files(folder)  # regular files only, within the size limits: any other link or device is refused
    return sub


# The reference attacks every defense is scored against (transfer and adaptive), in the paper's order.
REFERENCE_ATTACKS = ("insa", "expa", "c-sema", "taamr-fgsm", "taamr-pgd20")


def reference_submissions(kind: Literal["attack", "defense", "ranker"]) -> Registry[Path]:
    """The project's reference submissions of ``kind`` (folders under ``submissions/``), by name."""
    from aipbench.paths import submissions_dir

    found: Registry[Path] = Registry(f"reference {kind}")
    for toml in sorted(submissions_dir().glob(f"*/{SUBMISSION_FILE}")):
        if read_toml(toml).get("submission", {}).get("kind") == kind:
            found.register(toml.parent.name)(toml.parent)
    return found


def reference_submission(name: str, *, kind: Literal["attack", "defense", "ranker"]) -> Submission:
    """The reference submission ``name`` of ``kind``, loaded (an unknown name: a did-you-mean error)."""
    return load_submission(reference_submissions(kind).get(name))
