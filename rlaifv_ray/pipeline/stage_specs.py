"""Which stage class runs where, with what: the wiring of one feedback iteration, and the resume
key that decides whether a finished stage's output is still valid.

A stage's key covers only what its output depends on: its class and constructor arguments
(model, engine options, sampling settings, seeds) and its upstream stage's key. Changing a pair
setting therefore reruns pairs and reference log-probs, not sampling; changing the labeler reruns
labels onwards.
"""

from __future__ import annotations

from ..config import RunConfig
from ..stages.extract_claims import ExtractClaims
from ..stages.label_claims import GroundTruthLabels, LabelClaims
from ..stages.reference_logps import ReferenceLogps
from ..stages.sample_candidates import SampleCandidates
from .stage import StageSpec


def stage_specs(config: RunConfig, policy: str, sampler: str, truth=None) -> dict[str, StageSpec]:
    """The four model stages of one iteration whose policy is `policy`, its candidates sampled by
    `sampler` (the policy itself, but for schedule one_shot); `truth`: the input's (inputs.py), for
    the stages that read it (rules claims, ground-truth labels)."""
    return {
        "candidates": _sample(config, sampler),
        "claims": _claims(config, truth),
        "labels": _labels(config, policy, truth),
        "reference": _reference(config, policy),
    }


def _sample(c: RunConfig, policy: str) -> StageSpec:
    m, r = c.models, c.resources
    kwargs = dict(
        model=policy,
        n=c.sampling.n,
        temperature=c.sampling.temperature,
        top_p=c.sampling.top_p,
        max_new_tokens=c.sampling.max_new_tokens,
        run_seed=c.seed,
        engine=m.policy.engine,
        engine_options=m.policy.engine_options(r.sample.engine_batch_size),
        max_pixels=c.data.max_image_pixels,
        max_instruction_tokens=c.data.max_instruction_tokens,
        # only when off: the method's runs keep the resume keys they had before the switch existed
        **({} if c.sampling.deconfound else {"deconfound": False}),
    )
    return StageSpec(SampleCandidates, kwargs, r.sample, "candidates")


def _claims(c: RunConfig, truth) -> StageSpec:
    m, r, x = c.models, c.resources, c.claim_extraction
    if c.scoring == "holistic":  # no claim LLM: each answer is its own one question
        return StageSpec(ExtractClaims, dict(mode="holistic"), r.claims, "claims")
    kwargs = dict(
        mode=m.claims,
        model=m.claim_llm.path if m.claim_llm else None,
        engine=m.claim_llm.engine if m.claim_llm else "hf",
        engine_options=m.claim_llm.engine_options(r.claims.engine_batch_size) if m.claim_llm else None,
        prompts=x.prompts,
        temperature=x.temperature,
        top_p=x.top_p,
        max_new_tokens=x.max_new_tokens,
        run_seed=c.seed,
    )
    return StageSpec(ExtractClaims, kwargs, r.claims, "claims", {"truth": truth} if m.claims == "rules" else {})


def _labels(c: RunConfig, policy: str, truth) -> StageSpec:
    m, r = c.models, c.resources
    if m.labeler_mode == "ground_truth":
        kwargs = dict(flip_rate=m.ground_truth_flip_rate, run_seed=c.seed)
        return StageSpec(GroundTruthLabels, kwargs, r.label, "labels", {"truth": truth})
    labeler = m.labeler if m.labeler_mode == "model" else m.policy  # self-feedback: the policy labels
    kwargs = dict(
        model=labeler.path if m.labeler_mode == "model" else policy,
        engine=labeler.engine,
        engine_options=labeler.engine_options(r.label.engine_batch_size),
        max_pixels=c.data.max_image_pixels,
        **({"holistic": True} if c.scoring == "holistic" else {}),  # the method's keys stay as they were
    )
    return StageSpec(LabelClaims, kwargs, r.label, "labels")


def _reference(c: RunConfig, policy: str) -> StageSpec:
    m, r = c.models, c.resources
    kwargs = dict(
        model=policy,
        engine=m.policy.engine,
        engine_options=m.policy.engine_options(r.reference.engine_batch_size),
        max_pixels=c.data.max_image_pixels,
    )
    if c.train.image_preference:  # out of the key unless set: the pairs of earlier runs stay finished
        kwargs |= dict(corruption=c.train.image_preference.corruption, seed=c.seed)
    return StageSpec(ReferenceLogps, kwargs, r.reference, "pairs")
