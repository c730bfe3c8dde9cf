"""Tracking: one MLflow run (a real server on loopback, SQLite backend) and one W&B offline run per
run directory, every DPO step under TRL's names numbered across iterations, every summary metric per
iteration, params, tags and artifacts; a rerun doubles nothing; a tracker that is down warns once."""

import shutil

import pytest

from rlaifv_ray.config import validate_config
from rlaifv_ray.storage.store import RunStore
from rlaifv_ray.toyworld.datasets import write_benchmark
from tests.conftest import TRL_STEP_METRICS, _free_ports, toy_config, wandb_history


def _run(client, experiment: str):
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]  # one tracker run per run directory
    return runs[0]


def _steps(client, run_id: str, metric: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, metric))


def test_a_run_logs_to_one_mlflow_run_and_one_wandb_run_and_a_rerun_doubles_nothing(
    clean_run, tmp_path, toy_models, mlflow_server, monkeypatch
):
    from mlflow import MlflowClient

    from rlaifv_ray.driver import run

    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # W&B offline: its run files, read back below
    run_dir = tmp_path / "run"
    shutil.copytree(clean_run[0].run_dir, run_dir)  # iteration 0's feedback, finished
    mcq = write_benchmark(str(tmp_path / "mcq"), "mcq", 6)
    raw = toy_config(
        tmp_path,
        toy_models,
        **{
            "data.input": "toy:16",
            "eval.toy_heldout": 16,
            "eval.benchmarks": [mcq],
            "eval.select": {"metric": "chair_s", "guard": {"metric": "shapes_mcq_accuracy", "max_drop": 1.0}},
            "train.batch_size": 2,
            "train.strategy": "fsdp",  # the HF Trainer (ddp) path is tracked in test_driver's kill and resume
            "train.heldout_pairs": 2,
            "tracking": {"mlflow": {"uri": mlflow_server, "experiment": "driver"}, "wandb": {"project": "rlaifv"}},
        },
    )
    summary = run(validate_config(raw))
    store = RunStore(str(run_dir))
    n = len(store.read_json("iter_000/train_log.json")["steps"])
    assert n >= 2 and summary[1]["heldout_margin"] is not None and summary[1]["kl_ref_policy"] is not None

    client = MlflowClient(mlflow_server)
    tracked = _run(client, "driver")
    assert tracked.info.run_name == "run" and tracked.info.status == "FINISHED"
    assert tracked.data.tags["run_dir"] == str(run_dir) and tracked.data.tags["rlaifv_ray.version"]
    assert tracked.data.params["train.strategy"] == "fsdp" and tracked.data.params["sampling.n"] == "4"
    for metric in TRL_STEP_METRICS:  # every DPO step, under TRL's names
        assert _steps(client, tracked.info.run_id, metric) == list(range(1, n + 1)), metric
    for metric in ("chair_s", "recall", "shapes_mcq_accuracy"):  # per iteration, the starting policy included
        history = sorted(client.get_metric_history(tracked.info.run_id, metric), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(r["iteration"], r[metric]) for r in summary]
    for metric in ("pairs", "kl_ref_policy", "heldout_margin", "words_mean", "distinct_2", "step_seconds.dpo"):
        assert _steps(client, tracked.info.run_id, metric) == [1], metric
    artifacts = {a.path for a in client.list_artifacts(tracked.info.run_id)}
    assert {"report.html", "summary.json", "best.json", "metrics.png", "stability.png"} <= artifacts

    kept = list(run_dir.glob("wandb/offline-run-*/files/report.html"))  # `wandb sync` uploads these
    assert kept and all(f.is_file() and not f.is_symlink() for f in kept)
    rows = wandb_history(run_dir)
    assert [r["dpo_step"] for r in rows if "loss" in r] == list(range(1, n + 1))
    assert all(set(TRL_STEP_METRICS) <= set(r) for r in rows if "loss" in r)
    assert [(r["iteration"], r["chair_s"]) for r in rows if "chair_s" in r] == [
        (r["iteration"], r["chair_s"]) for r in summary
    ]

    # everything finished: a rerun logs nothing twice, to the same tracker runs
    state = store.read_json("tracking.json")
    assert state["mlflow"]["run_id"] == tracked.info.run_id
    run(validate_config(raw))
    assert _run(client, "driver").info.run_id == tracked.info.run_id
    assert _steps(client, tracked.info.run_id, "loss") == list(range(1, n + 1))
    assert _steps(client, tracked.info.run_id, "chair_s") == [0, 1]
    again = wandb_history(run_dir)
    assert [r["dpo_step"] for r in again if "loss" in r] == list(range(1, n + 1))
    assert store.read_json("tracking.json")["wandb"]["run_id"] == state["wandb"]["run_id"]


def test_an_unreachable_tracker_warns_once_and_the_next_run_fills_in_what_it_missed(
    tmp_path, toy_models, mlflow_server, caplog
):
    from mlflow import MlflowClient

    from rlaifv_ray.tracking import Tracking

    (port,) = _free_ports(1)  # nothing listens there
    down_uri = f"http://127.0.0.1:{port}"
    raw = toy_config(tmp_path, toy_models, tracking={"mlflow": {"uri": down_uri, "experiment": "down"}})
    store = RunStore(raw["run_dir"])
    rows = [{"iteration": 0, "chair_s": 0.4, "policy": "p0"}, {"iteration": 1, "chair_s": 0.3, "policy": "p1"}]
    train_log = {"steps": [{"step": 1, "loss": 0.69}, {"step": 2, "loss": 0.6}]}

    down = Tracking(validate_config(raw), store)
    down.start()
    down.iteration(rows[0])
    down.dpo(0, train_log)
    down.iteration(rows[1])
    warnings = [r.getMessage() for r in caplog.records if "tracking: mlflow" in r.getMessage()]
    assert len(warnings) == 1 and "the run goes on" in warnings[0] and "a rerun logs what is missing" in warnings[0]
    assert not (store.read_json("tracking.json") or {}).get("mlflow", {}).get("logged")

    raw["tracking"]["mlflow"] = {"uri": mlflow_server, "experiment": "back"}  # the tracker is back
    back = Tracking(validate_config(raw), store)
    back.start()
    back.iteration(rows[0])
    back.dpo(0, train_log)
    back.iteration(rows[1])
    back.finish()
    client = MlflowClient(mlflow_server)
    tracked = _run(client, "back")
    assert _steps(client, tracked.info.run_id, "chair_s") == [0, 1]
    assert [m.value for m in sorted(client.get_metric_history(tracked.info.run_id, "loss"), key=lambda m: m.step)] == [
        0.69,
        0.6,
    ]


def test_mlflow_credentials_stay_out_of_the_config():
    from rlaifv_ray.config import MlflowConfig
    from rlaifv_ray.errors import ConfigError

    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_USERNAME"):
        from rlaifv_ray.config import validate_section

        validate_section(MlflowConfig, {"uri": "https://user:secret@mlflow.example.com"}, "tracking.mlflow")
    assert MlflowConfig(uri="https://mlflow.example.com").uri


def test_a_sweep_is_one_experiment_with_one_tracker_run_per_variant_and_seed(tmp_path, monkeypatch):
    import yaml

    from rlaifv_ray.sweep.spec import load_sweep

    monkeypatch.chdir(tmp_path)
    sweep = {
        "base": "toy",
        "out": "recipe",
        "seeds": [0, 1],
        "set": {"tracking": {"mlflow": {"uri": "http://127.0.0.1:5000"}, "wandb": {"project": "p"}}},
        "variants": {"base": {}, "lr": {"train.lr": 1e-5}},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    runs = load_sweep(tmp_path / "s.yaml").runs
    assert {r.config.tracking.mlflow.experiment for r in runs} == {"recipe"}
    assert {r.config.tracking.wandb.group for r in runs} == {"recipe"}
    assert [r.config.tracking.run_name for r in runs] == ["base/seed_0", "base/seed_1", "lr/seed_0", "lr/seed_1"]
    assert runs[2].config.tracking.params == {"override.train.lr": "1e-05"}
    assert runs[3].config.tracking.tags == {"sweep": "recipe", "variant": "lr", "seed": "1"}
