"""The README's commands as written, run from the repository root with the shipped config (the only
overrides: fewer prompts, fewer held-out images and one iteration). A broken README command fails
here."""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rlaifv_ray.toyworld import PRETRAINED
from tests.conftest import REPO

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
SMALLER = ["--set", "data.input=toy:16", "--set", "iterations=1", "--set", "eval.toy_heldout=40"]


def readme_command(prefix: str) -> list[str]:
    """The README's command line starting with PREFIX (its trailing comment removed)."""
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith(prefix):
            return shlex.split(line.split("#", 1)[0])
    raise AssertionError(f"README.md has no command starting with {prefix!r}")


def _repository_copy(root: Path) -> Path:
    """A copy of this checkout without environments, caches or runs: the README's relative paths
    resolve in it as in a user's clone, and its run directory is not this checkout's."""
    copy = root / "repo"
    shutil.copytree(
        REPO,
        copy,
        ignore=shutil.ignore_patterns(".git", ".venv*", "runs", "toy", "__pycache__", "*.egg-info", ".pytest_cache"),
    )
    return copy


CLI = Path(sys.executable).parent / "rlaifv-ray"  # the installed console script, as a user runs it


def _cli(argv: list[str], cwd: Path, **kw):
    assert argv[0] == "rlaifv-ray"
    return subprocess.run([str(CLI), *argv[1:]], cwd=cwd, capture_output=True, text=True, env=ENV, **kw)


def test_readme_run_command_works_from_the_repository_root(tmp_path):
    """`rlaifv-ray run toy` (the shipped config) as the README writes it, from a clone's root. (Its
    resume after a kill is tested where it can break: test_driver kills this CLI mid-DPO, test_s3
    stops the store mid-write, test_feedback_pipeline reruns each stage on its own key.)"""
    repo = _repository_copy(tmp_path)
    command = readme_command("rlaifv-ray run toy") + SMALLER
    shipped = yaml.safe_load((repo / "rlaifv_ray" / "configs" / "toy.yaml").read_text())
    run = repo / shipped["run_dir"]
    out = _cli(command, repo, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "Traceback" not in out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert [r["iteration"] for r in summary] == [0, 1]
    assert summary[1]["policy"] == str(run / "iter_000" / "checkpoint")
    assert all(r["chair_s"] is not None for r in summary) and summary[1]["pairs"] > 0
    # the run records its config with every relative path made absolute, once
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["run_dir"] == str(run)
    for role in ("policy", "labeler", "claim_llm"):  # toy:ROLE, the committed model
        assert resolved["models"][role]["path"] == str(PRETRAINED / role)


def test_readme_config_command_prints_the_resolved_config(tmp_path):
    repo = _repository_copy(tmp_path)
    out = _cli(readme_command("rlaifv-ray config toy"), repo, timeout=120)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["models"]["policy"]["path"] == str(PRETRAINED / "policy")
    assert config["run_dir"] == str(repo / "runs" / "toy")
