"""The memory plan against hand-computed numbers for published model shapes, and every shipped
config against the node types the shipped cluster files declare."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlaifv_ray.config import load_config, validate_config
from rlaifv_ray.plan import plan, shape
from tests.conftest import REPO

SHAPES = Path(__file__).parent / "fixtures" / "model_configs"
HUB = {
    "llava-hf/llava-1.5-7b-hf": "llava-1.5-7b",
    "llava-hf/llava-v1.6-34b-hf": "llava-v1.6-34b",
    "Qwen/Qwen2.5-VL-7B-Instruct": "qwen2.5-vl-7b",
    "meta-llama/Meta-Llama-3-8B-Instruct": "llama-3-8b-instruct",
    "Qwen/Qwen2.5-7B-Instruct": "qwen2.5-7b-instruct",
    "Qwen/Qwen2.5-VL-72B-Instruct": "qwen2.5-vl-72b",
    "Qwen/Qwen3-VL-8B-Instruct": "qwen3-vl-8b",
    "Qwen/Qwen3-VL-32B-Instruct": "qwen3-vl-32b",
    "Qwen/Qwen3-8B": "qwen3-8b",
}


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """The published config.json files in a Hugging Face cache (offline mode reads them as the hub's)."""
    for repo, name in HUB.items():
        root = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
        snapshot = root / "snapshots" / ("0" * 40)
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text((SHAPES / name / "config.json").read_text())
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hub"


@pytest.mark.parametrize(
    "name, published_b",
    [
        ("llava-1.5-7b", 7.06),
        ("llava-v1.6-34b", 34.75),
        ("qwen2.5-vl-7b", 8.29),
        ("llama-3-8b-instruct", 8.03),
        ("qwen2.5-7b-instruct", 7.62),
        ("qwen2.5-vl-72b", 73.4),
        ("qwen3-vl-8b", 8.77),
        ("qwen3-vl-32b", 33.4),
        ("qwen3-vl-30b-a3b", 31.1),  # every expert: what memory must hold
        ("qwen3-8b", 8.19),
    ],
)
def test_parameter_counts_match_the_published_sizes(name, published_b):
    params = shape(json.loads((SHAPES / name / "config.json").read_text())).params / 1e9
    assert params == pytest.approx(published_b, rel=0.005)


def _cfg(tmp_path, model="llava-1.5-7b", **train):
    from rlaifv_ray.config import validate_config

    return validate_config(
        {
            "run_dir": str(tmp_path / "run"),
            "data": {"input": "toy:4"},
            "models": {"policy": {"path": str(SHAPES / model)}, "claims": "rules", "labeler_mode": "self"},
            "sampling": {"max_new_tokens": 512},
            "train": {"use_gpu": True, "workers": 8, "batch_size": 8, **train},
        }
    )


def test_dpo_memory_of_a_7b_llava_by_strategy(tmp_path):
    """By hand (7.063B parameters, 6.760B outside the vision tower; 576 + 128 + 512 tokens per
    sequence, chosen + rejected, one pair per GPU): fp32 weights 28.25 GB, grads 27.04, AdamW 54.08,
    DDP buckets 27.04; activations 34 x 2432 x 4096 x 32 bytes = 10.84 GB, 0.64 with checkpointing;
    LoRA keeps a bf16 base: 14.13 GB."""
    ddp = next(r for r in plan(_cfg(tmp_path), train_gpu_gb=40) if r.what == "dpo")
    assert ddp.parts["weights_gb"] == pytest.approx(28.3, abs=0.1)
    assert ddp.parts["grads_gb"] == pytest.approx(27.0, abs=0.1)
    assert ddp.parts["adam_gb"] == pytest.approx(54.1, abs=0.1)
    assert ddp.parts["ddp_buckets_gb"] == pytest.approx(27.0, abs=0.1)
    assert ddp.parts["activations_gb"] == pytest.approx(10.8, abs=0.1)
    assert ddp.fits is False and ddp.fix.startswith("train.strategy: fsdp (~")  # the first that fits
    fsdp = next(
        r
        for r in plan(_cfg(tmp_path, strategy="fsdp", gradient_checkpointing=True), train_gpu_gb=40)
        if r.what == "dpo"
    )  # (28.25 + 27.04 + 54.08) / 8 = 13.67 GB of sharded state
    assert fsdp.parts["weights_gb"] + fsdp.parts["grads_gb"] + fsdp.parts["adam_gb"] == pytest.approx(13.7, abs=0.15)
    assert "ddp_buckets_gb" not in fsdp.parts and fsdp.fits is True
    lora = next(
        r for r in plan(_cfg(tmp_path, lora={"r": 16}, gradient_checkpointing=True), train_gpu_gb=40) if r.what == "dpo"
    )
    assert lora.parts["weights_gb"] == pytest.approx(14.1, abs=0.1)
    assert lora.parts["activations_gb"] == pytest.approx(0.6, abs=0.1)
    assert lora.fits is True and lora.per_gpu_gb < 20


def test_a_72b_policy_trains_on_one_8_gpu_node_with_lora_on_the_sharded_base(tmp_path):
    """Qwen2.5-VL-72B (73.4B parameters), 8 x 80 GB, gradient checkpointing: full fine-tuning does not
    fit even sharded, LoRA under ddp holds the whole 146.8 GB bf16 base per GPU; fsdp + lora divides
    it by 8 (18.4 GB) and fits. The plan names fsdp + lora as the fix of both."""
    rows = {}
    for name, train in (
        ("fsdp", {"strategy": "fsdp"}),
        ("lora", {"lora": {"r": 64, "alpha": 16}}),
        ("fsdp+lora", {"strategy": "fsdp", "lora": {"r": 64, "alpha": 16}}),
    ):
        rows[name] = next(
            r
            for r in plan(_cfg(tmp_path, "qwen2.5-vl-72b", gradient_checkpointing=True, **train), train_gpu_gb=80)
            if r.what == "dpo"
        )
    assert rows["fsdp"].fits is False and rows["lora"].fits is False and rows["fsdp+lora"].fits is True
    assert rows["lora"].parts["weights_gb"] == pytest.approx(146.8, abs=0.1)
    assert rows["fsdp+lora"].parts["weights_gb"] == pytest.approx(146.8 / 8, abs=0.1)
    # the fix's size: at least the sharded bf16 base, and less than the 80 GB GPU it fits
    fix = re.fullmatch(r"train\.strategy: fsdp with train\.lora \(~([\d.]+) GB per GPU\)", rows["lora"].fix)
    assert fix and 146.8 / 8 <= float(fix.group(1)) < 80
    assert rows["fsdp"].fix.startswith("train.strategy: fsdp with train.lora (~")  # LoRA's default r
    few = next(
        r
        for r in plan(
            _cfg(
                tmp_path,
                "qwen2.5-vl-72b",
                workers=2,
                batch_size=2,
                strategy="fsdp",
                gradient_checkpointing=True,
                lora={"r": 64},
            ),
            train_gpu_gb=40,
        )
        if r.what == "dpo"
    )
    assert few.fits is False and "more train.workers" in few.fix  # nothing fits on 2 x 40 GB


def _node_gpus_gb() -> dict:
    """GPU memory per node type of cluster/ray_up.yaml, from the instance types it names."""
    memory = {"g6e.2xlarge": 48, "g6e.12xlarge": 48, "p4d.24xlarge": 40}
    nodes = yaml.safe_load((REPO / "cluster" / "ray_up.yaml").read_text())["available_node_types"]
    return {
        name: memory[n["node_config"]["InstanceType"]] for name, n in nodes.items() if n.get("resources", {}).get("GPU")
    }


@pytest.mark.parametrize("config", ["cluster_7b.yaml", "qwen2_5_vl_7b.yaml", "cluster_72b.yaml", "qwen3_vl_8b.yaml"])
def test_shipped_cluster_configs_fit_the_shipped_node_types(hub_cache, config):
    gpus = _node_gpus_gb()
    loaded = load_config(REPO / "rlaifv_ray" / "configs" / config)
    if config in ("cluster_72b.yaml", "qwen3_vl_8b.yaml"):  # one 8 x 80 GB node, named in the config itself
        gpus = {"gpu_feedback": loaded.resources.gpu_memory_gb, "gpu_train": loaded.train.gpu_memory_gb}
        assert gpus == {"gpu_feedback": 80, "gpu_train": 80}
    rows = plan(loaded, feedback_gpu_gb=gpus["gpu_feedback"], train_gpu_gb=gpus["gpu_train"])
    assert {r.what for r in rows} >= {"stage sample", "stage label", "stage claims", "stage reference", "dpo"}
    assert all(r.fits for r in rows), [(r.what, r.per_gpu_gb, r.fix) for r in rows if not r.fits]


def test_plan_command_prints_the_table_and_fails_for_a_config_that_cannot_fit(hub_cache, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    cfg = REPO / "rlaifv_ray" / "configs" / "cluster_7b.yaml"
    ok = subprocess.run(
        [sys.executable, "-m", "rlaifv_ray.cli", "plan", str(cfg), "--json"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert {r["what"] for r in json.loads(ok.stdout)["memory"]} >= {"stage label", "dpo"}
    assert {r["stage"] for r in json.loads(ok.stdout)["cpus"]} >= {"sample", "label"}
    full = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlaifv_ray.cli",
            "plan",
            str(cfg),
            "--set",
            "train.strategy=ddp",
            "--set",
            "train.gradient_checkpointing=false",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert full.returncode == 1 and "dpo" in full.stdout and "fix: train.strategy: fsdp" in full.stdout


def test_run_refuses_a_config_whose_dpo_cannot_fit_before_anything_starts(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path / "run"),
                "data": {"input": "toy:4"},
                "models": {"policy": {"path": str(SHAPES / "llava-1.5-7b")}, "claims": "rules", "labeler_mode": "self"},
                "train": {"use_gpu": True, "workers": 8, "gpu_memory_gb": 40},
            }
        )
    )
    out = subprocess.run([sys.executable, "-m", "rlaifv_ray.cli", "run", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "memory plan does not fit" in out.stderr and "dpo" in out.stderr and "train.strategy: fsdp" in out.stderr
    assert not (tmp_path / "run").exists()


def test_plan_of_a_cpu_only_config_says_there_is_nothing_to_plan():
    toy = subprocess.run(
        [sys.executable, "-m", "rlaifv_ray.cli", "plan", str(REPO / "rlaifv_ray" / "configs" / "toy.yaml")],
        capture_output=True,
        text=True,
    )
    assert toy.returncode == 0 and "nothing to plan" in toy.stdout, toy.stdout + toy.stderr


def test_a_vllm_context_that_cannot_hold_image_instruction_and_answer_is_named(tmp_path):
    """LLaVA-1.5: 576 image tokens + 128 (or data.max_instruction_tokens) + 512 answer tokens."""
    from rlaifv_ray.config import validate_config

    def sample_row(max_model_len=1024, **data):
        config = validate_config(
            {
                "run_dir": str(tmp_path / "run"),
                "data": {"input": "toy:4", **data},
                "models": {
                    "policy": {
                        "path": str(SHAPES / "llava-1.5-7b"),
                        "engine": "vllm",
                        "vllm": {"max_model_len": max_model_len},
                    },
                    "claims": "rules",
                    "labeler_mode": "self",
                },
                "sampling": {"max_new_tokens": 512},
                "resources": {"sample": {"num_gpus": 1}},
            }
        )
        return next(r for r in plan(config) if r.what == "stage sample")

    short = sample_row()
    assert (
        short.fits is False
        and "vllm.max_model_len 1024 cannot hold 576 image tokens" in short.fix
        and "(1216)" in short.fix
    )
    assert "(1599)" in sample_row(max_instruction_tokens=511).fix
    assert sample_row(max_model_len=1216).fits is None  # it fits; no GPU size given, so nothing else is known


@pytest.mark.parametrize(
    "family", ["llava15", "qwen2_5_vl", "qwen3_vl", "qwen3_5", "internvl", "gemma3", "minicpmv4_6"]
)
def test_parameter_counts_equal_the_real_classes(zoo_dir, family):
    """The zoo's models are the real transformers classes at toy size: the plan's count from
    config.json alone must equal theirs, encoder and all (list-valued sizes, deepstack mergers,
    linear-attention layers, pixel shuffle, MiniCPM-V's mergers)."""
    import transformers

    model = transformers.AutoModelForImageTextToText.from_pretrained(zoo_dir / family)
    counted = sum(p.numel() for p in model.parameters())
    sh = shape(json.loads((zoo_dir / family / "config.json").read_text()), 56 * 56)
    assert sh.params == pytest.approx(counted, rel=2e-3)


def test_moe_linear_attention_and_sliding_windows_in_the_plan(zoo_dir):
    moe = shape(json.loads((SHAPES / "qwen3-vl-30b-a3b" / "config.json").read_text()))
    assert moe.active_params / 1e9 == pytest.approx(3.9, abs=0.2)  # "A3B": ~3B in the decoder per token
    hybrid = shape(json.loads((zoo_dir / "qwen3_5" / "config.json").read_text()))
    assert hybrid.kv_layers == 1 and hybrid.state_bytes_per_seq > 0  # one of two layers keeps a KV cache
    # the linear layer's state is fixed: 1000 more tokens cost only the attention layer's KV
    assert hybrid.kv_bytes(2000, 2) - hybrid.kv_bytes(1000, 2) == 2 * hybrid.kv_dim * 2 * 1000
    gemma = shape(json.loads((zoo_dir / "gemma3" / "config.json").read_text()))
    assert gemma.window_layers == 1 and gemma.window > 0
    full = 2 * gemma.kv_dim * 2
    assert gemma.kv_bytes(1000, 2) == full * (1000 + gemma.window)  # the local layer stops at its window


def test_every_vllm_stage_checks_its_context_per_family(hub_cache):
    """Qwen3-VL's image tokens at max_image_pixels (32 px per token: 784 at 802816 px), checked for
    the labeler (image + a question) and the claim LLM (answer + prompt + facts), not just sampling."""
    from rlaifv_ray.config import validate_config

    raw = yaml.safe_load((REPO / "rlaifv_ray" / "configs" / "qwen3_vl_8b.yaml").read_text())
    raw["models"]["labeler"]["vllm"]["max_model_len"] = 800
    raw["models"]["claim_llm"]["vllm"]["max_model_len"] = 1024
    rows = {r.what: r for r in plan(validate_config(raw), feedback_gpu_gb=80, train_gpu_gb=80)}
    assert rows["stage label"].fits is False and "784 image tokens + a question (913)" in rows["stage label"].fix
    claims = rows["stage claims"]
    assert claims.fits is False and "512-token answer in the claim prompt + 512 tokens of facts (1280)" in claims.fix
    assert rows["stage sample"].fits and rows["stage reference"].fits


def _sim_config(tmp_path, policy: str, sample_cpus: float) -> Path:
    sim = {"engine": "sim"}
    cfg = tmp_path / "sim.yaml"
    gpu = {"num_gpus": 1, "num_cpus": 0.5}
    cfg.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path / "run"),
                "models": {
                    "policy": {"path": policy, **sim},
                    "claim_llm": {"path": "sim:8b", **sim},
                    "labeler": {"path": "sim:34b", **sim},
                },
                "resources": {"sample": {"num_gpus": 1, "num_cpus": sample_cpus}, "claims": gpu, "label": gpu},
            }
        )
    )
    return cfg


def test_cpus_per_gpu_each_pool_needs_and_the_warning_when_resources_give_fewer(tmp_path):
    """needed = the pipeline's CPU per answer / the GPU's seconds per answer, the latter on the
    decode curve through the two published vLLM points (12,500 tok/s at 8B, 460 at 70B)."""
    from rlaifv_ray.pipeline.cpu_plan import CPU_MS_PER_ANSWER, cpu_plan

    exponent = math.log(12_500 / 460) / math.log(70 / 8)
    rows = {r.stage: r for r in cpu_plan(load_config(_sim_config(tmp_path, "sim:7b", 0.5)))}
    assert set(rows) == {"sample", "claims", "label"} and all(r.ok for r in rows.values())
    assert rows["sample"].cpus_per_gpu_needed == pytest.approx(0.26e-3 / 0.012, abs=1e-3)
    assert rows["label"].cpus_per_gpu_needed == pytest.approx(0.40e-3 / 0.064, abs=1e-3)

    small = {r.stage: r for r in cpu_plan(load_config(_sim_config(tmp_path, "sim:0.5b", 0.1)))}["sample"]
    gpu_s = 0.012 * (0.5 / 7) ** exponent  # a 0.5B policy decodes ~56x faster than a 7B one
    assert small.gpu_s_per_answer == pytest.approx(gpu_s, rel=1e-3)
    assert small.cpus_per_gpu_needed == pytest.approx(CPU_MS_PER_ANSWER["sample"] / 1000 / gpu_s, rel=1e-2)
    assert small.cpus_per_gpu_needed > 0.1 and not small.ok

    out = subprocess.run(
        [sys.executable, "-m", "rlaifv_ray.cli", "plan", str(_sim_config(tmp_path, "sim:0.5b", 0.1))],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr  # a warning, not a failure
    assert "warning: resources.sample: 0.1 CPUs per GPU" in out.stdout
    assert "raise resources.sample.num_cpus" in out.stdout and "resources.label" not in out.stdout


def test_a_real_models_cpu_need_comes_from_its_active_parameters(tmp_path):
    from rlaifv_ray.pipeline.cpu_plan import cpu_plan

    raw = yaml.safe_load(_sim_config(tmp_path, "sim:7b", 0.5).read_text())
    raw["models"]["policy"] = {"path": str(SHAPES / "llava-1.5-7b")}
    config = validate_config(raw)
    sample = {r.stage: r for r in cpu_plan(config)}["sample"]
    hub_config = json.loads((SHAPES / "llava-1.5-7b" / "config.json").read_text())
    want = shape(hub_config, config.data.max_image_pixels).active_params / 1e9
    assert sample.params_b == pytest.approx(want, abs=0.01) and 6.5 < sample.params_b < 7.5
