import subprocess
import sys


def test_import_rlaifv_ray_does_not_import_heavy_modules():
    code = (
        "import sys, rlaifv_ray, rlaifv_ray.config, rlaifv_ray.schema, rlaifv_ray.cli, rlaifv_ray.engines;"
        "import rlaifv_ray.toyworld.world, rlaifv_ray.toyworld.hallucination;"
        "print(','.join(m for m in ('ray', 'torch', 'transformers', 'vllm', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_runs_fast_and_lists_commands():
    out = subprocess.run([sys.executable, "-m", "rlaifv_ray.cli", "--help"], capture_output=True, text=True, check=True)
    for cmd in ("config", "toy", "eval", "demo"):
        assert cmd in out.stdout
