import json
import subprocess
import sys


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rlaifv_ray.cli", *args], capture_output=True, text=True)


def test_eval_policy_prints_one_json_object(toy_models):
    out = _cli("eval", "--model", str(toy_models / "policy"), "--num", "12", "--seed", "5", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["n"] == 12
    # the same evaluation in this process, through the library rather than the command line
    from rlaifv_ray.engines import load_engine
    from rlaifv_ray.toyworld.heldout import eval_policy

    assert result == json.loads(json.dumps(eval_policy(load_engine(str(toy_models / "policy")), 12, 5, 0.7)))
    assert 0 < result["recall"] <= 1 and result["mean_words"] > 3  # answers that name objects


def test_eval_labeler_prints_accuracy(toy_models):
    out = _cli("eval", "--labeler", str(toy_models / "labeler"), "--num", "10", "--json")
    assert out.returncode == 0, out.stderr
    from rlaifv_ray.engines import load_engine
    from rlaifv_ray.toyworld.heldout import eval_labeler

    result = json.loads(out.stdout)
    assert result == json.loads(json.dumps(eval_labeler(load_engine(str(toy_models / "labeler")), 10, 1, None)))
    assert result["accuracy"] >= 0.8  # the committed labeler's bar is 0.9 on 200 images


def test_missing_model_is_one_clear_line_not_a_traceback(tmp_path):
    out = _cli("eval", "--model", str(tmp_path / "no-model"), "--num", "2", "--json")
    assert out.returncode == 2
    assert "no-model" in out.stderr and "no such folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_config_is_reported_with_every_problem(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run_dir: x\nmodels: {policy: {path: p}, claims: rules}\nsampling: {n: 0, top_p: 3}\n")
    out = _cli("config", str(cfg))
    assert out.returncode == 2
    assert "sampling.n" in out.stderr and "sampling.top_p" in out.stderr and "Traceback" not in out.stderr


def test_run_without_prompts_fails_fast_with_one_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"run_dir: {tmp_path / 'run'}\nmodels: {{policy: {{path: p}}, labeler_mode: self, claims: rules}}\n")
    out = _cli("run", str(cfg))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "data.input" in out.stderr
    assert not (tmp_path / "run").exists()  # nothing started


def test_run_help_names_resume_and_outputs():
    out = _cli("run", "--help")
    assert out.returncode == 0 and "summary.json" in out.stdout and "resume" in out.stdout.lower()


def test_model_path_that_is_no_folder_and_no_hub_id_fails_before_ray(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"run_dir: {tmp_path / 'run'}\ndata: {{input: 'toy:4'}}\n"
        "models: {policy: {path: rlaifv_ray/toyworld/pretrained/policyy}, labeler_mode: self, claims: rules}\n"
    )
    out = _cli("run", str(cfg))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "models.policy.path" in out.stderr and "policyy" in out.stderr and "neither a model folder" in out.stderr
    assert not (tmp_path / "run").exists()  # nothing started


def test_a_stage_that_cannot_load_its_model_ends_the_run_with_one_clear_line(tmp_path, toy_models):
    """The error is raised inside a Ray Data actor; the CLI's last word names the stage and the cause."""
    import os

    broken = tmp_path / "claim_llm"
    broken.mkdir()
    (broken / "config.json").write_text((toy_models / "claim_llm" / "config.json").read_text())  # no weights
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlaifv_ray.cli",
            "feedback",
            "toy",
            "--toy",
            "4",
            "--set",
            f"models.claim_llm.path={broken}",
            "--set",
            f"run_dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=toy_models.parents[2],
        timeout=600,
    )
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rlaifv-ray: error: stage claims: model '{broken}'"), last
