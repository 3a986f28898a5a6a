"""DVBPR-format data files made by the tests: ``[user_train, user_validation, user_test, Item, usernum,
itemnum]`` pickled into a ``.npy`` the way the distributed files were written (Python 2, protocol 2: every
string a byte string), plus their variants — a latin1 re-save, list- or dict-typed Item, records with
extra keys, grayscale / CMYK / progressive JPEGs — and a protocol over such a file."""

from __future__ import annotations

import io
import pickle
import re
import struct
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


class _Python2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle did at protocol 2: ``str`` and ``bytes`` alike as BINSTRING, which
    Python 3 reads back as bytes (``encoding='bytes'``) or as latin1 text (``encoding='latin1'``)."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_string(self, obj) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(data)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + data if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_string
    dispatch[str] = _save_string


def jpeg(rng: np.random.Generator, kind: str = "rgb", size: tuple[int, int] | None = None) -> bytes:
    """A random photo as JPEG bytes: ``rgb``, ``gray`` (mode L), ``cmyk`` or ``progressive``."""
    h, w = size or (int(rng.integers(24, 48)), int(rng.integers(24, 48)))
    base = rng.integers(0, 256, size=(1, 1, 3)) + rng.integers(-40, 40, size=(h, w, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    if kind == "gray":
        img.convert("L").save(out, format="JPEG", quality=90)
    elif kind == "cmyk":
        img.convert("CMYK").save(out, format="JPEG", quality=90)
    else:
        img.save(out, format="JPEG", quality=90, progressive=kind == "progressive")
    return out.getvalue()


def _record(i: int, u: int) -> dict:
    # a review record as the files hold them: byte-string keys, extra fields beside the item id
    return {b"productid": i, b"reviewerID": f"A{u:05d}".encode(), b"asin": f"B{i:07d}".encode(), b"rating": 4.0}


def make_raw(*, n_users: int = 30, n_items: int = 120, hook: int = 3, seed: int = 0, image_size=None) -> dict:
    """The Python objects of a small DVBPR file. Items ``[10, 90)`` are interacted with; the rest (and the
    first ten but the hook) are not. The hook is in every user's training list; user 0 also trained on its
    test item, user 1 on its validation item, user 2 twice on one item; user 3 has no training records.
    Every fifth image is grayscale, every seventh CMYK, every eleventh progressive."""
    rng = np.random.default_rng(seed)
    train, val, test = {}, [], {}
    for u in range(n_users):
        picks = rng.choice(np.arange(10, 90), size=int(rng.integers(4, 8)), replace=False)
        v, t, rest = int(picks[0]), int(picks[1]), [int(x) for x in picks[2:]]
        items = [] if u == 3 else [hook, *rest]
        items += [t] if u == 0 else [v] if u == 1 else [rest[0]] if u == 2 else []
        train[u] = [_record(i, u) for i in items]
        val.append([_record(v, u)])
        test[u] = [_record(np.int64(t), u)]  # numpy ints are valid ids too
    kinds = lambda i: "gray" if i % 5 == 0 else "cmyk" if i % 7 == 0 else "progressive" if i % 11 == 0 else "rgb"  # noqa: E731
    item = {i: {b"imgs": jpeg(rng, kinds(i), image_size), b"asin": f"B{i:07d}".encode(), b"price": 9.99}
            for i in range(n_items)}
    return {"user_train": train, "user_validation": val, "user_test": test, "Item": item,
            "usernum": n_users, "itemnum": n_items}


def _records(raw: dict):
    for split in ("user_train", "user_validation", "user_test"):
        per_user = raw[split]
        for u in range(raw["usernum"]):
            yield from (per_user.get(u, ()) if isinstance(per_user, dict) else per_user[u])


def counts(raw: dict) -> tuple[int, int, int]:
    """(usernum, itemnum, every record of the three splits): what a protocol's Table 2 counts pin."""
    return raw["usernum"], raw["itemnum"], sum(1 for _ in _records(raw))


def uninteracted(raw: dict) -> list[int]:
    used = {int(r[b"productid"]) for r in _records(raw) if b"productid" in r}
    return sorted(set(range(raw["itemnum"])) - used)


_KEYS = ("user_train", "user_validation", "user_test", "Item", "usernum", "itemnum")


def write_npy(path: Path, raw: dict, *, style: str = "python2", parts: int = 6) -> Path:
    """Write ``raw`` as a DVBPR ``.npy``: ``python2`` (as distributed), ``python3`` (np.save of the same
    objects), or ``latin1`` (the file read with ``encoding='latin1'`` and saved again: text keys and
    text image bytes)."""
    arr = np.empty(parts, dtype=object)
    for k, key in enumerate(_KEYS[:parts]):
        arr[k] = _latin1(raw[key]) if style == "latin1" else raw[key]
    if style != "python2":
        np.save(path, arr, allow_pickle=True)
        return path
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": arr.shape})
    _Python2Pickler(buf, protocol=2).dump(arr)
    # Python 2's NumPy named its module numpy.core, which NumPy 2 still reads
    path.write_bytes(buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    return path


def _latin1(obj):
    if isinstance(obj, bytes):
        return obj.decode("latin1")
    if isinstance(obj, dict):
        return {_latin1(k): _latin1(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_latin1(v) for v in obj]
    return obj


def write_protocol(folder: Path, name: str, raw: dict, *, cold: list[int], image_size: int = 64,
                   extractor: str = "torchvision-alexnet", small: bool = True, sha256: str | None = None) -> Path:
    """A real-data protocol over ``raw``'s file in ``folder`` (with its cold-item list beside it): amazon-men-v1
    with its name, Table 2 counts, cold items and image size replaced, and (``small``) rankers cut to CPU size."""
    import hashlib

    users, items, interactions = counts(raw)
    listing = folder / "cold-items" / f"{name}.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("# cold items of a test file\n" + "".join(f"{i}\n" for i in cold))
    text = (ROOT / "protocols" / "amazon-men-v1.toml").read_text(encoding="utf-8")
    subs = [(r'^name = "amazon-men-v1"$', f'name = "{name}"'), (r"^users = \d+$", f"users = {users}"),
            (r"^items = \d+$", f"items = {items}"), (r"^interactions = \d+$", f"interactions = {interactions}"),
            (r"^n_cold_items = \d+", f"n_cold_items = {len(cold)}"), (r"^image_size = \d+", f"image_size = {image_size}"),
            (r'^cold_items_file = ".*"$', f'cold_items_file = "cold-items/{name}.txt"'),
            (r'^cold_items_sha256 = ".*"$', f'cold_items_sha256 = "{hashlib.sha256(listing.read_bytes()).hexdigest()}"'),
            (r'^kind = "torchvision-alexnet"', f'kind = "{extractor}"')]
    if small:
        subs += [(r"^epochs = \d+", "epochs = 2"), (r"^n_candidates = \d+", "n_candidates = 40"),
                 (r"^conv_widths = \[64, 256, 256, 256, 256\]", "conv_widths = [8, 16, 16, 16, 16]"),
                 (r"^fc_widths = \[4096, 4096\]", "fc_widths = [32, 32]"), (r"^local_response_norm = true", "local_response_norm = false")]
    if sha256 is not None:
        subs.append((r"^interactions = (\d+)$", f'interactions = \\1\nsha256 = "{sha256}"'))
    for pattern, value in subs:
        text, n = re.subn(pattern, value, text, flags=re.M)
        assert n >= 1, pattern
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path
