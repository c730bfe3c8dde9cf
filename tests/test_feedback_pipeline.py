"""The feedback pipeline on a real local Ray with the committed tiny models."""

import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from rlaifv_ray import schema as S
from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import run_feedback

from .conftest import stage_pairs as _pairs
from .conftest import toy_config


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


def _png(img, fmt="PNG"):
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_bad_inputs_are_quarantined_and_good_rows_processed(tmp_path, toy_models, ray_local):
    from rlaifv_ray.toyworld.world import scene_and_image

    d = tmp_path / "imgs"
    d.mkdir()
    good = scene_and_image(0, 1)[1]
    (d / "good.png").write_bytes(_png(good))
    (d / "gray.png").write_bytes(_png(good.convert("L")))
    (d / "rgba.png").write_bytes(_png(good.convert("RGBA")))
    (d / "huge.jpg").write_bytes(_png(Image.new("RGB", (6000, 6000), (40, 40, 200)), "JPEG"))
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (d / "empty.png").write_bytes(b"")
    lines = [{"id": n, "image": f"imgs/{n}", "instruction": "Describe the image."}
             for n in ("good.png", "gray.png", "rgba.png", "huge.jpg", "corrupt.png", "empty.png")]
    lines += [{"id": "missing", "image": "imgs/nope.png", "instruction": "Describe the image."},
              {"id": "no-instruction", "image": "imgs/good.png", "instruction": "  "}]
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    cfg = validate_config(toy_config(tmp_path, toy_models, **{"sampling.n": 2}))
    metrics = run_feedback(cfg, 0, cfg.models.policy.path, str(jsonl))
    q = pq.read_table(os.path.join(cfg.run_dir, "iter_000", "quarantine")).to_pylist()
    reasons = {json.loads(r[S.ROW])[S.PROMPT_ID]: r[S.REASON] for r in q}
    assert set(reasons) == {"corrupt.png", "empty.png", "missing", "no-instruction"}
    assert "not a readable image" in reasons["corrupt.png"]
    assert "empty file" in reasons["empty.png"]
    assert "cannot read" in reasons["missing"]
    assert reasons["no-instruction"] == "empty instruction"
    assert metrics["rows"]["candidates"] == 4 * 2  # good, gray, rgba, huge: every good row sampled
    assert sum(metrics["quarantined"].values()) == 4
