"""The vLLM engine against the transformers engine on the same committed ShapesWorld models.

Runs only where vLLM is installed: `make test-vllm` builds that environment (vLLM's CPU build) and
runs this file; the main suite skips it. Measured gaps go to $RLAIFV_VLLM_REPORT (JSON) when set.
"""

import json
import os

import pytest

pytest.importorskip("vllm")

from rlaifv_ray.engines import GenerateRequest, LogprobRequest, SamplingParams, YesNoRequest, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.prompts import LABEL_PROMPT
from rlaifv_ray.toyworld.world import OBJECTS, scene_and_image
from tests.conftest import toy_config

pytestmark = pytest.mark.vllm
VLLM_OPTS = dict(max_model_len=512, enforce_eager=True)  # CPU: no compile step, a small KV cache
REPORT: dict = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield REPORT
    if os.environ.get("RLAIFV_VLLM_REPORT"):
        with open(os.environ["RLAIFV_VLLM_REPORT"], "w") as f:
            json.dump(REPORT, f, indent=2)


@pytest.fixture(scope="module", autouse=True)
def model_classes_inspected_in_process():
    """vLLM inspects each architecture's model class in a fresh Python process, so that the caller
    never initialises CUDA, and caches the answer on disk (cold on a new machine): ~14 s of imports
    per architecture, fourteen architectures here. The CPU build has no CUDA to protect, so here the
    same inspection runs in this process and fills the same cache (which the Ray actors then read)."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    from vllm.model_executor.models import registry

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "_run_in_subprocess", lambda fn: fn())
        yield


@pytest.fixture(scope="module")
def images():
    return [scene_and_image(23, i)[1] for i in range(16)]


@pytest.fixture(scope="module")
def engines(toy_models, torch_threads):
    def pair(name):
        path = str(toy_models / name)
        return load_engine(path, "hf"), load_engine(path, "vllm", **VLLM_OPTS)

    return {name: pair(name) for name in ("policy", "labeler")}


def test_yes_no_matches_hf(engines, images):
    hf, vl = engines["labeler"]
    requests = [
        YesNoRequest(LABEL_PROMPT.format(question=f"Is there a {obj} in the image?"), img)
        for img in images
        for obj in OBJECTS[::2]
    ]
    assert len(requests) >= 64
    a, b = hf.yes_no(requests), vl.yes_no(requests)
    gap_yes = max(abs(x[0] - y[0]) for x, y in zip(a, b))
    gap_no = max(abs(x[1] - y[1]) for x, y in zip(a, b))
    REPORT["yes_no"] = {"questions": len(requests), "max_abs_p_yes": gap_yes, "max_abs_p_no": gap_no}
    assert gap_yes <= 1e-3 and gap_no <= 1e-3
    # the labeler is decisive on ShapesWorld: the verdicts themselves are identical
    assert [x[0] > x[1] for x in a] == [y[0] > y[1] for y in b]


def test_sequence_logprobs_match_hf(engines, images):
    hf, vl = engines["policy"]
    describe = user_message("Describe the image.", True)
    answers = hf.generate(
        [GenerateRequest(describe, img, SamplingParams(0.9, 1.0, 40), seed) for img in images for seed in range(4)]
    )
    requests = [
        LogprobRequest(describe, answer, img) for img, answer in zip([i for i in images for _ in range(4)], answers)
    ]
    assert len(requests) >= 64
    a, b = hf.sequence_logprobs(requests), vl.sequence_logprobs(requests)
    assert [len(x.tokens) for x in a] == [len(y.tokens) for y in b], "both engines must score the same tokens"
    gap_total = max(abs(x.total - y.total) for x, y in zip(a, b))
    gap_token = max(abs(s - t) for x, y in zip(a, b) for s, t in zip(x.tokens, y.tokens))
    REPORT["sequence_logprobs"] = {
        "answers": len(requests),
        "max_abs_total": gap_total,
        "max_abs_token": gap_token,
        "mean_abs_total_logp": sum(abs(x.total) for x in a) / len(a),
    }
    assert gap_total <= 1e-3


def test_seeded_generation_reproducible_across_engines(engines, toy_models, images):
    _, vl = engines["policy"]
    requests = [
        GenerateRequest(user_message("Describe the image.", True), img, SamplingParams(0.9, 1.0, 40), seed)
        for img in images[:4]
        for seed in range(4)
    ]
    first = vl.generate(requests)
    second = load_engine(str(toy_models / "policy"), "vllm", **VLLM_OPTS).generate(list(reversed(requests)))
    assert first == list(reversed(second)), "a candidate must depend only on its seed, not on the engine or batch"
    assert len(set(first[:4])) >= 2, "different seeds should give different texts"
    assert all(t.strip() for t in first)


def test_text_only_model(toy_models):
    from rlaifv_ray.toyworld.text import fact_for

    vl = load_engine(str(toy_models / "claim_llm"), "vllm", **VLLM_OPTS)
    out = vl.generate(
        [GenerateRequest(user_message(fact_for("red circle"), False), None, SamplingParams(0.0, 1.0, 32))]
    )
    assert out[0].strip()
    with pytest.raises(ValueError, match="text-only"):
        vl.generate([GenerateRequest(user_message("x", True), scene_and_image(1, 1)[1])])


def test_toy_feedback_iteration_with_vllm(tmp_path, toy_models, ray_local):
    import pyarrow.parquet as pq

    from rlaifv_ray import schema as S
    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback

    vllm = {"engine": "vllm", "vllm": VLLM_OPTS}
    raw = toy_config(tmp_path, toy_models)
    raw["models"]["policy"].update(vllm)
    raw["models"]["labeler"].update(vllm)
    config = validate_config(raw)
    metrics = run_feedback(config, 0, config.models.policy.path, "toy:8")
    pairs = pq.read_table(os.path.join(config.run_dir, "iter_000", "pairs")).to_pylist()
    assert pairs, metrics
    assert all(r[S.REF_CHOSEN_LOGP] < 0 and r[S.REF_REJECTED_LOGP] < 0 for r in pairs)

    # the same candidates and claims labelled by the hf labeler, here: the stage class the label
    # actors run, on the stored rows and images
    from rlaifv_ray.stages.label_claims import LabelClaims
    from rlaifv_ray.storage.images import fetch_images
    from rlaifv_ray.storage.store import RunStore

    labels = [r for r in pq.read_table(os.path.join(config.run_dir, "iter_000", "labels")).to_pylist() if r[S.CLAIMS]]
    images = fetch_images(RunStore(config.run_dir), "iter_000", [r[S.IMAGE_ID] for r in labels])
    hf = LabelClaims(config.models.labeler.path)({S.IMAGE: images, S.QUESTIONS: [r[S.QUESTIONS] for r in labels]})
    pairs_of_verdicts = [(v, w) for r, theirs in zip(labels, hf[S.ACCEPTED]) for v, w in zip(r[S.ACCEPTED], theirs)]
    agreement = sum(v == w for v, w in pairs_of_verdicts) / len(pairs_of_verdicts)
    REPORT["feedback_iteration"] = {
        "prompts": 8,
        "pairs": len(pairs),
        "claims": len(pairs_of_verdicts),
        "labeler_verdict_agreement_vllm_vs_hf": round(agreement, 4),
    }
    assert len(pairs_of_verdicts) > 20 and agreement >= 0.95


@pytest.mark.gpu
@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_bf16_on_cuda_agrees_with_fp32_hf(toy_models, images, tensor_parallel):
    import torch

    if torch.cuda.device_count() < tensor_parallel:
        pytest.skip(f"needs {tensor_parallel} GPUs")
    path = str(toy_models / "labeler")
    hf = load_engine(path, "hf", dtype="float32")
    vl = load_engine(
        path,
        "vllm",
        dtype="bfloat16",
        tensor_parallel_size=tensor_parallel,
        max_model_len=512,
        gpu_memory_utilization=0.3,
    )
    requests = [
        YesNoRequest(LABEL_PROMPT.format(question=f"Is there a {obj} in the image?"), img)
        for img in images[:8]
        for obj in OBJECTS[::2]
    ]
    a, b = hf.yes_no(requests), vl.yes_no(requests)
    assert max(abs(x[0] - y[0]) for x, y in zip(a, b)) < 0.05  # bf16 weights: agreement to a few 1e-2
    assert sum((x[0] > x[1]) == (y[0] > y[1]) for x, y in zip(a, b)) >= 0.95 * len(a)


def _gaps(path: str, images, dtype: str = "auto") -> dict:
    """Max |vLLM - hf| of yes/no probabilities and of answer log-prob totals on one model folder."""
    # random-init models spread probability thinly: read every token's log-prob, not the top 20
    hf = load_engine(path, "hf", dtype=dtype)
    vl = load_engine(path, "vllm", dtype=dtype, **VLLM_OPTS, yes_no_top_k=1 << 20)
    questions = [
        YesNoRequest(LABEL_PROMPT.format(question=f"Is there a {obj} in the image?"), img)
        for img in images[:4]
        for obj in OBJECTS[:3]
    ]
    a, b = hf.yes_no(questions), vl.yes_no(questions)
    describe = user_message("Describe the image.", True)
    answers = ["There is a red circle.", "A blue square and a green triangle.", "Nothing."]
    scored = [LogprobRequest(describe, ans, img) for img in images[:4] for ans in answers]
    la, lb = hf.sequence_logprobs(scored), vl.sequence_logprobs(scored)
    assert [len(x.tokens) for x in la] == [len(y.tokens) for y in lb]  # the same completion tokens
    return {
        "dtype": dtype,
        "yes_no_max_abs": max(abs(x[i] - y[i]) for x, y in zip(a, b) for i in (0, 1)),
        "logprobs_max_abs_total": max(abs(x.total - y.total) for x, y in zip(la, lb)),
    }


@pytest.mark.parametrize(
    "family", ["llava15", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3", "qwen3_vl", "internvl", "gemma3"]
)
def test_every_family_scores_like_hf(zoo_dir, images, torch_threads, family):
    """yes_no and sequence_logprobs of vLLM == hf (fp32, CPU) on each zoo family: same prompt
    tokens (no second BOS), same completion tokens, same image placement (Gemma 3's SigLIP tower is
    renamed to the hub layout vLLM loads, as LLaVA's CLIP is)."""
    gaps = REPORT.setdefault("families", {})[family] = _gaps(str(zoo_dir / family), images)
    assert gaps["yes_no_max_abs"] <= 1e-5 and gaps["logprobs_max_abs_total"] <= 1e-3  # p_yes ~1e-2: 0.1%


@pytest.mark.parametrize("family", ["qwen3_5", "minicpmv4_6"])
def test_hybrid_decoders_score_like_hf_in_bf16(zoo_dir, images, torch_threads, family):
    """Qwen3.5's Gated DeltaNet layers (MiniCPM-V 4.6 has the same decoder) run on vLLM's CPU only in
    bf16: both engines in bf16, so the gaps are bf16 rounding (sums of ~10 token log-probs)."""
    gaps = REPORT.setdefault("families", {})[family] = _gaps(str(zoo_dir / family), images, "bfloat16")
    assert gaps["yes_no_max_abs"] <= 1e-4 and gaps["logprobs_max_abs_total"] <= 5e-2


@pytest.mark.parametrize("family", ["qwen3", "gemma3_text"])
def test_2025_text_claim_llms_score_like_hf(zoo_dir, family):
    """Qwen3 (its empty reasoning block in the prompt) and Gemma 3 text (BOS in template and tokenizer)."""
    path = str(zoo_dir / family)
    hf, vl = load_engine(path, "hf"), load_engine(path, "vllm", **VLLM_OPTS)
    msgs = user_message("Split the answer into facts.", False)
    scored = [LogprobRequest(msgs, a) for a in ("There is a red circle.", "No.")]
    la, lb = hf.sequence_logprobs(scored), vl.sequence_logprobs(scored)
    assert [len(x.tokens) for x in la] == [len(y.tokens) for y in lb]
    gap = max(abs(x.total - y.total) for x, y in zip(la, lb))
    REPORT.setdefault("families", {})[family] = {"logprobs_max_abs_total": gap}
    assert gap <= 1e-3
    request = [GenerateRequest(msgs, None, SamplingParams(0.0, 1.0, 12))]
    # greedy: the same tokens; a random model may end inside a UTF-8 character, which hf decodes as U+FFFD
    assert [t.rstrip("\ufffd") for t in hf.generate(request)] == [t.rstrip("\ufffd") for t in vl.generate(request)]


def test_llama3_format_claim_llm_generates_like_hf(zoo_dir):
    """Llama-3's template writes BOS and its tokenizer adds one: both engines must send it once.
    (The ChatML text format is the committed claim LLM's, tested above.)"""
    path = str(zoo_dir / "llama3")
    hf, vl = load_engine(path, "hf"), load_engine(path, "vllm", **VLLM_OPTS)
    request = [GenerateRequest(user_message("Split the answer into facts.", False), None, SamplingParams(0.0, 1.0, 12))]
    assert hf.generate(request) == vl.generate(request)  # greedy: same prompt tokens, same stop ids


@pytest.mark.gpu
def test_tensor_parallel_labeler_inside_a_ray_data_actor(tmp_path, toy_models, ray_local):
    """The label stage's actor holds 2 GPUs and its vLLM engine shards the labeler over both."""
    import pyarrow.parquet as pq
    import torch

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 GPUs")
    raw = toy_config(tmp_path, toy_models)
    raw["models"]["labeler"].update(
        {"engine": "vllm", "vllm": {"tensor_parallel_size": 2, "max_model_len": 512, "gpu_memory_utilization": 0.3}}
    )
    raw["resources"]["label"]["num_gpus"] = 2
    config = validate_config(raw)
    run_feedback(config, 0, config.models.policy.path, "toy:8")
    labels = pq.read_table(os.path.join(config.run_dir, "iter_000", "labels")).to_pylist()
    assert labels and all(len(r["p_yes"]) == len(r["questions"]) for r in labels)
