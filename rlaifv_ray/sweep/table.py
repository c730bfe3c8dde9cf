"""A sweep's results side by side, from each run's RUN/summary.json:

OUT/table.json   {"metrics", "runs": variant -> seed -> iteration -> that row's metrics, "failed": run -> why}
OUT/table.md     per variant, over its seeds: evaluation metrics at the last iteration (mean ± sd) and
                 their change from iteration 0; feedback metrics (pairs, pair accuracy: none at
                 iteration 0) averaged over the iterations
OUT/<metric>.png one line per variant by iteration (mean over seeds, the band their range)
"""

from __future__ import annotations

import io
import statistics

from ..storage.store import RunStore
from .spec import Sweep

_NOT_METRICS = {"iteration", "policy", "dpo_config_hash"}


def collect(sweep: Sweep, failed: dict[str, str]) -> dict:
    runs: dict[str, dict[str, dict[str, dict]]] = {}
    for run in sweep.runs:
        rows = RunStore(run.config.run_dir).read_json("summary.json") or []
        runs.setdefault(run.variant, {})[str(run.seed)] = {
            str(r["iteration"]): {k: v for k, v in r.items() if k not in _NOT_METRICS} for r in rows
        }
    return {"metrics": sweep.spec.metrics, "iterations": _iterations(sweep), "runs": runs, "failed": failed}


def write_tables(sweep: Sweep, failed: dict[str, str]) -> dict:
    """OUT/table.json, table.md and one PNG per metric; returns table.json's content."""
    table = collect(sweep, failed)
    store = RunStore(sweep.out)
    store.write_json("table.json", table)
    store.write_bytes("table.md", markdown(table).encode())
    for metric in table["metrics"]:
        store.write_bytes(f"{metric}.png", _plot(table, metric))
    return table


def markdown(table: dict) -> str:
    last, metrics = str(table["iterations"]), table["metrics"]
    feedback = {m for m in metrics if _per_iteration(table, m)}
    head = ["variant", "seeds done", *(m if m in feedback else f"{m} (iter 0 → {last})" for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, seeds in table["runs"].items():
        done = {s: rows for s, rows in seeds.items() if last in rows}
        cells = [variant, f"{len(done)} of {len(seeds)}", *(_cell(done, m, last, m in feedback) for m in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Evaluation metrics: the policy after iteration {last}, mean ± sd over the seeds done (one seed: its "
        "value), then the mean change from the starting policy (iteration 0) and that change relative to it. "
        "Feedback metrics (no value at iteration 0): mean over the iterations, ± sd over the seeds."
    )
    for run, why in sorted(table["failed"].items()):
        lines.append(f"- **failed** {run}: {why}")
    return "\n".join(lines) + "\n"


def _per_iteration(table: dict, metric: str) -> bool:
    """A feedback metric: no run has a value for it at iteration 0."""
    return all(rows.get("0", {}).get(metric) is None for seeds in table["runs"].values() for rows in seeds.values())


def _cell(done: dict[str, dict], metric: str, last: str, feedback: bool) -> str:
    if not done:
        return "-"
    if feedback:
        means = [_mean([r.get(metric) for k, r in rows.items() if k != "0"]) for rows in done.values()]
        return _spread([m for m in means if m is not None])
    ends = [rows[last].get(metric) for rows in done.values()]
    starts = [rows["0"].get(metric) for rows in done.values()]
    pairs = [(a, b) for a, b in zip(starts, ends) if a is not None and b is not None]
    if not pairs:
        return "-"
    change = _mean([b - a for a, b in pairs])
    start = _mean([a for a, _ in pairs])
    relative = f", {100 * change / start:+.0f}%" if start else ""
    return f"{_spread([b for _, b in pairs])} ({change:+.3f}{relative})"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:  # one seed has no spread to show
        return f"{values[0]:.3f}"
    return f"{_mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _iterations(sweep: Sweep) -> int:
    return max(run.config.iterations for run in sweep.runs)


def _plot(table: dict, metric: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display on cluster nodes
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    xs = list(range(table["iterations"] + 1))
    for variant, seeds in table["runs"].items():
        per_x = [[rows.get(str(x), {}).get(metric) for rows in seeds.values()] for x in xs]
        per_x = [[v for v in vs if v is not None] for vs in per_x]
        mean = [_mean(vs) if vs else float("nan") for vs in per_x]
        (line,) = ax.plot(xs, mean, marker="o", label=variant)
        lo = [min(vs) if vs else float("nan") for vs in per_x]
        hi = [max(vs) if vs else float("nan") for vs in per_x]
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("policy after iteration (0 = start)")
    ax.set_ylabel(metric)
    ax.set_xticks(xs)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
