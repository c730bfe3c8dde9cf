"""Prompt inputs users actually have, turned into prompt rows (prompt_id, image bytes, instruction).

Specs: `toy:N` (ShapesWorld, truth known), `FILE.jsonl` ({"image": path-or-s3-uri, "instruction":
..., optional "id"}), `FILE.parquet` (columns image [bytes], instruction, optional id), or a folder
of images asked one default instruction. A row whose image cannot be read keeps an `error`
reason and is quarantined by the pipeline, never dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from . import schema as S
from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
DEFAULT_INSTRUCTION = "Describe the image."
TOY_OFFSET = 80_000_000  # ShapesWorld feedback prompts: disjoint from training and held-out images


@dataclass(frozen=True)
class PromptSource:
    """Where a run's prompts come from (a spec as above), and whether they carry ground truth."""

    spec: str

    def read(self, iteration: int = 0, seed: int = 0, instruction: str = DEFAULT_INSTRUCTION) -> list[dict]:
        return read_prompts(self.spec, iteration, seed, instruction)

    @property
    def truth(self):
        """ShapesWorld prompts' ground truth (toyworld/truth.py: audit, held-out evaluation); None
        for user data. The only place that knows which inputs have truth."""
        if self.spec.startswith("toy:"):
            from .toyworld.truth import ShapesWorldTruth

            return ShapesWorldTruth()
        return None


def read_prompts(spec: str, iteration: int = 0, seed: int = 0, instruction: str = DEFAULT_INSTRUCTION) -> list[dict]:
    """Prompt rows for one iteration; raises InputError when the spec itself is unusable."""
    if spec.startswith("toy:"):
        try:
            n = int(spec[4:])
        except ValueError:
            raise InputError(f"input {spec!r}: expected toy:N with N a number") from None
        return toy_prompts(n, iteration, seed)
    if spec.endswith(".jsonl"):
        return _jsonl(spec)
    if spec.endswith(".parquet"):
        return _parquet(spec)
    if _is_dir(spec):
        return _folder(spec, instruction)
    raise InputError(f"input {spec!r}: not toy:N, a .jsonl or .parquet file, or a folder of images")


def toy_prompts(n: int, iteration: int, seed: int) -> list[dict]:
    from .toyworld.text import INSTRUCTIONS
    from .toyworld.world import png_bytes, scene_and_image

    if n < 1:
        raise InputError(f"input toy:{n}: need at least one prompt")
    rows = []
    for i in range(n):
        index = TOY_OFFSET + iteration * n + i  # fresh images every iteration
        scene, image = scene_and_image(seed, index)
        rows.append({S.PROMPT_ID: f"toy-{index}", S.IMAGE: png_bytes(image),
                     S.INSTRUCTION: INSTRUCTIONS[i % len(INSTRUCTIONS)], S.TRUTH: scene.kinds, S.ERROR: None})
    return rows


def _jsonl(path: str) -> list[dict]:
    text = _read_bytes(path, what="input").decode("utf-8", errors="replace")
    base = os.path.dirname(path)
    rows, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or "image" not in item:
                raise ValueError('expected an object with "image" and "instruction"')
        except ValueError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        ref = str(item["image"])
        if "://" not in ref and not os.path.isabs(ref):
            ref = os.path.join(base, ref)  # relative paths are relative to the JSONL file
        image, error = _try_read(ref)
        rows.append({S.PROMPT_ID: str(item.get("id", f"{os.path.basename(path)}:{n}")), S.IMAGE: image,
                     S.INSTRUCTION: str(item.get("instruction") or ""), S.TRUTH: None, S.ERROR: error})
    if problems:
        raise InputError(f"input {path}: {len(problems)} bad line(s): " + "; ".join(problems[:20]))
    if not rows:
        raise InputError(f"input {path}: no prompts")
    return rows


def _parquet(path: str) -> list[dict]:
    import pyarrow.parquet as pq

    fs, inner = _fs(path)
    try:
        table = pq.read_table(inner, filesystem=fs)
    except (OSError, ValueError) as exc:
        raise InputError(f"input {path}: cannot read parquet ({exc})") from None
    missing = [c for c in ("image", "instruction") if c not in table.column_names]
    if missing:
        raise InputError(f"input {path}: missing column(s) {', '.join(missing)}")
    ids = table.column("id").to_pylist() if "id" in table.column_names else [f"{os.path.basename(path)}:{i}" for i in range(table.num_rows)]
    return [{S.PROMPT_ID: str(i), S.IMAGE: img or b"", S.INSTRUCTION: ins or "", S.TRUTH: None, S.ERROR: None}
            for i, img, ins in zip(ids, table.column("image").to_pylist(), table.column("instruction").to_pylist())]


def _folder(path: str, instruction: str) -> list[dict]:
    fs, inner = _fs(path)
    from pyarrow.fs import FileSelector

    infos = sorted((i for i in fs.get_file_info(FileSelector(inner)) if i.path.lower().endswith(IMAGE_SUFFIXES)),
                   key=lambda i: i.path)
    if not infos:
        raise InputError(f"input {path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    rows = []
    for info in infos:
        image, error = _try_read(info.path, fs)
        rows.append({S.PROMPT_ID: os.path.basename(info.path), S.IMAGE: image, S.INSTRUCTION: instruction,
                     S.TRUTH: None, S.ERROR: error})
    return rows


def _fs(uri: str):
    from pyarrow.fs import FileSystem, LocalFileSystem

    if "://" in uri:
        return FileSystem.from_uri(uri)
    return LocalFileSystem(), os.path.abspath(uri)


def _is_dir(uri: str) -> bool:
    from pyarrow.fs import FileType

    fs, inner = _fs(uri)
    return fs.get_file_info(inner).type == FileType.Directory


def _read_bytes(uri: str, fs=None, what: str = "image") -> bytes:
    if fs is None:
        fs, uri = _fs(uri)
    try:
        with fs.open_input_stream(uri) as f:
            return f.read()
    except (FileNotFoundError, OSError) as exc:
        raise InputError(f"{what} {uri}: cannot read ({exc})") from None


def _try_read(uri: str, fs=None) -> tuple[bytes, str | None]:
    try:
        return _read_bytes(uri, fs), None
    except InputError as exc:
        return b"", str(exc)
