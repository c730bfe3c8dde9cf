"""Prompt inputs users actually have, turned into prompt rows (prompt_id, image bytes, instruction).

Specs: `toy:N` (ShapesWorld, truth known), `FILE.jsonl` ({"image": path, s3:// or http(s) URL,
"instruction": ..., optional "id"}), `FILE.parquet` (columns image [bytes], instruction, optional id), or a folder
of images asked one default instruction. A row whose image cannot be read keeps an `error`
reason and is quarantined by the pipeline, never dropped (storage/image_refs.py fetches, in parallel).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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

    def read(self, iteration: int = 0, seed: int = 0, data=None) -> list[dict]:
        """DATA: the config's data section (instruction for folders, image size and http limits)."""
        return read_prompts(self.spec, iteration, seed, data)

    def chunks(self, iteration: int = 0, seed: int = 0, data=None, size: int = 256) -> Iterator[list[dict]]:
        """The rows of `read`, SIZE at a time (see read_chunks)."""
        return read_chunks(self.spec, iteration, seed, data, size)

    @property
    def truth(self):
        """ShapesWorld prompts' ground truth (toyworld/truth.py: audit, held-out evaluation); None
        for user data. The only place that knows which inputs have truth."""
        from .locations import toy_prompt_count

        if toy_prompt_count(self.spec) is not None:
            from .toyworld.truth import ShapesWorldTruth

            return ShapesWorldTruth()
        return None


def read_prompts(spec: str, iteration: int = 0, seed: int = 0, data=None) -> list[dict]:
    """Prompt rows for one iteration; raises InputError when the spec itself is unusable."""
    return [row for chunk in read_chunks(spec, iteration, seed, data) for row in chunk]


def read_chunks(spec: str, iteration: int = 0, seed: int = 0, data=None, size: int = 256) -> Iterator[list[dict]]:
    """The prompt rows SIZE at a time, each chunk's images read only when it is reached, so that the
    driver never holds a whole input's images. The spec is checked (InputError) before the first
    chunk; a jsonl file or a folder is listed whole first (ids and references, no image bytes)."""
    from .config import DataConfig
    from .locations import toy_prompt_count

    data = data or DataConfig()
    if toy_prompt_count(spec) is not None:
        try:
            n = int(toy_prompt_count(spec))
        except ValueError:
            raise InputError(f"input {spec!r}: expected toy:N with N a number") from None
        if n < 1:
            raise InputError(f"input toy:{n}: need at least one prompt")
        return (toy_prompts(n, iteration, seed, start, min(start + size, n)) for start in range(0, n, size))
    if spec.endswith(".jsonl"):
        return _fetched(*_jsonl(spec), spec, data, size)
    if spec.endswith(".parquet"):
        return _parquet(spec, size)
    if _is_dir(spec):
        return _fetched(*_folder(spec, data), spec, data, size)
    raise InputError(f"input {spec!r}: not toy:N, a .jsonl or .parquet file, or a folder of images")


def toy_prompts(n: int, iteration: int, seed: int, start: int = 0, stop: int | None = None) -> list[dict]:
    """Prompts START..STOP of an input of N ShapesWorld prompts."""
    from .toyworld.text import INSTRUCTIONS
    from .toyworld.world import png_bytes, scene_and_image

    rows = []
    for i in range(start, n if stop is None else stop):
        index = TOY_OFFSET + iteration * n + i  # fresh images every iteration
        scene, image = scene_and_image(seed, index)
        rows.append(
            {
                S.PROMPT_ID: f"toy-{index}",
                S.IMAGE: png_bytes(image),
                S.INSTRUCTION: INSTRUCTIONS[i % len(INSTRUCTIONS)],
                S.TRUTH: scene.kinds,
                S.ERROR: None,
            }
        )
    return rows


def _jsonl(path: str) -> tuple[list[dict], list[str | None]]:
    text = _read_bytes(path, what="input").decode("utf-8", errors="replace")
    base = os.path.dirname(path)
    rows, refs, problems = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError('expected an object with "image" and "instruction"')
        except ValueError as exc:
            problems.append(f"line {n}: {exc}")
            continue
        ref = item.get("image")
        ref = str(ref) if isinstance(ref, str) and ref.strip() else None
        if ref and "://" not in ref and not os.path.isabs(ref):
            ref = os.path.join(base, ref)  # relative paths are relative to the JSONL file
        instruction = item.get("instruction")
        missing = [what for what, v in (("no image", ref), ("no instruction", instruction)) if v in (None, "")]
        rows.append(
            {
                S.PROMPT_ID: str(item.get("id", f"{os.path.basename(path)}:{n}")),
                S.IMAGE: b"",
                S.INSTRUCTION: str(instruction or ""),
                S.TRUTH: None,
                S.ERROR: f"line {n}: {', '.join(missing)}" if missing else None,
            }
        )
        refs.append(None if missing else ref)
    if problems:
        raise InputError(f"input {path}: {len(problems)} bad line(s): " + "; ".join(problems[:20]))
    if not rows:
        raise InputError(f"input {path}: no prompts")
    return rows, refs


def _fetched(rows: list[dict], refs: list[str | None], source: str, data, size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        chunk = [dict(r) for r in rows[start : start + size]]  # the listing itself never holds images
        _fetch_into(chunk, refs[start : start + size], source, data)
        yield chunk


def _fetch_into(rows: list[dict], refs: list[str | None], source: str, data) -> None:
    """Each row's image bytes (or its reason), fetched in parallel; rows without a ref keep theirs."""
    from .storage.image_refs import fetch_all

    wanted = [i for i, ref in enumerate(refs) if ref is not None]
    fetched = fetch_all([refs[i] for i in wanted], source, data.max_image_bytes, data.http_timeout_s)
    for i, (image, error) in zip(wanted, fetched):
        rows[i][S.IMAGE], rows[i][S.ERROR] = image, error


def _parquet(path: str, size: int) -> Iterator[list[dict]]:
    import pyarrow.parquet as pq

    fs, inner = _fs(path)
    try:
        file = pq.ParquetFile(fs.open_input_file(inner))
    except (OSError, ValueError) as exc:
        raise InputError(f"input {path}: cannot read parquet ({exc})") from None
    names = file.schema_arrow.names
    missing = [c for c in ("image", "instruction") if c not in names]
    if missing:
        raise InputError(f"input {path}: missing column(s) {', '.join(missing)}")
    return _parquet_rows(file, path, size, [c for c in ("id", "image", "instruction") if c in names])


def _parquet_rows(file, path: str, size: int, columns: list[str]) -> Iterator[list[dict]]:
    start = 0
    for batch in file.iter_batches(batch_size=size, columns=columns):
        table = batch.to_pydict()
        ids = table.get("id") or [f"{os.path.basename(path)}:{i}" for i in range(start, start + batch.num_rows)]
        start += batch.num_rows
        yield [
            {S.PROMPT_ID: str(i), S.IMAGE: img or b"", S.INSTRUCTION: ins or "", S.TRUTH: None, S.ERROR: None}
            for i, img, ins in zip(ids, table["image"], table["instruction"])
        ]


def _folder(path: str, data) -> tuple[list[dict], list[str]]:
    fs, inner = _fs(path)
    from pyarrow.fs import FileSelector

    infos = sorted(
        (i for i in fs.get_file_info(FileSelector(inner)) if i.path.lower().endswith(IMAGE_SUFFIXES)),
        key=lambda i: i.path,
    )
    if not infos:
        raise InputError(f"input {path}: no images ({', '.join(IMAGE_SUFFIXES)})")
    rows = [
        {
            S.PROMPT_ID: os.path.basename(i.path),
            S.IMAGE: b"",
            S.INSTRUCTION: data.default_instruction,
            S.TRUTH: None,
            S.ERROR: None,
        }
        for i in infos
    ]
    base = path.rstrip("/") if "://" in path else None  # URIs keep their scheme for the fetch
    refs = [f"{base}/{os.path.basename(i.path)}" if base else i.path for i in infos]
    return rows, refs


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
