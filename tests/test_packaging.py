"""The package as users install it: a wheel, in a fresh virtual environment, outside any clone."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

from tests.conftest import REPO


def test_wheel_install_runs_the_shipped_toy_config_from_anywhere(tmp_path):
    """`rlaifv-ray config toy` from a wheel install validates the shipped config, its `toy:` models
    found as package data of the installed wheel (not of this checkout)."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(dist.glob("rlaifv_ray-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies come from this environment (appended after the venv's own site-packages)
    venv_site = Path(site)
    (venv_site / "deps.pth").write_text(sysconfig.get_paths()["purelib"])
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = subprocess.run(
        [str(venv / "bin" / "rlaifv-ray"), "config", "toy", "--set", "sampling.n=4"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["sampling"]["n"] == 4 and config["run_dir"] == str(work / "runs" / "toy")
    for role in ("policy", "labeler", "claim_llm"):
        assert config["models"][role]["path"] == str(venv_site / "rlaifv_ray" / "toyworld" / "pretrained" / role)
    assert (venv_site / "rlaifv_ray" / "py.typed").is_file()  # type checkers read the hints of an install
    listed = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import json, rlaifv_ray.config as c; "
            "print(json.dumps([str(c.shipped_config(n)) for n in c.SHIPPED_CONFIGS]))",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(p.startswith(str(venv_site)) for p in json.loads(listed.stdout))
    synonyms = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from rlaifv_ray.benchmarks.objects import coco_synonyms; print(len(coco_synonyms()))",
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert synonyms.stdout.strip() == "80", synonyms.stderr  # CHAIR's synonym lists are package data
