"""What many self-feedback iterations do to a policy, seen while the run goes on (docs/method.md,
"Watching a run"): signals per iteration, and the stop rules the driver applies. Pure logic.

Signals of iteration k (summary row k+1, beside iteration k's other feedback metrics):
  score_p10/p50/p90          the candidates' scores (S = -rejected claims; holistic: P(yes) x 1000)
  words_p10/p50/p90, _mean   the candidates' lengths in words
  distinct_2                 per candidate, its distinct word bigrams / its bigrams; the mean
                             (1.0: no bigram said twice; falls as answers repeat themselves)
  repeated_sentence_share    share of candidates that say one sentence twice
  kl_ref_policy              KL(reference || trained policy), per answer, in nats, estimated on
                             answers y the reference sampled with k3 = r - 1 - log r,
                             r = pi(y) / pi_ref(y) (non-negative, low variance; train/probe.py)
  heldout_margin             the DPO reward margin on pairs held out of training (train.heldout_pairs)
"""

from __future__ import annotations

import re
from collections import Counter

ANSWER_SIGNALS = (
    "score_p10",
    "score_p50",
    "score_p90",
    "words_p10",
    "words_p50",
    "words_p90",
    "words_mean",
    "distinct_2",
    "repeated_sentence_share",
)
DPO_SIGNALS = ("kl_ref_policy", "heldout_margin", "heldout_reward_accuracy")
SIGNALS = ANSWER_SIGNALS + DPO_SIGNALS
SIGNAL_DIRECTION = {"words_mean": "max", "distinct_2": "max", "repeated_sentence_share": "min", "heldout_margin": "max"}

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between order statistics (numpy's default)."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def distinct_2(answer: str) -> float | None:
    words = answer.lower().split()
    grams = list(zip(words, words[1:]))
    return len(set(grams)) / len(grams) if grams else None


def repeats_a_sentence(answer: str) -> bool:
    sentences = [s.strip().lower().rstrip(".!?") for s in _SENTENCE_BREAK.split(answer.strip()) if s.strip()]
    return len(set(sentences)) < len(sentences)


def answer_signals(answers: list[str], scores: list[float | None]) -> dict:
    """The candidates' signals; scores of answers without usable claims (None) are left out."""
    return signals_of(answer_counts(answers, scores))


def answer_counts(answers: list[str], scores: list[float | None]) -> dict:
    """What the signals need of some answers, as counts that add up over parts (add_up), so the
    signals of a million answers never need them in one place. Scores are counted to 0.01 (a
    holistic score is P(yes) x 1000): their quantiles are those of the rounded scores."""
    per_answer = [d for d in map(distinct_2, answers) if d is not None]
    return {
        "words": Counter(len(a.split()) for a in answers),
        "scores": Counter(round(float(s), 2) for s in scores if s is not None),
        "distinct_2_sum": sum(per_answer),
        "distinct_2_n": len(per_answer),
        "repeated": sum(map(repeats_a_sentence, answers)),
        "answers": len(answers),
    }


def add_up(parts: list[dict]) -> dict:
    """Parts of counts (numbers or Counters under the same keys) summed key by key."""
    out: dict = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out[k] + v if k in out else v
    return out


def signals_of(counts: dict) -> dict:
    words, scores, n = counts.get("words", Counter()), counts.get("scores", Counter()), counts.get("answers", 0)
    out = {f"score_p{int(q * 100)}": _round(counted_quantile(scores, q)) for q in (0.1, 0.5, 0.9)}
    out |= {f"words_p{int(q * 100)}": _round(counted_quantile(words, q)) for q in (0.1, 0.5, 0.9)}
    out["words_mean"] = _round(sum(k * c for k, c in words.items()) / n) if n else None
    d_n = counts.get("distinct_2_n", 0)
    out["distinct_2"] = _round(counts["distinct_2_sum"] / d_n) if d_n else None
    out["repeated_sentence_share"] = _round(counts["repeated"] / n) if n else None
    return out


def counted_quantile(counts: Counter, q: float) -> float | None:
    """`quantile` of the values COUNTS holds, each as often as counted."""
    n = sum(counts.values())
    if not n:
        return None
    pos = q * (n - 1)
    lo, hi = int(pos), min(int(pos) + 1, n - 1)
    seen, x_lo, x_hi = 0, None, None
    for value in sorted(counts):
        seen += counts[value]
        if x_lo is None and seen > lo:
            x_lo = value
        if seen > hi:
            x_hi = value
            break
    return x_lo + (x_hi - x_lo) * (pos - lo)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# -- stop rules -------------------------------------------------------------------------------


def worsening(value: float, start: float, mode: str) -> float:
    """How much VALUE is worse than START for a metric where MODE (min / max) is better."""
    return start - value if mode == "max" else value - start


def collapse(signals: dict, start: dict, rule) -> str | None:
    """Why iteration k's candidates look collapsed against iteration 0's, or None. RULE: stop.collapse."""
    why = []
    words, words0 = signals.get("words_mean"), start.get("words_mean")
    if words is not None and words0 and words < rule.min_words_share * words0:
        why.append(f"mean words {words:.1f} < {rule.min_words_share:g} x the start's {words0:.1f}")
    repeated = signals.get("repeated_sentence_share")
    if repeated is not None and repeated > rule.max_repeated_share:
        why.append(f"{repeated:.0%} of answers repeat a sentence (> {rule.max_repeated_share:.0%})")
    return "; ".join(why) or None


def stop_reason(stop, select, rows: list[dict]) -> dict | None:
    """After the evaluation of rows[-1]: {rule, reason} when a stop rule holds, else None.
    STOP: the config's stop section; SELECT: eval.select (patience watches its metric)."""
    last = rows[-1]
    if stop.patience and select is not None:
        scored = [r for r in rows if r.get(select.metric) is not None]
        if scored:
            sign = 1 if select.mode == "min" else -1
            best = min(scored, key=lambda r: (sign * r[select.metric], r["iteration"]))
            if last["iteration"] - best["iteration"] >= stop.patience:
                return {
                    "rule": "patience",
                    "reason": f"{select.metric} has not improved for {last['iteration'] - best['iteration']} "
                    f"iteration(s) (best {best[select.metric]:.4g} at iteration {best['iteration']}; "
                    f"patience {stop.patience})",
                }
    for guard in stop.guards:
        start, value = rows[0].get(guard.metric), last.get(guard.metric)
        if start is None or value is None:
            continue
        drop = worsening(value, start, guard.mode)
        if drop > guard.max_drop:
            return {
                "rule": "guard",
                "reason": f"{guard.metric} {value:.4g} is {drop:.4g} worse than the starting policy's {start:.4g} "
                f"(max_drop {guard.max_drop:g})",
            }
    return None
