"""`rlaifv-ray sweep`: variants x seeds as ordinary runs on Ray, stages shared between runs whose
resume keys match, results side by side, a failed run recorded while the others finish."""

import json

import pyarrow as pa
import pytest
import yaml

from rlaifv_ray.errors import ConfigError
from rlaifv_ray.storage.store import SHARED_STAGES, RunStore
from rlaifv_ray.sweep.spec import load_sweep
from rlaifv_ray.sweep.table import markdown
from tests.conftest import REPO


def _write(path, obj):
    path.write_text(yaml.safe_dump(obj, sort_keys=False))  # the file order is the run order
    return path


def test_a_bad_sweep_lists_every_problem_at_once(tmp_path):
    sweep = {"base": "toy", "out": "out", "seeds": [0, 0], "variants": {"a/b": {}}, "typo": 1}
    with pytest.raises(ConfigError) as err:
        load_sweep(_write(tmp_path / "s.yaml", sweep))
    text = str(err.value)
    assert "typo" in text and "distinct" in text and "folder names" in text and "a/b" in text
    bad_runs = {
        "base": "toy",
        "out": "out",
        "seeds": [0, 1],
        "variants": {"ok": {}, "bad-beta": {"train.beta": -1}, "bad-key": {"sampling.nope": 2}},
        "metrics": ["chair_s", "chiar_i"],
    }
    with pytest.raises(ConfigError) as err:
        load_sweep(_write(tmp_path / "s.yaml", bad_runs))
    lines = str(err.value).splitlines()
    for variant, field in (("bad-beta", "train.beta"), ("bad-key", "sampling.nope")):
        for seed in (0, 1):
            assert any(f"variant {variant}, seed {seed}" in line for line in lines)
        assert field in str(err.value)
    assert "variant ok" not in str(err.value)
    assert "'chiar_i' is not a summary column" in str(err.value)


@pytest.mark.parametrize("name", ["ablations.yaml", "cluster_recipe.yaml"])
def test_the_shipped_sweep_files_are_valid(name):
    sweep = load_sweep(REPO / "jobs" / "sweeps" / name)
    assert len(sweep.runs) == len(sweep.spec.variants) * len(sweep.spec.seeds) > 1


def test_runs_are_the_base_config_with_the_sweeps_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths: the directory the command runs in
    sweep = {
        "base": "toy",
        "out": "out",
        "seeds": [3, 4],
        "set": {"iterations": 2, "eval.toy_heldout": 10},
        "variants": {"rlaif-v": {}, "holistic": {"scoring": "holistic", "iterations": 1}},
    }
    runs = load_sweep(_write(tmp_path / "s.yaml", sweep)).runs
    assert [(r.variant, r.seed) for r in runs] == [("rlaif-v", 3), ("rlaif-v", 4), ("holistic", 3), ("holistic", 4)]
    assert [r.config.run_dir for r in runs] == [str(tmp_path / "out" / r.name) for r in runs]
    assert [r.config.seed for r in runs] == [3, 4, 3, 4]
    assert [r.config.iterations for r in runs] == [2, 2, 1, 1]  # a variant's own value wins over `set`
    assert {r.config.scoring for r in runs[2:]} == {"holistic"} and runs[0].config.scoring == "claims"
    assert {r.config.eval.toy_heldout for r in runs} == {10}


def test_as_many_runs_at_once_as_the_cluster_holds(tmp_path):
    from rlaifv_ray.pipeline.sweep_runs import fits

    sweep = {"base": "toy", "out": str(tmp_path), "variants": {"a": {}, "gpu": {"train.use_gpu": True}}}
    toy, gpu = load_sweep(_write(tmp_path / "s.yaml", sweep)).runs
    # the toy's DPO: 1 worker x 2 CPUs; its stream: 3 pools x 0.5 CPU at their minimum size
    assert fits([toy], {"CPU": 2.0}) == 1 and fits([toy], {"CPU": 9.0}) == 4
    assert fits([toy], {"CPU": 1.0}) == 1  # never none
    assert fits([toy, gpu], {"CPU": 16.0, "GPU": 2.0}) == 2  # each run trains on a GPU


def test_a_run_starts_once_the_earlier_runs_of_its_seed_are_past_iteration_0(tmp_path):
    from rlaifv_ray.pipeline.sweep_runs import _ready

    sweep = {"base": "toy", "out": str(tmp_path), "seeds": [0, 1], "variants": {"a": {}, "b": {}, "c": {}}}
    runs = load_sweep(_write(tmp_path / "s.yaml", sweep)).runs  # a/0, a/1, b/0, b/1, c/0, c/1
    status = {r.name: {"state": "waiting"} for r in runs}
    status["a/seed_0"] = {"state": "running", "step": "[iter_000] dpo"}
    status["a/seed_1"] = {"state": "running", "step": "[iter_001] feedback"}
    ready = {r.name for r in runs if _ready(r, runs, status)}
    assert ready == {"a/seed_0", "a/seed_1", "b/seed_1"}  # b/seed_0 waits for a/seed_0's iteration 0
    status["a/seed_0"] = {"state": "failed", "error": "x"}
    status["b/seed_0"] = {"state": "running", "step": "starting"}
    assert not _ready(runs[4], runs, status)  # c/seed_0: b/seed_0 has not passed iteration 0
    status["b/seed_0"] = {"state": "done"}
    assert _ready(runs[4], runs, status)


def _stage(store: RunStore, rel: str, key: str, rows: int, **extra) -> None:
    store.write_part(rel, pa.table({"x": list(range(rows))}), [str(i) for i in range(rows)])
    store.mark_finished(rel, key, **extra)


def test_a_stage_finished_by_a_sibling_under_the_same_key_is_copied_with_its_origin(tmp_path):
    a, b, alone = (RunStore(str(tmp_path / n)) for n in ("a", "b", "alone"))
    _stage(a, "iter_000/candidates", "k1", 3)
    _stage(a, "iter_000/quarantine/candidates", "-", 1)
    a.write_json("iter_000/train_log.json", {"steps": [1, 2]})
    _stage(a, "iter_000/checkpoint", "k2", 1, checkpoint=a.uri_of("iter_000/checkpoint"))
    for s in (a, b):
        s.write_json(SHARED_STAGES, {"runs": [a.uri, b.uri]})

    assert not b.finished("iter_000/candidates", "another key")
    assert not b.exists("iter_000/candidates")
    assert b.finished("iter_000/candidates", "k1")
    manifest = b.read_json("iter_000/candidates/_SUCCESS")
    assert manifest == {"rows": 3, "config_hash": "k1", "shared_from": a.uri_of("iter_000/candidates")}
    assert b.read_table("iter_000/candidates").equals(a.read_table("iter_000/candidates"))
    assert b.count_rows("iter_000/quarantine/candidates") == 1  # what the stage quarantined comes along

    assert b.finished("iter_000/checkpoint", "k2", companions=("iter_000/train_log.json",))
    assert b.read_json("iter_000/checkpoint/_SUCCESS")["checkpoint"] == b.uri_of("iter_000/checkpoint")
    assert b.read_json("iter_000/train_log.json") == {"steps": [1, 2]}
    assert b.finished("iter_000/candidates", "k1")  # now its own

    _stage(alone, "iter_001/x", "k3", 1)
    assert not alone.finished("iter_000/candidates", "k1")  # not in a sweep: nothing to share


def test_the_table_gives_last_iteration_means_and_changes_and_feedback_means():
    def rows(chair, pairs):
        return {str(k): {"chair_s": c, "pairs": p} for k, (c, p) in enumerate(zip(chair, pairs))}

    table = {
        "metrics": ["chair_s", "pairs"],
        "iterations": 2,
        "runs": {
            "a": {"0": rows([0.4, 0.3, 0.1], [None, 10, 20]), "1": rows([0.3, 0.25, 0.2], [None, 30, 30])},
            "b": {"0": rows([0.4, 0.2, 0.2], [None, 8, 8]), "1": rows([0.3, 0.3], [None, 6])},
        },
        "failed": {"b/seed_1": "iter_001: no preference pairs"},
    }
    lines = markdown(table).splitlines()
    assert lines[0] == "| variant | seeds done | chair_s (iter 0 → 2) | pairs |"
    # a: CHAIRs at iteration 2 is 0.1 and 0.2 (sd 0.0707), changes -0.3 and -0.1 from a mean start of
    # 0.35 (-57%); pairs average 15 and 30 per seed over iterations 1-2 (sd 10.607)
    assert lines[2] == "| a | 2 of 2 | 0.150 ± 0.071 (-0.200, -57%) | 22.500 ± 10.607 |"
    assert lines[3] == "| b | 1 of 2 | 0.200 (-0.200, -50%) | 8.000 |"  # seed 1 stopped early
    assert "- **failed** b/seed_1: iter_001: no preference pairs" in lines


def test_sweep_runs_variants_shares_their_common_stages_and_isolates_a_failure(
    tmp_path, clean_run, capfd, monkeypatch, mlflow_server
):
    """The first variant resumes from the session's finished feedback iteration (its run dir copied
    in: an ordinary run's resume); the others copy what they share with it. The sweep is one MLflow
    experiment with a tracker run per variant and seed, the failed one included."""
    import shutil

    from mlflow import MlflowClient

    from rlaifv_ray.cli import main

    monkeypatch.chdir(tmp_path)
    config, _ = clean_run
    base = {**config.model_dump(mode="json"), "data": {**config.data.model_dump(mode="json"), "input": "toy:16"}}
    tracking = {"mlflow": {"uri": mlflow_server}}
    _write(tmp_path / "base.yaml", {**base, "eval": {**base["eval"], "toy_heldout": 8}, "tracking": tracking})
    sweep = {
        "base": "base.yaml",
        "out": "out",
        "seeds": [0],
        "variants": {"beta-0.1": {}, "beta-0.5": {"train.beta": 0.5}, "no-pairs": {"pairs.min_gap": 99}},
    }
    shutil.copytree(config.run_dir, tmp_path / "out" / "beta-0.1" / "seed_0")
    assert main(["sweep", str(_write(tmp_path / "sweep.yaml", sweep))]) == 1  # one run failed
    err = capfd.readouterr().err
    out = RunStore(str(tmp_path / "out"))
    status = out.read_json("status.json")
    assert {n: s["state"] for n, s in status.items()} == {
        "beta-0.1/seed_0": "done",
        "beta-0.5/seed_0": "done",
        "no-pairs/seed_0": "failed",
    }
    assert "no preference pairs" in status["no-pairs/seed_0"]["error"]
    assert "no-pairs/seed_0: failed" in err and "[iter_000] dpo" in err and "1 running" in err

    first, second, failed = (RunStore(str(tmp_path / "out" / v / "seed_0")) for v in sweep["variants"])
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        origin = second.read_json(f"iter_000/{stage}/_SUCCESS")["shared_from"]
        assert origin == first.uri_of(f"iter_000/{stage}")
        assert second.read_table(f"iter_000/{stage}").equals(first.read_table(f"iter_000/{stage}"))
    trained = second.read_json("iter_000/checkpoint/_SUCCESS")  # beta differs: trained, not copied
    assert "shared_from" not in trained and trained["checkpoint"] == second.uri_of("iter_000/checkpoint")
    assert second.read_json("heldout/policy_000/_SUCCESS")["shared_from"] == first.uri_of("heldout/policy_000")
    assert "shared_from" in failed.read_json("iter_000/labels/_SUCCESS")
    assert "shared_from" not in failed.read_json("iter_000/pairs/_SUCCESS")  # min_gap is in its key
    assert "no preference pairs" in failed.read_bytes("run.log").decode()

    table = out.read_json("table.json")
    assert table["failed"] == {"no-pairs/seed_0": status["no-pairs/seed_0"]["error"]}
    for variant, run in (("beta-0.1", first), ("beta-0.5", second)):
        summary = run.read_json("summary.json")
        assert [table["runs"][variant]["0"][str(r["iteration"])]["chair_s"] for r in summary] == [
            r["chair_s"] for r in summary
        ]
    assert table["runs"]["no-pairs"]["0"].keys() == {"0"}  # the starting policy was evaluated
    md = out.read_bytes("table.md").decode()
    assert "| beta-0.5 | 1 of 1 |" in md and "| no-pairs | 0 of 1 |" in md and "**failed** no-pairs/seed_0" in md
    for metric in ("chair_s", "recall", "pair_accuracy", "pairs"):
        assert out.read_bytes(f"{metric}.png")[:4] == b"\x89PNG"
    assert json.loads(out.read_bytes("status.json")) == status

    client = MlflowClient(mlflow_server)
    tracked = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("out").experiment_id])}
    assert set(tracked) == set(status)
    assert tracked["beta-0.5/seed_0"].data.params["override.train.beta"] == "0.5"
    assert tracked["beta-0.5/seed_0"].data.tags["variant"] == "beta-0.5"
    assert "loss" in tracked["beta-0.5/seed_0"].data.metrics and "chair_s" in tracked["no-pairs/seed_0"].data.metrics
