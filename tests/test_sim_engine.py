"""engine sim (rlaifv_ray/engines/sim.py): real-shaped, seeded outputs through the real stages, the
latency model's arithmetic, no torch; and jobs/perf_scale.py on a Ray that declares GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.config import DataConfig, validate_config
from rlaifv_ray.engines import GenerateRequest, SamplingParams, load_engine
from rlaifv_ray.engines.sim import DECODE_8B_TOKENS_PER_S, PREFILL_FLOPS, Latency, tokens
from rlaifv_ray.inputs import PromptSource

REPO = Path(__file__).resolve().parents[1]
NO_SLEEP = {"time_scale": 0.0}


def _prompts(n: int) -> dict:
    rows = PromptSource(f"toy:{n}").read(0, 0, DataConfig(input=f"toy:{n}"))
    return {k: [r[k] for r in rows] for k in (S.PROMPT_ID, S.IMAGE, S.INSTRUCTION)}


def _stream(n_prompts: int, n: int, seed: int = 0) -> tuple[dict, list]:
    from rlaifv_ray.stages.extract_claims import ExtractClaims
    from rlaifv_ray.stages.label_claims import LabelClaims
    from rlaifv_ray.stages.sample_candidates import SampleCandidates

    stages = [
        SampleCandidates("sim:7b", n, 0.7, 1.0, 512, seed, engine="sim", engine_options=NO_SLEEP),
        ExtractClaims("llm", "sim:8b", "sim", NO_SLEEP, "instruct", 0.0, 1.0, 512, seed),
        LabelClaims("sim:34b", "sim", NO_SLEEP),
    ]
    batch = _prompts(n_prompts)
    for stage in stages:
        batch = stage(batch)
    return batch, stages


def test_real_stages_get_parseable_seeded_outputs_of_real_shape():
    out, _ = _stream(4, 5)
    assert len(out[S.ANSWER]) == 20 and not any(out[S.ERROR])
    words = [len(a.split()) for a in out[S.ANSWER]]
    assert 30 <= sum(words) / len(words) <= 250 and len(set(words)) > 5  # drawn lengths, about 100 words
    # the stock instruct prompts parse: a fact per sentence, a question per fact, every answer labelled
    assert not any(out[S.CLAIM_ERROR])
    for answer, claims, questions in zip(out[S.ANSWER], out[S.CLAIMS], out[S.QUESTIONS]):
        assert len(claims) == answer.count(".") == len(questions) and all(q.endswith("?") for q in questions)
    assert all(s is not None and s <= 0 for s in out[S.SCORE]) and len(set(out[S.SCORE])) > 1
    again, _ = _stream(4, 5)
    assert again[S.ANSWER] == out[S.ANSWER] and again[S.SCORE] == out[S.SCORE]
    other, _ = _stream(4, 5, seed=1)
    assert other[S.ANSWER] != out[S.ANSWER]


def test_latency_model_charges_its_tokens_and_sleeps_them_scaled():
    lat = Latency(8.0, image_tokens=576)
    assert lat.decode_per_s == pytest.approx(DECODE_8B_TOKENS_PER_S)
    assert Latency(70.0, 576).decode_per_s == pytest.approx(460.0)  # the second published point
    assert lat.seconds(1000, 1, 125) == pytest.approx((1000 + 576) * 2 * 8e9 / PREFILL_FLOPS + 125 / 12_500)
    # one image shared by a row's requests is encoded once (prefix caching)
    engine = load_engine("sim:8b", "sim", time_scale=0.0)
    image = object()
    msg = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
    reqs = [GenerateRequest(msg, image, SamplingParams(), seed=k) for k in range(3)]
    texts = engine.generate(reqs)
    expected = lat.seconds(3 * tokens("Describe the image."), 1, sum(tokens(t) for t in texts))
    assert engine.busy_seconds == pytest.approx(expected)
    slow = load_engine("sim:8b", "sim", time_scale=2.0)
    t0 = time.perf_counter()
    slow.generate(reqs)
    assert time.perf_counter() - t0 >= 2.0 * slow.busy_seconds * 0.99


def test_bad_sim_model_names_fail_readably_at_validation(tmp_path):
    from rlaifv_ray.errors import ConfigError

    bad = {"path": "sim:big", "engine": "sim"}
    with pytest.raises(ConfigError, match=r"3 problem\(s\)") as err:
        validate_config({"run_dir": str(tmp_path), "models": {"policy": bad, "labeler": bad, "claim_llm": bad}})
    assert str(err.value).count("a simulated model is named sim:<billions of parameters>b") == 3


def test_the_sim_stream_imports_no_torch():
    code = (
        "import sys; sys.path.insert(0, 'tests'); import test_sim_engine as t; t._stream(2, 2); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.cluster
def test_perf_scale_runs_the_real_stream_on_declared_gpus(tmp_path):
    png = tmp_path / "busy.png"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    cmd = [sys.executable, "jobs/perf_scale.py", "--gpus", "3,5", "--prompts", "24", "--n", "4"]
    done = subprocess.run(
        [*cmd, "--time-scale", "0.5", "--png", str(png), "--json"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["time_scale"] == 0.5 and png.stat().st_size > 10_000
    for size in result["sizes"]:
        rows = size["rows"]
        # as many prompts per GPU as the largest size's 24 on 5; nothing lost
        assert rows["prompts"] == size["prompts"] == round(24 * size["gpus"] / 5)
        assert rows["candidates"] == rows["labels"] == 4 * size["prompts"]
        pools = size["pools"]
        gpus = pools["candidates"]["gpus"] + pools["claims"]["gpus"] + pools["labels"]["gpus"][1]
        assert gpus == size["gpus"]
        assert all(0 < p["busy_fraction"] <= 1.05 for p in pools.values())
        assert 0 < size["efficiency"] <= 1.1 and size["driver_rss_peak_mb"] > 50
    assert all(v > 0 for v in result["cpu_ms_per_row"].values())
