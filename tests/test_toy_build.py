"""`rlaifv-ray toy build` from seed 0 reproduces models that meet the bars (about 16 minutes)."""

import json
import subprocess
import sys

import pytest

from .bars import failures, measure

pytestmark = pytest.mark.slow  # ~16 min on 2 cores: `make test-slow` (CI runs it after `make test`)


def test_toy_build_reproduces_models_that_meet_the_bars(tmp_path):
    out = tmp_path / "toy"
    proc = subprocess.run([sys.executable, "-m", "rlaifv_ray.cli", "toy", "build", "--out", str(out), "--seed", "0"],
                          capture_output=True, text=True, timeout=40 * 60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads(proc.stdout)
    assert "toy build: policy" in proc.stderr  # progress was shown
    assert manifest["vision_tower"]["per_object"] > 0.99
    metrics = measure(out)
    print(json.dumps({"manifest": manifest, "metrics": metrics}, indent=2))
    assert not failures(metrics), json.dumps(metrics, indent=2)
    # a second build finds everything in place and trains nothing
    again = subprocess.run([sys.executable, "-m", "rlaifv_ray.cli", "toy", "build", "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to do" in again.stderr
