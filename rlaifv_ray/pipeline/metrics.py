"""Metrics of one feedback iteration: rows per stage, quarantine, yield, time, and, when the
prompts carry ground truth, the audit of the feedback against it (the input's `truth`)."""

from __future__ import annotations

import json

from .. import schema as S


def feedback_metrics(store, d: str, info: dict, walls: dict[str, float], truth=None) -> dict:
    """D: the iteration's directory; INFO: what produced it (iteration, policy, input), first in the
    result; TRUTH: the input's ground truth (inputs.PromptSource.truth) or None."""
    rows = {}
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        manifest = store.read_json(f"{d}/{stage}/_SUCCESS") or {}
        rows[stage] = manifest.get("rows", 0)
    quarantine = {}
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        n = store.count_rows(f"{d}/quarantine/{stage}")
        if n:
            quarantine[stage] = n
    busy = {}
    for stage in ("candidates", "claims", "labels", "pairs"):
        total = 0.0
        for f in store.files(f"{d}/_timings/{stage}", suffix=".json"):
            with store.fs.open_input_stream(f) as fh:
                total += json.loads(fh.read())["seconds"]
        busy[stage] = round(total, 2)
    claims = store.read_table(f"{d}/claims", S.schema("claims"), columns=[S.CLAIM_ERROR]) if rows["claims"] else None
    claim_errors = 0 if claims is None else sum(1 for e in claims.column(S.CLAIM_ERROR).to_pylist() if e)
    pairs_manifest = store.read_json(f"{d}/pairs/_SUCCESS") or {}
    metrics = {
        **info,
        "rows": rows,
        "quarantined": quarantine,
        "answers_without_usable_claims": claim_errors,
        "pairs": rows["pairs"],
        "pair_yield": rows["pairs"] / rows["prompts"] if rows["prompts"] else 0.0,
        "length_balance": pairs_manifest.get("length_balance"),
        "stage_busy_seconds": busy,
        "wall_seconds": {k: round(v, 2) for k, v in walls.items()},
    }
    if truth is not None:
        metrics["audit"] = truth.audit(store, d, rows)
    return metrics
