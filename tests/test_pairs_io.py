"""Pairs out (export) and in (train --pairs), and benchmarks in a run: real Ray, real TRL, the
committed ShapesWorld models."""

import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.cli import main
from rlaifv_ray.config import validate_config
from rlaifv_ray.toyworld.datasets import write_benchmark, write_pair_shards
from tests.conftest import toy_config


def _pairs_by_text(run_dir: str) -> dict[tuple, dict]:
    """A run's pairs keyed by (instruction, chosen, rejected), each with its image bytes."""
    it = Path(run_dir) / "iter_000"
    rows = pq.read_table(it / "pairs").to_pylist()
    return {
        (r[S.INSTRUCTION], r[S.CHOSEN], r[S.REJECTED]): {**r, "image": (it / "images" / r[S.IMAGE_ID]).read_bytes()}
        for r in rows
    }


def test_exported_pairs_load_with_datasets_and_train_back_to_the_same_pairs_and_reference_logps(
    clean_run, tmp_path, toy_models, monkeypatch, capsys, caplog
):
    import datasets
    from PIL import Image

    from rlaifv_ray.driver import train_on_pairs

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    clean = clean_run[0]
    original = _pairs_by_text(clean.run_dir)
    assert (
        main(["export", clean.run_dir, "--format", "trl", "--out", str(tmp_path / "trl"), "--rows-per-shard", "3"]) == 0
    )
    shards = sorted((tmp_path / "trl").glob("*.parquet"))
    assert len(shards) == -(-len(original) // 3) >= 2
    assert json.loads(capsys.readouterr().out)["pairs"] == len(original)
    loaded = datasets.load_dataset("parquet", data_files=[str(s) for s in shards], split="train")
    assert len(loaded) == len(original)
    row = loaded[0]
    key = (row["prompt"][0]["content"], row["chosen"][0]["content"], row["rejected"][0]["content"])
    assert Image.open(io.BytesIO(original[key]["image"])).convert("RGB").tobytes() == row["images"][0].tobytes()
    assert main(["export", clean.run_dir, "--format", "trl", "--out", str(tmp_path / "trl")]) == 2  # no mixing
    assert "already holds parquet files" in capsys.readouterr().err

    pope = write_benchmark(str(tmp_path / "pope"), "pope", 6, split="adversarial")
    amber = write_benchmark(str(tmp_path / "amber"), "amber_disc", 6)
    objhal = write_benchmark(str(tmp_path / "objhal"), "chair", 6)
    config = validate_config(
        toy_config(
            tmp_path,
            toy_models,
            **{
                "run_dir": str(tmp_path / "imported"),
                "eval.toy_heldout": 0,
                "eval.benchmarks": [pope, amber, objhal],
                "eval.select": {"metric": "objhal_recall"},
                "train.batch_size": 8,
            },
        )
    )
    summary = train_on_pairs(config, str(tmp_path / "trl"))
    back = _pairs_by_text(config.run_dir)
    assert set(back) == set(original)
    for key, pair in back.items():  # same images, and the same policy gives the same reference log-probs
        assert pair["image"] == original[key]["image"]
        assert pair[S.REF_CHOSEN_LOGP] == pytest.approx(original[key][S.REF_CHOSEN_LOGP], abs=1e-3)
        assert pair[S.REF_REJECTED_LOGP] == pytest.approx(original[key][S.REF_REJECTED_LOGP], abs=1e-3)
    assert [r["iteration"] for r in summary] == [0, 1]
    assert summary[1]["pairs"] == len(original) and summary[1]["dpo_steps"] == -(-len(original) // 8)
    for r in summary:  # the policy was trained on ShapesWorld yes/no questions and captions
        assert r["pope_adversarial_f1"] > 0.8 and r["amber_disc_accuracy"] > 0.8 and r["objhal_recall"] > 0.8
    run = Path(config.run_dir)
    scored = [json.loads(line) for line in (run / "benchmarks/objhal/policy_001.scored.jsonl").read_text().splitlines()]
    assert len(scored) == 6 and all(r["answer"] and r["mentions"] for r in scored)
    assert summary[1]["objhal_chair_s"] == sum(bool(r["hallucinated"]) for r in scored) / 6
    best = json.loads((run / "best.json").read_text())  # max recall, the earlier policy on a tie
    picked = max(summary, key=lambda r: (r["objhal_recall"], -r["iteration"]))
    assert (best["iteration"], best["checkpoint"], best["mode"]) == (picked["iteration"], picked["policy"], "max")
    report = (run / "report.html").read_text()
    assert "bench_pope_adversarial.png" in report and "<th>pair yield</th>" in report and "{'" not in report
    assert f"{best['iteration']} ★ best" in report and "<th>objhal_chair_s</th>" in report
    assert (run / "bench_amber_disc.png").stat().st_size > 1000 and (run / "bench_objhal.png").stat().st_size > 1000

    (run / "best.json").write_text(json.dumps({**best, "iteration": 1}))  # export the best policy's pairs
    capsys.readouterr()
    assert main(["export", str(run), "--format", "rlaifv", "--out", str(tmp_path / "best"), "--iteration", "best"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == len(original)
    (run / "best.json").write_text(json.dumps({**best, "iteration": 0}))
    assert (
        main(["export", str(run), "--format", "rlaifv", "--out", str(tmp_path / "best0"), "--iteration", "best"]) == 2
    )
    assert "is the starting one (iteration 0), which no pairs trained" in capsys.readouterr().err

    caplog.clear()  # the same command again: everything is found finished
    assert train_on_pairs(config, str(tmp_path / "trl")) == summary
    assert caplog.messages and not any("evaluate" in m or "shard(s) ->" in m for m in caplog.messages), caplog.messages


def test_a_rlaifv_dataset_with_bad_rows_imports_the_rest_and_quarantines_each_with_its_reason(
    ray_local, tmp_path, toy_models
):
    import pyarrow as pa

    from rlaifv_ray.pipeline.dataset_pairs import import_pairs

    paths = write_pair_shards(str(tmp_path / "data"), "rlaifv", 30, 3)
    table = pq.read_table(paths[0])
    rows = table.to_pylist()
    rows[0]["chosen"] = "   "
    rows[1]["image"] = {"bytes": b"\x89PNG broken", "path": "x.png"}
    rows[2]["image"] = {"bytes": None, "path": "only/a/path.jpg"}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), paths[0], row_group_size=4)
    config = validate_config(toy_config(tmp_path, toy_models))
    metrics = import_pairs(config, 0, config.models.policy.path, str(tmp_path / "data"))
    assert metrics["format"] == "rlaifv" and metrics["shards"] == 3
    assert metrics["rows"] == {"imported": 27, "pairs": 27} and metrics["quarantined"] == {"imported": 3}
    q = pq.read_table(Path(config.run_dir) / "iter_000" / "quarantine" / "imported").to_pylist()
    reasons = {json.loads(r[S.ROW])[S.PROMPT_ID]: r[S.REASON] for r in q}
    name = os.path.basename(paths[0])
    assert reasons[f"{name}#0"] == "empty chosen"
    assert reasons[f"{name}#1"].startswith("unreadable image:")
    assert reasons[f"{name}#2"] == "image has no bytes (only a path: only/a/path.jpg)"
    pairs = pq.read_table(Path(config.run_dir) / "iter_000" / "pairs").to_pylist()
    assert all(p[S.REF_CHOSEN_LOGP] < 0 and p[S.REF_REJECTED_LOGP] < 0 for p in pairs)


def test_cli_refuses_bad_pairs_and_bad_benchmark_files_before_any_work(tmp_path, capsys):
    write_pair_shards(str(tmp_path / "ok"), "trl", 4, 1)
    pq.write_table(
        pq.read_table(tmp_path / "ok" / "train-00000-of-00001.parquet").drop(["rejected"]),
        tmp_path / "ok" / "train-00001-of-00001.parquet",
    )
    assert main(["train", "toy", "--pairs", str(tmp_path / "ok"), "--set", f"run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert "train-00001-of-00001.parquet: not a preference dataset" in err and "lacks column(s) rejected" in err
    bench = tmp_path / "pope.jsonl"
    bench.write_text(
        '{"question_id": 1, "image": "a.png", "text": "Is there a cat?", "label": "yes"}\n{"question_id": 2}\n'
    )
    assert (
        main(["eval", "--bench", "pope", "--file", str(bench), "--image-root", str(tmp_path), "--model", "toy:policy"])
        == 2
    )
    assert "pope.jsonl line 2: missing image, text, label" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_eval_bench_answers_a_shapesworld_pope_file(ray_local, tmp_path, capsys):
    pope = write_benchmark(str(tmp_path), "pope", 8, split="random")
    assert (
        main(
            [
                "eval",
                "--bench",
                "pope",
                "--file",
                pope["path"],
                "--image-root",
                pope["image_root"],
                "--model",
                "toy:policy",
                "--json",
                "--out",
                str(tmp_path / "answers"),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    lines = len(Path(pope["path"]).read_text().splitlines())
    assert result["questions"] == result["n"] == lines > 24 and result["unanswered"] == 0
    assert result["accuracy"] > 0.8 and 0.3 < result["yes_ratio"] < 0.7
    answers = pq.read_table(tmp_path / "answers" / "benchmarks" / "pope_random" / "policy").to_pylist()
    assert len(answers) == lines and all(a[S.ANSWER] for a in answers)


def test_a_benchmark_with_missing_images_fails_naming_them_before_any_inference(tmp_path, toy_models):
    from rlaifv_ray.config import BenchmarkConfig, ModelSpec, StageResources
    from rlaifv_ray.errors import ConfigError
    from rlaifv_ray.pipeline.benchmark_answers import run_benchmarks

    pope = write_benchmark(str(tmp_path), "pope", 3)
    (Path(pope["image_root"]) / "shapes_00001.png").unlink()
    with pytest.raises(ConfigError, match=r"1 image\(s\) missing under .* \(e.g. shapes_00001.png: .*no such file"):
        run_benchmarks(
            str(tmp_path / "run"),
            [BenchmarkConfig(**{k: v for k, v in pope.items() if k != "name"})],
            ModelSpec(path=str(toy_models / "policy")),
            StageResources(),
            1 << 20,
            "policy",
        )
