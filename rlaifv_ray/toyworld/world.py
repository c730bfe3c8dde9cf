"""Seeded scenes and their rendering: the ground truth every ShapesWorld metric relies on."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

COLOURS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")
OBJECTS = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)  # 12 kinds, index = class id

IMAGE_SIZE = 56
MIN_OBJECTS, MAX_OBJECTS = 1, 4
_SIZE_RANGE = (14, 19)  # object bounding-box side in pixels
_RGB = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (230, 210, 40),
}


@dataclass(frozen=True)
class Placed:
    """One object: its kind ("red circle") and bounding box (x, y, side) in pixels."""

    kind: str
    x: int
    y: int
    side: int


@dataclass(frozen=True)
class Scene:
    """A ShapesWorld image's truth: objects sorted left to right, all kinds distinct."""

    objects: tuple[Placed, ...]

    @property
    def kinds(self) -> list[str]:
        return [o.kind for o in self.objects]


def sample_scene(rng: random.Random, max_objects: int = MAX_OBJECTS) -> Scene:
    """Draw 1..max_objects distinct object kinds at non-overlapping random positions."""
    count = rng.randint(MIN_OBJECTS, max_objects)
    kinds = rng.sample(OBJECTS, count)
    placed: list[Placed] = []
    for kind in kinds:
        for _ in range(200):
            side = rng.randint(*_SIZE_RANGE)
            x = rng.randint(1, IMAGE_SIZE - side - 1)
            y = rng.randint(1, IMAGE_SIZE - side - 1)
            if all(_apart(x, y, side, p) for p in placed):
                placed.append(Placed(kind, x, y, side))
                break
    # Placement can fail on a crowded canvas: keep what fitted (never fewer than one object).
    return Scene(tuple(sorted(placed, key=lambda p: (p.x, p.y))))


def _apart(x: int, y: int, side: int, other: Placed) -> bool:
    gap = 2
    return (
        x + side + gap <= other.x
        or other.x + other.side + gap <= x
        or y + side + gap <= other.y
        or other.y + other.side + gap <= y
    )


def render(scene: Scene, rng: random.Random):
    """Draw a scene as a PIL RGB image: dark noisy background, slightly jittered colours."""
    from PIL import Image, ImageDraw

    base = tuple(rng.randint(10, 40) for _ in range(3))
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), base)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        colour, shape = obj.kind.split()
        fill = tuple(max(0, min(255, v + rng.randint(-25, 25))) for v in _RGB[colour])
        box = (obj.x, obj.y, obj.x + obj.side, obj.y + obj.side)
        if shape == "circle":
            draw.ellipse(box, fill=fill)
        elif shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            top = (obj.x + obj.side / 2, obj.y)
            draw.polygon([top, (obj.x, obj.y + obj.side), (obj.x + obj.side, obj.y + obj.side)], fill=fill)
    return img


def scene_and_image(seed: int, index: int):
    """The index-th scene of a seeded stream, with its image: reproducible by (seed, index)."""
    rng = random.Random(_mix(seed, index))
    scene = sample_scene(rng)
    return scene, render(scene, rng)


def png_bytes(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _mix(seed: int, index: int) -> int:
    # A stable integer mix (Python's hash() of tuples is stable too, but this reads clearer).
    return (seed * 1_000_003 + index * 7919 + 12345) % (2**63)


def presence_vector(scene: Scene) -> list[float]:
    """Multi-hot over OBJECTS: the direct signal the vision tower is first trained on."""
    present = set(scene.kinds)
    return [1.0 if k in present else 0.0 for k in OBJECTS]


def patch_labels(scene: Scene, patch: int) -> list[int]:
    """Per-patch class: the object covering most of the patch (1 + OBJECTS index), 0 if none."""
    grid = IMAGE_SIZE // patch
    labels = []
    for gy in range(grid):
        for gx in range(grid):
            best, best_area = 0, 0
            for obj in scene.objects:
                w = min(gx * patch + patch, obj.x + obj.side) - max(gx * patch, obj.x)
                h = min(gy * patch + patch, obj.y + obj.side) - max(gy * patch, obj.y)
                area = max(0, w) * max(0, h)
                if area > best_area and area >= patch * patch * 0.15:
                    best, best_area = 1 + OBJECTS.index(obj.kind), area
            labels.append(best)
    return labels
