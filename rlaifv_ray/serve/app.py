"""The best-of-N ranker as a Ray Serve application with a FastAPI ingress (docs/method.md s.3).

POST /v1/rank      {image: base64, instruction, candidates: [...]} -> scores, best index
POST /v1/generate  {image: base64, instruction, n, seed?, temperature?, max_new_tokens?}
                   -> n samples from the policy, their scores, the best
GET  /healthz

Rank requests are scored together by dynamic batching (`@serve.batch`; max_batch_size 1 turns it
off); serve.score_batch candidates share one forward pass. When the variable named by
serve.token_env is set where the replica runs, every route but /healthz needs
`Authorization: Bearer <token>`; the token is never logged or returned. Every malformed request
gets a 4xx with {"error": ...} and the replica keeps serving.
"""

import asyncio
import base64
import binascii
import hmac
import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ray import serve

from . import state

app = FastAPI(title="rlaifv-ray best-of-N ranker")


class RankBody(BaseModel):
    image: str = Field(description="The image, base64-encoded (PNG/JPEG/...).")
    instruction: str = Field(min_length=1)
    candidates: list[str] = Field(min_length=1)


class GenerateBody(BaseModel):
    image: str
    instruction: str = Field(min_length=1)
    n: int = Field(4, ge=1)
    seed: int = Field(0, ge=0)
    temperature: float = Field(0.7, gt=0, le=2)
    max_new_tokens: int = Field(64, ge=1, le=1024)


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


@app.exception_handler(HTTPProblem)
async def _problem(_request, exc: HTTPProblem):
    return JSONResponse(status_code=exc.status, content={"error": exc.message})


@app.exception_handler(RequestValidationError)
async def _invalid(_request, exc: RequestValidationError):
    problems = ["/".join(str(p) for p in e["loc"] if p != "body") + f": {e['msg']}" for e in exc.errors()]
    return JSONResponse(status_code=422, content={"error": "; ".join(problems)})


@app.middleware("http")
async def _gate(request: Request, call_next):
    """Size and token checks before the body is read or parsed, on every route but the health
    check (fail closed: under a Serve route prefix the path the app sees starts with the prefix)."""
    if not request.url.path.endswith("/healthz"):
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > state.LIMITS.get("max_request_bytes", 1 << 62):
            return JSONResponse(
                status_code=413, content={"error": f"request body over {state.LIMITS['max_request_bytes']} bytes"}
            )
        token = state.LIMITS.get("token")
        if token and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()
        ):
            return JSONResponse(status_code=401, content={"error": "missing or wrong bearer token"})
    return await call_next(request)


def _decode_image(data: str):
    from ..media import load_image

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPProblem(400, "image: not valid base64") from None
    try:
        return load_image(raw, name="image", max_pixels=state.LIMITS["max_image_pixels"])
    except Exception as exc:  # noqa: BLE001 - any decode failure is the client's bad input
        raise HTTPProblem(400, f"image: {exc}") from None


def _ranked(candidates: list[str], scores) -> dict:
    best = max(range(len(scores)), key=lambda i: scores[i].normalized)
    return {
        "best": best,
        "best_answer": candidates[best],
        "candidates": candidates,
        "scores": [s.normalized for s in scores],
        "summed_scores": [s.summed for s in scores],
    }


@serve.deployment
@serve.ingress(app)
class RankerDeployment:
    def __init__(
        self,
        policy: str,
        reference: str,
        beta: float,
        limits: dict,
        token_env: str,
        max_batch_size: int,
        batch_wait_timeout_s: float,
        threads: int,
        engine: str = "hf",
        engine_options: dict | None = None,
    ):
        import torch

        from ..reward import Ranker

        torch.set_num_threads(threads)
        self.ranker = Ranker.load(policy, reference, beta, engine, **(engine_options or {}))
        self.info = {"policy": policy, "reference": reference, "beta": beta}
        state.LIMITS.update(limits, token=os.environ.get(token_env) or None)
        self._score.set_max_batch_size(max_batch_size)
        self._score.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @app.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok", **self.info}

    @app.post("/v1/rank")
    async def rank(self, body: RankBody) -> dict:
        if len(body.candidates) > state.LIMITS["max_candidates"]:
            raise HTTPProblem(422, f"candidates: at most {state.LIMITS['max_candidates']}, got {len(body.candidates)}")
        bad = [i for i, c in enumerate(body.candidates) if not c.strip() or len(c) > state.LIMITS["max_answer_chars"]]
        if bad:
            raise HTTPProblem(
                422, f"candidates {bad}: empty or longer than {state.LIMITS['max_answer_chars']} characters"
            )
        scores = await self._score((_decode_image(body.image), body.instruction, body.candidates))
        return _ranked(body.candidates, scores)

    @app.post("/v1/generate")
    async def generate(self, body: GenerateBody) -> dict:
        from ..engines import SamplingParams

        if body.n > state.LIMITS["max_n"]:
            raise HTTPProblem(422, f"n: at most {state.LIMITS['max_n']}, got {body.n}")
        image = _decode_image(body.image)
        params = SamplingParams(temperature=body.temperature, max_new_tokens=body.max_new_tokens)
        answers = await asyncio.get_running_loop().run_in_executor(
            None, self.ranker.sample, image, body.instruction, body.n, body.seed, params
        )
        scores = await self._score((image, body.instruction, answers))
        return _ranked(answers, scores)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _score(self, items: list) -> list:
        # the model runs off the event loop, so health checks and new requests are still accepted
        return await asyncio.get_running_loop().run_in_executor(None, self.ranker.score, items)


def build_app(args: dict):
    """Application builder (`serve run rlaifv_ray.serve.app:build_app config=...`, Serve config
    files, KubeRay RayService): args are `config` (a run config path) and optional `set` overrides."""
    from ..config import load_config

    overrides = args.get("set") or []
    config = load_config(args["config"], [overrides] if isinstance(overrides, str) else overrides)
    return bind(config)


def bind(config):
    s = config.serve
    policy, reference = resolve_models(config)
    limits = {
        "max_request_bytes": s.max_request_bytes,
        "max_candidates": s.max_candidates,
        "max_n": s.max_n,
        "max_answer_chars": s.max_answer_chars,
        "max_image_pixels": config.data.max_image_pixels,
    }
    autoscaling = {
        "min_replicas": s.replicas[0],
        "max_replicas": s.replicas[1],
        "target_ongoing_requests": s.target_ongoing_requests,
    }
    engine, options = config.models.policy.engine, config.models.policy.engine_options()
    if engine == "hf":  # vLLM schedules its own batches
        options["batch_size"] = s.score_batch
    return RankerDeployment.options(
        autoscaling_config=autoscaling,
        max_ongoing_requests=s.max_ongoing_requests,
        ray_actor_options={"num_cpus": s.num_cpus, "num_gpus": s.num_gpus},
    ).bind(
        policy,
        reference,
        s.beta or config.train.beta,
        limits,
        s.token_env,
        s.max_batch_size,
        s.batch_wait_timeout_s,
        max(1, int(s.num_cpus)),
        engine,
        options,
    )


def resolve_models(config) -> tuple[str, str]:
    """serve.policy, else the run's best policy (RUN/best.json) when eval.select picks one, else the
    last trained policy in the run's summary, else models.policy."""
    from ..storage.store import RunStore

    policy = config.serve.policy
    if policy is None:
        store = RunStore(config.run_dir)
        best = store.read_json("best.json") if config.eval.select else None
        rows = store.read_json("summary.json") or []
        policy = best["checkpoint"] if best else rows[-1]["policy"] if rows else config.models.policy.path
    return policy, config.serve.reference or config.models.policy.path
