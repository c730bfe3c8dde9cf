"""Run directories on S3: a real S3 API (moto's server) on loopback. The driver is submitted as a Ray job
to a real head node here, so one iteration covers both "job submit" and "S3 run directory"."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ray_head, ray_job_submit, toy_config, wait_until
from tests.test_readme import SMALLER, readme_command, repository_copy

SECRET = "secret-key-that-must-not-leak"


@pytest.fixture(scope="module")
def s3():
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="rlaifv-runs")
    yield client, env
    server.stop()


@pytest.mark.cluster  # make test-cluster
def test_readme_job_command_runs_an_iteration_into_an_s3_run_directory(s3, tmp_path):
    """The README's toy job as written (the shipped config, its `toy:` models and relative paths),
    from a clone's root: `ray job submit` to a `ray start --head` cluster whose nodes hold the AWS
    credentials; the only changes are the head's address, the bucket and a smaller run. The run
    directory on S3 gets every stage, checkpoint, summary, report and the run's log. (`rlaifv-ray
    run toy` is the same `run` command: jobs/iterate.py calls it.)"""
    client, aws = s3
    argv = readme_command("ray job submit --address http://127.0.0.1:8265")  # ray_job_submit: the test head's
    entrypoint = argv[argv.index("--") + 1 :]
    entrypoint = [a.replace("s3://my-bucket/runs/toy", "s3://rlaifv-runs/toy") for a in entrypoint] + SMALLER
    entrypoint += ["--set", "eval.toy_heldout=8", "--set", "data.input=toy:12", "--set", "sampling.n=4"]
    entrypoint += ["--set", "train.batch_size=2"]
    repo = repository_copy(tmp_path)
    env = {
        **os.environ,
        **aws,
        "RAY_AUTH_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "RLAIFV_CACHE": str(tmp_path / "cache"),
    }
    with ray_head(env) as address:
        job = ray_job_submit(address, env, *entrypoint, working_dir=repo)
    output = job.stdout + job.stderr
    assert job.returncode == 0 and "succeeded" in job.stdout, output[-4000:]
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket="rlaifv-runs")
        for o in page.get("Contents", [])
    ]
    for stage in ("prompts", "candidates", "claims", "labels", "pairs"):
        assert f"toy/iter_000/{stage}/_SUCCESS" in keys
        assert any(k.startswith(f"toy/iter_000/{stage}/part-") and k.endswith(".parquet") for k in keys)
    for key in (
        "toy/iter_000/checkpoint/model.safetensors",
        "toy/iter_000/checkpoint/_SUCCESS",
        "toy/iter_000/train_log.json",
        "toy/summary.json",
        "toy/report.html",
        "toy/metrics.png",
    ):
        assert key in keys, key
    assert any(k.startswith("toy/iter_000/dpo/checkpoint_") for k in keys)  # Ray Train's storage on S3
    summary = json.loads(client.get_object(Bucket="rlaifv-runs", Key="toy/summary.json")["Body"].read())
    assert [r["iteration"] for r in summary] == [0, 1]
    assert summary[1]["policy"] == "s3://rlaifv-runs/toy/iter_000/checkpoint"
    assert summary[1]["chair_s"] is not None  # the trained policy was loaded back from S3 and evaluated
    # the run records its config resolved: the S3 run dir, toy:ROLE as the committed models
    resolved = yaml.safe_load(client.get_object(Bucket="rlaifv-runs", Key="toy/config.yaml")["Body"].read())
    assert resolved["run_dir"] == "s3://rlaifv-runs/toy"
    for role in ("policy", "labeler", "claim_llm"):
        assert resolved["models"][role]["path"].endswith(f"rlaifv_ray/toyworld/pretrained/{role}")
    # the progress the job printed is in RUN/run.log too, with time, level and logger
    log = client.get_object(Bucket="rlaifv-runs", Key="toy/run.log")["Body"].read().decode()
    assert "INFO rlaifv_ray.driver: [iter_000] dpo: done in" in log
    assert "INFO rlaifv_ray.pipeline.feedback: [iter_000] pairs:" in log
    assert "[iter_000] dpo: done in" in output
    # credentials appear nowhere: not in the job's logs, not in any small object written to the run
    assert SECRET not in output
    for key in keys:
        if key.endswith((".json", ".yaml", ".html", "_SUCCESS")):
            assert SECRET not in client.get_object(Bucket="rlaifv-runs", Key=key)["Body"].read().decode()


@pytest.mark.faults  # make test-cluster
def test_s3_server_stopped_mid_write_then_restarted(tmp_path, toy_models, clean_run):
    """The store goes away while a stage writes: one clear message, and a rerun against the restarted
    store resumes and ends with the undisturbed run's pairs. The run starts where a killed one would
    have stopped, with the undisturbed run's candidates and claims (same settings, so they count as
    done) in the bucket: labels stream their parts to it when the store goes away."""

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.conftest import stage_pairs

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client(
        "s3", endpoint_url=url, aws_access_key_id="k", aws_secret_access_key=SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket="flaky")
    clean = clean_run[0].run_dir
    for stage in ("prompts", "images", "candidates", "claims"):
        for f in (Path(clean) / "iter_000" / stage).iterdir():
            client.upload_file(str(f), "flaky", f"run/iter_000/{stage}/{f.name}")
    # small label batches: many parts, so the store stops while they are being written
    cfg = toy_config(tmp_path, toy_models, run_dir="s3://flaky/run", **{"resources.label.batch_size": 4})
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_AUTH_MODE": "disabled",
        "RLAIFV_CACHE": str(tmp_path / "cache"),
    }
    cmd = [sys.executable, "-m", "rlaifv_ray.cli", "feedback", str(tmp_path / "run.yaml"), "--toy", "16"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def keys(prefix):
        return [o["Key"] for o in client.list_objects_v2(Bucket="flaky", Prefix=prefix).get("Contents", [])]

    wait_until(
        lambda: keys("run/iter_000/labels/part-"), 300, "a labels part in the bucket", lambda: proc.poll() is None
    )
    server.stop()  # mid-write: the labeler is streaming parts to the bucket
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, err[-3000:]
    message = err.strip().splitlines()[-1]
    assert message.startswith("rlaifv-ray: error:") and "s3://flaky/run" in message and "rerun" in message, err[-3000:]
    assert "Traceback" not in err and SECRET not in out + err

    server = ThreadedMotoServer(ip_address=host, port=port)  # same endpoint; moto keeps its objects
    server.start()
    try:
        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        for stage in ("candidates", "claims"):
            assert f"{stage}: finished earlier, skipped" in again.stderr
        local = tmp_path / "copy"
        for key in [k for k in keys("run/iter_000/pairs/") if k.endswith(".parquet")]:
            (local / key).parent.mkdir(parents=True, exist_ok=True)
            client.download_file("flaky", key, str(local / key))
        assert stage_pairs(str(local / "run")) == stage_pairs(clean)
    finally:
        server.stop()


def test_pairs_exported_to_s3_are_found_and_detected_there(s3, clean_run, monkeypatch):
    """export --out s3://... writes the shards through pyarrow's S3 filesystem; `train --pairs` on the
    same prefix finds them and detects their format (what it checks before Ray starts)."""
    from rlaifv_ray.pipeline.dataset_pairs import dataset_files
    from rlaifv_ray.pipeline.export import export_pairs

    client, aws = s3
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    result = export_pairs(clean_run[0].run_dir, "s3://rlaifv-runs/exports/rlaifv", "rlaifv", rows_per_shard=4)
    keys = sorted(
        o["Key"]
        for o in client.list_objects_v2(Bucket="rlaifv-runs", Prefix="exports/")["Contents"]
        if o["Key"].endswith(".parquet")
    )  # (pyarrow also writes folder markers)
    assert len(keys) == result["shards"] >= 2 and keys[0].endswith(f"train-00000-of-{result['shards']:05d}.parquet")
    fmt, shards = dataset_files("s3://rlaifv-runs/exports/rlaifv")
    assert fmt == "rlaifv" and len(shards) == result["shards"] and all(size > 0 for _, size in shards)
