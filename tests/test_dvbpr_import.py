"""Importing DVBPR-format .npy files: tests write a small file of the same format themselves."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aipbench.data.dvbpr_npy import PLACEHOLDER_SHA256, decode_item_image, import_dvbpr_npy
from aipbench.hashing import sha256_file
from aipbench.protocol import load_protocol

ROOT = Path(__file__).resolve().parent.parent
N_USERS, N_ITEMS, N_COLD, SIZE, HOOK = 30, 120, 10, 64, 3


def _jpeg(rng: np.random.Generator, i: int) -> bytes:
    h, w = int(rng.integers(12, 40)), int(rng.integers(12, 40))
    pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    if i % 5 == 0:
        img = img.convert("L")  # grayscale JPEGs exist in the real files; the importer converts to RGB
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _record(i: int, u: int) -> dict:
    # As a Python 2 pickle read with encoding='bytes' gives them: byte-string keys, extra fields.
    return {b"productid": i, b"reviewerID": f"A{u:05d}".encode(), b"asin": f"B{i:07d}".encode()}


def make_raw(seed: int = 0) -> dict:
    """Python objects of a small DVBPR file. Items 90..119 (and others) have no interactions; HOOK is in every
    user's training list; user 0 also trained on its test item, user 1 on its validation item, user 2
    twice on one item."""
    rng = np.random.default_rng(seed)
    train, val, test = {}, [], {}
    for u in range(N_USERS):
        picks = rng.choice(np.arange(10, 90), size=int(rng.integers(4, 8)), replace=False)
        v, t, rest = int(picks[0]), int(picks[1]), [int(x) for x in picks[2:]]
        items = [HOOK, *rest]
        if u == 0:
            items.append(t)
        if u == 1:
            items.append(v)
        if u == 2:
            items.append(rest[0])
        train[u] = [_record(i, u) for i in items]
        val.append([_record(v, u)])
        test[u] = [_record(np.int64(t), u)]  # numpy ints are valid ids too
    item = {i: {b"imgs": _jpeg(rng, i), b"asin": f"B{i:07d}".encode()} for i in range(N_ITEMS)}
    return {"user_train": train, "user_validation": val, "user_test": test, "Item": item,
            "usernum": N_USERS, "itemnum": N_ITEMS}


def save_npy(path: Path, raw: dict, n: int = 6) -> Path:
    keys = ["user_train", "user_validation", "user_test", "Item", "usernum", "itemnum"][:n]
    arr = np.empty(len(keys), dtype=object)
    for k, key in enumerate(keys):
        arr[k] = raw[key]
    np.save(path, arr, allow_pickle=True)
    return path


def make_protocol(tmp_path: Path, data_file: Path | None, *, sha256: str | None = None, n_cold: int = N_COLD,
                  name: str = "dvbpr-test"):
    text = (ROOT / "protocols" / "amazon-men-v1.toml").read_text(encoding="utf-8")
    digest = sha256 if sha256 is not None else sha256_file(data_file)
    for pattern, value in [(r'^name = "amazon-men-v1"$', f'name = "{name}"'),
                           (r'^sha256 = "0{64}"$', f'sha256 = "{digest}"'),
                           (r"^n_cold_items = \d+", f"n_cold_items = {n_cold}"),
                           (r"^image_size = \d+", f"image_size = {SIZE}")]:
        text, count = re.subn(pattern, value, text, flags=re.M)
        assert count == 1, pattern
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return load_protocol(path)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dvbpr")
    raw = make_raw()
    data = save_npy(tmp / "Small.npy", raw)
    proto = make_protocol(tmp, data)
    return raw, proto, import_dvbpr_npy(data, proto, tmp / "images.npy"), tmp


def _ids(records) -> list[int]:
    return [int(r[b"productid"]) for r in records]


def _uninteracted(raw: dict) -> set[int]:
    used = {i for split in ("user_train", "user_validation", "user_test") for u in range(N_USERS)
            for i in _ids(raw[split][u])}
    return set(range(N_ITEMS)) - used


def test_splits_match_file(imported):
    raw, _, ds, _ = imported
    assert ds.n_users == N_USERS and ds.n_items == N_ITEMS
    val = np.array([_ids(raw["user_validation"][u])[0] for u in range(N_USERS)])
    test = np.array([_ids(raw["user_test"][u])[0] for u in range(N_USERS)])
    np.testing.assert_array_equal(ds.validation_items, val)
    np.testing.assert_array_equal(ds.test_items, test)
    for u in range(N_USERS):
        expected = sorted(set(_ids(raw["user_train"][u])) - {val[u], test[u]})
        assert ds.user_train_items(u).tolist() == expected
    assert test[0] in _ids(raw["user_train"][0]) and test[0] not in ds.user_train_items(0)
    assert val[1] in _ids(raw["user_train"][1]) and val[1] not in ds.user_train_items(1)


def test_images_are_resized_rgb_memmap(imported):
    raw, _, ds, tmp = imported
    assert ds.images.shape == (N_ITEMS, 3, SIZE, SIZE) and ds.images.dtype == np.uint8
    assert isinstance(ds.images, np.memmap) and not ds.images.flags.writeable
    assert Path(ds.images.filename).resolve() == (tmp / "images.npy").resolve()
    for i in (0, 1, 57, N_ITEMS - 1):
        np.testing.assert_array_equal(ds.images[i], decode_item_image(raw["Item"][i][b"imgs"], SIZE))
    img = Image.open(io.BytesIO(raw["Item"][5][b"imgs"]))
    assert img.mode == "L"
    expected = np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    np.testing.assert_array_equal(ds.images[5], expected)


def test_cold_items_have_no_interactions(imported):
    raw, _, ds, _ = imported
    assert ds.cold_items.shape == (N_COLD,) and np.all(np.diff(ds.cold_items) > 0)
    used = set(ds.train_items.tolist()) | set(ds.validation_items.tolist()) | set(ds.test_items.tolist())
    assert not used & set(ds.cold_items.tolist())
    assert set(ds.cold_items.tolist()) <= _uninteracted(raw)


def test_hook_is_most_interacted_training_item(imported):
    _, _, ds, _ = imported
    counts = ds.item_train_counts()
    assert ds.hook_item == HOOK == int(np.argmax(counts))
    assert counts[HOOK] == N_USERS and np.sort(counts)[-2] < N_USERS


def test_import_is_deterministic_and_item_list_accepted(imported, tmp_path):
    raw, _, ds, _ = imported
    raw = dict(raw, Item=[raw["Item"][i] for i in range(N_ITEMS)])
    data = save_npy(tmp_path / "List.npy", raw)
    again = import_dvbpr_npy(data, make_protocol(tmp_path, data), tmp_path / "img.npy", progress=True)
    np.testing.assert_array_equal(again.cold_items, ds.cold_items)
    np.testing.assert_array_equal(again.train_items, ds.train_items)
    np.testing.assert_array_equal(np.asarray(again.images), np.asarray(ds.images))


def test_hash_mismatch(tmp_path):
    data = save_npy(tmp_path / "Small.npy", make_raw())
    proto = make_protocol(tmp_path, data, sha256="ab" * 32)
    with pytest.raises(ValueError, match="SHA-256 mismatch") as err:
        import_dvbpr_npy(data, proto, tmp_path / "images.npy")
    msg = str(err.value)
    assert "\n" not in msg and str(data) in msg and "ab" * 32 in msg and sha256_file(data) in msg
    assert not (tmp_path / "images.npy").exists()
    proto = make_protocol(tmp_path, data, sha256=PLACEHOLDER_SHA256)
    with pytest.raises(ValueError, match="placeholder"):
        import_dvbpr_npy(data, proto, tmp_path / "images.npy")


def test_truncated_file(tmp_path):
    data = save_npy(tmp_path / "Small.npy", make_raw())
    cut = tmp_path / "Cut.npy"
    blob = data.read_bytes()
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated") as err:
        import_dvbpr_npy(cut, make_protocol(tmp_path, cut), tmp_path / "images.npy")
    assert "\n" not in str(err.value) and str(cut) in str(err.value)


def test_corrupt_and_missing_jpeg(tmp_path):
    raw = make_raw()
    good = raw["Item"][7][b"imgs"]
    raw["Item"][7] = {b"imgs": good[: len(good) // 3]}
    data = save_npy(tmp_path / "Bad.npy", raw)
    with pytest.raises(ValueError, match=r"item 7: image cannot be decoded") as err:
        import_dvbpr_npy(data, make_protocol(tmp_path, data), tmp_path / "images.npy")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "images.npy").exists()  # the partial image file is removed
    raw["Item"][7] = {b"imgs": b"certainly not a jpeg"}
    data = save_npy(tmp_path / "Bad.npy", raw)
    with pytest.raises(ValueError, match=r"item 7: image cannot be decoded"):
        import_dvbpr_npy(data, make_protocol(tmp_path, data), tmp_path / "images.npy")
    del raw["Item"][11]
    raw["Item"][7] = {b"imgs": good}
    data = save_npy(tmp_path / "Bad.npy", raw)
    with pytest.raises(ValueError, match=r"item 11: no image"):
        import_dvbpr_npy(data, make_protocol(tmp_path, data), tmp_path / "images.npy")


def _two_validation_items(raw):
    raw["user_validation"][4] = raw["user_validation"][4] + [_record(20, 4)]


def _no_test_item(raw):
    raw["user_test"][6] = []


def _item_out_of_range(raw):
    raw["user_train"][3] = raw["user_train"][3] + [_record(N_ITEMS, 3)]


def _no_productid(raw):
    raw["user_train"][3] = [{b"asin": b"B0"}]


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (_two_validation_items, r"user_validation: user 4 has 2 items, every user needs exactly 1"),
        (_no_test_item, r"user_test: user 6 has 0 items"),
        (_item_out_of_range, rf"user_train: item id {N_ITEMS} is out of range"),
        (_no_productid, r"user_train: .*productid"),
    ],
)
def test_split_rules(tmp_path, mutate, pattern):
    raw = make_raw()
    mutate(raw)
    data = save_npy(tmp_path / "Bad.npy", raw)
    with pytest.raises(ValueError, match=pattern) as err:
        import_dvbpr_npy(data, make_protocol(tmp_path, data), tmp_path / "images.npy")
    assert "\n" not in str(err.value) and str(data) in str(err.value)


def test_not_an_object_array_and_wrong_length(tmp_path):
    plain = tmp_path / "Plain.npy"
    np.save(plain, np.arange(6))
    with pytest.raises(ValueError, match="expected a pickled object array"):
        import_dvbpr_npy(plain, make_protocol(tmp_path, plain), tmp_path / "images.npy")
    short = save_npy(tmp_path / "Short.npy", make_raw(), n=5)
    with pytest.raises(ValueError, match="expected 6 entries .* got 5"):
        import_dvbpr_npy(short, make_protocol(tmp_path, short), tmp_path / "images.npy")


def test_too_many_cold_items_fails_before_decoding(tmp_path):
    raw = make_raw()
    raw["Item"][0] = {b"imgs": b"broken"}  # never reached: the cold rule fails first
    data = save_npy(tmp_path / "Small.npy", raw)
    n_cold = len(_uninteracted(raw)) + 1
    with pytest.raises(ValueError, match=f"only {n_cold - 1} items have no interactions") as err:
        import_dvbpr_npy(data, make_protocol(tmp_path, data, n_cold=n_cold), tmp_path / "images.npy")
    assert str(err.value).startswith(str(data))
    assert not (tmp_path / "images.npy").exists()


def test_rejects_non_dvbpr_protocol(tmp_path):
    data = save_npy(tmp_path / "Small.npy", make_raw())
    with pytest.raises(ValueError, match="dvbpr-npy"):
        import_dvbpr_npy(data, load_protocol("tiny"), tmp_path / "images.npy")


def test_sha256_file_streams(tmp_path):
    blob = np.random.default_rng(1).bytes(3 * (1 << 20) + 17)  # spans several 1 MiB chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    assert sha256_file(path) == hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize("name", ["amazon-men-v1", "tradesy-v1"])
def test_shipped_real_data_protocols(name):
    proto = load_protocol(name)
    assert proto.data.source == "dvbpr-npy" and proto.split.rule == "as-distributed"
    assert proto.data.image_size == 224 and proto.data.n_cold_items == 1000
    assert proto.rankers.extractor.kind == "torchvision-alexnet" and proto.rankers.extractor.pretrain is None
    assert proto.rankers.dvbpr.conv_widths == (64, 256, 256, 256, 256) and proto.rankers.dvbpr.fc_widths == (4096, 4096)
    assert proto.bpr.factors == 64 and proto.bpr.weight_decay == 0.001
    assert proto.bpr.learning_rate == {"amazon-men-v1": 0.01, "tradesy-v1": 0.5}[name]
