"""The MNIST-style preprocessing, checked against expectations computed by hand."""

import io

import numpy as np
import pytest
from PIL import Image

from mnistlab.preprocessing import centre_of_mass, load_image_bytes, plain_resize, preprocess


def canvas(height=280, width=280):
    return np.zeros((height, width, 4), np.uint8)


def test_square_in_a_corner_ends_up_centred():
    image = canvas()
    image[10:50, 10:50] = 255  # A 40x40 white square in the top-left corner.
    result = preprocess(image)
    assert not result.is_empty and not result.inverted
    # 40x40 fits the 20x20 box exactly; its centre of mass (10, 10) goes to (14, 14): rows and columns 4 to 23.
    expected = np.zeros((28, 28), np.float32)
    expected[4:24, 4:24] = 1.0
    np.testing.assert_allclose(result.image, expected, atol=1e-5)
    assert [step.title for step in result.steps] == ["Your image (ink bright)", "Cropped to the ink", "Fitted into 20x20", "Centred in 28x28"]
    assert result.steps[1].image.shape == (40, 40) and result.steps[2].image.shape == (20, 20)


def test_same_square_anywhere_gives_the_same_input():
    corner, middle = canvas(), canvas()
    corner[230:270, 235:275] = 255
    middle[120:160, 100:140] = 255
    np.testing.assert_allclose(preprocess(corner).image, preprocess(middle).image, atol=1e-6)


def test_aspect_ratio_is_kept():
    image = canvas()
    image[40:240, 130:150] = 255  # A bar 200 tall and 20 wide, like a "1".
    result = preprocess(image)
    fitted = result.steps[2].image
    assert fitted.shape == (20, 2)  # 200x20 scaled by 20/200.
    rows = np.flatnonzero(result.image.max(axis=1) > 0)
    columns = np.flatnonzero(result.image.max(axis=0) > 0)
    assert (rows[0], rows[-1]) == (4, 23)
    assert (columns[0], columns[-1]) == (13, 14)  # Centre of mass 1.0 -> placed at column 14 - 1 = 13.


def test_empty_canvas_is_reported_as_empty():
    result = preprocess(canvas())
    assert result.is_empty
    assert result.image.shape == (28, 28) and result.image.max() == 0


def test_a_stray_dot_is_empty():
    image = canvas()
    image[100, 100] = 255
    assert preprocess(image).is_empty


def test_dark_ink_on_light_paper_is_inverted():
    light = np.full((300, 200), 230, np.uint8)  # Light grey paper.
    light[100:200, 60:80] = 20  # A dark stroke.
    result = preprocess(light)
    assert result.inverted
    dark = np.zeros((300, 200), np.uint8)
    dark[100:200, 60:80] = 210
    np.testing.assert_allclose(result.image, preprocess(dark).image, atol=1e-5)


def test_rgb_photo_with_noise_and_uneven_light():
    generator = np.random.default_rng(0)
    gradient = np.linspace(200, 240, 400)[None, :, None]
    photo = np.clip(gradient + generator.normal(0, 4, (400, 400, 3)), 0, 255)
    photo[120:280, 180:210] = 30  # The digit "1" in dark ink.
    result = preprocess(photo.astype(np.uint8))
    assert result.inverted and not result.is_empty
    columns = np.flatnonzero(result.image.max(axis=0) > 0.5)
    assert columns.min() >= 11 and columns.max() <= 16  # A narrow bar in the middle, not the noise.


def test_black_digit_on_transparent_background():
    image = np.zeros((100, 100, 4), np.uint8)
    image[20:80, 45:55] = (0, 0, 0, 255)  # Opaque black ink, transparent elsewhere.
    result = preprocess(image)
    assert not result.is_empty and result.inverted


def test_white_strokes_in_a_black_box_on_a_transparent_canvas():
    image = np.zeros((280, 280, 4), np.uint8)
    image[100:200, 50:150] = (0, 0, 0, 255)  # An opaque black box...
    image[120:180, 95:105] = (255, 255, 255, 255)  # ...with a white stroke in it.
    result = preprocess(image)
    assert not result.inverted
    assert result.steps[1].image.shape == (60, 10)  # Cropped to the stroke, not to the box.
    assert result.steps[1].shape_text == "10x60"  # shown as width x height, as image sizes are written


def test_thin_strokes_are_brought_to_full_brightness():
    image = canvas()
    image[40:240, 138:141] = 255  # A 3-pixel pen: faint once shrunk tenfold.
    assert preprocess(image).image.max() == pytest.approx(1.0)


def test_centre_of_mass_of_the_result_is_the_centre():
    image = canvas()
    image[50:120, 160:250] = 255
    image[90:200, 180:200] = 255
    result = preprocess(image)
    row, column = centre_of_mass(result.image)
    assert abs(row - 14) <= 0.5 and abs(column - 14) <= 0.5


def test_plain_resize_for_comparison():
    image = canvas()
    image[10:50, 10:50] = 255
    shrunk = plain_resize(image)
    assert shrunk.shape == (28, 28)
    assert centre_of_mass(shrunk)[0] < 5  # Stays in the corner: the problem the MNIST steps solve.


def test_bad_arrays():
    with pytest.raises(ValueError, match="grey, RGB or RGBA"):
        preprocess(np.zeros((28, 28, 2)))
    with pytest.raises(ValueError, match="no pixels"):
        preprocess(np.zeros((0, 28)))


def _png(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_decoding():
    grey = load_image_bytes(_png(np.full((40, 30), 7, np.uint8)))
    assert grey.shape == (40, 30) and grey.dtype == np.uint8
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 128
    assert load_image_bytes(_png(rgba)).shape == (20, 20, 4)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, I am a text file", "not an image"),
        (_png(np.zeros((50, 50), np.uint8))[:60], "broken or truncated"),
    ],
)
def test_bad_uploads(data, message):
    with pytest.raises(ValueError, match=message):
        load_image_bytes(data)


def test_huge_images_are_refused():
    with pytest.raises(ValueError, match="too large"):
        load_image_bytes(_png(np.zeros((300, 300), np.uint8)), max_pixels=50_000)


def test_gif_is_refused():
    buffer = io.BytesIO()
    Image.new("L", (10, 10)).save(buffer, format="GIF")
    with pytest.raises(ValueError, match="PNG or JPEG"):
        load_image_bytes(buffer.getvalue())


def test_big_photos_are_shrunk_before_processing():
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 2000), (220, 220, 220)).save(buffer, format="JPEG")
    assert max(load_image_bytes(buffer.getvalue()).shape[:2]) <= 1000


def test_a_jpeg_larger_than_the_pixel_cap_in_bytes_is_read_whole(tmp_path, monkeypatch):
    """The file reader once stopped after MAX_UPLOAD_PIXELS bytes and called a valid big JPEG truncated."""
    from mnistlab import preprocessing as preprocessing_module
    from mnistlab.preprocessing import load_image_file

    noise = np.random.default_rng(0).integers(0, 256, (1500, 1500), dtype=np.uint8)
    noise[600:900, 700:800] = 255
    path = tmp_path / "big.jpg"
    Image.fromarray(noise).save(path, quality=98)
    assert path.stat().st_size > 1_000_000
    monkeypatch.setattr(preprocessing_module, "MAX_UPLOAD_PIXELS", 1_000_000)
    image = load_image_file(path)
    assert image.shape[0] <= 1000 and image.shape[1] <= 1000  # Decoded at a reduced scale.


def test_a_file_over_the_byte_limit_is_refused_with_its_size(tmp_path):
    from mnistlab.preprocessing import load_image_file

    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG" + b"\x00" * 2_000_000)
    with pytest.raises(ValueError, match="larger than 1 MB"):
        load_image_file(path, max_bytes=1024 * 1024)


def test_a_photo_on_unevenly_lit_paper_is_cropped_to_the_ink_not_the_paper():
    """Issue 19: a dark 7 photographed on grey paper with a shadow across it used to keep the paper when cropping
    (332x544), leaving the 7 tiny; the image's own statistics (Otsu) now tell paper from ink."""
    height, width = 600, 400
    rows, columns = np.mgrid[0:height, 0:width]
    # Paper from 0.92 (lit) down to 0.55 (in a shadow towards one corner), with a little grain.
    paper = 0.92 - 0.37 * ((rows / height) ** 2 + (columns / width) ** 2) / 2
    paper += np.random.default_rng(3).normal(0, 0.01, paper.shape)
    photo = paper.copy()
    top, left, size, stroke = 200, 150, 160, 14  # a 7: a bar and a slanted stroke, dark ink
    photo[top : top + stroke, left : left + size] = 0.12
    for step in range(size):
        row, column = top + step, left + size - 10 - step // 2
        photo[row : row + stroke, column : column + stroke] = 0.12
    result = preprocess((np.clip(photo, 0, 1) * 255).astype(np.uint8))
    assert result.inverted and not result.is_empty
    cropped = next(step for step in result.steps if step.title == "Cropped to the ink").image
    assert cropped.shape[0] <= size + 2 * stroke and cropped.shape[1] <= size + 2 * stroke, cropped.shape
    # The 7 fills its 20x20 box: about 20 pixels tall in the 28x28 input.
    ink_rows = np.flatnonzero(result.image.max(axis=1) > 0.2)
    assert ink_rows[-1] - ink_rows[0] + 1 >= 18
