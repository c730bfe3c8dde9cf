"""Metrics of one feedback iteration: rows per stage, quarantine, yield, time, and, when the
prompts carry ground truth, the audit of the feedback against it (the input's `truth`).

Nothing row-sized comes to the driver: each part file is read on Ray's workers, a task per few
parts, and only its counts come back (`fold_parts`), so the metrics of 1M answers cost what those
of 1K do (docs/scale.md)."""

from __future__ import annotations

import json
import re
from collections import Counter

from .. import schema as S
from ..stability import add_up

FILES_PER_TASK = 32
MAX_TASKS = 64


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
            reasons = add_up(fold_parts(store, f"{d}/quarantine/{stage}", [S.REASON], _reasons))
            by_reason.update({f"{stage}: {r}": c for r, c in reasons.items()})
    busy, row_by_row = {}, {}
    for stage in ("candidates", "claims", "labels", "pairs"):
        timings = add_up(fold_parts(store, f"{d}/_timings/{stage}", [], _timing, suffix=".json"))
        busy[stage] = round(timings.get("seconds", 0.0), 2)
        causes = timings.get("row_by_row")
        if causes:  # batches the engine failed on, retried a row at a time
            row_by_row[stage] = {"batches": sum(causes.values()), "cause": Counter(causes).most_common(1)[0][0]}
    claim_errors = add_up(fold_parts(store, f"{d}/claims", [S.CLAIM_ERROR], _reasons)) if rows["claims"] else {}
    pairs_manifest = store.read_json(f"{d}/pairs/_SUCCESS") or {}
    metrics = {
        **info,
        "rows": rows,
        "quarantined": quarantine,
        "quarantined_by_reason": dict(by_reason.most_common()),
        "answers_without_usable_claims": sum(claim_errors.values()),
        # per reason: a claim LLM whose output format drifts shows here first
        "answers_without_usable_claims_by_reason": dict(Counter(claim_errors).most_common()),
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
        metrics["audit"] = truth.audit(lambda stage, columns, fn: fold_parts(store, f"{d}/{stage}", columns, fn), rows)
    return metrics


def _answer_signals(store, d: str, rows: dict) -> dict:
    """The candidates' stability signals (rlaifv_ray/stability.py): with their scores once labelled."""
    from ..stability import signals_of

    stage = "labels" if rows["labels"] else "candidates"
    if not rows[stage]:
        return {}
    columns = [S.ANSWER, S.SCORE] if stage == "labels" else [S.ANSWER]
    return signals_of(add_up(fold_parts(store, f"{d}/{stage}", columns, _answer_counts)))


def count_rows(store, rel: str) -> int:
    """REL's rows, counted from its parts' footers on Ray's workers (fold_parts): at 100k prompts a
    stage has thousands of parts, which the driver would open one after another (on S3, a request
    each)."""
    return add_up(fold_parts(store, rel, [], _rows)).get("rows", 0)


def _rows(table) -> dict:
    return {"rows": table.num_rows}


def fold_parts(store, rel: str, columns: list[str], fn, suffix: str = ".parquet") -> list:
    """FN(table of COLUMNS) for each parquet part of REL (FN(record) for each .json record with SUFFIX
    .json), added up per task (stability.add_up) on
    Ray's workers when Ray is up: FN returns counts, and what comes back is at most MAX_TASKS sums,
    never the rows (a partial per part was 150 MB at 1M answers)."""
    import ray

    files = store.files(rel, suffix=suffix)
    per_task = max(FILES_PER_TASK, -(-len(files) // MAX_TASKS))
    groups = [files[i : i + per_task] for i in range(0, len(files), per_task)]
    if not ray.is_initialized():
        return [_fold(store.uri, g, columns, fn) for g in groups]
    # a tenth of a CPU: the folds must not wait behind the model actors holding the CPUs
    task = ray.remote(num_cpus=0.1)(_fold)
    return ray.get([task.remote(store.uri, g, columns, fn) for g in groups])


def _fold(uri: str, paths: list[str], columns: list[str], fn):
    import pyarrow.parquet as pq

    from ..storage.store import RunStore

    fs = RunStore(uri).fs
    return add_up(
        [fn(_json(fs, p) if p.endswith(".json") else pq.read_table(p, filesystem=fs, columns=columns)) for p in paths]
    )


def _json(fs, path: str) -> dict:
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read())


def _timing(record: dict) -> dict:
    """A batch's timing record: its seconds, and its cause when it was retried row by row."""
    cause = record.get("row_by_row")
    return {"seconds": record["seconds"], **({"row_by_row": Counter({cause: 1})} if cause else {})}


def _reasons(table) -> Counter:
    """Quarantine reasons or claim errors, without their specifics, counted."""
    return Counter(claim_reason(e) for e in table.column(0).to_pylist() if e)


def _answer_counts(table) -> dict:
    from ..stability import answer_counts

    scores = table.column(S.SCORE).to_pylist() if S.SCORE in table.column_names else []
    return answer_counts(table.column(S.ANSWER).to_pylist(), scores)
