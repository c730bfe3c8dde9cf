"""cluster/: the ray up config against Ray's own autoscaler schema; KubeRay manifests and Serve
configs parse and name real entry points, config files and config keys."""

import importlib
import shlex

import pytest
import yaml

from rlaifv_ray.config import load_config
from tests.conftest import REPO

CLUSTER = REPO / "cluster"


def _yaml(path):
    return yaml.safe_load(path.read_text())


def _loads_with_overrides(config: str, overrides: list[str]) -> None:
    load_config(REPO / config, overrides)  # raises ConfigError listing any unknown key or bad value


def test_ray_up_config_passes_rays_autoscaler_schema():
    import json
    from pathlib import Path

    import jsonschema
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = _yaml(CLUSTER / "ray_up.yaml")
    jsonschema.validate(config, schema)  # raises on any violation (it caught missing node resources)
    assert config["head_node_type"] in config["available_node_types"]
    gpu = [n for n in config["available_node_types"].values() if n["max_workers"] > n["min_workers"]]
    assert len(gpu) >= 2  # feedback and training types both autoscale


def test_rayjob_runs_the_driver_with_a_real_config():
    job = _yaml(CLUSTER / "kuberay" / "rayjob.yaml")
    assert job["kind"] == "RayJob"
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["python", "jobs/iterate.py"] and (REPO / argv[1]).exists()
    config = argv[argv.index("--config") + 1]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    _loads_with_overrides(config, sets)
    assert (
        job["spec"]["clusterSelector"]["ray.io/cluster"]
        == _yaml(CLUSTER / "kuberay" / "raycluster.yaml")["metadata"]["name"]
    )


def test_raycluster_has_autoscaling_gpu_groups():
    cluster = _yaml(CLUSTER / "kuberay" / "raycluster.yaml")
    assert cluster["kind"] == "RayCluster" and cluster["spec"]["enableInTreeAutoscaling"]
    groups = cluster["spec"]["workerGroupSpecs"]
    assert all(g["maxReplicas"] >= g["minReplicas"] for g in groups)
    assert all("nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"] for g in groups)


@pytest.mark.parametrize("source", ["serve_ranker.yaml", "kuberay/rayservice.yaml"])
def test_serve_configs_name_our_builder_and_valid_settings(source):
    from ray.serve.schema import ServeDeploySchema

    doc = _yaml(CLUSTER / source)
    if doc.get("kind") == "RayService":
        doc = yaml.safe_load(doc["spec"]["serveConfigV2"])
    spec = ServeDeploySchema.model_validate(doc)
    for app in spec.applications:
        module, attr = app.import_path.split(":")
        assert callable(getattr(importlib.import_module(module), attr))
        _loads_with_overrides(app.args["config"], app.args.get("set", []))


def test_runtime_env_example_is_a_valid_runtime_env():
    from ray.runtime_env import RuntimeEnv

    env = RuntimeEnv(**_yaml(CLUSTER / "runtime_env.yaml"))
    assert "RLAIFV_CACHE" in env["env_vars"]
    assert not any("SECRET" in k or "KEY" in k for k in env["env_vars"])  # credentials never in this file
