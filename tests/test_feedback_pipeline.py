"""The feedback pipeline on a real local Ray with the committed tiny models."""

import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from rlaifv_ray import schema as S
from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import run_feedback
from tests.conftest import stage_pairs as _pairs
from tests.conftest import toy_config


def test_toy_iteration_produces_audited_pairs(clean_run):
    a, metrics = clean_run
    assert metrics["rows"]["prompts"] == 16 and metrics["rows"]["candidates"] == 64
    assert metrics["pairs"] > 0
    audit = metrics["audit"]
    assert audit["false_claims"] > 0 and audit["false_claim_rejection"] >= 0.8
    assert audit["true_claim_acceptance"] >= 0.9
    # A tie in truth can still be a right preference (e.g. a garbled "A yellow There is ..." answer
    # whose broken claim was rejected), so the hard check here is that no pair is inverted; the
    # >= 0.85 pair accuracy bar is measured on the 64 x 8 run (see the issue note).
    assert audit["pair_inverted_in_truth"] == 0
    assert abs(audit["pair_accuracy"] + audit["pair_ties_in_truth"] - 1) < 1e-9
    saved = json.loads((Path(a.run_dir) / "iter_000" / "metrics.json").read_text())
    assert saved["pairs"] == metrics["pairs"]
    pairs = _pairs(a.run_dir)
    assert all(p[S.REF_CHOSEN_LOGP] < 0 and p[S.REF_REJECTED_LOGP] < 0 for p in pairs)
    assert all(p[S.CHOSEN_SCORE] > p[S.REJECTED_SCORE] for p in pairs)
    # Same config and seed in another run directory gives identical pairs: every fault test reruns
    # this iteration elsewhere and compares its pairs to these (test_faults, test_s3).


def test_each_image_is_stored_once_and_rows_carry_its_id(clean_run):
    import hashlib

    it = Path(clean_run[0].run_dir) / "iter_000"
    stored = {f.name: f.read_bytes() for f in (it / "images").iterdir()}
    assert len(stored) == 16 and all(hashlib.sha256(b).hexdigest()[:32] == i for i, b in stored.items())
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        table = pq.read_table(it / stage)
        assert S.IMAGE not in table.column_names and set(table.column(S.IMAGE_ID).to_pylist()) <= set(stored)
    prompts = pq.read_table(it / "prompts").to_pylist()
    from rlaifv_ray.inputs import read_prompts

    source = {r[S.PROMPT_ID]: r[S.IMAGE] for r in read_prompts("toy:16")}
    assert all(stored[r[S.IMAGE_ID]] == source[r[S.PROMPT_ID]] for r in prompts)


def _png(img, fmt="PNG"):
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _corpus_image(make: str) -> bytes:
    from rlaifv_ray.toyworld.world import scene_and_image

    good = scene_and_image(0, 1)[1]
    return {
        "png": lambda: _png(good),
        "gray": lambda: _png(good.convert("L")),
        "rgba": lambda: _png(good.convert("RGBA")),
        "cmyk": lambda: _png(good.convert("CMYK"), "JPEG"),
        "huge": lambda: _png(Image.new("RGB", (6000, 6000), (40, 40, 200)), "JPEG"),
        "truncated": lambda: _png(good)[:120],
        "empty": lambda: b"",
        "text": lambda: b"this is a text file, named .jpg",
    }[make]()


def test_the_bad_input_corpus_through_the_feedback_command(tmp_path, toy_models, ray_local, capsys):
    """tests/fixtures/bad_inputs.json: each row processed, or quarantined with its reason; the good
    rows all sampled. http images come from a real server on loopback (a 500 that recovers, a 404,
    a slow route, an oversized body); the 60,000-character instruction is refused before sampling."""
    import yaml

    from rlaifv_ray.cli import main
    from tests.http_images import image_server

    corpus = json.loads((Path(__file__).parent / "fixtures" / "bad_inputs.json").read_text())["rows"]
    (tmp_path / "imgs").mkdir()
    for row in corpus:
        if row.get("make"):
            (tmp_path / "imgs" / row["image"]).write_bytes(_corpus_image(row["make"]))
    cfg = toy_config(
        tmp_path, toy_models, **{"sampling.n": 2, "data.max_image_bytes": 2_000_000, "data.http_timeout_s": 1.0}
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with image_server(_png(Image.new("RGB", (32, 32), (200, 40, 40))), slow_s=3.0, big=3_000_000) as (url, _):
        lines = []
        for row in corpus:
            line = {
                "id": row["id"],
                "image": row.get("image"),
                "instruction": "Describe the image.",
                **row.get("extra", {}),
            }
            if isinstance(row.get("image"), str):
                line["image"] = url + row["image"][5:] if row["image"].startswith("http:") else f"imgs/{row['image']}"
            if "instruction" in row:
                line["instruction"] = (
                    "Describe the image. " * 3000 if row["instruction"] == "LONG" else row["instruction"]
                )
            line.pop(row.get("omit"), None)
            lines.append(json.dumps(line, ensure_ascii=False))
        (tmp_path / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert main(["feedback", str(tmp_path / "config.yaml"), "--input", str(tmp_path / "prompts.jsonl")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    q = pq.read_table(os.path.join(cfg["run_dir"], "iter_000", "quarantine")).to_pylist()
    reasons = {json.loads(r[S.ROW])[S.PROMPT_ID]: r[S.REASON] for r in q}
    sampled = {
        r[S.PROMPT_ID] for r in pq.read_table(os.path.join(cfg["run_dir"], "iter_000", "candidates")).to_pylist()
    }
    outcome = {row["id"]: "processed" if row["id"] in sampled else reasons.get(row["id"], "LOST") for row in corpus}
    assert {
        k: v
        for k, v in outcome.items()
        if v == "LOST" or (v == "processed") != (next(r["expect"] for r in corpus if r["id"] == k) == "processed")
    } == {}, outcome
    for row in corpus:
        assert row["expect"] in outcome[row["id"]], (row["id"], outcome[row["id"]])
    assert metrics["rows"]["candidates"] == 2 * sum(r["expect"] == "processed" for r in corpus)
    (tmp_path / "outcome.json").write_text(json.dumps(outcome, indent=1, ensure_ascii=False))  # for a reader


def _parquet_mtimes(run: str, stage: str) -> list[int]:
    return sorted(p.stat().st_mtime_ns for p in (Path(run) / "iter_000" / stage).glob("*.parquet"))


def test_each_stage_resumes_on_its_own_key(clean_run, tmp_path, toy_models, caplog):
    """A finished iteration rerun with a changed pair setting reruns pairs (and their reference
    log-probs) only; with a changed labeler, labels onwards; sampling output is never touched."""
    import shutil

    from rlaifv_ray.pipeline.feedback import STREAM

    run = str(tmp_path / "run")
    shutil.copytree(clean_run[0].run_dir, run)
    stages = ("prompts", *STREAM, "pairs")
    before = {s: _parquet_mtimes(run, s) for s in stages}

    def rerun(**over):
        cfg = validate_config(toy_config(tmp_path, toy_models, **over))
        caplog.clear()
        run_feedback(cfg, 0, cfg.models.policy.path, "toy:16")
        return {s: _parquet_mtimes(run, s) for s in stages}

    fewer = rerun(**{"pairs.max_per_prompt": 1})
    assert [s for s in stages if fewer[s] != before[s]] == ["pairs"]
    lines = caplog.messages
    assert all(f"[iter_000] {s}: finished earlier, skipped" in lines for s in ("prompts", *STREAM))
    assert (
        len(pq.read_table(Path(run) / "iter_000" / "pairs").column(S.PROMPT_ID).unique())
        == pq.read_table(Path(run) / "iter_000" / "pairs").num_rows
    )  # the new setting took effect

    relabeled = rerun(**{"pairs.max_per_prompt": 1, "models.labeler_mode": "self"})
    assert [s for s in stages if relabeled[s] != fewer[s]] == ["labels", "pairs"]


def _failing(cls, column: str, value: str):
    """The stage class, with an engine that fails on any batch holding the row whose COLUMN is VALUE."""

    class Failing(cls):
        def __call__(self, batch):
            if value in batch[column]:
                raise RuntimeError(f"injected engine failure on {value}")
            return super().__call__(batch)

    return Failing


def test_a_row_an_engine_fails_on_is_quarantined_in_every_stage_and_the_rest_go_on(clean_run, tmp_path, toy_models):
    """Each model stage's engine fails on one row (a different prompt's per stage) in the real
    pipeline: that row is quarantined with the stage and the error, and every other prompt keeps
    the pairs of the undisturbed run (length balancing off: its cut depends on every pair)."""
    from dataclasses import replace

    from rlaifv_ray.pipeline.feedback import FeedbackRun
    from rlaifv_ray.storage.store import RunStore

    clean = clean_run[0]
    prompts = sorted(pq.read_table(Path(clean.run_dir) / "iter_000" / "prompts").column(S.PROMPT_ID).to_pylist())
    pairs = _pairs(clean.run_dir)
    with_pairs = sorted({p[S.PROMPT_ID] for p in pairs})
    p_sample, p_claims, p_label = [p for p in prompts if p not in with_pairs][:3]
    p_ref = with_pairs[0]
    poison = {
        "candidates": (S.PROMPT_ID, p_sample),
        "claims": (S.ANSWER_ID, f"{p_claims}/0"),
        "labels": (S.ANSWER_ID, f"{p_label}/1"),
        "reference": (S.PROMPT_ID, p_ref),
    }

    class Poisoned(FeedbackRun):
        def __post_init__(self):
            super().__post_init__()
            self.specs = {k: replace(s, cls=_failing(s.cls, *poison[k])) for k, s in self.specs.items()}

    cfg = validate_config(toy_config(tmp_path, toy_models, **{"pairs.length_balance": False}))
    metrics = Poisoned(cfg, 0, cfg.models.policy.path, "toy:16").run()
    # each poisoned batch was retried row by row: counted per stage, with its cause, never silent
    retried = metrics["batches_retried_row_by_row"]
    assert set(retried) == {"candidates", "claims", "labels", "pairs"}, retried
    assert all(r["batches"] >= 1 and "injected engine failure" in r["cause"] for r in retried.values())
    q = pq.read_table(Path(cfg.run_dir) / "iter_000" / "quarantine").to_pylist()
    got = {}
    for r in q:
        row = json.loads(r[S.ROW])
        got.setdefault(r[S.STAGE], set()).add(row.get(S.ANSWER_ID) or row[S.PROMPT_ID])
        assert "injected engine failure" in r[S.REASON] and r[S.REASON].startswith(r[S.STAGE])
    assert got["candidates"] == {p_sample} and got["claims"] == {f"{p_claims}/0"}
    assert got["labels"] == {f"{p_label}/1"}
    assert {json.loads(r[S.ROW])[S.PROMPT_ID] for r in q if r[S.STAGE] == "pairs"} == {p_ref}
    store = RunStore(cfg.run_dir)
    assert store.count_rows("iter_000/candidates") == 4 * (len(prompts) - 1)
    untouched = [p for p in pairs if p[S.PROMPT_ID] not in (p_sample, p_claims, p_label, p_ref)]
    kept = _pairs(cfg.run_dir)
    assert untouched and all(p in kept for p in untouched)


def test_an_engine_missing_where_its_stage_runs_names_the_stage(toy_models, tmp_path, ray_local):
    """Whether vLLM is installed is asked where the stage is built (a Ray actor on a GPU node), not
    when a config is validated on a head node; the CLI prints this as its one line (test_cli)."""
    import importlib.util

    from rlaifv_ray.errors import ConfigError
    from rlaifv_ray.pipeline.teed_stage import TeedStage
    from rlaifv_ray.stages.label_claims import LabelClaims

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(ConfigError, match="^stage labels: engine 'vllm' needs vLLM on the machines that run"):
        TeedStage(
            "labels",
            LabelClaims,
            {"model": str(toy_models / "labeler"), "engine": "vllm"},
            str(tmp_path),
            "iter_000",
            "labels",
        )


def test_reads_give_a_block_per_part_up_to_their_cap(clean_run, tmp_path):
    """A stored stage is read a block per part however many parts it has (from_items alone cuts at
    most 200 blocks, and a stream block of several sampling batches is passed on by each stage only
    when all are done), up to a cap: the stream's is set by its actors (the driver keeps some KB
    per block), the pair step's by MAX_BLOCKS."""
    import pyarrow as pa

    from rlaifv_ray.pipeline.feedback import FeedbackRun

    config, _ = clean_run
    config = validate_config({**config.model_dump(mode="json"), "run_dir": str(tmp_path / "run")})
    run = FeedbackRun(config, 0, config.models.policy.path, "toy:16")
    parts = 230
    for i in range(parts):
        run.store.write_part(f"{run.dir}/labels", pa.table({S.PROMPT_ID: [f"p{i:03d}"]}), [f"p{i:03d}"])
    blocks = run._read("labels").materialize()
    assert blocks.num_blocks() == parts and blocks.count() == parts
    most = run.stream_blocks()
    assert most < parts and most // 2 < run._read("labels", max_blocks=most).materialize().num_blocks() <= most
    assert 16 < run._read("labels", max_blocks=32).materialize().num_blocks() <= 32
