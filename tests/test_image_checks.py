"""Untrusted images: every malformed folder or output is one clear error naming the file and the rule."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from aipbench.errors import InputError
from aipbench.harness.image_checks import MAX_PIXELS, check_adversarial, read_image_folder

COLD = np.array([3, 17, 42])
SIZE = 64


def write(folder, item, array=None, mode="RGB", size=SIZE):
    rng = np.random.default_rng(item)
    array = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) if array is None else array
    Image.fromarray(array).convert(mode).save(folder / f"{item}.png")
    return array


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    for i in COLD:
        write(d, int(i))
    return d


def test_a_good_folder_reads_in_cold_item_order(folder):
    images = read_image_folder(folder, COLD, SIZE)
    assert images.shape == (3, 3, SIZE, SIZE) and images.dtype == np.uint8
    with Image.open(folder / "17.png") as img:
        assert np.array_equal(images[1], np.asarray(img).transpose(2, 0, 1))


@pytest.mark.parametrize(
    ("damage", "rule"),
    [
        (lambda d: (d / "42.png").unlink(), "1 cold items have no image, e.g. 42.png"),
        (lambda d: write(d, 5), "5.png: 5 is not a cold item"),
        (lambda d: (d / "notes.txt").write_text("hi"), "notes.txt: name must be <cold_item_id>.png"),
        (lambda d: (d / "03.png").write_bytes(b""), "03.png: name must be"),
        (lambda d: (d / "3.png").write_bytes(b"GIF89a" + b"\0" * 40), "3.png: not a PNG file"),
        (lambda d: (d / "3.png").write_bytes((d / "3.png").read_bytes()[:200]), "3.png: unreadable or truncated PNG"),
        (lambda d: write(d, 3, mode="RGBA"), "3.png: mode RGBA"),
        (lambda d: write(d, 3, mode="L"), "3.png: mode L"),
        (lambda d: write(d, 3, size=65), "3.png: size 65×65"),
        (lambda d: (d / "sub").mkdir(), "sub: not a plain file"),
    ],
)
def test_each_bad_folder_is_one_line(folder, damage, rule):
    damage(folder)
    with pytest.raises(InputError) as info:
        read_image_folder(folder, COLD, SIZE)
    assert rule in str(info.value) and "\n" not in str(info.value)


def test_links_are_refused(folder, tmp_path):
    write(tmp_path, 99)
    (folder / "3.png").unlink()
    os.symlink(tmp_path / "99.png", folder / "3.png")
    with pytest.raises(InputError, match="symbolic links are not allowed"):
        read_image_folder(folder, COLD, SIZE)


def test_decompression_bombs_are_refused_before_decoding(folder):
    side = int(MAX_PIXELS**0.5) + 1
    Image.new("RGB", (side, side)).save(folder / "3.png", optimize=False)  # tiny file, huge image
    assert (folder / "3.png").stat().st_size < 5_000_000
    with pytest.raises(InputError, match="3.png: (.*pixel limit|too large to decode)"):
        read_image_folder(folder, COLD, SIZE)


@pytest.fixture
def originals():
    return np.random.default_rng(0).integers(0, 256, (3, 3, SIZE, SIZE), dtype=np.uint8)


def test_adversarial_output_within_budget_passes(originals):
    adv = np.clip(originals.astype(int) + 32, 0, 255).astype(np.uint8)
    assert check_adversarial(adv, originals, cold_items=COLD, returned_items=COLD, epsilon=32, source="a.py").shape == originals.shape


@pytest.mark.parametrize(
    ("make", "items", "rule"),
    [
        (lambda o: o.astype(np.float32), COLD, "must be uint8"),
        (lambda o: o[:, :1], COLD, "must be N×3×H×W"),
        (lambda o: o[:2], COLD, "returned 2 images for 3 cold items"),
        (lambda o: o[:, :, :32, :32], COLD, "image size 32×32"),
        (lambda o: o, COLD[::-1], "item ids differ"),
        (lambda o: np.clip(o.astype(int) + 33, 0, 255).astype(np.uint8), COLD, "L∞ distance 33 exceeds"),
    ],
)
def test_each_bad_output_is_one_line(originals, make, items, rule):
    with pytest.raises(InputError, match=rule):
        check_adversarial(make(originals), originals, cold_items=COLD, returned_items=items, epsilon=32, source="a.py")


def test_unbounded_outputs_skip_the_budget(originals):
    adv = 255 - originals
    assert check_adversarial(adv, originals, cold_items=COLD, returned_items=COLD, epsilon=None, source="c-sema").dtype == np.uint8
