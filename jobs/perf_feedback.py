"""Benchmark one feedback iteration three ways on the same prompts and models; prints JSON.

(a) ours: the streaming Ray Data pipeline (actor pools, stages overlapped, batched engines);
(b) official-style: each stage to completion in one process, one request at a time (one candidate
    per generate call, one answer per claim call), labeling by generating a word per question;
(c) the limit: the same batched stage calls in one process, no Ray, no I/O.
Ratios a/c (pipeline overhead) and b/a (speed-up over the official way) come from one run.

    python jobs/perf_feedback.py --prompts 256 --n 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=256, help="ShapesWorld prompts (default 256)")
    ap.add_argument("--n", type=int, default=8, help="candidates per prompt (default 8)")
    ap.add_argument("--models", default=None, help="toy model folder (default: the committed models)")
    ap.add_argument("--skip-official", action="store_true", help="skip (b), the slowest")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the pipeline's config, e.g. --set resources.claims.threads=2",
    )
    args = ap.parse_args()

    from rlaifv_ray.config import apply_override, validate_config
    from rlaifv_ray.locations import TOY_MODELS

    models = Path(args.models) if args.models else TOY_MODELS
    spec = f"toy:{args.prompts}"
    result = {"prompts": args.prompts, "n": args.n, "cpus": os.cpu_count(), "overrides": args.set}
    with tempfile.TemporaryDirectory() as tmp:
        raw = {
            "run_dir": f"{tmp}/run",
            "seed": 0,
            "models": {r: {"path": str(models / r)} for r in ("policy", "labeler", "claim_llm")},
            "claim_extraction": {"prompts": "shapesworld"},
            "sampling": {"n": args.n, "max_new_tokens": 48},
            "resources": {
                "sample": {"concurrency": [1, 1], "batch_size": 16, "num_cpus": 0.5},
                "claims": {"concurrency": [1, 1], "batch_size": 64, "num_cpus": 0.5},
                "label": {"concurrency": [1, 1], "batch_size": 64, "num_cpus": 0.5},
                "reference": {"concurrency": [1, 1], "batch_size": 32, "num_cpus": 0.5},
            },
        }
        for item in args.set:
            apply_override(raw, item)
        config = validate_config(raw)
        result["c_engine_only_s"], counts = engine_only(config, spec)
        result.update(counts)
        result["a_pipeline_s"], result["a_without_ray_init_s"], metrics = pipeline(config, spec)
        result["a_pairs"] = metrics["pairs"]
        result["a_stage_busy_s"] = metrics["stage_busy_seconds"]
        result["a_stage_wall_s"] = metrics["wall_seconds"]
        if not args.skip_official:
            result["b_official_s"] = official(config, spec)
    result["a_over_c"] = result["a_pipeline_s"] / result["c_engine_only_s"]
    result["a_over_c_without_ray_init"] = result["a_without_ray_init_s"] / result["c_engine_only_s"]
    if "b_official_s" in result:
        result["b_over_a"] = result["b_official_s"] / result["a_pipeline_s"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=2))


def _stages(config, threads: int):
    import torch

    from rlaifv_ray.stages.extract_claims import ExtractClaims
    from rlaifv_ray.stages.label_claims import LabelClaims
    from rlaifv_ray.stages.reference_logps import ReferenceLogps
    from rlaifv_ray.stages.sample_candidates import SampleCandidates

    torch.set_num_threads(threads)
    m, s = config.models, config.sampling
    return (
        SampleCandidates(m.policy.path, s.n, s.temperature, s.top_p, s.max_new_tokens, config.seed),
        ExtractClaims("llm", m.claim_llm.path, prompts=config.claim_extraction.prompts),
        LabelClaims(m.labeler.path),
        ReferenceLogps(m.policy.path),
    )


def engine_only(config, spec):
    """(c): every stage's batched engine calls in one process; model loading not timed."""
    from rlaifv_ray import schema as S
    from rlaifv_ray.inputs import read_prompts
    from rlaifv_ray.stages.build_pairs import BuildPairs
    from rlaifv_ray.storage.images import image_id

    sample, claims, label, reference = _stages(config, threads=os.cpu_count() or 1)
    prompts = read_prompts(spec, 0, config.seed)
    images = {}
    for r in prompts:
        r[S.IMAGE_ID] = image_id(r[S.IMAGE])
        images[r[S.IMAGE_ID]] = r[S.IMAGE]
    t0 = time.perf_counter()
    batch = {k: [r[k] for r in prompts] for k in prompts[0]}
    labelled = label(claims(sample(batch)))
    by_prompt: dict = {}
    for i, pid in enumerate(labelled[S.PROMPT_ID]):
        by_prompt.setdefault(pid, []).append(i)
    pairs = {k: [] for k in (S.IMAGE_ID, S.INSTRUCTION, S.CHOSEN, S.REJECTED)}
    for idx in by_prompt.values():
        out = BuildPairs(1, 2, config.seed)({k: [labelled[k][i] for i in idx] for k in labelled})
        for k in pairs:
            pairs[k] += out[k]
    if pairs[S.CHOSEN]:
        reference({**pairs, S.IMAGE: [images[i] for i in pairs[S.IMAGE_ID]]})
    questions = sum(len(q) for q in labelled[S.QUESTIONS])
    return time.perf_counter() - t0, {"candidates": len(labelled[S.ANSWER]), "questions": questions}


def pipeline(config, spec):
    """(a): the streaming Ray Data pipeline from a cold local Ray; also timed without `ray.init`
    (a cluster is started once, not per iteration). Actor start-up counts in both."""
    import ray

    from rlaifv_ray.pipeline.feedback import run_feedback

    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    t1 = time.perf_counter()
    metrics = run_feedback(config, 0, config.models.policy.path, spec)
    end = time.perf_counter()
    ray.shutdown()
    return end - t0, end - t1, metrics


def official(config, spec):
    """(b): stage by stage to completion, one request at a time, labels by generating a word."""
    from rlaifv_ray import schema as S
    from rlaifv_ray.engines import GenerateRequest, SamplingParams
    from rlaifv_ray.engines.base import user_message
    from rlaifv_ray.inputs import read_prompts
    from rlaifv_ray.media import load_image
    from rlaifv_ray.prompts import LABEL_PROMPT
    from rlaifv_ray.seeds import derive_seed

    sample, claims, label, reference = _stages(config, threads=os.cpu_count() or 1)
    prompts = read_prompts(spec, 0, config.seed)
    t0 = time.perf_counter()
    extracted = []
    for r in prompts:  # sampling: one candidate per generate call, as the official scripts do
        image = load_image(r[S.IMAGE])
        for k in range(config.sampling.n):
            request = GenerateRequest(
                user_message(r[S.INSTRUCTION], True), image, sample.params, derive_seed(config.seed, r[S.PROMPT_ID], k)
            )
            answer = sample.engine.generate([request])[0]
            # claim extraction: one answer per pair of LLM calls
            extracted.append(claims({S.ANSWER: [answer], S.IMAGE: [r[S.IMAGE]], S.ERROR: [None]}))
    word = SamplingParams(temperature=0.0, max_new_tokens=2)
    for batch in extracted:  # labeling: one question at a time, generating the answer word
        for image_bytes, questions in zip(batch[S.IMAGE], batch[S.QUESTIONS]):
            image = load_image(image_bytes)
            for q in questions:
                label.engine.generate(
                    [GenerateRequest(user_message(LABEL_PROMPT.format(question=q), True), image, word)]
                )
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
