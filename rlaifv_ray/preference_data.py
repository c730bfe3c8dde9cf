"""Preference pairs in the two formats VLM preference data is shared in, to and from our pairs.

rlaifv  RLAIF-V-Dataset's columns (openbmb/RLAIF-V-Dataset): ds_name, image {bytes, path}, question,
        chosen, rejected, origin_dataset, origin_split, idx, image_path; all strings but image.
trl     TRL's vision preference format: prompt, images (a list of {bytes, path}; or one `image`),
        chosen, rejected. We write conversational message lists; plain strings are read too.

Both are parquet with Hugging Face feature metadata, so `datasets.load_dataset("parquet", ...)`
decodes the images. Pure logic: no Ray, no storage.
"""

from __future__ import annotations

import json

from . import schema as S
from .errors import ConfigError

SOURCE = "source_row"  # FILE#ROW of an imported pair: its id and where a quarantined row came from

_NEEDS = {"rlaifv": ("image", "question", "chosen", "rejected"), "trl": ("prompt", "images", "chosen", "rejected")}
_STR = {"dtype": "string", "_type": "Value"}
_MESSAGES = {"feature": {"role": _STR, "content": _STR}, "_type": "List"}
_SPANS = {"feature": {"feature": {"dtype": "int32", "_type": "Value"}, "_type": "List"}, "_type": "List"}
# what every export adds: how the pair was built (rlaif_v, claim_edit or imported) and, for an edit
# pair, the [start, end) character spans of chosen and rejected that the edit changed
PROVENANCE = {"builder": _STR, "edited_chosen_spans": _SPANS, "edited_rejected_spans": _SPANS}
HF_FEATURES = {
    "rlaifv": {
        "ds_name": _STR,
        "image": {"_type": "Image"},
        "question": _STR,
        "chosen": _STR,
        "rejected": _STR,
        "origin_dataset": _STR,
        "origin_split": _STR,
        "idx": _STR,
        "image_path": _STR,
        **PROVENANCE,
    },
    "trl": {
        "prompt": _MESSAGES,
        "images": {"feature": {"_type": "Image"}, "_type": "List"},
        "chosen": _MESSAGES,
        "rejected": _MESSAGES,
        **PROVENANCE,
    },
}


def detect_format(columns: list[str], source: str) -> str:
    """The format of a file with these columns, or one error naming what is missing."""
    have = set(columns) | ({"images"} if "image" in columns else set())  # trl also takes one `image`
    missing = {fmt: [c for c in needs if c not in have] for fmt, needs in _NEEDS.items()}
    for fmt in ("rlaifv", "trl"):
        if not missing[fmt]:
            return fmt
    closest = min(missing, key=lambda f: len(missing[f]))
    raise ConfigError(
        f"{source}: not a preference dataset in a known format; as {closest} it lacks column(s) "
        f"{', '.join(missing[closest])} (rlaifv needs {', '.join(_NEEDS['rlaifv'])}; trl needs "
        f"{', '.join(_NEEDS['trl'])}); it has {', '.join(columns) or 'no columns'}"
    )


# what to_pairs gives per row: our pair columns, with the image's bytes in place of its id, and why
# a row cannot be used
IMPORTED_COLUMNS = (S.PROMPT_ID, S.IMAGE, *S.PAIR_COLUMNS[2:], S.ERROR)


def to_pairs(batch: dict[str, list], fmt: str, fetch=None) -> dict[str, list]:
    """Rows of either format (with their SOURCE id) -> our pair columns plus IMAGE bytes and an
    ERROR naming why a row cannot be used (no image bytes, empty question or answer). FETCH(url) ->
    (bytes, None) or (b"", reason): how an image given only by URL is read (the import stage's,
    with the run's limits); without it such an image is a row's problem."""
    out = {k: [] for k in IMPORTED_COLUMNS}
    for i, source in enumerate(batch[SOURCE]):
        if fmt == "rlaifv":
            image, problem = _image(batch["image"][i], fetch)
            question = batch["question"][i] or ""
            chosen, rejected = batch["chosen"][i] or "", batch["rejected"][i] or ""
        else:
            images = batch["images"][i] if "images" in batch else [batch["image"][i]]
            image, problem = _image(images[0], fetch) if images else (None, "no image")
            if images and len(images) > 1:
                image, problem = None, f"{len(images)} images in one pair; one per pair is supported"
            question = _text(batch["prompt"][i], "user")
            chosen, rejected = _text(batch["chosen"][i], "assistant"), _text(batch["rejected"][i], "assistant")
        empty = [
            name
            for name, text in (("question", question), ("chosen", chosen), ("rejected", rejected))
            if not text.strip()
        ]
        if empty:
            problem = problem or f"empty {' and '.join(empty)}"
        elif chosen.strip() == rejected.strip():
            problem = problem or "chosen and rejected are the same answer"
        row = {
            S.PROMPT_ID: source,
            S.IMAGE: image,
            S.INSTRUCTION: question,
            S.TRUTH: [],
            S.CHOSEN: chosen,
            S.REJECTED: rejected,
            S.CHOSEN_ID: f"{source}/chosen",
            S.REJECTED_ID: f"{source}/rejected",
            S.CHOSEN_SCORE: None,
            S.REJECTED_SCORE: None,
            S.REF_CHOSEN_LOGP: None,
            S.REF_REJECTED_LOGP: None,
            S.REF_CHOSEN_EDITED_LOGP: None,
            S.REF_REJECTED_EDITED_LOGP: None,
            S.REF_CHOSEN_CORRUPT_LOGP: None,
            S.ERROR: problem,
        }
        for k, v in row.items():
            out[k].append(v)
    return out


def _image(value, fetch) -> tuple[bytes | None, str | None]:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    if isinstance(value, dict) and value.get("bytes"):
        return value["bytes"], None
    path = value.get("path") if isinstance(value, dict) else None
    if path and "://" in path and fetch is not None:  # a URL (http(s)://, s3://) names where the image is
        data, reason = fetch(path)
        return (data, None) if reason is None else (None, reason)
    return None, f"image has no bytes{f' (only a path: {path})' if path else ''}"


def _text(value, role: str) -> str:
    """A plain string, or the text of a conversation's `role` turns (content a string or parts)."""
    if value is None or isinstance(value, str):
        return value or ""
    parts = []
    for message in value:
        if message.get("role", role) != role:
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts += [p.get("text") or "" for p in content or [] if p.get("type", "text") == "text"]
    return "\n".join(p for p in parts if p)


def provenance(pairs: dict[str, list]) -> dict:
    """PROVENANCE's columns for our pairs (with their chosen ids and scores)."""
    import pyarrow as pa

    from .pair_diff import edited_spans

    builder, spans = [], []
    for chosen_id, score, chosen, rejected in zip(
        pairs[S.CHOSEN_ID], pairs[S.CHOSEN_SCORE], pairs[S.CHOSEN], pairs[S.REJECTED]
    ):
        edit = chosen_id.endswith(S.EDIT_SUFFIX)
        builder.append("claim_edit" if edit else "imported" if score is None else "rlaif_v")
        spans.append(edited_spans(chosen, rejected) if edit else ([], []))
    span_type = pa.list_(pa.list_(pa.int32()))
    return {
        "builder": builder,
        "edited_chosen_spans": pa.array([c for c, _ in spans], span_type),
        "edited_rejected_spans": pa.array([r for _, r in spans], span_type),
    }


def from_pairs(pairs: dict[str, list], images: list[bytes], fmt: str, origin: str):
    """Our pairs (columns) and each pair's image bytes -> a table in `fmt`, with HF feature metadata."""
    import pyarrow as pa

    n = len(pairs[S.PROMPT_ID])
    if fmt == "rlaifv":
        cols = {
            "ds_name": ["rlaifv-ray"] * n,
            "image": [{"bytes": b, "path": f"{i}.img"} for b, i in zip(images, pairs[S.IMAGE_ID])],
            "question": pairs[S.INSTRUCTION],
            "chosen": pairs[S.CHOSEN],
            "rejected": pairs[S.REJECTED],
            "origin_dataset": [origin] * n,
            "origin_split": [
                json.dumps(
                    {k: pairs[k][i] for k in (S.CHOSEN_SCORE, S.REJECTED_SCORE, S.REF_CHOSEN_LOGP, S.REF_REJECTED_LOGP)}
                )
                for i in range(n)
            ],
            "idx": pairs[S.PROMPT_ID],
            "image_path": [f"{i}.img" for i in pairs[S.IMAGE_ID]],
        }
    else:
        cols = {
            "prompt": [[{"role": "user", "content": q}] for q in pairs[S.INSTRUCTION]],
            "images": [[{"bytes": b, "path": f"{i}.img"}] for b, i in zip(images, pairs[S.IMAGE_ID])],
            "chosen": [[{"role": "assistant", "content": a}] for a in pairs[S.CHOSEN]],
            "rejected": [[{"role": "assistant", "content": a}] for a in pairs[S.REJECTED]],
        }
    table = pa.table(cols | provenance(pairs))
    return table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": HF_FEATURES[fmt]}})})
