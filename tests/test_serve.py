"""The best-of-N ranker: the reward, and the Ray Serve app over real HTTP (the CLI in a subprocess)."""

import base64
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from rlaifv_ray.toyworld.world import png_bytes, scene_and_image
from tests.conftest import toy_config, wait_for_http

TOKEN = "s3cret-token-for-tests"
ANSWERS = ["There is a red circle.", "There is a red circle. There is a blue square.", "A green triangle is visible."]


@pytest.fixture(scope="module")
def shifted_policy(toy_models, tmp_path_factory):
    """A policy moved away from the committed one (its reference), so rewards are not all zero."""
    import torch
    import transformers

    out = tmp_path_factory.mktemp("shifted") / "policy"
    src = str(toy_models / "policy")
    model = transformers.AutoModelForImageTextToText.from_pretrained(src)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.model.language_model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(out)
    transformers.AutoProcessor.from_pretrained(src).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def ranker(shifted_policy, toy_models, torch_threads):
    from rlaifv_ray.reward import Ranker

    return Ranker.load(shifted_policy, str(toy_models / "policy"), beta=0.1)


def _answer_logps(model_dir: str, image, answer: str) -> list[float]:
    """Per-token log-probs of ANSWER after "Describe the image." on IMAGE, by plain transformers: the
    model's forward pass over its own chat template, apart from the engine the ranker uses."""
    import torch
    import transformers

    model = transformers.AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    processor = transformers.AutoProcessor.from_pretrained(model_dir)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    prompt_len = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
    full = processor(text=[prompt + answer], images=[image], return_tensors="pt")
    with torch.no_grad():
        logp = model(**full).logits[0, :-1].float().log_softmax(-1)
    return logp.gather(-1, full["input_ids"][0, 1:, None])[prompt_len - 1 :, 0].tolist()


def test_reward_is_batch_independent_and_normalized_by_length(ranker, shifted_policy, toy_models):
    images = [scene_and_image(7, i)[1] for i in range(2)]
    together = ranker.score([(img, "Describe the image.", ANSWERS) for img in images])
    for img, scores in zip(images, together):
        for answer, s in zip(ANSWERS, scores):
            alone = ranker.score([(img, "Describe the image.", [answer])])[0][0]
            assert s.normalized == pytest.approx(alone.normalized, abs=1e-4)
            # the method's reward: beta x (policy - reference) log-probs of the answer's own tokens
            p = _answer_logps(shifted_policy, img, answer)
            r = _answer_logps(str(toy_models / "policy"), img, answer)
            assert s.tokens == len(p)  # T: the answer, not the template's end of turn
            assert s.summed == pytest.approx(0.1 * (sum(p) - sum(r)), abs=1e-4)
            assert s.normalized == pytest.approx(0.1 * (sum(p) - sum(r)) / len(p), abs=1e-4)
    assert together[0][1].tokens > together[0][0].tokens
    assert len({round(s.normalized, 6) for s in together[0]}) == 3  # a real reward, not a constant


def test_reward_counts_only_the_answer_tokens():
    from rlaifv_ray.engines import SequenceLogprobs
    from rlaifv_ray.reward import rewards

    # two answer tokens, then the template's end-of-turn and newline (large log-ratio: the "stop here")
    policy = [SequenceLogprobs(-1.0, [-0.2, -0.3, -0.1, -0.4]), SequenceLogprobs(-1.0, [-0.5, -0.5])]
    reference = [SequenceLogprobs(-3.5, [-0.4, -0.4, -2.3, -0.4]), SequenceLogprobs(-1.2, [-0.5, -0.7])]
    first, second = rewards(policy, reference, beta=0.5, spans=[(0, 2), None])
    assert (first.tokens, first.summed, first.normalized) == (2, pytest.approx(0.15), pytest.approx(0.075))
    assert (second.tokens, second.summed, second.normalized) == (2, pytest.approx(0.1), pytest.approx(0.05))
    assert rewards(policy[:1], reference[:1], beta=0.5)[0].tokens == 4  # no spans: every token
    with pytest.raises(ValueError, match="tokenize the answer differently"):
        rewards(policy[:1], reference[1:], beta=0.5)


def test_pick_takes_the_best_by_each_rule_and_a_seeded_random_one():
    from rlaifv_ray.reward import Reward, pick

    # a long answer with the largest summed reward, a short one with the largest per-token reward
    scores = [Reward(0.02, 0.4, 20), Reward(0.05, 0.1, 2), Reward(-0.1, -0.3, 3)]
    assert pick(scores, "normalized") == 1
    assert pick(scores, "summed") == 0
    draws = [pick(scores, "random", seed) for seed in range(30)]
    assert draws == [pick(scores, "random", seed) for seed in range(30)]  # seeded
    assert set(draws) == {0, 1, 2}
    assert pick([Reward(0.1, 0.1, 1), Reward(0.1, 0.1, 1)], "normalized") == 0  # a tie: the first


def test_eval_best_of_n_reports_each_pick_rule(shifted_policy, toy_models):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlaifv_ray.cli",
            "eval",
            "--best-of",
            "4",
            "--model",
            shifted_policy,
            "--reference",
            str(toy_models / "policy"),
            "--num",
            "6",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["all_samples"]["n"] == 24
    for how in ("normalized", "summed", "random"):
        assert result[f"by_{how}"]["n"] == 6 and 0 <= result[f"by_{how}"]["chair_s"] <= 1
    assert all(-1 <= v <= 1 for v in result["length_correlation"].values())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(shifted_policy, toy_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    port = _free_port()
    cfg = toy_config(
        tmp,
        toy_models,
        **{
            "serve.policy": shifted_policy,
            "serve.port": port,
            "serve.max_candidates": 8,
            "serve.max_n": 4,
            "serve.max_request_bytes": 200_000,
        },
    )
    (tmp / "serve.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RLAIFV_SERVE_TOKEN": TOKEN}
    log = open(tmp / "serve.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlaifv_ray.cli", "serve", str(tmp / "serve.yaml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/healthz", proc, 180, lambda: (log.seek(0), log.read())[1])
    yield url, tmp / "serve.log", proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def _post(url, path, body, token=TOKEN, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _image_b64(i=0):
    return base64.b64encode(png_bytes(scene_and_image(7, i)[1])).decode()


def test_rank_scores_match_the_reward_and_generate_returns_the_best(server, ranker):
    url, _, _ = server
    status, out = _post(
        url, "/v1/rank", {"image": _image_b64(), "instruction": "Describe the image.", "candidates": ANSWERS}
    )
    assert status == 200, out
    local = ranker.score([(scene_and_image(7, 0)[1], "Describe the image.", ANSWERS)])[0]
    assert out["scores"] == pytest.approx([s.normalized for s in local], abs=1e-4)
    assert out["best"] == max(range(3), key=lambda i: out["scores"][i])
    status, out = _post(url, "/v1/generate", {"image": _image_b64(1), "instruction": "Describe the image.", "n": 3})
    assert status == 200, out
    assert len(out["candidates"]) == 3 and len(out["scores"]) == 3
    assert out["best_answer"] == out["candidates"][out["best"]]


@pytest.mark.parametrize(
    "body, raw, status, says",
    [
        ({"image": "%%%not base64%%%", "instruction": "x", "candidates": ["a"]}, None, 400, "base64"),
        ({"image": base64.b64encode(b"hello").decode(), "instruction": "x", "candidates": ["a"]}, None, 400, "image"),
        ({"instruction": "x", "candidates": ["a"]}, None, 422, "image"),
        ({"image": "", "instruction": "x", "candidates": ["a"] * 9}, None, 422, "candidates"),
        ({"image": "", "instruction": "x", "candidates": ["  "]}, None, 422, "empty"),
        (None, b"{not json", 422, "error"),
        ({"image": "A" * 300_000, "instruction": "x", "candidates": ["a"]}, None, 413, "bytes"),
    ],
)
def test_malformed_rank_requests_get_a_json_4xx(server, body, raw, status, says):
    url, _, _ = server
    code, out = _post(url, "/v1/rank", body, raw=raw)
    assert code == status and says in json.dumps(out), out


def test_generate_limits_n(server):
    code, out = _post(server[0], "/v1/generate", {"image": _image_b64(), "instruction": "x", "n": 5})
    assert code == 422 and "n: at most 4" in out["error"]


def test_token_required_and_never_echoed(server):
    url, log, _ = server
    body = {"image": _image_b64(), "instruction": "Describe the image.", "candidates": ANSWERS[:1]}
    assert _post(url, "/v1/rank", body, token=None)[0] == 401
    assert _post(url, "/v1/rank", body, token="wrong")[0] == 401
    assert urllib.request.urlopen(f"{url}/healthz", timeout=5).status == 200  # health needs no token
    with pytest.raises(urllib.error.HTTPError) as err:  # the rest does, the API docs included
        urllib.request.urlopen(f"{url}/openapi.json", timeout=5)
    assert err.value.code == 401
    assert TOKEN not in log.read_text()


def test_gate_holds_under_a_route_prefix(monkeypatch):
    """A Serve config may mount the app at /ranker: the app then sees /ranker/v1/rank, and the
    token and size checks must still apply (the gate's logic on the real ASGI app, without Serve)."""
    from starlette.testclient import TestClient

    from rlaifv_ray.serve import app as serve_app
    from rlaifv_ray.serve import state

    monkeypatch.setattr(state, "LIMITS", {"token": TOKEN, "max_request_bytes": 1000})
    client = TestClient(serve_app.app, root_path="/ranker")
    assert client.post("/ranker/v1/rank", json={"candidates": ["a"]}).status_code == 401
    too_big = client.post("/ranker/v1/rank", content=b"x" * 2000, headers={"Authorization": f"Bearer {TOKEN}"})
    assert too_big.status_code == 413 and "over 1000 bytes" in too_big.json()["error"]
    assert client.get("/ranker/openapi.json").status_code == 401
    assert client.get("/ranker/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_burst_of_concurrent_requests_then_still_serving(server):
    url, _, _ = server
    body = {"image": _image_b64(2), "instruction": "Describe the image.", "candidates": ANSWERS}
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda _: _post(url, "/v1/rank", body), range(24)))
    assert all(code == 200 for code, _ in results)
    first = results[0][1]["scores"]
    assert all(out["scores"] == pytest.approx(first, abs=1e-4) for _, out in results)  # batching changes nothing
    assert _post(url, "/v1/rank", {"image": "bad"}, token=TOKEN)[0] == 422
    assert json.loads(urllib.request.urlopen(f"{url}/healthz", timeout=5).read())["status"] == "ok"


def test_sigterm_shuts_the_deployment_down_with_one_line_and_exit_0(server):
    """As Kubernetes and systemd stop a service (runs last: it stops the module's server)."""
    url, log, proc = server
    proc.send_signal(signal.SIGTERM)  # the CLI process only, as a pod's stop does
    assert proc.wait(timeout=120) == 0
    text = log.read_text()
    assert "Fatal Python error" not in text and "Traceback" not in text
    assert text.strip().splitlines()[-1].startswith("rlaifv-ray serve: SIGTERM")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/healthz", timeout=5)
