"""Import a real data set distributed with DVBPR (Amazon Men, Tradesy.com) into the internal format: the
file checked against the protocol (Table 2 counts, structure, cold items), its JPEGs packed as they are."""

from __future__ import annotations

import dataclasses
import operator
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aipbench.data.dataset import Dataset
from aipbench.data.packed import WORKERS, PackedImages, check_image, pack_images
from aipbench.data.splits import build_dataset, to_csr
from aipbench.errors import InputError
from aipbench.hashing import sha256_file
from aipbench.protocol.schema import Protocol

__all__ = ["DVBPRFile", "FileCounts", "import_dvbpr_npy", "read_dvbpr_npy"]

_PARTS = "[user_train, user_validation, user_test, Item, usernum, itemnum]"
_CHECK_BLOCK = 2048  # images checked per block of parallel work


@dataclasses.dataclass(frozen=True)
class FileCounts:
    """What the paper's Table 2 reports: usernum, itemnum and every interaction record in the file's three
    splits, as distributed (before the importer drops a training record that repeats a held-out item)."""

    users: int
    items: int
    interactions: int

    def text(self) -> str:
        return f"users {self.users:,}, items {self.items:,}, interactions {self.interactions:,}"


@dataclasses.dataclass(frozen=True)
class DVBPRFile:
    """A DVBPR ``.npy`` file, unpickled and checked: each split as one list of records per user."""

    path: Path
    item: Any
    train: list
    validation: list
    test: list
    counts: FileCounts


def _key(record: Any, key: str) -> Any:
    """``record[b'key']`` (a Python 2 pickle read with ``encoding='bytes'``), else ``record['key']`` (the
    same file re-saved after reading it with ``encoding='latin1'``)."""
    try:
        return record[key.encode()]
    except KeyError:
        return record[key]


def _per_user(obj: Any, n_users: int, path: Path, name: str) -> list:
    """A split (a dict keyed by user id, or a sequence indexed by it) as a list of ``n_users`` lists."""
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, (int, np.integer)) or not 0 <= k < n_users]
        if bad:
            raise InputError(f"{path}: {name}: user key {bad[0]!r} is not an integer in [0, usernum={n_users})")
        return [obj.get(u, ()) for u in range(n_users)]
    if isinstance(obj, (list, tuple, np.ndarray)):
        if len(obj) != n_users:
            raise InputError(f"{path}: {name}: has {len(obj)} users, usernum says {n_users}")
        return list(obj)
    raise InputError(f"{path}: {name}: expected a dict or a list of users, got {type(obj).__name__}")


def _flatten(lists: list, path: Path, name: str, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-user lists of ``{b'productid': id, ...}`` → (per-user counts, flat int64 item ids)."""
    try:
        counts = np.fromiter((len(records) for records in lists), dtype=np.int64, count=len(lists))
        items = np.fromiter((operator.index(_key(r, "productid")) for records in lists for r in records),
                            dtype=np.int64, count=int(counts.sum()))
    except (KeyError, TypeError, IndexError) as err:
        raise InputError(f"{path}: {name}: every user must map to a list of records with an integer b'productid' "
                         f"({type(err).__name__}: {str(err)[:80]})") from None
    bad = np.flatnonzero((items < 0) | (items >= n_items))
    if bad.size:
        raise InputError(f"{path}: {name}: item id {int(items[bad[0]])} is out of range [0, itemnum={n_items})")
    return counts, items


def read_dvbpr_npy(path: str | Path) -> DVBPRFile:
    """Unpickle a DVBPR ``.npy`` file (``allow_pickle=True, encoding='bytes'``) and check its shape; every
    violation is a one-line InputError naming the file."""
    path = Path(path)
    try:
        raw = np.load(path, allow_pickle=True, encoding="bytes")
    except Exception as err:  # noqa: BLE001 — a truncated pickle raises EOFError, UnpicklingError, ValueError, ...
        msg = (str(err).splitlines() or [""])[0][:120]
        raise InputError(f"{path}: truncated or not a pickled .npy file ({type(err).__name__}: {msg})") from None
    if not isinstance(raw, np.ndarray) or raw.dtype != object:
        what = f"{raw.dtype} array" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise InputError(f"{path}: expected a pickled object array {_PARTS}, got a {what}")
    parts = raw.item() if raw.ndim == 0 else raw
    if not isinstance(parts, (list, tuple, np.ndarray)) or np.ndim(parts) > 1 or len(parts) != 6:
        n = len(parts) if hasattr(parts, "__len__") else type(parts).__name__
        raise InputError(f"{path}: expected 6 entries {_PARTS}, got {n}")
    user_train, user_validation, user_test, item, usernum, itemnum = parts
    try:
        n_users, n_items = operator.index(usernum), operator.index(itemnum)
    except TypeError:
        raise InputError(f"{path}: usernum and itemnum must be integers, got {usernum!r:.40}, {itemnum!r:.40}") from None
    if n_users < 1 or n_items < 1:
        raise InputError(f"{path}: usernum and itemnum must be positive, got {n_users}, {n_items}")
    if not isinstance(item, (dict, list, tuple, np.ndarray)):
        raise InputError(f"{path}: Item: expected a dict or a list indexed by item id, got {type(item).__name__}")
    train, validation, test = (_per_user(s, n_users, path, name) for s, name in
                               ((user_train, "user_train"), (user_validation, "user_validation"), (user_test, "user_test")))
    records = sum(len(records) for split in (train, validation, test) for records in split)
    return DVBPRFile(path, item, train, validation, test, FileCounts(n_users, n_items, records))


def item_bytes(item: Any, i: int, path: Path) -> bytes:
    """Item ``i``'s image bytes (``Item[i][b'imgs']``; a latin1 re-save's ``str`` is turned back to bytes)."""
    try:
        data = _key(item[i], "imgs")
    except (KeyError, IndexError, TypeError):
        raise InputError(f"{path}: item {i}: no image (Item[{i}][b'imgs'] is missing)") from None
    if isinstance(data, str):  # read with encoding='latin1' and saved again: latin1 maps bytes 1:1 to str
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise InputError(f"{path}: item {i}: no image (Item[{i}][b'imgs'] is {type(data).__name__}, not JPEG bytes)")
    return bytes(data)


def item_asin(item: Any, i: int) -> str | None:
    """Item ``i``'s Amazon id (``b'asin'``) where the file has one."""
    try:
        value = _key(item[i], "asin")
    except (KeyError, IndexError, TypeError):
        return None
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _check_counts(file: DVBPRFile, protocol: Protocol) -> None:
    cfg = protocol.data.file
    want = FileCounts(cfg.users, cfg.items, cfg.interactions)
    if file.counts != want:
        from aipbench.hashing import sha256_file

        raise InputError(f"{file.path}: the file has {file.counts.text()}; protocol '{protocol.name}' expects "
                         f"{want.text()} (its [data.file] counts; the paper's Table 2 on the paper's protocols) — "
                         f"not the distributed {cfg.name}? The file's SHA-256 is "
                         f"{sha256_file(file.path)} (a protocol of its own for it: docs/real-data.md)")


def _held_out(lists: list, path: Path, name: str, n_items: int) -> np.ndarray:
    counts, items = _flatten(lists, path, name, n_items)
    wrong = np.flatnonzero(counts != 1)
    if wrong.size:
        u = int(wrong[0])
        raise InputError(f"{path}: {name}: user {u} has {int(counts[u])} items, every user needs exactly 1")
    return items


def _validate_images(item: Any, n_items: int, path: Path):
    """Every item's image bytes, in item order, each checked to decode in full (in parallel threads, a
    block of items at a time, so that a failure or a signal stops the work within one block)."""
    def check(i: int) -> bytes:
        data = item_bytes(item, i, path)
        try:
            check_image(data)
        except Exception as err:  # noqa: BLE001 — UnidentifiedImageError, OSError (truncated), bomb errors
            msg = (str(err).splitlines() or [""])[0]
            msg = re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", msg)[:100]  # Pillow names its buffer's address
            raise InputError(f"{path}: item {i}: image cannot be decoded ({type(err).__name__}: {msg})") from None
        return data

    with ThreadPoolExecutor(WORKERS) as pool:
        for start in range(0, n_items, _CHECK_BLOCK):
            yield from pool.map(check, range(start, min(start + _CHECK_BLOCK, n_items)))


def import_dvbpr_npy(path: str | Path, protocol: Protocol, out: str | Path, *, progress: bool = False
                     ) -> tuple[Dataset, dict]:
    """Convert a DVBPR-distributed ``.npy`` file into a ``Dataset`` under ``protocol``, written into the
    folder ``out`` (``interactions.npz``, ``images.bin`` and ``image_offsets.npy``: every item's JPEG as
    distributed, decoded and resized to the protocol's size when pixels are needed). Returns the data set
    and what was measured of the file (``source.json``: its SHA-256, counts, the hook).

    Checked, each a one-line InputError naming the file: the protocol's SHA-256 (if it pins one) and its
    Table 2 counts; one validation and one test item per user, item ids in range; the cold items (the
    protocol's rule; a listed one no user interacted with); every image decodes. The file's own validation
    and test items are kept ("as-distributed"); **a training record of a user's validation or test item is
    dropped** (the three must be disjoint), and repeated training items are merged."""
    from tqdm.auto import tqdm

    path, out = Path(path), Path(out)
    if protocol.data.source != "dvbpr-npy" or protocol.data.file is None:
        raise InputError(f"{protocol.source}: protocol '{protocol.name}' generates its data; there is nothing to import")
    if protocol.split.rule != "as-distributed":
        raise InputError(f"{protocol.source}: key 'split.rule': a DVBPR file needs 'as-distributed'")
    if not path.is_file():
        raise InputError(f"{path}: no such file (expected {protocol.data.file.name})")
    digest = sha256_file(path)
    if protocol.data.file.sha256 is not None and digest != protocol.data.file.sha256:
        raise InputError(f"{path}: SHA-256 {digest} does not match protocol '{protocol.name}''s "
                         f"{protocol.data.file.sha256}")
    file = read_dvbpr_npy(path)
    _check_counts(file, protocol)
    n_users, n_items = file.counts.users, file.counts.items
    validation_items = _held_out(file.validation, path, "user_validation", n_items)
    test_items = _held_out(file.test, path, "user_test", n_items)
    train_counts, train_items = _flatten(file.train, path, "user_train", n_items)
    train_users = np.repeat(np.arange(n_users, dtype=np.int64), train_counts)
    keep = (train_items != validation_items[train_users]) & (train_items != test_items[train_users])
    train_indptr, train_items = to_csr(train_users[keep], train_items[keep], n_users)
    # what the import left out of the file's training records, counted (source.json; `data import` prints it)
    dropped = {"held_out_repeats": int((~keep).sum()), "merged_repeats": int(keep.sum()) - len(train_items)}
    size = protocol.data.image_size
    placeholder = np.zeros((n_items, 3, 1, 1), dtype=np.uint8)  # the cold-item and hook rules need no pixels
    try:
        dataset = build_dataset(placeholder, train_indptr=train_indptr, train_items=train_items,
                                validation_items=validation_items, test_items=test_items,
                                n_cold=protocol.data.n_cold_items, seed=protocol.split.seed,
                                listed=listed_cold_items(protocol))
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None
    images = tqdm(_validate_images(file.item, n_items, path), total=n_items, unit="img", desc="packing images",
                  disable=not progress)
    n_bytes = pack_images(images, out / "images.bin", out / "image_offsets.npy")
    dataset = dataclasses.replace(dataset, images=PackedImages(out / "images.bin", out / "image_offsets.npy", size))
    source = {"file": protocol.data.file.name, "sha256": digest, "bytes": path.stat().st_size,
              "counts": dataclasses.asdict(file.counts), "image_bytes": n_bytes, "dropped_training_records": dropped,
              "hook": {"item": int(dataset.hook_item), "asin": item_asin(file.item, int(dataset.hook_item))}}
    return dataset, source


def listed_cold_items(protocol: Protocol) -> np.ndarray | None:
    """The protocol's listed cold items (its ``cold_items_file``, checked against ``cold_items_sha256``), or
    None for a sampled rule."""
    split = protocol.split
    if split.cold_rule != "listed":
        return None
    listing = Path(protocol.source).parent / split.cold_items_file
    if not listing.is_file():
        raise InputError(f"{listing}: the cold-item list of protocol '{protocol.name}' is missing")
    if sha256_file(listing) != split.cold_items_sha256:
        raise InputError(f"{listing}: SHA-256 {sha256_file(listing)} does not match the protocol's cold_items_sha256")
    ids = [line.split("#")[0].strip() for line in listing.read_text().splitlines()]
    try:
        cold = np.array([int(i) for i in ids if i], dtype=np.int64)
    except ValueError:
        raise InputError(f"{listing}: one integer item id a line ('#' starts a comment)") from None
    if len(np.unique(cold)) != len(cold) or len(cold) != protocol.data.n_cold_items:
        raise InputError(f"{listing}: {len(cold)} ids ({len(np.unique(cold))} distinct), the protocol asks for "
                         f"{protocol.data.n_cold_items} distinct cold items")
    return cold
