"""Importing DVBPR-format .npy files (tests/dvbpr_files.py writes them as the distributed ones were): the
splits, the listed cold items, the packed JPEGs, and every rule a file can break (one-line errors)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from aipbench.data.dvbpr_npy import import_dvbpr_npy
from aipbench.data.packed import PackedImages, decode_image
from aipbench.errors import InputError
from aipbench.protocol import load_protocol
from dvbpr_files import ROOT, counts, make_raw, uninteracted, write_npy, write_protocol

N_USERS, N_ITEMS, N_COLD, SIZE, HOOK = 30, 120, 10, 64, 3


def _protocol(tmp_path: Path, raw: dict, *, cold=None, **kw):
    folder = tmp_path / "protocols"
    folder.mkdir(exist_ok=True)
    cold = uninteracted(raw)[:N_COLD] if cold is None else cold
    return load_protocol(write_protocol(folder, "dvbpr-test", raw, cold=cold, image_size=SIZE, **kw))


def _import(tmp_path: Path, data: Path, proto):
    out = tmp_path / f"out-{data.stem}"
    out.mkdir(exist_ok=True)
    return import_dvbpr_npy(data, proto, out)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dvbpr")
    raw = make_raw()
    data = write_npy(tmp / "Small.npy", raw)
    proto = _protocol(tmp, raw)
    dataset, source = _import(tmp, data, proto)
    return raw, proto, dataset, source, data


def _ids(records) -> list[int]:
    return [int(r[b"productid"]) for r in records]


def test_splits_match_the_file(imported):
    raw, _, ds, _, _ = imported
    assert ds.n_users == N_USERS and ds.n_items == N_ITEMS
    val = np.array([_ids(raw["user_validation"][u])[0] for u in range(N_USERS)])
    test = np.array([_ids(raw["user_test"][u])[0] for u in range(N_USERS)])
    np.testing.assert_array_equal(ds.validation_items, val)
    np.testing.assert_array_equal(ds.test_items, test)
    for u in range(N_USERS):
        expected = sorted(set(_ids(raw["user_train"][u])) - {val[u], test[u]})
        assert ds.user_train_items(u).tolist() == expected
    assert test[0] in _ids(raw["user_train"][0]) and test[0] not in ds.user_train_items(0)  # trained on its test item
    assert val[1] in _ids(raw["user_train"][1]) and val[1] not in ds.user_train_items(1)
    assert ds.user_train_items(3).size == 0  # an empty training list is kept as one


def test_source_records_the_file(imported):
    raw, _, ds, source, data = imported
    assert source["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert tuple(source["counts"].values()) == counts(raw)
    assert source["hook"] == {"item": HOOK, "asin": f"B{HOOK:07d}"}


def test_images_are_the_distributed_jpegs_decoded_to_rgb(imported):
    raw, _, ds, source, _ = imported
    assert isinstance(ds.images, PackedImages) and ds.images.shape == (N_ITEMS, 3, SIZE, SIZE)
    blob = b"".join(raw["Item"][i][b"imgs"] for i in range(N_ITEMS))
    assert ds.images.blob.read_bytes() == blob and source["image_bytes"] == len(blob)  # kept as they are
    # grayscale (0, 5), CMYK (7, 14), progressive (11, 22) and plain RGB photos: all decode to RGB
    for i in (0, 1, 5, 7, 11, 14, 22, N_ITEMS - 1):
        np.testing.assert_array_equal(ds.images[i], decode_image(raw["Item"][i][b"imgs"], SIZE))
    batch = ds.images[np.array([7, 0, 11])]
    assert batch.dtype == np.uint8 and batch.shape == (3, 3, SIZE, SIZE)
    np.testing.assert_array_equal(batch[1], ds.images[0])
    gray = ds.images[5]
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])


def test_cold_items_are_the_listed_ones_and_the_hook_the_most_interacted(imported):
    raw, _, ds, _, _ = imported
    np.testing.assert_array_equal(ds.cold_items, uninteracted(raw)[:N_COLD])
    counts_ = ds.item_train_counts()
    assert ds.hook_item == HOOK == int(np.argmax(counts_)) and counts_[HOOK] == N_USERS - 1


@pytest.mark.parametrize("style", ["python3", "latin1", "list-item"])
def test_resaved_and_list_typed_files_import_the_same(imported, tmp_path, style):
    raw, proto, ds, _, _ = imported
    if style == "list-item":
        raw = dict(raw, Item=[raw["Item"][i] for i in range(N_ITEMS)])
    data = write_npy(tmp_path / f"{style}.npy", raw, style="latin1" if style == "latin1" else "python3")
    again, _ = _import(tmp_path, data, proto)
    for name in ("train_indptr", "train_items", "validation_items", "test_items", "cold_items"):
        np.testing.assert_array_equal(getattr(again, name), getattr(ds, name))
    assert again.images.blob.read_bytes() == ds.images.blob.read_bytes()


def _one_line(err: pytest.ExceptionInfo, data: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(data)), msg
    return msg


def test_counts_that_differ_from_table2_show_both(tmp_path):
    raw = make_raw()
    proto = _protocol(tmp_path, raw)
    raw["user_train"][5] = raw["user_train"][5][:-1]  # one interaction fewer than the protocol pins
    data = write_npy(tmp_path / "Other.npy", raw)
    with pytest.raises(InputError) as err:
        _import(tmp_path, data, proto)
    users, items, records = counts(raw)
    msg = _one_line(err, data)
    assert f"the file has users {users}, items {items}, interactions {records}" in msg
    assert f"expects users {users}, items {items}, interactions {records + 1}" in msg
    from aipbench.hashing import sha256_file

    # a protocol of the author's own: its own counts named (not the paper's), and the file's SHA-256 to pin
    assert f"interactions {records + 1} (its [data.file] counts;" in msg
    assert f"The file's SHA-256 is {sha256_file(data)}" in msg


def test_a_pinned_sha256_is_checked(tmp_path):
    raw = make_raw()
    data = write_npy(tmp_path / "Small.npy", raw)
    proto = _protocol(tmp_path, raw, sha256="ab" * 32)
    with pytest.raises(InputError) as err:
        _import(tmp_path, data, proto)
    msg = _one_line(err, data)
    assert "ab" * 32 in msg and hashlib.sha256(data.read_bytes()).hexdigest() in msg


def test_truncated_file(tmp_path):
    raw = make_raw()
    data = write_npy(tmp_path / "Small.npy", raw)
    cut = tmp_path / "Cut.npy"
    cut.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated") as err:
        _import(tmp_path, cut, _protocol(tmp_path, raw))
    _one_line(err, cut)


def test_corrupt_and_missing_jpeg(tmp_path):
    raw = make_raw()
    proto = _protocol(tmp_path, raw)
    good = raw["Item"][7][b"imgs"]
    for bad, rule in [(good[: len(good) // 3], "item 7: image cannot be decoded"),
                      (b"certainly not a jpeg", "item 7: image cannot be decoded")]:
        raw["Item"][7] = {b"imgs": bad}
        data = write_npy(tmp_path / "Bad.npy", raw)
        with pytest.raises(InputError, match=rule) as err:
            _import(tmp_path, data, proto)
        _one_line(err, data)
        assert " at 0x" not in str(err.value)  # the same line on every run: no object address
    raw["Item"][7] = {b"imgs": good}
    del raw["Item"][11]
    data = write_npy(tmp_path / "Bad.npy", raw)
    with pytest.raises(InputError, match=r"item 11: no image"):
        _import(tmp_path, data, proto)


def _two_validation_items(raw):
    raw["user_validation"][4] = raw["user_validation"][4] + [dict(raw["user_validation"][4][0])]


def _no_test_item(raw):
    raw["user_test"][6] = []


def _item_out_of_range(raw):
    raw["user_train"][4] = raw["user_train"][4][:-1] + [{b"productid": N_ITEMS}]


def _no_productid(raw):
    raw["user_train"][4] = [{b"asin": b"B0"}] + raw["user_train"][4][1:]


def _users_missing(raw):
    raw["user_test"] = {u: v for u, v in raw["user_test"].items() if u != 9}


@pytest.mark.parametrize(("mutate", "pattern"), [
    (_two_validation_items, r"user_validation: user 4 has 2 items, every user needs exactly 1"),
    (_no_test_item, r"user_test: user 6 has 0 items"),
    (_item_out_of_range, rf"user_train: item id {N_ITEMS} is out of range"),
    (_no_productid, r"user_train: .*productid"),
    (_users_missing, r"user_test: user 9 has 0 items"),
])
def test_split_rules(tmp_path, mutate, pattern):
    raw = make_raw()
    mutate(raw)
    data = write_npy(tmp_path / "Bad.npy", raw)
    with pytest.raises(InputError, match=pattern) as err:
        _import(tmp_path, data, _protocol(tmp_path, raw))
    _one_line(err, data)


def test_a_listed_cold_item_with_interactions_is_refused_naming_it(tmp_path):
    raw = make_raw()
    used = [HOOK, 42]
    data = write_npy(tmp_path / "Small.npy", raw)
    proto = _protocol(tmp_path, raw, cold=uninteracted(raw)[: N_COLD - 2] + used)
    with pytest.raises(InputError, match=r"2 listed cold items have interactions .*: 3, 42") as err:
        _import(tmp_path, data, proto)
    _one_line(err, data)


def test_not_an_object_array_and_wrong_length(tmp_path):
    raw = make_raw()
    proto = _protocol(tmp_path, raw)
    plain = tmp_path / "Plain.npy"
    np.save(plain, np.arange(6))
    with pytest.raises(InputError, match="expected a pickled object array"):
        _import(tmp_path, plain, proto)
    short = write_npy(tmp_path / "Short.npy", raw, parts=5)
    with pytest.raises(InputError, match="expected 6 entries .* got 5"):
        _import(tmp_path, short, proto)


def test_a_synthetic_protocol_has_nothing_to_import(tmp_path):
    data = write_npy(tmp_path / "Small.npy", make_raw())
    with pytest.raises(InputError, match="generates its data"):
        import_dvbpr_npy(data, load_protocol("tiny"), tmp_path)


def test_cold_list_must_match_its_pinned_hash(tmp_path):
    raw = make_raw()
    proto = _protocol(tmp_path, raw)
    listing = Path(proto.source).parent / proto.split.cold_items_file
    listing.write_text(listing.read_text() + "# an edit\n")
    data = write_npy(tmp_path / "Small.npy", raw)
    with pytest.raises(InputError, match="does not match the protocol's cold_items_sha256"):
        _import(tmp_path, data, proto)


@pytest.mark.parametrize(("name", "dataset", "table2"), [
    ("amazon-men-v1", "amazon-men", (34244, 110636, 254870)),
    ("tradesy-v1", "tradesy", (33864, 326393, 655409)),
])
def test_paper_protocols_pin_table2_and_the_authors_cold_items(name, dataset, table2):
    proto = load_protocol(name)
    f = proto.data.file
    assert (f.users, f.items, f.interactions) == table2 and f.sha256 is None
    assert proto.split.cold_rule == "listed" and proto.data.n_cold_items == 1000
    listing = ROOT / "protocols" / proto.split.cold_items_file
    assert hashlib.sha256(listing.read_bytes()).hexdigest() == proto.split.cold_items_sha256
    shared = ROOT.parent / "shared" / "data" / "paper-cold-items" / f"{dataset}.txt"
    if shared.is_file():  # the authors' ids as the project received them
        assert listing.read_bytes() == shared.read_bytes()
    ids = [int(x) for x in re.findall(r"^\d+$", listing.read_text(), flags=re.M)]
    assert len(ids) == len(set(ids)) == 1000 and max(ids) < f.items
