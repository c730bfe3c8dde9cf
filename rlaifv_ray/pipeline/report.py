"""Metrics of one feedback iteration: rows per stage, quarantine, yield, time, and (ShapesWorld
inputs) the feedback audit against ground truth."""

from __future__ import annotations

import json

from .. import schema as S


def feedback_metrics(run) -> dict:
    store, d = run.store, run.dir
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
    claims = store.read_table(f"{d}/claims", S.schema("claims")) if rows["claims"] else None
    claim_errors = 0 if claims is None else sum(1 for e in claims.column(S.CLAIM_ERROR).to_pylist() if e)
    pairs_manifest = store.read_json(f"{d}/pairs/_SUCCESS") or {}
    metrics = {
        "iteration": run.iteration,
        "policy": run.policy,
        "input": run.input_spec,
        "rows": rows,
        "quarantined": quarantine,
        "answers_without_usable_claims": claim_errors,
        "pairs": rows["pairs"],
        "pair_yield": rows["pairs"] / rows["prompts"] if rows["prompts"] else 0.0,
        "length_balance": pairs_manifest.get("length_balance"),
        "stage_busy_seconds": busy,
        "wall_seconds": {k: round(v, 2) for k, v in run.walls.items()},
    }
    if run.input_spec.startswith("toy:"):
        metrics["audit"] = audit(store, d, rows)
    return metrics


def audit(store, d: str, rows: dict) -> dict:
    """Labeler accuracy on true and on false claims; pair accuracy and ties in truth."""
    from ..toyworld.metrics import claim_truth, mentions

    out: dict = {}
    if rows["labels"]:
        labels = store.read_table(f"{d}/labels", S.schema("labels")).select(
            [S.TRUTH, S.CLAIMS, S.ACCEPTED]).to_pylist()
        true_ok = true_n = false_ok = false_n = 0
        for r in labels:
            for claim, accepted in zip(r[S.CLAIMS], r[S.ACCEPTED]):
                truth = claim_truth(claim, r[S.TRUTH] or [])
                if truth is True:
                    true_n += 1
                    true_ok += accepted
                elif truth is False:
                    false_n += 1
                    false_ok += not accepted
        out.update({
            "true_claims": true_n, "false_claims": false_n,
            "true_claim_acceptance": true_ok / true_n if true_n else None,
            "false_claim_rejection": false_ok / false_n if false_n else None,
        })
    if rows["pairs"]:
        pairs = store.read_table(f"{d}/pairs", S.schema("pairs")).select([S.TRUTH, S.CHOSEN, S.REJECTED]).to_pylist()
        better = ties = worse = 0
        words_c = words_r = 0
        for p in pairs:
            truth = set(p[S.TRUTH] or [])
            h_c = sum(1 for k in mentions(p[S.CHOSEN]) if k not in truth)
            h_r = sum(1 for k in mentions(p[S.REJECTED]) if k not in truth)
            better += h_c < h_r
            ties += h_c == h_r
            worse += h_c > h_r
            words_c += len(p[S.CHOSEN].split())
            words_r += len(p[S.REJECTED].split())
        n = len(pairs)
        out.update({
            "pair_accuracy": better / n, "pair_ties_in_truth": ties / n, "pair_inverted_in_truth": worse / n,
            "mean_words_chosen": words_c / n, "mean_words_rejected": words_r / n,
        })
    return out
