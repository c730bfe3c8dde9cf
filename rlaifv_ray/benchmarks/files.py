"""Reading the files users bring: a JSON list or JSONL, every problem named by line or item."""

from __future__ import annotations

import json

from ..errors import ConfigError

MAX_LISTED = 20


def items(text: str, source: str, problems: list[str]) -> list[tuple[str, object]]:
    """(where, item) of a JSON list (where = "item N") or of JSONL (where = "line N"); what cannot
    be parsed is added to PROBLEMS."""
    if text.lstrip().startswith("["):
        try:
            return [(f"{source} item {i}", x) for i, x in enumerate(json.loads(text), 1)]
        except json.JSONDecodeError as exc:
            problems.append(f"{source} line {exc.lineno}: not valid JSON ({exc.msg})")
            return []
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((f"{source} line {n}", json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{source} line {n}: not valid JSON ({exc.msg})")
    return out


def document(text: str, source: str, problems: list[str]) -> dict:
    """A JSON object file (COCO annotations); {} with a problem added when it is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{source} line {exc.lineno}: not valid JSON ({exc.msg})")
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{source}: expected a JSON object, got {type(doc).__name__}")
        return {}
    return doc


def first(item: dict, *keys: str):
    """The value of the first of KEYS the item has (files name the same field differently)."""
    return next((item[k] for k in keys if item.get(k) not in (None, "")), None)


def raise_problems(title: str, problems: list[str]) -> None:
    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise ConfigError(f"{title}:\n" + "\n".join(f"  - {p}" for p in problems[:MAX_LISTED]) + more)
