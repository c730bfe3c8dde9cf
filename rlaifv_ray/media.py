"""Reading user images robustly: any mode and size in, RGB of bounded size out, clear errors."""

from __future__ import annotations

import io
import os

from .errors import InputError

DEFAULT_MAX_PIXELS = 1024 * 1024  # larger images are downscaled, never decoded at full size twice


def load_image(source, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Open bytes, a path or a PIL image as RGB, downscaled to at most max_pixels.

    Raises InputError naming the input when it is missing, empty or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    label = name or (source if isinstance(source, (str, os.PathLike)) else "<image bytes>")
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (str, os.PathLike)):
            if not os.path.exists(source):
                raise InputError(f"image {label}: no such file")
            with open(source, "rb") as f:
                source = f.read()
        if not isinstance(source, (bytes, bytearray)):
            raise InputError(f"image {label}: expected bytes or a path, got {type(source).__name__}")
        if len(source) == 0:
            raise InputError(f"image {label}: empty file (0 bytes)")
        try:
            image = Image.open(io.BytesIO(source))
            # draft() lets JPEG decode at reduced size: a huge photo never fills memory
            image.draft("RGB", _target_size(image.size, max_pixels))
            image.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(f"image {label}: not a readable image ({exc})") from None
    if image.width * image.height > max_pixels:
        image = image.copy()
        image.thumbnail(_target_size(image.size, max_pixels))
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.split()[-1])
            image = flat
        else:
            image = image.convert("RGB")
    return image


def _target_size(size: tuple[int, int], max_pixels: int) -> tuple[int, int]:
    w, h = size
    if w * h <= max_pixels:
        return w, h
    scale = (max_pixels / (w * h)) ** 0.5
    return max(1, int(w * scale)), max(1, int(h * scale))


CORRUPTIONS = ("crop", "noise", "blank")


def corruption_seed(run_seed: int, prompt_id: str, chosen_id: str) -> int:
    """The seed of a pair's corrupted image, which the reference stage and DPO both derive: same
    pair, same pixels, on any worker."""
    from .seeds import derive_seed

    return derive_seed(run_seed, "corrupt", prompt_id, chosen_id)


def corrupt_image(image, kind: str, seed: int):
    """The image a chosen answer should no longer fit (train.image_preference), seeded so the
    reference stage and DPO see the same pixels. crop: a random box of 10-20% of the area, scaled
    back to the image's size (mDPO's corruption: most of what the answer names is gone); noise:
    Gaussian noise of standard deviation 64 (of 255) on every channel; blank: the image's mean colour."""
    import random

    from PIL import Image, ImageStat

    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown image corruption {kind!r} (one of {', '.join(CORRUPTIONS)})")
    rng = random.Random(seed)
    w, h = image.size
    if kind == "blank":
        return Image.new("RGB", (w, h), tuple(round(v) for v in ImageStat.Stat(image).mean[:3]))
    if kind == "noise":
        import numpy as np

        pixels = np.asarray(image, dtype=np.float32)
        noise = np.random.default_rng(seed).normal(0, 64, pixels.shape)
        return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    area = rng.uniform(0.1, 0.2)
    aspect = rng.uniform(0.5, 2.0)
    cw = max(1, min(w, round((area * w * h * aspect) ** 0.5)))
    ch = max(1, min(h, round(area * w * h / cw)))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((x, y, x + cw, y + ch)).resize((w, h))
