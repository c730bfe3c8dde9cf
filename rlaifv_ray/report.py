"""RUN/report.html and its PNG plots: what a person looks at first after a run.

metrics.png  CHAIRs / CHAIRi / recall and mean words per evaluated policy
lengths.png  mean words of chosen vs rejected answers in each iteration's pairs (length bias)
scores.png   distribution of candidate scores S = -(rejected claims) per iteration
times.png    seconds per driver step (feedback, dpo, evaluate) per iteration
bench_<name>.png  each benchmark's summary metrics per policy (eval.benchmarks)
stability.png  the stability signals per iteration: answer length, distinct-2, repeated sentences, KL
The best policy by eval.select (RUN/best.json) is marked in the table, with what its guard excluded,
and why the run stopped early (RUN/stopped.json) when it did.
"""

from __future__ import annotations

import html
import io

from . import schema as S
from .metric_names import FEEDBACK, HELDOUT, TRAINING
from .stability import SIGNALS

_COLUMNS = ("iteration", *HELDOUT, *FEEDBACK, *TRAINING)


def write_report(
    store,
    summary: list[dict],
    benchmarks: dict[str, tuple[str, ...]] | None = None,
    best: dict | None = None,
    holistic: bool = False,
    stopped: dict | None = None,
) -> None:
    """BENCHMARKS: name -> its summary columns; BEST: RUN/best.json's content; HOLISTIC: the run
    scored whole answers (scoring holistic), so candidate scores are yes-probabilities; STOPPED:
    RUN/stopped.json's content."""
    import matplotlib

    matplotlib.use("Agg")  # no display on cluster nodes
    iters = sorted({int(p.rsplit("/", 1)[-1][5:]) for p in _iter_dirs(store)})
    per_iter = {k: store.read_json(f"iter_{k:03d}/metrics.json") or {} for k in iters}
    plots = {
        "metrics.png": _plot_metrics(summary),
        "lengths.png": _plot_lengths(store, iters),
        "scores.png": _plot_scores(store, iters, holistic),
        "times.png": _plot_times(per_iter),
        "stability.png": _plot_stability(summary),
        **{f"bench_{name}.png": _plot_benchmark(name, cols, summary) for name, cols in (benchmarks or {}).items()},
    }
    for name, png in plots.items():
        store.write_bytes(name, png)
    page = _html(summary, per_iter, list(plots), benchmarks or {}, best, stopped)
    store.write_bytes("report.html", page.encode())


def _iter_dirs(store) -> list[str]:
    from pyarrow.fs import FileSelector, FileType

    infos = store.fs.get_file_info(FileSelector(store.root, allow_not_found=True))
    return [i.path for i in infos if i.type == FileType.Directory and i.path.rsplit("/", 1)[-1].startswith("iter_")]


def _figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    return fig, ax


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _plot_metrics(summary: list[dict]) -> bytes:
    fig, ax = _figure()
    xs = [r["iteration"] for r in summary]
    for key, label in (("chair_s", "CHAIRs"), ("chair_i", "CHAIRi"), ("recall", "recall")):
        ax.plot(xs, [r.get(key) if r.get(key) is not None else float("nan") for r in summary], marker="o", label=label)
    ax.set_xlabel("policy after iteration (0 = start)")
    ax.set_ylim(0, 1)
    ax.set_xticks(xs)
    words = ax.twinx()
    words.plot(xs, [r.get("mean_words") or float("nan") for r in summary], "k--", marker="s", label="mean words")
    words.set_ylabel("mean words")
    ax.legend(loc="upper left", fontsize=8)
    words.legend(loc="upper right", fontsize=8)
    ax.set_title("held-out hallucination and recall")
    return _png(fig)


def _plot_stability(summary: list[dict]) -> bytes:
    """Row k+1 holds iteration k's signals: plotted at k, the iteration whose candidates they describe."""
    fig, ax = _figure()
    rows = [r for r in summary if r["iteration"] > 0]
    xs = [r["iteration"] - 1 for r in rows]
    for key in ("distinct_2", "repeated_sentence_share", "heldout_reward_accuracy"):
        ys = [r.get(key) for r in rows]
        if any(y is not None for y in ys):
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=key.replace("_", " "))
    ax.set_ylim(0, 1)
    ax.set_xlabel("iteration")
    ax.set_xticks(xs)
    right = ax.twinx()
    for key, style in (("words_mean", "k--"), ("kl_ref_policy", "r:")):
        ys = [r.get(key) for r in rows]
        right.plot(xs, [float("nan") if y is None else y for y in ys], style, marker="s", label=key.replace("_", " "))
    right.set_ylabel("words / nats")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    right.legend(loc="upper right", fontsize=8)
    ax.set_title("stability over iterations")
    return _png(fig)


def _plot_benchmark(name: str, columns: tuple[str, ...], summary: list[dict]) -> bytes:
    fig, ax = _figure()
    xs = [r["iteration"] for r in summary]
    for key in (c for c in columns if c != "mean_words"):  # the shares, on one axis
        ys = [r.get(f"{name}_{key}") for r in summary]
        ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=key.replace("_", "-"))
    ax.set_xlabel("policy after iteration (0 = start)")
    ax.set_ylim(0, 1)
    ax.set_xticks(xs)
    ax.legend(fontsize=8)
    ax.set_title(f"benchmark {name}")
    return _png(fig)


def _plot_lengths(store, iters: list[int]) -> bytes:
    fig, ax = _figure()
    chosen, rejected = [], []
    for k in iters:
        t = store.read_table(f"iter_{k:03d}/pairs", S.schema("pairs"), columns=[S.CHOSEN, S.REJECTED]).to_pydict()
        chosen.append(_mean_words(t[S.CHOSEN]))
        rejected.append(_mean_words(t[S.REJECTED]))
    ax.bar([k - 0.2 for k in iters], chosen, width=0.4, label="chosen")
    ax.bar([k + 0.2 for k in iters], rejected, width=0.4, label="rejected")
    ax.set_xticks(iters)
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean words")
    ax.legend(fontsize=8)
    ax.set_title("answer length in preference pairs")
    return _png(fig)


def _plot_scores(store, iters: list[int], holistic: bool = False) -> bytes:
    fig, ax = _figure()
    for k in iters:
        labels = store.read_table(f"iter_{k:03d}/labels", S.schema("labels"), columns=[S.SCORE])
        scores = [s for s in labels.column(S.SCORE).to_pylist() if s is not None]
        if scores and holistic:  # the labeler's yes-probability, kept in thousandths
            ax.hist([s / 1000 for s in scores], bins=20, range=(0, 1), histtype="step", linewidth=2, label=f"iter {k}")
        elif scores:
            lo = min(scores)
            ax.hist(scores, bins=range(lo, 2), histtype="step", linewidth=2, label=f"iter {k}", align="left")
    ax.set_xlabel("p_yes of the whole answer" if holistic else "candidate score S = -(rejected claims)")
    ax.set_ylabel("candidates")
    if ax.get_legend_handles_labels()[0]:  # imported pairs have no candidate scores
        ax.legend(fontsize=8)
    ax.set_title("feedback score distribution")
    return _png(fig)


def _plot_times(per_iter: dict[int, dict]) -> bytes:
    fig, ax = _figure()
    bottoms = {k: 0.0 for k in per_iter}
    for step in ("feedback", "dpo", "evaluate"):
        vals = [per_iter[k].get("step_seconds", {}).get(step, 0.0) for k in per_iter]
        ax.bar(list(per_iter), vals, bottom=[bottoms[k] for k in per_iter], label=step)
        for k, v in zip(per_iter, vals):
            bottoms[k] += v
    ax.set_xticks(list(per_iter))
    ax.set_xlabel("iteration")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    ax.set_title("time per step")
    return _png(fig)


def _mean_words(texts: list[str]) -> float:
    return sum(len(t.split()) for t in texts) / len(texts) if texts else 0.0


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


_FEEDBACK = ("iteration", "input", "rows", "quarantined", "pair yield", "length balance")


def _feedback_row(k: int, m: dict) -> list:
    rows = m.get("rows", {})
    balance = m.get("length_balance") or {}
    return [
        k,
        m.get("input"),
        " → ".join(f"{stage} {n}" for stage, n in rows.items()),
        sum((m.get("quarantined") or {}).values()),
        m.get("pair_yield"),
        f"{balance.get('before')} → {balance.get('after')} (cut {_fmt(balance.get('cut'))})" if balance else None,
    ]


def summary_table(summary: list[dict]) -> str:
    """summary.json as a text table: the held-out and feedback columns, and each benchmark's headline."""
    heads = ("_f1", "_chair_s", "_chair")
    columns = [*_COLUMNS[:7], *sorted({k for r in summary for k in r if k.endswith(heads)})]
    lines = ["  ".join(f"{c:>13}" for c in columns)]
    lines += ["  ".join(f"{_fmt(r.get(c)):>13}" for c in columns) for r in summary]
    return "\n".join(lines)


def _table(columns, rows) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    return (
        f"<table><tr>{head}</tr>"
        + "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in rows)
        + "</table>"
    )


def _html(
    summary: list[dict],
    per_iter: dict[int, dict],
    images: list[str],
    benchmarks: dict,
    best: dict | None,
    stopped: dict | None = None,
) -> str:
    columns = list(_COLUMNS) + [f"{b}_{c}" for b, cols in benchmarks.items() for c in cols if c != "mean_words"]
    figs = "".join(f'<img src="{name}" alt="{name}">' for name in images)
    rows = [
        [
            f"{r['iteration']} ★ best" if best and r["iteration"] == best["iteration"] else r["iteration"],
            *(r.get(c) for c in columns[1:]),
        ]
        for r in summary
    ]
    picked = (
        (
            f"<p>★ best by {html.escape(best['metric'])} ({best['mode']}): the policy after iteration "
            f"{best['iteration']}, {_fmt(best['value'])} (RUN/best.json)</p>"
        )
        if best
        else ""
    )
    guard = (best or {}).get("guard")
    if guard:
        picked += (
            f"<p>guard: {html.escape(guard['metric'])} at most {guard['max_drop']:g} worse than the start's "
            f"{_fmt(guard['start'])}; excluded iterations: {', '.join(map(str, guard['excluded'])) or 'none'}</p>"
        )
    if stopped:
        picked += (
            f"<p><b>stopped</b> after iteration {stopped['iteration']} by stop.{html.escape(stopped['rule'])}: "
            f"{html.escape(stopped['reason'])} (RUN/stopped.json)</p>"
        )
    signals = [c for c in SIGNALS if any(r.get(c) is not None for r in summary)]
    return (
        "<!doctype html><meta charset='utf-8'><title>RLAIF-V run report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:3px 8px;border-bottom:1px solid #ddd}"
        "img{max-width:48%;margin:4px}</style>"
        "<h1>RLAIF-V run report</h1><p>Row k is the policy after iteration k (0 = the starting policy); "
        "pairs and feedback audit are those it was trained on.</p>"
        + _table(columns, rows)
        + picked
        + f"<div>{figs}</div><h2>Feedback per iteration</h2>"
        + _table(_FEEDBACK, [_feedback_row(k, m) for k, m in per_iter.items()])
        + "<h2>Stability per iteration</h2><p>Iteration k's candidates (sampled by the policy of row k) and "
        "its DPO (the policy of row k+1 against its reference).</p>"
        + _table(["iteration", *signals], [[r["iteration"] - 1, *(r.get(c) for c in signals)] for r in summary[1:]])
    )
