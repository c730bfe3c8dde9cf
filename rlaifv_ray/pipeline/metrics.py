"""Metrics of one feedback iteration: rows per stage, quarantine, yield, time, and, when the
prompts carry ground truth, the audit of the feedback against it (the input's `truth`)."""

from __future__ import annotations

import json
import re
from collections import Counter

from .. import schema as S


def claim_reason(error: str) -> str:
    """A claim error without its specifics: "facts output unparseable: text between list items: 'x'"
    -> "facts output unparseable: text between list items"; "3 facts but 2 questions" -> "N facts but N
    questions"."""
    return re.sub(r"\d+", "N", re.sub(r"(: )?['\"(].*$", "", error)).strip()


def feedback_metrics(store, d: str, info: dict, walls: dict[str, float], truth=None) -> dict:
    """D: the iteration's directory; INFO: what produced it (iteration, policy, input), first in the
    result; TRUTH: the input's ground truth (inputs.PromptSource.truth) or None."""
    rows = {}
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        manifest = store.read_json(f"{d}/{stage}/_SUCCESS") or {}
        rows[stage] = manifest.get("rows", 0)
    quarantine, by_reason = {}, Counter()
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        n = store.count_rows(f"{d}/quarantine/{stage}")
        if n:
            quarantine[stage] = n
            reasons = store.read_table(f"{d}/quarantine/{stage}", S.schema("quarantine"), columns=[S.REASON])
            by_reason.update(f"{stage}: {claim_reason(r)}" for r in reasons.column(S.REASON).to_pylist())
    busy, row_by_row = {}, {}
    for stage in ("candidates", "claims", "labels", "pairs"):
        total = 0.0
        for f in store.files(f"{d}/_timings/{stage}", suffix=".json"):
            with store.fs.open_input_stream(f) as fh:
                timing = json.loads(fh.read())
            total += timing["seconds"]
            if timing.get("row_by_row"):  # a batch the engine failed on, retried a row at a time
                entry = row_by_row.setdefault(stage, {"batches": 0, "cause": timing["row_by_row"]})
                entry["batches"] += 1
        busy[stage] = round(total, 2)
    claims = store.read_table(f"{d}/claims", S.schema("claims"), columns=[S.CLAIM_ERROR]) if rows["claims"] else None
    claim_errors = [e for e in claims.column(S.CLAIM_ERROR).to_pylist() if e] if claims is not None else []
    pairs_manifest = store.read_json(f"{d}/pairs/_SUCCESS") or {}
    metrics = {
        **info,
        "rows": rows,
        "quarantined": quarantine,
        "quarantined_by_reason": dict(by_reason.most_common()),
        "answers_without_usable_claims": len(claim_errors),
        # per reason: a claim LLM whose output format drifts shows here first
        "answers_without_usable_claims_by_reason": dict(Counter(claim_reason(e) for e in claim_errors).most_common()),
        "pairs": rows["pairs"],
        "pair_yield": rows["pairs"] / rows["prompts"] if rows["prompts"] else 0.0,
        "length_balance": pairs_manifest.get("length_balance"),
        **({"pair_builder": pairs_manifest["builder"]} if "builder" in pairs_manifest else {}),
        "stage_busy_seconds": busy,
        # batches retried row by row, per stage, with the first cause: slower, and a sign the
        # engine cannot batch this model (tests require it empty for every family)
        "batches_retried_row_by_row": row_by_row,
        "wall_seconds": {k: round(v, 2) for k, v in walls.items()},
    }
    metrics["stability"] = _answer_signals(store, d, rows)
    if truth is not None:
        metrics["audit"] = truth.audit(store, d, rows)
    return metrics


def _answer_signals(store, d: str, rows: dict) -> dict:
    """The candidates' stability signals (rlaifv_ray/stability.py): with their scores once labelled."""
    from ..stability import answer_signals

    stage = "labels" if rows["labels"] else "candidates"
    if not rows[stage]:
        return {}
    columns = [S.ANSWER, S.SCORE] if stage == "labels" else [S.ANSWER]
    table = store.read_table(f"{d}/{stage}", S.schema(stage), columns=columns).to_pydict()
    return answer_signals(table[S.ANSWER], table.get(S.SCORE, []))
