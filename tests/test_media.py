import io

import pytest
from PIL import Image

from rlaifv_ray.errors import InputError
from rlaifv_ray.media import load_image


def _bytes(img, fmt="PNG"):
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "CMYK", "LA", "I;16"])
def test_every_mode_becomes_rgb(mode):
    img = Image.new(mode, (30, 20))
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode in ("I;16",) else "PNG")
    out = load_image(_bytes(img, fmt), name=f"x.{fmt.lower()}")
    assert out.mode == "RGB" and out.size == (30, 20)


def test_large_images_are_downscaled():
    big = Image.new("RGB", (4000, 3000), (10, 20, 30))
    out = load_image(_bytes(big, "JPEG"), max_pixels=256 * 256)
    assert out.width * out.height <= 256 * 256
    assert abs(out.width / out.height - 4 / 3) < 0.05


def test_bad_inputs_name_the_input(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(InputError, match="empty.png.*empty file"):
        load_image(str(empty))
    with pytest.raises(InputError, match="junk.jpg.*not a readable image"):
        load_image(str(junk))
    with pytest.raises(InputError, match="missing.png.*no such file"):
        load_image(str(tmp_path / "missing.png"))
    truncated = _bytes(Image.new("RGB", (64, 64)), "PNG")[:40]
    with pytest.raises(InputError, match="row-7"):
        load_image(truncated, name="row-7")
