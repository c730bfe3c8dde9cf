import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "rlaifv_ray" / "toyworld" / "pretrained"

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # tests only; the product keeps Ray's default
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach a model hub in tests
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    import importlib.util

    has_cuda = False
    if importlib.util.find_spec("torch"):
        import torch

        has_cuda = torch.cuda.is_available()
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu") and not has_cuda:  # the marker, not a name containing "gpu"
            item.add_marker(skip)


@pytest.fixture(scope="session")
def toy_models() -> Path:
    """The committed ShapesWorld models (built by `rlaifv-ray toy build`)."""
    if not (PRETRAINED / "policy" / "config.json").exists():
        pytest.fail(f"committed toy models missing under {PRETRAINED}")
    return PRETRAINED


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory) -> Path:
    """Every family of the zoo (tests/zoo.py), random-init, built once per session."""
    from tests import zoo

    out = tmp_path_factory.mktemp("zoo")
    for family in zoo.FAMILIES:
        zoo.build(family, out / family)
    return out


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs), shared by the tests of a session."""
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1"}},
    )
    yield ray
    ray.shutdown()


def toy_config(tmp_path, toy_models, **over):
    """A small ShapesWorld run config (dict) over the committed models."""
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "seed": 0,
        "iterations": 1,
        "models": {
            "policy": {"path": str(toy_models / "policy")},
            "labeler": {"path": str(toy_models / "labeler")},
            "claim_llm": {"path": str(toy_models / "claim_llm")},
        },
        "sampling": {"n": 4, "max_new_tokens": 40},
        "claim_extraction": {"prompts": "shapesworld"},
        "resources": {
            k: {"concurrency": [1, 1], "batch_size": 16, "num_cpus": 0.5}
            for k in ("sample", "claims", "label", "reference")
        },
    }
    for key, value in over.items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory, toy_models, ray_local):
    """One uninterrupted toy feedback iteration (16 prompts x 4): the reference later tests compare
    to, and the finished feedback the driver tests start from. Kept in .pytest_cache under a hash of
    the package (code and committed models) and the config, so the second pytest session of a
    checkout (make test, then make test-cluster) copies it instead of recomputing it (~30 s)."""
    import hashlib
    import json
    import shutil

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.pipeline.feedback import run_feedback

    root = tmp_path_factory.mktemp("clean")
    raw = toy_config(root, toy_models)
    digest = hashlib.sha256(json.dumps({**raw, "run_dir": None}, sort_keys=True).encode())
    for f in sorted((REPO / "rlaifv_ray").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            digest.update(f.relative_to(REPO).as_posix().encode() + f.read_bytes())
    cache = REPO / ".pytest_cache" / "clean_run" / digest.hexdigest()[:16]
    config = validate_config(raw)
    if (cache / "metrics.json").exists():
        shutil.copytree(cache / "run", config.run_dir)
        return config, json.loads((cache / "metrics.json").read_text())
    metrics = run_feedback(config, 0, config.models.policy.path, "toy:16")
    partial = cache.with_name(cache.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(config.run_dir, partial / "run")
    (partial / "metrics.json").write_text(json.dumps(metrics))
    shutil.rmtree(cache, ignore_errors=True)
    partial.rename(cache)
    return config, metrics


def stage_pairs(run_dir):
    """The pairs of iteration 0 without images, sorted, reference log-probs rounded to 1e-3."""
    import pyarrow.parquet as pq

    from rlaifv_ray import schema as S

    table = pq.read_table(os.path.join(run_dir, "iter_000", "pairs"))
    rows = table.to_pylist()
    for r in rows:  # batch composition may move float sums in the last bits; texts and ids are exact
        r[S.REF_CHOSEN_LOGP] = round(r[S.REF_CHOSEN_LOGP], 3)
        r[S.REF_REJECTED_LOGP] = round(r[S.REF_REJECTED_LOGP], 3)
    return sorted(rows, key=lambda r: (r[S.CHOSEN_ID], r[S.REJECTED_ID]))


def checkpoint_registered(storage: str) -> bool:
    """Whether Ray Train has registered a checkpoint of the run stored in STORAGE (its snapshot lists
    one). Checkpoint files appear before that; a kill between the two resumes from nothing."""
    import json

    try:
        with open(os.path.join(storage, "checkpoint_manager_snapshot.json")) as f:
            return bool(json.load(f)["checkpoint_results"])
    except (OSError, ValueError, KeyError):
        return False


def wait_until(done, timeout: float, what: str, alive=lambda: True, interval: float = 0.1) -> None:
    """Poll DONE() until it is true; fail, saying WHAT was awaited, when TIMEOUT seconds pass or
    ALIVE() turns false first (the process or thread that should make it true has ended)."""
    import time

    deadline = time.time() + timeout
    while not done():
        if not alive():
            pytest.fail(f"{what}: ended first")
        if time.time() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def wait_for_http(url: str, proc, timeout: float, output) -> None:
    """Poll URL until it answers 200 while PROC runs; fail with the tail of output() otherwise."""
    import time
    import urllib.request

    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"{url} did not come up:\n{output()[-3000:]}")
            time.sleep(0.5)


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@contextlib.contextmanager
def ray_head(env: dict):
    """A real `ray start --head` cluster (2 CPUs) in its own process group, its processes seeing ENV
    (as a cluster node sees its own credentials); yields the dashboard address. Killed afterwards
    (`ray stop` would also stop the test session's own local Ray)."""
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    temp_dir = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    env = {**env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ports = _free_ports(6)  # every listening port explicit: another Ray may run on this machine
    head = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={ports[0]}",
            "--num-cpus=2",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={ports[1]}",
            f"--dashboard-agent-listen-port={ports[2]}",
            f"--dashboard-agent-grpc-port={ports[3]}",
            f"--metrics-export-port={ports[4]}",
            f"--ray-client-server-port={ports[5]}",
            "--include-dashboard=true",
            f"--temp-dir={temp_dir}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{ports[1]}"
    try:
        wait_for_http(f"{address}/api/version", head, 120, lambda: head.stderr.read())
        yield address
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def ray_job_submit(address: str, env: dict, *entrypoint: str, working_dir: Path = REPO):
    """`ray job submit --working-dir WORKING_DIR -- ENTRYPOINT`; retried while the job agent is not up yet."""
    import subprocess
    import sys
    import time

    submit = [
        str(Path(sys.executable).parent / "ray"),
        "job",
        "submit",
        "--address",
        address,
        "--working-dir",
        str(working_dir),
        "--",
        *entrypoint,
    ]
    deadline = time.time() + 90
    while True:  # the dashboard answers a few seconds before its job agent does
        job = subprocess.run(submit, capture_output=True, text=True, env=env, timeout=900)
        if "No available agent" not in job.stderr or time.time() > deadline:
            return job
        time.sleep(2)


def unsharded_training(config, policy: str, work: Path):
    """train/fsdp.py's loop over CONFIG's iteration-0 pairs in this process, without a process group:
    the reference of a sharded run on Ray Train. Every step has the same global batch, and the
    ranks' mean losses average to its mean, so the per-step losses agree. Returns (history, model)."""
    from rlaifv_ray import schema as S
    from rlaifv_ray.storage.images import fetch_images
    from rlaifv_ray.storage.store import RunStore
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples
    from rlaifv_ray.train.fsdp import train_sharded

    store, t = RunStore(config.run_dir), config.train
    pairs = store.read_table("iter_000/pairs", S.schema("pairs")).to_pydict()
    examples = pair_examples(pairs, fetch_images(store, "iter_000", pairs[S.IMAGE_ID]))
    model, processor = load_policy(policy, "float32")
    args = dpo_args(t, str(work / "trainer"), world_size=1, seed=config.seed)
    trainer = build_trainer(model, processor, examples, args, lora=t.lora, max_pixels=config.data.max_image_pixels)
    history, _ = train_sharded(
        trainer, examples, t, config.seed, 0, 1, None, str(work / "checkpoints"), lambda metrics, path: None
    )
    return history, trainer.model


# what every DPO strategy logs per step, under TRL's names (train_log.json and the trackers)
TRL_STEP_METRICS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on loopback: SQLite backend, artifacts proxied to a local folder.
    Yields its URI; read it back with MlflowClient."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("mlflow")
    (port,) = _free_ports(1)
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{uri}/health", proc, 120, lambda: (root / "server.log").read_text())
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def wandb_history(run_dir: Path) -> list[dict]:
    """Every history row W&B wrote to the offline run files under RUN_DIR/wandb/ (all of a run's
    resumes), read from its record log: leveldb-log blocks of protobuf Records."""
    import json
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    rows = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, pos, block = path.read_bytes(), 7, 32768  # header: ":W&B", magic, version
        assert data[:4] == b":W&B", path
        chunk = b""
        while pos + 7 <= len(data):
            if block - pos % block < 7:  # a record header never straddles a block: skip the padding
                pos += block - pos % block
                continue
            _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            chunk += data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):  # FULL or LAST
                record = pb.Record()
                record.ParseFromString(chunk)
                chunk = b""
                if record.WhichOneof("record_type") == "history":
                    items = record.history.item
                    rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items})
    return rows
