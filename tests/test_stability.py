"""Stability over iterations: the candidates' signals, the stop rules (patience, guards, collapse),
the driver applying them (and a rerun stopping at the same place), and the guard on checkpoint
selection. Pure logic: the driver's steps are scripted here; real runs are in test_tracking."""

import json

import pytest

from rlaifv_ray import driver
from rlaifv_ray.config import validate_config
from rlaifv_ray.stability import (
    add_up,
    answer_counts,
    answer_signals,
    collapse,
    counted_quantile,
    quantile,
    signals_of,
    stop_reason,
)
from rlaifv_ray.storage.store import RunStore


def test_answer_signals_of_known_answers():
    answers = ["a red circle", "a red circle and a blue square", "a cat. a cat.", "x"]
    s = answer_signals(answers, [0, -1, None, -2])
    assert (s["words_p10"], s["words_p50"], s["words_p90"]) == (1.6, 3.5, 6.1)  # of 1, 3, 4, 7 words
    assert s["words_mean"] == 15 / 4
    assert s["score_p50"] == -1.0 and s["score_p10"] == pytest.approx(-1.8)  # the unscored answer left out
    # per answer: 2 of 2, 6 of 6, 2 of 3 ("a cat." twice) distinct bigrams; "x" has none
    assert s["distinct_2"] == pytest.approx((1 + 1 + 2 / 3) / 3, abs=1e-4)
    assert s["repeated_sentence_share"] == 0.25
    assert quantile([], 0.5) is None and answer_signals([], [])["words_mean"] is None


def test_signals_added_up_over_parts_equal_those_of_the_whole():
    """The feedback metrics add up counts per part file (pipeline/metrics.py): the sum of the parts'
    counts gives the signals of all the answers at once, and a counted quantile is the list's."""
    import random
    from collections import Counter

    rng = random.Random(0)
    vocab = "a red blue circle square . I see".split()
    answers = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30))) for _ in range(500)]
    scores = [rng.choice([None, -rng.randint(0, 5), rng.random() * 1000]) for _ in answers]
    parts = [answer_counts(answers[i : i + 37], scores[i : i + 37]) for i in range(0, 500, 37)]
    whole = answer_signals(answers, [None if s is None else round(s, 2) for s in scores])
    assert signals_of(add_up(parts)) == whole
    words = [len(a.split()) for a in answers]
    assert whole["words_mean"] == round(sum(words) / len(words), 4)
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert counted_quantile(Counter(words), q) == pytest.approx(quantile(words, q))
    assert counted_quantile(Counter(), 0.5) is None


def _config(tmp_path, **over):
    raw = {
        "run_dir": str(tmp_path / "run"),
        "iterations": 5,
        "models": {r: {"path": "org/m"} for r in ("policy", "labeler", "claim_llm")},
        "eval": {"toy_heldout": 0},
    }
    for k, v in over.items():
        node = raw
        *parents, last = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = v
    return validate_config(raw)


def test_stop_rules():
    config = validate_config(
        {
            "run_dir": "r",
            "models": {r: {"path": "org/m"} for r in ("policy", "labeler", "claim_llm")},
            "eval": {"select": {"metric": "chair_s"}},
            "stop": {"patience": 2, "guards": [{"metric": "recall", "max_drop": 0.05}]},
        }
    )
    rows = [
        {"iteration": k, "chair_s": c, "recall": r} for k, (c, r) in enumerate([(0.4, 0.9), (0.3, 0.9), (0.35, 0.88)])
    ]
    assert stop_reason(config.stop, config.eval.select, rows) is None  # one iteration without improvement
    rows.append({"iteration": 3, "chair_s": 0.31, "recall": 0.89})
    why = stop_reason(config.stop, config.eval.select, rows)
    assert why["rule"] == "patience" and "best 0.3 at iteration 1" in why["reason"]
    rows[3] = {"iteration": 3, "chair_s": 0.2, "recall": 0.84}  # better CHAIR, but recall fell 0.06
    why = stop_reason(config.stop, config.eval.select, rows)
    assert why["rule"] == "guard" and "recall 0.84 is 0.06 worse" in why["reason"]
    rule = config.stop.collapse
    assert collapse({"words_mean": 7.0}, {"words_mean": 15.0}, rule).startswith("mean words 7.0 < 0.5 x")
    assert collapse({"words_mean": 8.0, "repeated_sentence_share": 0.6}, {"words_mean": 15.0}, rule).startswith("60%")
    assert collapse({"words_mean": 8.0, "repeated_sentence_share": 0.1}, {"words_mean": 15.0}, rule) is None


def test_the_driver_stops_by_its_rules_records_why_and_a_rerun_stops_in_the_same_place(tmp_path, monkeypatch):
    chair = [0.40, 0.30, 0.32, 0.33, 0.20, 0.1]  # policy k's CHAIRs: no gain after iteration 1
    trained, evaluated = [], []

    def train(config, k, policy):  # the real one skips a finished DPO: called, it trains nothing twice
        trained.append(k)
        return {"checkpoint": f"p{k + 1}", "config_hash": f"h{k}", "steps": 1, "loss_last": 0.6}

    def evaluate(config, policy, row):
        evaluated.append(row)
        return {"chair_s": chair[row], "recall": 0.9}

    monkeypatch.setattr(driver, "train_dpo", train)
    monkeypatch.setattr(driver, "_evaluate", evaluate)
    words = {0: 15.0, 1: 14.0, 2: 13.0, 3: 6.0, 4: 5.0}
    collect = lambda k, policy: {"pairs": 4, "stability": {"words_mean": words[k]}}  # noqa: E731

    config = _config(tmp_path, **{"eval.select": {"metric": "chair_s"}, "stop.patience": 2})
    store = RunStore(config.run_dir)
    rows = driver._iterate(config, store, collect)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3] and trained == [0, 1, 2] and evaluated == [0, 1, 2, 3]
    stopped = store.read_json("stopped.json")
    assert stopped["rule"] == "patience" and stopped["iteration"] == 3
    assert "stopped</b> after iteration 3 by stop.patience" in store.read_bytes("report.html").decode()
    trained.clear()
    driver._iterate(config, store, collect)  # a rerun: nothing evaluated again, the same stop
    assert trained == [0, 1, 2] and evaluated == [0, 1, 2, 3] and store.read_json("stopped.json") == stopped

    # with the candidates' collapse as a stop: iteration 3's (6 words against 15) ends the run before its DPO
    config = _config(tmp_path, **{"stop.collapse": {"stop": True}})
    trained.clear()
    rows = driver._iterate(config, store, collect)
    assert trained == [0, 1, 2] and [r["iteration"] for r in rows] == [0, 1, 2, 3]
    assert store.read_json("stopped.json")["rule"] == "collapse" and store.read_json("stopped.json")["iteration"] == 3

    # without stop rules the run goes on (a collapse only warns), and the stale record goes
    config = _config(tmp_path)
    trained.clear()
    driver._iterate(config, store, collect)
    assert trained == [0, 1, 2, 3, 4] and evaluated[4:] == [4, 5] and not store.exists("stopped.json")


def test_the_guard_excludes_policies_that_lost_general_ability(tmp_path):
    bench = {"kind": "mcq", "name": "mmstar", "path": "q.jsonl", "image_root": "."}
    config = _config(
        tmp_path,
        **{
            "eval.benchmarks": [bench],
            "eval.select": {"metric": "chair_s", "guard": {"metric": "mmstar_accuracy", "max_drop": 0.02}},
        },
    )
    summary = [
        {"iteration": k, "policy": f"p{k}", "chair_s": c, "mmstar_accuracy": a}
        for k, (c, a) in enumerate([(0.4, 0.50), (0.3, 0.49), (0.2, 0.45), (0.25, 0.485)])
    ]
    best = driver._write_best(config, RunStore(config.run_dir), summary)
    assert best["iteration"] == 3 and best["guard"]["excluded"] == [2] and best["guard"]["start"] == 0.5
    assert json.loads((tmp_path / "run" / "best.json").read_text()) == best
