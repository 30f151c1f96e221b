"""Issue 34, item 5: a set of the class's own images, as a folder or a zip of category folders."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from mnistlab import image_sets
from mnistlab.image_sets import ARCHIVE, EMPTY, LOOSE, NOT_AN_IMAGE, OUTSIDE, read_image_folder, read_image_set, read_image_zip
from tests.drivers import encoded, make_folder, shape_picture

SHAPES = ("circle", "square")


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_folder_of_category_folders_becomes_centred_28x28_inputs_whatever_the_images_size_colour_or_paper(tmp_path):
    found = read_image_folder(make_folder(tmp_path / "shapes"))
    assert found.class_names == ("circle", "square")
    assert found.counts() == {"circle": 3, "square": 3}
    assert found.images.shape == (6, 28, 28) and found.images.dtype == np.uint8
    assert found.skipped == ()
    for image in found.images:  # ink bright on black, fitted into 20x20 and centred, as the drawings are
        assert image[0].max() == 0 and image[:, 0].max() == 0 and image.max() > 200
        rows, columns = np.nonzero(image > 0)
        assert 10 <= rows.mean() <= 18 and 10 <= columns.mean() <= 18
    # A circle is hollow in its middle; a square's outline reaches its corners.
    circles, squares = found.images[found.labels == 0], found.images[found.labels == 1]
    assert all(circle[13:15, 13:15].max() < 100 for circle in circles)
    assert all(square[5:8, 5:8].max() > 100 for square in squares)


@pytest.mark.slow
def test_category_names_are_the_class_s_words_in_keras_order(tmp_path):
    """Turkish letters, emoji and spaces are names like any other; the order is Keras' (image_dataset_from_directory
    sorts the folders' names), so a model trained here names its answers as the same set loaded at home."""
    names = ("🐟 balık", "çember", "kare", "Şekil 2")
    folder = make_folder(tmp_path / "set", names, per_category=2, shapes=dict(zip(names, ("circle", "square", "triangle", "circle"), strict=True)))
    found = read_image_folder(folder)
    assert found.class_names == tuple(sorted(names))
    import keras

    home = keras.utils.image_dataset_from_directory(folder, image_size=(28, 28), color_mode="grayscale", batch_size=8, verbose=False)
    assert tuple(home.class_names) == found.class_names


def test_a_zip_of_a_folder_is_read_in_memory_with_its_wrapping_folder_taken_off(tmp_path):
    folder = make_folder(tmp_path / "shapes")
    files = {f"shapes/{path.relative_to(folder).as_posix()}": path.read_bytes() for path in sorted(folder.rglob("*.*"))}
    before = sorted(os.listdir(tmp_path))
    found = read_image_zip(zipped(files))
    assert found.class_names == SHAPES and found.counts() == {"circle": 3, "square": 3}
    assert sorted(os.listdir(tmp_path)) == before  # nothing unpacked
    path = tmp_path / "shapes.zip"
    path.write_bytes(zipped({name.removeprefix("shapes/"): data for name, data in files.items()}))
    assert read_image_set(path).counts() == found.counts()  # the same set without the wrapping folder


def test_what_cannot_be_used_is_skipped_and_counted_and_nothing_is_written_anywhere(tmp_path, monkeypatch):
    png = encoded(shape_picture("circle"))
    square = encoded(shape_picture("square"))
    blank = encoded(Image.new("L", (50, 50), 255))
    files = {
        "circle/1.png": png,
        "circle/2.png": png,
        "square/1.png": square,
        "square/2.PNG": square,
        "square/notes.txt": b"not an image",
        "square/fake.png": b"this is text with an image's name",
        "square/blank.png": blank,
        "circle/more.zip": zipped({"x/1.png": png}),
        "../escape.png": png,
        "/etc/absolute.png": png,
        "C:/windows.png": png,
        "readme.md": b"# shapes",
        "__MACOSX/circle/._1.png": b"mac",
        "circle/.DS_Store": b"mac",
    }
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a path that escaped would land next to here
    found = read_image_zip(zipped(files))
    assert found.counts() == {"circle": 2, "square": 2}
    assert dict(found.skipped) == {NOT_AN_IMAGE: 2, EMPTY: 1, ARCHIVE: 1, OUTSIDE: 3, LOOSE: 1}
    assert found.skipped_sentences() == [
        "skipped 1 archive inside the set",
        "skipped 1 image with nothing drawn on it",
        "skipped 1 file that is not inside a category folder",
        "skipped 2 files that are not PNG or JPEG images (or are broken)",
        "skipped 3 files whose paths leave the set's folder",
    ]
    assert list(tmp_path.rglob("*")) == [work]


def test_a_link_in_a_folder_that_points_outside_it_is_skipped_not_followed(tmp_path):
    folder = make_folder(tmp_path / "set")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.png").write_bytes(encoded(shape_picture("circle")))
    (folder / "circle" / "link.png").symlink_to(secret / "private.png")
    (folder / "stolen").symlink_to(secret, target_is_directory=True)
    found = read_image_folder(folder)
    assert found.counts() == {"circle": 3, "square": 3} and dict(found.skipped) == {OUTSIDE: 2}


def test_a_zip_bomb_is_refused_before_anything_is_decompressed():
    bomb = zipped({"circle/1.png": bytes(60 * 1024 * 1024), "square/1.png": b"0"})
    assert len(bomb) < 200_000
    with pytest.raises(ValueError, match=r"^The set is 60 MB; a set can have at most 50 MB\. Use fewer or smaller images\.$"):
        read_image_zip(bomb)


def test_a_zip_that_lies_about_its_sizes_is_cut_at_the_size_it_declares(tmp_path):
    """A bomb can declare a small size in the zip's directory; reading stops there (the cut member is broken)."""
    png = encoded(shape_picture("circle"))
    honest = zipped({"circle/1.png": png, "circle/2.png": png, "square/1.png": bytes(20 * 1024 * 1024), "square/2.png": png})
    # Every size field of the big member (local header and central directory) says 10 bytes.
    data = bytearray(honest)
    real = (20 * 1024 * 1024).to_bytes(4, "little")
    count = 0
    start = 0
    while (found := data.find(real, start)) >= 0:
        data[found : found + 4] = (10).to_bytes(4, "little")
        start, count = found + 4, count + 1
    assert count == 2
    with pytest.raises(ValueError, match="'square' has fewer"):  # the cut member is skipped; one square is left
        read_image_zip(bytes(data))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"circle/1.png": "c", "circle/2.png": "c"}, r"^The set needs at least 2 categories, each a folder of images; it has 1\.$"),
        (
            {"1.png": "c", "notes.txt": None},
            r"^The set has no category folders with images in them\. Put each category's images in a folder of its own\.$",
        ),
        (
            {"circle/1.png": "c", "circle/2.png": "c", "square/1.png": "s"},
            r"^Each category needs at least 2 images that can be used; 'square' has fewer\.$",
        ),
    ],
)
def test_a_set_that_cannot_train_says_what_to_change(files, message):
    pictures = {"c": encoded(shape_picture("circle")), "s": encoded(shape_picture("square")), None: b"text"}
    with pytest.raises(ValueError, match=message):
        read_image_zip(zipped({name: pictures[kind] for name, kind in files.items()}))


def test_the_limits_on_images_and_categories_are_said_with_their_numbers(monkeypatch, tmp_path):
    png = encoded(shape_picture("circle"))
    monkeypatch.setattr(image_sets, "MAX_IMAGES", 5)
    with pytest.raises(ValueError, match=r"^The set has 6 images; a set can have at most 5\. Use fewer images\.$"):
        read_image_zip(zipped({f"{kind}/{number}.png": png for kind in ("a", "b") for number in range(3)}))
    monkeypatch.setattr(image_sets, "MAX_IMAGES", 10_000)
    monkeypatch.setattr(image_sets, "MAX_CATEGORIES", 3)
    with pytest.raises(ValueError, match=r"^The set has 4 categories; a set can have at most 3\.$"):
        read_image_zip(zipped({f"{kind}/1.png": png for kind in "abcd"}))
    monkeypatch.setattr(image_sets, "MAX_FILES", 4)
    with pytest.raises(ValueError, match=r"^The set has 6 files; a set can have at most 10,000 images\. Use fewer images\.$"):
        read_image_zip(zipped({f"{kind}/{number}.png": png for kind in ("a", "b") for number in range(3)}))
    folder = make_folder(tmp_path / "set", per_category=3)
    with pytest.raises(ValueError, match=r"^The set has more than 4 files; a set can have at most 10,000 images\."):
        read_image_folder(folder)


@pytest.mark.parametrize("thing", ["missing", "text"])
def test_a_path_that_is_not_a_set_says_so(tmp_path, thing):
    path = tmp_path / "thing"
    if thing == "text":
        path.write_text("hello")
        with pytest.raises(ValueError, match=r"^This file is not a zip archive MNIST Lab can read\.$"):
            read_image_set(path)
    else:
        with pytest.raises(ValueError, match=r"is neither a folder nor a zip file\.$"):
            read_image_set(path)
