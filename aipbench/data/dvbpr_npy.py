"""Import a real data set distributed with DVBPR (Amazon Men, Tradesy.com) into the internal format."""

from __future__ import annotations

import io
import operator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aipbench.data.dataset import Dataset
from aipbench.data.splits import build_dataset, to_csr
from aipbench.hashing import sha256_file
from aipbench.protocol.schema import Protocol

__all__ = ["PLACEHOLDER_SHA256", "decode_item_image", "import_dvbpr_npy", "read_dvbpr_npy"]

PLACEHOLDER_SHA256 = "0" * 64  # what a protocol carries until the distributed file's hash is filled in
_IMAGE_CHUNK = 256  # items decoded between two writes to the memmap


def _get(record: Any, key: str) -> Any:
    """``record[b'key']`` (a Python 2 pickle read with ``encoding='bytes'``), else ``record['key']``."""
    try:
        return record[key.encode()]
    except KeyError:
        return record[key]


def _per_user(obj: Any, n_users: int, path: Path, name: str) -> list:
    """A split (a dict keyed by user id, or a sequence indexed by it) as a list of ``n_users`` lists."""
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, (int, np.integer)) or not 0 <= k < n_users]
        if bad:
            raise ValueError(f"{path}: {name}: user key {bad[0]!r} is not an integer in [0, usernum={n_users})")
        return [obj.get(u, ()) for u in range(n_users)]
    if isinstance(obj, (list, tuple, np.ndarray)):
        if len(obj) != n_users:
            raise ValueError(f"{path}: {name}: has {len(obj)} users, usernum says {n_users}")
        return list(obj)
    raise ValueError(f"{path}: {name}: expected a dict or a list of users, got {type(obj).__name__}")


def _flatten(lists: list, path: Path, name: str, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-user lists of ``{b'productid': id, ...}`` → (per-user counts, flat int64 item ids)."""
    try:
        counts = np.fromiter((len(records) for records in lists), dtype=np.int64, count=len(lists))
        items = np.fromiter(
            (operator.index(_get(r, "productid")) for records in lists for r in records),
            dtype=np.int64,
            count=int(counts.sum()),
        )
    except (KeyError, TypeError, IndexError) as err:
        raise ValueError(
            f"{path}: {name}: every user must map to a list of dicts with an integer b'productid' "
            f"({type(err).__name__}: {err})"
        ) from None
    bad = np.flatnonzero((items < 0) | (items >= n_items))
    if bad.size:
        raise ValueError(f"{path}: {name}: item id {int(items[bad[0]])} is out of range [0, itemnum={n_items})")
    return counts, items


def read_dvbpr_npy(path: str | Path) -> tuple[Any, list, list, list, int, int]:
    """Unpickle a DVBPR ``.npy`` file and check its shape; no hash check (see ``import_dvbpr_npy``).

    Returns ``(Item, user_train, user_validation, user_test, usernum, itemnum)`` with every ``user_*``
    turned into a list of ``usernum`` per-user lists of records.
    """
    path = Path(path)
    try:
        raw = np.load(path, allow_pickle=True, encoding="bytes")
    except Exception as err:  # truncated pickles raise EOFError, UnpicklingError, ValueError, ...
        msg = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(f"{path}: truncated or not a pickled .npy file ({type(err).__name__}: {msg})") from None
    if not isinstance(raw, np.ndarray) or raw.dtype != object:
        what = f"{raw.dtype} array" if isinstance(raw, np.ndarray) else type(raw).__name__
        raise ValueError(f"{path}: expected a pickled object array, got a {what}")
    parts = raw.item() if raw.ndim == 0 else raw
    if not isinstance(parts, (list, tuple, np.ndarray)) or np.ndim(parts) > 1 or len(parts) != 6:
        n = len(parts) if hasattr(parts, "__len__") else type(parts).__name__
        raise ValueError(
            f"{path}: expected 6 entries [user_train, user_validation, user_test, Item, usernum, itemnum], got {n}"
        )
    user_train, user_validation, user_test, item, usernum, itemnum = parts
    try:
        n_users, n_items = operator.index(usernum), operator.index(itemnum)
    except TypeError:
        raise ValueError(f"{path}: usernum and itemnum must be integers, got {usernum!r}, {itemnum!r}") from None
    if n_users < 1 or n_items < 1:
        raise ValueError(f"{path}: usernum and itemnum must be positive, got {n_users}, {n_items}")
    splits = [_per_user(s, n_users, path, name) for s, name in
              ((user_train, "user_train"), (user_validation, "user_validation"), (user_test, "user_test"))]
    return item, *splits, n_users, n_items


def _item_bytes(item: Any, i: int, path: Path) -> bytes:
    try:
        data = _get(item[i], "imgs")
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"{path}: item {i}: no image (Item[{i}][b'imgs'] is missing)") from None
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
        raise ValueError(f"{path}: item {i}: no image (Item[{i}][b'imgs'] is {type(data).__name__}, not JPEG bytes)")
    return bytes(data)


def decode_item_image(data: bytes, size: int) -> np.ndarray:
    """Decode an image (JPEG, or any format Pillow reads), convert to RGB and resize it directly to
    ``size``×``size`` with Pillow's BICUBIC filter (aspect ratio not kept, as in the DVBPR and AIP
    reference code, which resize to 224×224). Returns a uint8 3×size×size array."""
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def _decode_all(item: Any, out: np.ndarray, path: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    n, size = out.shape[0], out.shape[-1]
    buf = np.empty((min(_IMAGE_CHUNK, n), 3, size, size), dtype=np.uint8)
    with tqdm(total=n, unit="img", desc="decoding images", disable=not progress) as bar:
        for start in range(0, n, buf.shape[0]):
            stop = min(start + buf.shape[0], n)
            for k, i in enumerate(range(start, stop)):
                data = _item_bytes(item, i, path)
                try:
                    buf[k] = decode_item_image(data, size)
                except Exception as err:  # UnidentifiedImageError, OSError (truncated), DecompressionBombError
                    msg = str(err).splitlines()[0] if str(err) else ""
                    why = f"{type(err).__name__}: {msg}"
                    raise ValueError(f"{path}: item {i}: image cannot be decoded ({why})") from None
            out[start:stop] = buf[: stop - start]
            bar.update(stop - start)


def import_dvbpr_npy(
    path: str | Path, protocol: Protocol, images_path: str | Path, *, progress: bool = False
) -> Dataset:
    """Convert a DVBPR-distributed ``.npy`` file into a ``Dataset`` under ``protocol``.

    Steps: the file's SHA-256 must equal ``protocol.data.file.sha256``; the pickled
    ``[user_train, user_validation, user_test, Item, usernum, itemnum]`` is checked (one validation and
    one test item per user, item ids in range); the file's own validation and test items are kept
    ("as-distributed"). **A user's training items equal to their validation or test item are dropped**
    (the internal format requires the three to be disjoint), and repeated training items are merged.
    Every item's image is decoded and resized (see ``decode_item_image``) into a uint8 N×3×S×S ``.npy``
    written at ``images_path`` (a memory map: Amazon Men at 224 px is 16.6 GB), chunk by chunk.
    Cold items and the hook follow the protocol's rules (``aipbench.data.splits.build_dataset``, seed
    ``protocol.split.seed``). The returned Dataset's ``images`` is a read-only memory map of
    ``images_path``; if the import fails, a partly written ``images_path`` is removed.
    Every violation is a one-line ``ValueError`` naming the file.
    """
    path, images_path = Path(path), Path(images_path)
    if protocol.data.source != "dvbpr-npy" or protocol.data.file is None:
        raise ValueError(f"protocol '{protocol.name}': data.source is {protocol.data.source!r}, not 'dvbpr-npy'")
    if protocol.split.rule != "as-distributed":
        raise ValueError(f"protocol '{protocol.name}': split.rule must be 'as-distributed' for a DVBPR file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected {protocol.data.file.name})")
    expected, actual = protocol.data.file.sha256, sha256_file(path)
    if actual != expected:
        hint = " (the protocol still carries the placeholder hash)" if expected == PLACEHOLDER_SHA256 else ""
        raise ValueError(
            f"{path}: SHA-256 mismatch: protocol '{protocol.name}' expects {expected}{hint}, file has {actual}"
        )

    item, train, validation, test, n_users, n_items = read_dvbpr_npy(path)
    flat = {}
    for lists, name in ((validation, "user_validation"), (test, "user_test")):
        counts, items = _flatten(lists, path, name, n_items)
        wrong = np.flatnonzero(counts != 1)
        if wrong.size:
            u = int(wrong[0])
            raise ValueError(f"{path}: {name}: user {u} has {int(counts[u])} items, every user needs exactly 1")
        flat[name] = items
    validation_items, test_items = flat["user_validation"], flat["user_test"]
    train_counts, train_items = _flatten(train, path, "user_train", n_items)
    train_users = np.repeat(np.arange(n_users, dtype=np.int64), train_counts)
    keep = (train_items != validation_items[train_users]) & (train_items != test_items[train_users])
    train_indptr, train_items = to_csr(train_users[keep], train_items[keep], n_users)
    if not isinstance(item, (dict, list, tuple, np.ndarray)):
        raise ValueError(f"{path}: Item: expected a dict or a list indexed by item id, got {type(item).__name__}")

    size = protocol.data.image_size
    images_path.parent.mkdir(parents=True, exist_ok=True)
    images = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=(n_items, 3, size, size))
    try:
        # Cold items and the hook only need the interactions: choosing them before the long decode
        # makes a protocol that asks for too many cold items fail at once.
        try:
            dataset = build_dataset(
                images, train_indptr=train_indptr, train_items=train_items, validation_items=validation_items,
                test_items=test_items,
                n_cold=protocol.data.n_cold_items, seed=protocol.split.seed,
            )
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        _decode_all(item, images, path, progress)
        images.flush()
    except BaseException:
        images = None  # close the memory map before removing its file
        images_path.unlink(missing_ok=True)
        raise
    images = None
    readonly = np.load(images_path, mmap_mode="r")
    return Dataset(
        images=readonly,
        train_indptr=dataset.train_indptr,
        train_items=dataset.train_items,
        validation_items=dataset.validation_items,
        test_items=dataset.test_items,
        cold_items=dataset.cold_items,
        hook_item=dataset.hook_item,
    )
