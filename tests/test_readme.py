"""The README's commands as written, run from the repository root with the shipped config. A broken
README command fails here; its toy job (`ray job submit ... jobs/iterate.py --config toy`, the `run`
command on a cluster) runs in test_s3.py with fewer prompts, fewer held-out images and one iteration."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rlaifv_ray.locations import TOY_MODELS
from tests.conftest import REPO

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}
SMALLER = ["--set", "data.input=toy:16", "--set", "iterations=1", "--set", "eval.toy_heldout=40"]


def readme_command(prefix: str) -> list[str]:
    """The README's command line starting with PREFIX (its trailing comment removed)."""
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith(prefix):
            return shlex.split(line.split("#", 1)[0])
    raise AssertionError(f"README.md has no command starting with {prefix!r}")


def repository_copy(root: Path) -> Path:
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


def test_readme_config_command_prints_the_resolved_config(tmp_path):
    repo = repository_copy(tmp_path)
    out = _cli(readme_command("rlaifv-ray config toy"), repo, timeout=120)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["models"]["policy"]["path"] == str(TOY_MODELS / "policy")
    assert config["run_dir"] == str(repo / "runs" / "toy")
