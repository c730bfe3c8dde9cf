from pathlib import Path

import pytest

from rlaifv_ray.config import RunConfig, describe_fields, load_config, validate_config
from rlaifv_ray.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "rlaifv_ray" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert config.sampling.n >= 2


def test_shipped_configs_exist():
    assert {p.name for p in CONFIGS} >= {"toy.yaml", "cluster_7b.yaml"}


def test_overrides_apply_with_yaml_types(tmp_path):
    config = load_config(CONFIGS[0], ["sampling.n=4", "train.use_gpu=true", "resources.label.concurrency=[2, 6]"])
    assert config.sampling.n == 4 and config.train.use_gpu is True
    assert config.resources.label.concurrency == (2, 6)


def test_bad_config_lists_every_problem_in_one_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "run_dir: r\n"
        "models: {policy: {path: ''}, claims: llm}\n"
        "sampling: {n: 1, temperature: -1, tmperature: 2}\n"
        "resources: {label: {concurrency: [3, 1]}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(bad, ["train.lr=abc", "nokey"])
    msg = str(info.value)
    for fragment in (
        "models.policy.path",
        "sampling.n",
        "sampling.temperature",
        "sampling.tmperature",
        "resources.label.concurrency",
        "train.lr",
        "nokey",
        "claim_llm",
    ):
        assert fragment in msg, fragment
    assert "problem(s)" in msg


def test_missing_and_unparseable_config_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("run_dir: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_vllm_engine_is_checked_where_the_stage_runs_not_at_validation(toy_models):
    import importlib.util

    from rlaifv_ray.engines import load_engine

    raw = {
        "run_dir": "r",
        "models": {"policy": {"path": "p", "engine": "vllm"}, "claims": "rules", "labeler_mode": "self"},
    }
    assert validate_config(raw).models.policy.engine == "vllm"
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ConfigError, match="engine 'vllm' needs vLLM .* pip install"):
            load_engine(str(toy_models / "policy"), "vllm")


def test_every_field_has_a_description():
    lines = describe_fields()
    assert len(lines) > 30
    empty = [line for line in lines if line.rstrip().endswith(":")]
    assert not empty, empty


def test_vllm_options_reach_the_engine_and_tensor_parallel_needs_gpus():
    vllm = {"engine": "vllm", "vllm": {"tensor_parallel_size": 2, "max_model_len": 1024}}
    raw = {
        "run_dir": "r",
        "models": {"policy": {"path": "p", **vllm}, "claims": "rules", "labeler_mode": "self"},
        "resources": {"sample": {"num_gpus": 2}},
    }
    with pytest.raises(ConfigError) as err:
        validate_config(raw)
    # the reference and (self-)label stages run the policy too and have no GPUs
    assert "resources.reference.num_gpus" in str(err.value) and "resources.label.num_gpus" in str(err.value)
    assert "resources.sample" not in str(err.value)
    raw["resources"] = {k: {"num_gpus": 2} for k in ("sample", "reference", "label")}
    config = validate_config(raw)
    options = config.models.policy.engine_options()
    assert options["tensor_parallel_size"] == 2 and options["max_model_len"] == 1024 and options["dtype"] == "auto"
    assert validate_config(
        {"run_dir": "r", "models": {"policy": {"path": "p"}, "claims": "rules", "labeler_mode": "self"}}
    ).models.policy.engine_options() == {"dtype": "auto"}


def test_relative_paths_resolve_once_against_the_base_directory(tmp_path):
    (tmp_path / "models" / "policy").mkdir(parents=True)
    raw = {
        "run_dir": "runs/x",
        "models": {"policy": {"path": "models/policy"}, "claims": "rules", "labeler": {"path": "org/labeler-7b"}},
        "data": {"input": "prompts.jsonl"},
        "serve": {"reference": "models/policy"},
    }
    config = validate_config(raw, base=tmp_path)
    assert config.run_dir == str(tmp_path / "runs" / "x")
    assert config.models.policy.path == str(tmp_path / "models" / "policy")
    assert config.models.labeler.path == "org/labeler-7b"  # no such folder: a hub id, left for from_pretrained
    assert config.data.input == str(tmp_path / "prompts.jsonl")
    assert config.serve.reference == str(tmp_path / "models" / "policy")
    # a resolved config validates to itself from any directory (workers, a rerun elsewhere)
    again = validate_config(config.model_dump(mode="json"), base=tmp_path / "models")
    assert again == config
    uri = {
        "run_dir": "s3://b/run",
        "models": {"policy": {"path": "s3://b/policy"}, "claims": "rules", "labeler_mode": "self"},
        "data": {"input": "toy:8"},
    }
    config = validate_config(uri, base=tmp_path)
    assert (config.run_dir, config.models.policy.path, config.data.input) == ("s3://b/run", "s3://b/policy", "toy:8")


def test_model_path_neither_folder_nor_hub_id_is_one_problem_each(tmp_path):
    raw = {
        "run_dir": "r",
        "models": {
            "policy": {"path": "rlaifv_ray/toyworld/pretrained/nope"},
            "claims": "rules",
            "labeler": {"path": "./labeler"},
        },
        "sampling": {"n": 1},
    }
    with pytest.raises(ConfigError) as info:
        validate_config(raw, base=tmp_path)
    msg = str(info.value)
    assert "3 problem(s)" in msg and "sampling.n" in msg
    assert "models.policy.path" in msg and "neither a model folder" in msg and "nope" in msg
    assert "models.labeler.path" in msg and "./labeler" in msg
    # an absolute path may be a mount that only the cluster's GPU nodes have: taken as given
    raw = {
        "run_dir": "r",
        "models": {"policy": {"path": "/mnt/models/policy"}, "claims": "rules", "labeler_mode": "self"},
    }
    assert validate_config(raw, base=tmp_path).models.policy.path == "/mnt/models/policy"


def test_engine_batch_size_per_stage_and_device_map_reach_the_hf_engine_options():
    raw = {
        "run_dir": "r",
        "models": {"policy": {"path": "p", "device_map": "auto"}, "claims": "rules", "labeler_mode": "self"},
        "resources": {"reference": {"engine_batch_size": 4}},
    }
    config = validate_config(raw)
    assert config.models.policy.engine_options(config.resources.reference.engine_batch_size) == {
        "dtype": "auto",
        "device_map": "auto",
        "batch_size": 4,
    }
    assert config.resources.sample.engine_batch_size == 32
    with pytest.raises(ConfigError) as err:
        validate_config(
            {
                **raw,
                "claim_extraction": {"prompts": "chatty", "max_new_tokens": 0},
                "models": {**raw["models"], "policy": {"path": "p", "device_map": "balanced"}},
            }
        )
    for field in ("claim_extraction.prompts", "claim_extraction.max_new_tokens", "models.policy.device_map"):
        assert field in str(err.value)


def test_a_stage_whose_gpus_cannot_hold_its_model_is_refused_by_name_before_any_work(tmp_path):
    """Validation and `plan` share one memory model (plan.py): preflight refuses what plan says
    cannot fit, naming the stage and the fix."""
    from rlaifv_ray.driver import preflight
    from rlaifv_ray.plan import plan
    from tests import zoo

    folder = zoo.build("llava_next", tmp_path / "labeler")
    raw = {
        "run_dir": str(tmp_path / "r"),
        "data": {"input": "toy:4"},
        "models": {
            "policy": {"path": str(folder)},
            "claims": "rules",
            "labeler": {"path": str(folder), "dtype": "bfloat16"},
        },
        "resources": {"label": {"num_gpus": 1, "engine_batch_size": 1}, "sample": {"num_gpus": 0}},
    }
    label = plan(validate_config(raw))[0]
    assert label.what == "stage label" and label.fits is None  # no GPU size known: nothing to judge
    raw["resources"]["gpu_memory_gb"] = label.per_gpu_gb / 2  # half of what the stage needs
    with pytest.raises(ConfigError) as err:
        preflight(validate_config(raw))
    assert "stage label" in str(err.value) and "fix: lower resources.label.engine_batch_size" in str(err.value)
    assert "stage sample" not in str(err.value)  # no GPU: nothing to check
    raw["resources"]["gpu_memory_gb"] = label.per_gpu_gb * 2
    preflight(validate_config(raw))  # fits: no error


def test_fsdp_settings_that_cannot_work_are_refused():
    raw = {
        "run_dir": "r",
        "models": {"policy": {"path": "p"}, "claims": "rules", "labeler_mode": "self"},
        "train": {"strategy": "fsdp", "lora": {"r": 8}, "workers": 3, "batch_size": 8},
    }
    with pytest.raises(ConfigError, match="divisible by train.workers"):
        validate_config(raw)
    raw["train"]["workers"] = 4
    assert validate_config(raw).train.lora.r == 8  # LoRA on the sharded base
