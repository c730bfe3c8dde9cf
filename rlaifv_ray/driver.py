"""The RLAIF-V loop (docs/method.md s.1-2). Each iteration: collect feedback with the current policy,
train it with DPO against itself as the reference, evaluate; the trained policy samples the next
iteration. Every step persists its result in the run directory, so rerunning the same command
after a crash continues at the first unfinished step.
"""

from __future__ import annotations

import logging
import time

from .config import RunConfig
from .errors import ConfigError, ModelLoadError
from .metric_names import BENCHMARK, HELDOUT, benchmark_metrics
from .pipeline.benchmark_answers import check_benchmarks, evaluate_benchmarks
from .pipeline.dataset_pairs import import_pairs
from .pipeline.feedback import run_feedback
from .pipeline.policy_eval import evaluate_policy, evaluates
from .stability import ANSWER_SIGNALS, DPO_SIGNALS, collapse, stop_reason, worsening
from .storage.store import RunStore
from .tracking import open_tracking
from .train.launch import train_dpo

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
BEST = "best.json"
STOPPED = "stopped.json"


def preflight(config: RunConfig, needs_input: bool = True) -> None:
    """Problems raised before Ray starts or anything is written: no prompts (`run`), a benchmark
    file that does not parse, or a memory plan that does not fit the GPUs the config declares
    (rlaifv_ray/plan.py)."""
    if needs_input and not config.data.input:
        raise ConfigError("data.input: `run` needs prompts (a JSONL/parquet file, an image folder, s3://..., or toy:N)")
    check_benchmarks(config)
    if config.tracking.enabled:
        from .tracking.backends import check_packages

        check_packages(config)
    if config.resources.gpu_memory_gb or config.train.gpu_memory_gb:
        from .plan import plan

        short = [
            f"{row.what} ({row.model}): needs ~{row.per_gpu_gb} GB per GPU; fix: {row.fix}"
            for row in plan(config)
            if row.fits is False
        ]
        if short:
            raise ConfigError(
                "the memory plan does not fit (see `rlaifv-ray plan CONFIG`):\n"
                + "\n".join(f"  - {line}" for line in short)
            )
    _warn_cpus(config)


def _warn_cpus(config: RunConfig) -> None:
    """A warning per GPU pool given fewer CPUs than the pipeline's own work needs (pipeline/cpu_plan.py)."""
    from .pipeline.cpu_plan import cpu_plan, warnings

    if not any(getattr(config.resources, s).num_gpus for s in ("sample", "claims", "label")):
        return
    try:
        rows = cpu_plan(config)
    except ModelLoadError:
        return  # the stage that loads the model says what is wrong with it
    for warning in warnings(rows):
        log.warning(f"{warning} (see `rlaifv-ray plan CONFIG`)")


def record_run(config: RunConfig) -> None:
    """RUN/config.yaml (the resolved config) and this process's log lines in RUN/run.log."""
    import yaml

    from . import logs

    RunStore(config.run_dir).write_bytes(
        "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode()
    )
    logs.to_run_dir(config.run_dir)


def run_recorded(config: RunConfig) -> list[dict]:
    """A run of a sweep, in its own process: its config and log lines recorded in its run dir, then
    the loop (pipeline/sweep_runs.py calls it)."""
    record_run(config)
    return run(config)


def run(config: RunConfig) -> list[dict]:
    """The loop, on a config its caller has checked (preflight, before Ray starts: `rlaifv-ray run`
    and `sweep`)."""
    with RunStore(config.run_dir).reachable() as store:
        return _iterate(
            config,
            store,
            lambda k, policy: run_feedback(config, k, policy, config.data.input, sampler(config), store=store),
        )


def sampler(config: RunConfig) -> str | None:
    """Who samples each iteration's candidates when not the policy it trains: the starting policy,
    for schedule one_shot (the paper's non-iterative baseline)."""
    return config.models.policy.path if config.schedule == "one_shot" else None


def train_on_pairs(config: RunConfig, pairs: str) -> list[dict]:
    """One iteration whose pairs come from a dataset (rlaifv or trl format): import with reference
    log-probs from the starting policy, DPO, evaluate; resumable like `run`."""
    config = config.model_copy(update={"iterations": 1})
    with RunStore(config.run_dir).reachable() as store:
        return _iterate(
            config, store, lambda k, policy: import_pairs(config, k, policy, pairs, store=store), step="import pairs"
        )


def _iterate(config: RunConfig, store: RunStore, collect, step: str = "feedback") -> list[dict]:
    """COLLECT(k, policy): iteration k's pairs, with policy's reference log-probs; returns their metrics."""
    summary = {row["iteration"]: row for row in store.read_json(SUMMARY) or []}
    policy = config.models.policy.path
    tracking = open_tracking(config, store)

    if 0 not in summary:
        summary[0] = _row(0, policy, _timed("iter_000", "evaluate start policy", {}, _evaluate, config, policy, 0))
        store.write_json(SUMMARY, _ordered(summary))
    tracking.iteration(summary[0])
    stopped, start = None, {}
    for k in range(config.iterations):
        d, seconds = f"iter_{k:03d}", {}
        feedback = _timed(d, step, seconds, collect, k, policy)
        signals = feedback.get("stability") or {}
        start = start or signals  # iteration 0's candidates: what the starting policy says
        stopped = _collapsed(config, k, signals, start)
        if stopped:
            break
        trained = _timed(d, "dpo", seconds, train_dpo, config, k, policy)
        tracking.dpo(k, store.read_json(f"{d}/train_log.json"))
        policy = trained["checkpoint"]  # samples iteration k+1 and is its reference
        if summary.get(k + 1, {}).get("dpo_config_hash") != trained["config_hash"]:  # new or retrained
            evaluation = _timed(d, "evaluate", seconds, _evaluate, config, policy, k + 1)
            summary[k + 1] = _row(k + 1, policy, evaluation, feedback, trained)
            store.write_json(
                f"{d}/metrics.json", {**feedback, "train": trained, "eval": evaluation, "step_seconds": seconds}
            )
            store.write_json(SUMMARY, _ordered(summary))
            _write_best(config, store, _ordered(summary))  # after each iteration: a run stopped early has one
        tracking.iteration(summary[k + 1], _feedback_extras(store.read_json(f"{d}/metrics.json") or feedback))
        stopped = stop_reason(config.stop, config.eval.select, [summary[i] for i in range(k + 2)])
        if stopped:
            stopped["iteration"] = k + 1
            log.warning(f"[{d}] stopping: {stopped['reason']} (stop.{stopped['rule']})")
            break
    from .report import write_report

    rows = _ordered(summary)
    _record_stop(store, stopped)
    best = _write_best(config, store, rows)
    bench = {b.label: BENCHMARK[b.kind] for b in config.eval.benchmarks}
    write_report(store, rows, bench, best, holistic=config.scoring == "holistic", stopped=stopped)
    tracking.finish(stopped)
    return rows


def _collapsed(config: RunConfig, k: int, signals: dict, start: dict) -> dict | None:
    """Iteration K's candidates against iteration 0's (stop.collapse): a warning, or the stop."""
    why = collapse(signals, start, config.stop.collapse) if k else None
    if not why:
        return None
    if not config.stop.collapse.stop:
        log.warning(f"[iter_{k:03d}] the candidates look collapsed: {why} (set stop.collapse.stop to stop here)")
        return None
    log.warning(f"[iter_{k:03d}] stopping before DPO: the candidates look collapsed: {why} (stop.collapse)")
    return {"rule": "collapse", "reason": why, "iteration": k}


def _record_stop(store: RunStore, stopped: dict | None) -> None:
    """RUN/stopped.json says why the run ended before its iterations; a later run that goes on removes it."""
    if stopped:
        store.write_json(STOPPED, stopped)
    elif store.exists(STOPPED):
        store.fs.delete_file(store.path(STOPPED))


def _feedback_extras(metrics: dict) -> dict:
    """What a tracker shows of an iteration beside its summary row: step and stage seconds, rows and
    quarantined rows per stage and reason."""
    keep = ("step_seconds", "wall_seconds", "rows", "quarantined", "quarantined_by_reason", "pair_yield")
    return {k: metrics[k] for k in keep if k in metrics}


def _write_best(config: RunConfig, store: RunStore, summary: list[dict]) -> dict | None:
    """RUN/best.json: the evaluated policy that is best by eval.select (ties: the earliest)."""
    select = config.eval.select
    rows = [r for r in summary if select and r.get(select.metric) is not None]
    excluded = []
    if select and select.guard and rows:  # general ability must not pay for less hallucination
        g, start = select.guard, summary[0].get(select.guard.metric)
        excluded = [
            r["iteration"]
            for r in rows
            if start is not None and (r.get(g.metric) is None or worsening(r[g.metric], start, g.mode) > g.max_drop)
        ]
        rows = [r for r in rows if r["iteration"] not in excluded]
    if not rows:
        return None
    sign = 1 if select.mode == "min" else -1
    row = min(rows, key=lambda r: (sign * r[select.metric], r["iteration"]))
    evaluated = [*HELDOUT, *benchmark_metrics(config.eval.benchmarks)]
    best = {
        "iteration": row["iteration"],
        "checkpoint": row["policy"],
        "metric": select.metric,
        "mode": select.mode,
        "value": row[select.metric],
        "metrics": {k: row.get(k) for k in evaluated},
    }
    if select.guard:
        best["guard"] = {
            **select.guard.model_dump(),
            "start": summary[0].get(select.guard.metric),
            "excluded": excluded,
        }
    store.write_json(BEST, best)
    return best


def _evaluate(config: RunConfig, policy: str, row: int) -> dict | None:
    """Held-out ShapesWorld metrics (when the input has truth) and the config's benchmarks."""
    tag = f"policy_{row:03d}"
    out = evaluate_policy(config, policy, tag) if evaluates(config) else {}
    if config.eval.benchmarks:
        out["benchmarks"] = evaluate_benchmarks(config, policy, tag)
    return out or None


def _row(
    iteration: int, policy: str, evaluation: dict | None, feedback: dict | None = None, trained: dict | None = None
) -> dict:
    """One evaluated policy: iteration 0 is the starting policy, k+1 the policy trained in iter_k."""
    ev, audit = evaluation or {}, (feedback or {}).get("audit", {})
    return {
        "iteration": iteration,
        "policy": policy,
        **{k: ev.get(k) for k in HELDOUT},
        **{f"{name}_{k}": m[k] for name, m in (ev.get("benchmarks") or {}).items() for k in BENCHMARK[m["kind"]]},
        "pairs": (feedback or {}).get("pairs"),
        "pair_accuracy": audit.get("pair_accuracy"),
        "false_claim_rejection": audit.get("false_claim_rejection"),
        "dpo_loss_last": (trained or {}).get("loss_last"),
        "dpo_steps": (trained or {}).get("steps"),
        "dpo_config_hash": (trained or {}).get("config_hash"),
        **{k: (feedback or {}).get("stability", {}).get(k) for k in ANSWER_SIGNALS},
        **{k: (trained or {}).get(k) for k in DPO_SIGNALS},
    }


def _ordered(summary: dict) -> list[dict]:
    return [summary[k] for k in sorted(summary)]


def _timed(d: str, name: str, seconds: dict, fn, *args, **kwargs):
    t0 = time.time()
    log.info(f"[{d}] {name} ...")
    out = fn(*args, **kwargs)
    seconds[name] = round(time.time() - t0, 1)
    log.info(f"[{d}] {name}: done in {seconds[name]} s")
    return out
