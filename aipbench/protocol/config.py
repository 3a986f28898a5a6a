"""Strict mapping of parsed TOML onto frozen dataclasses: unknown keys, missing keys, wrong types and
out-of-range values are one-line errors that name the file and the dotted key."""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from aipbench.errors import ConfigError

__all__ = ["NON_NEGATIVE", "POSITIVE", "SEED", "ConfigError", "Range", "build", "check_range", "field_with", "read_toml",
           "to_dict"]


@dataclasses.dataclass(frozen=True)
class Range:
    """Inclusive bounds (either may be None) for a numeric field, attached via ``field(metadata=...)``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def describe(self) -> str:
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        return f"{'(' if self.low_open else '['}{lo}, {hi}]"

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or value <= self.high


POSITIVE = Range(0, None, low_open=True)
NON_NEGATIVE = Range(0, None)
SEED = Range(0, 2**63 - 1)


def field_with(rng: Range | None = None) -> dataclasses.Field:
    """A dataclass field whose value must lie in ``rng`` (checked by ``build``)."""
    return dataclasses.field(metadata={"range": rng} if rng else {})


def check_range(source: str | Path, key: str, value: Any, *, rng: Range | None) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if rng is not None and v not in rng:
            raise ConfigError(source, key, f"value {v!r} is out of range {rng.describe()}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_type_name(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _convert(source: str | Path, key: str, value: Any, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _convert(source, key, value, inner[0])
    if origin is Literal:
        if value not in get_args(tp) or isinstance(value, bool):
            near = difflib.get_close_matches(value, [str(a) for a in get_args(tp)], n=1) if isinstance(value, str) else []
            close = f"; did you mean '{near[0]}'?" if near else ""
            raise ConfigError(source, key, f"expected {_type_name(tp)}, got {value!r}{close}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise ConfigError(source, key, f"expected {_type_name(tp)}, got {value!r}")
        (item_tp, *_rest) = get_args(tp)
        return tuple(_convert(source, f"{key}[{i}]", v, item_tp) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(source, key, f"expected a table, got {value!r}")
        return build(tp, value, source, prefix=key)
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported config type {tp!r} at {key}")
    if not ok:
        raise ConfigError(source, key, f"expected {_type_name(tp)}, got {value!r}")
    return value


def build(cls: type, data: dict[str, Any], source: str | Path, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data`` strictly; nested dataclass fields come from sub-tables.

    Fields marked ``metadata={"internal": True}`` cannot be set from a file and keep their default. A field
    marked ``metadata={"sections": known}`` gathers the open sub-tables: every other key that
    ``known(those keys)`` ({name: dataclass}, asked at parse time) names, built as that dataclass, as sorted
    (name, value) pairs.
    """
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    open_field = next((f for f in fields.values() if "sections" in f.metadata), None)
    if open_field:
        del fields[open_field.name]
    known = open_field.metadata["sections"](set(data) - set(fields)) if open_field else {}
    for key in data:
        if key not in fields and key not in known:
            raise ConfigError(source, f"{prefix}.{key}".lstrip("."), f"unknown key (allowed: {', '.join([*fields, *known])})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}".lstrip(".")
        tp = hints[name]
        optional = get_origin(tp) in (typing.Union, types.UnionType) and type(None) in get_args(tp)
        if name not in data:
            if optional:
                kwargs[name] = None
                continue
            raise ConfigError(source, dotted, "missing required key")
        value = _convert(source, dotted, data[name], tp)
        check_range(source, dotted, value, rng=f.metadata.get("range"))
        kwargs[name] = value
    if open_field:
        kwargs[open_field.name] = tuple((key, _convert(source, f"{prefix}.{key}".lstrip("."), data[key], known[key]))
                                        for key in sorted(data) if key not in fields)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:  # cross-field rules from __post_init__
        raise ConfigError(source, prefix, str(err)) from None


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain JSON-able data (tuples become lists, None sections are dropped, open sections
    are keys of their parent table, as in the file)."""
    if dataclasses.is_dataclass(obj):
        out = {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if getattr(obj, f.name) is not None and not f.metadata.get("internal") and "sections" not in f.metadata
        }
        for f in dataclasses.fields(obj):
            if "sections" in f.metadata:
                out.update({name: to_dict(value) for name, value in getattr(obj, f.name)})
        return out
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax or encoding problem is a one-line ConfigError naming the file."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, "", f"not valid TOML ({err})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
