"""The run config: RunConfig and its feedback sections (models, sampling, claims, pairs, data).
Training, evaluation, serving and resources live in their own modules beside this one."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .engine_options import SimOptions, VLLMOptions
from .evaluation import EvalConfig, StopConfig
from .fields import LocalPath, ModelLocation, Strict
from .resources import ResourcesConfig
from .serving import ServeConfig
from .tracking import TrackingConfig
from .training import TrainConfig


class ModelSpec(Strict):
    path: ModelLocation = Field(
        description="Model folder (relative to the directory the command runs in), s3:// folder, "
        "or Hugging Face hub id."
    )
    engine: Literal["hf", "vllm", "sim"] = Field(
        "hf",
        description="Backend: hf (transformers), vllm (GPU clusters) or sim (a latency model, for "
        "measuring the pipeline at cluster scale: path sim:<size>b, e.g. sim:7b; docs/scale.md).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; auto = bfloat16 on GPU, float32 on CPU."
    )
    device_map: Literal["auto"] | None = Field(
        None,
        description="hf engine: 'auto' spreads a model too large for one GPU over the actor's GPUs "
        "(set the stage's num_gpus to match); default: the whole model on one device.",
    )
    vllm: VLLMOptions = Field(default_factory=VLLMOptions, description="Engine options used when engine is vllm.")
    sim: SimOptions = Field(default_factory=SimOptions, description="Engine options used when engine is sim.")
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Passed to the chat template on both backends and in DPO, as transformers and vLLM take "
        "them (e.g. {enable_thinking: false}). Prompts always end where the answer begins: a thinking "
        "template's empty reasoning block is part of the prompt (docs/method.md).",
    )

    def engine_options(self, batch_size: int | None = None) -> dict:
        """Keyword arguments for `load_engine(path, engine, ...)`; batch_size: the stage's engine batch.
        chat_template_kwargs only when set, so the resume keys of runs without them stay as they were."""
        template = {"chat_template_kwargs": self.chat_template_kwargs} if self.chat_template_kwargs else {}
        if self.engine == "vllm":
            return {"dtype": self.dtype, **self.vllm.model_dump(), **template}  # vLLM schedules its own batches
        if self.engine == "sim":
            return self.sim.model_dump()
        return {
            **template,
            "dtype": self.dtype,
            **({"device_map": self.device_map} if self.device_map else {}),
            **({"batch_size": batch_size} if batch_size else {}),
        }

    @field_validator("path", mode="before")
    @classmethod
    def _non_empty(cls, v):
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v


class ModelsConfig(Strict):
    policy: ModelSpec = Field(description="The policy MLLM being aligned (also iteration 0's reference).")
    labeler: ModelSpec | None = Field(
        None, description="The labeler MLLM that answers yes/no questions (labeler_mode: model)."
    )
    claim_llm: ModelSpec | None = Field(
        None, description="Text LLM for answer -> facts -> questions; required when claims = llm."
    )
    labeler_mode: Literal["model", "self", "ground_truth"] = Field(
        "model",
        validate_default=True,
        description="Who labels claims: the labeler model, the policy itself (self-feedback), or "
        "ShapesWorld ground truth (an experimental ceiling; toy inputs only).",
    )
    ground_truth_flip_rate: float = Field(
        0.0, ge=0, le=1, description="With labeler_mode ground_truth: share of verdicts flipped at random (seeded)."
    )
    claims: Literal["llm", "rules"] = Field(
        "llm",
        validate_default=True,
        description="Claim extraction: the claim LLM (method default) or the ShapesWorld rule extractor.",
    )

    @field_validator("labeler_mode")
    @classmethod
    def _labeler_needed(cls, v: str, info: ValidationInfo) -> str:
        if v == "model" and "labeler" in info.data and info.data["labeler"] is None:
            raise ValueError("labeler_mode is 'model' but models.labeler is not set (use 'self' for self-feedback)")
        return v

    @field_validator("claims")
    @classmethod
    def _claim_llm_needed(cls, v: str, info: ValidationInfo) -> str:
        # a field validator (not a model one) so it is reported even when other fields fail too
        if v == "llm" and "claim_llm" in info.data and info.data["claim_llm"] is None:
            raise ValueError("claims is 'llm' but models.claim_llm is not set")
        return v


class ClaimExtractionConfig(Strict):
    prompts: Literal["instruct", "shapesworld"] = Field(
        "instruct",
        description="Claim-LLM prompts: 'instruct' for stock instruct LLMs (Llama-3, Qwen2.5, ...), "
        "'shapesworld' for the ShapesWorld claim LLM.",
    )
    temperature: float = Field(
        0.0,
        ge=0,
        le=2.0,
        description="Claim-LLM sampling temperature (0 = greedy; official: 0.2). Sampled calls are seeded per answer.",
    )
    top_p: float = Field(1.0, gt=0, le=1.0, description="Claim-LLM nucleus mass (official: 0.9).")
    max_new_tokens: int = Field(
        512,
        ge=16,
        le=8192,
        description="Longest facts / questions output; a list cut off by it is refused, never read.",
    )


class SamplingConfig(Strict):
    n: int = Field(8, ge=2, le=64, description="Candidates per prompt (official: 10); pairs need at least 2.")
    temperature: float = Field(
        0.7, gt=0, le=2.0, description="Sampling temperature (identical for every candidate unless deconfound is off)."
    )
    top_p: float = Field(1.0, gt=0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Answer length cap in tokens (official: 512).")
    deconfound: bool = Field(
        True,
        description="All N candidates under one decoding setting, differing only by seed (docs/method.md s.1.1). "
        "false: the paper's confounded baseline, stood in for by a spread of settings per prompt (candidate 0 "
        "greedy, the others at 0.5x to 1.5x the temperature, every other one at 0.8x top_p): an ablation.",
    )


class PairsConfig(Strict):
    min_gap: int = Field(1, ge=1, description="Minimum score gap |S_a - S_b| for a pair; ties are discarded.")
    min_p_gap: float = Field(
        0.2, gt=0, le=1, description="scoring holistic: minimum gap between two answers' yes-probabilities for a pair."
    )
    max_per_prompt: int = Field(2, ge=1, description="Pairs kept per instruction (seeded choice).")
    length_balance: bool = Field(
        True, description="Drop pairs so mean chosen and rejected lengths match (docs/method.md s.1.7)."
    )
    builder: Literal["rlaif_v", "claim_edit", "mixed"] = Field(
        "rlaif_v",
        description="rlaif_v: pairs of whole candidates (the paper's). claim_edit: a candidate with rejected claims "
        "against itself with the sentences carrying them removed or replaced (stages/claim_edit.py); a prompt "
        "without an edit falls back to rlaif_v pairs. mixed: both, edit_share of each prompt's pairs edits.",
    )
    edit: Literal["replace", "remove"] = Field(
        "replace",
        description="claim_edit / mixed: replace a rejected sentence by a checked sentence about the same object "
        "from another candidate when there is one (else remove it), or always remove it.",
    )
    edit_share: float = Field(0.5, ge=0, le=1, description="mixed: the share of each prompt's pairs that are edits.")

    def unused(self) -> set[str]:
        """Settings this builder ignores: out of the pairs' resume key, so a run's key stays as it was."""
        return (
            {"builder", "edit", "edit_share"}
            if self.builder == "rlaif_v"
            else set()
            if self.builder == "mixed"
            else {"edit_share"}
        )


class DataConfig(Strict):
    max_image_pixels: int = Field(
        1024 * 1024, ge=64 * 64, description="Larger images are downscaled to this many pixels."
    )
    default_instruction: str = Field(
        "Describe the image.", min_length=1, description="Instruction for a folder-of-images input."
    )
    input: LocalPath | None = Field(
        None,
        description="Prompts for `rlaifv-ray run`: FILE.jsonl, FILE.parquet, a folder of "
        "images, s3://..., or toy:N (N fresh ShapesWorld prompts per iteration).",
    )
    max_image_bytes: int = Field(
        50 * 2**20,
        ge=1024,
        description="Input images larger than this (bytes, as stored or sent over http) are quarantined unread.",
    )
    http_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Read timeout of an http(s) image fetch (each of 3 retries; "
        "5xx and connection errors are retried with backoff).",
    )
    max_instruction_tokens: int | None = Field(
        None,
        ge=1,
        description="Instructions longer than this (policy tokens) "
        "are quarantined before sampling (default: the "
        "policy's context length minus "
        "sampling.max_new_tokens).",
    )


class RunConfig(Strict):
    run_dir: LocalPath = Field(
        description="Run directory: a local path (relative to the directory the command runs in) or s3://bucket/prefix."
    )
    seed: int = Field(0, ge=0, description="Run seed; every candidate's seed derives from it.")
    iterations: int = Field(3, ge=1, le=100, description="Feedback + DPO iterations (official: 4).")
    models: ModelsConfig = Field(description="Which models play which role.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="Candidate decoding.")
    claim_extraction: ClaimExtractionConfig = Field(
        default_factory=ClaimExtractionConfig, description="How the claim LLM is prompted and decoded."
    )
    pairs: PairsConfig = Field(default_factory=PairsConfig, description="Preference pair construction.")
    data: DataConfig = Field(default_factory=DataConfig, description="Input handling.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="DPO training.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation after each iteration.")
    stop: StopConfig = Field(
        default_factory=StopConfig,
        description="Rules the driver applies after each evaluation (and to each iteration's candidates); "
        "RUN/stopped.json records why a run stopped.",
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig,
        description="MLflow / W&B: one tracker run per run directory, across iterations and resumes.",
    )
    serve: ServeConfig = Field(default_factory=ServeConfig, description="The best-of-N ranker on Ray Serve.")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="Per-stage actor resources.")
    scoring: Literal["claims", "holistic"] = Field(
        "claims",
        description="claims: each answer's claims become yes/no questions for the labeler, its score the rejected "
        "count (docs/method.md s.1.2-1.5). holistic: no claim extraction; the labeler judges the whole answer "
        '("Is the following description of the image accurate?") and its yes-probability is the score, pairs '
        "needing pairs.min_p_gap between them (the paper's holistic baseline): an ablation.",
    )
    schedule: Literal["iterative", "one_shot"] = Field(
        "iterative",
        description="iterative: each iteration's candidates come from the policy it trains (docs/method.md s.2). "
        "one_shot: every iteration's candidates come from the starting policy, the same prompts and pairs "
        "per iteration (the paper's non-iterative baseline): an ablation.",
    )

    def stage_models(self) -> dict[str, ModelSpec | None]:
        """The model each feedback stage loads (None: the stage needs none, e.g. ground-truth labels)."""
        m = self.models
        labeler = m.labeler if m.labeler_mode == "model" else m.policy if m.labeler_mode == "self" else None
        claims = None if self.scoring == "holistic" else m.claim_llm  # holistic: nothing is extracted
        return {"sample": m.policy, "reference": m.policy, "label": labeler, "claims": claims}

    @model_validator(mode="after")
    def _stop_rules_known(self) -> RunConfig:
        known = self.eval.metrics()
        wrong = [
            f"stop.guards: {g.metric!r} is not a summary metric; known: {', '.join(known)}"
            for g in self.stop.guards
            if g.metric not in known
        ]
        if self.stop.patience and self.eval.select is None:
            wrong.append("stop.patience watches eval.select's metric: set eval.select")
        if wrong:
            raise ValueError("; ".join(wrong))
        return self

    @model_validator(mode="after")
    def _holistic_needs_a_labeler_model(self) -> RunConfig:
        if self.scoring == "holistic" and self.models.labeler_mode == "ground_truth":
            raise ValueError("scoring holistic asks a labeler model about each answer: labeler_mode model or self")
        if self.scoring == "holistic" and self.pairs.builder != "rlaif_v":
            raise ValueError(f"pairs.builder {self.pairs.builder} edits rejected claims: scoring holistic has none")
        return self

    @model_validator(mode="after")
    def _tensor_parallel_has_its_gpus(self) -> RunConfig:
        # whether the models fit their GPUs is the memory plan's question (plan.py, checked by preflight)
        r = self.resources
        short = [
            f"resources.{stage}.num_gpus is {getattr(r, stage).num_gpus:g} but its vLLM model shards over "
            f"tensor_parallel_size={spec.vllm.tensor_parallel_size} GPUs"
            for stage, spec in self.stage_models().items()
            if spec is not None
            and spec.engine == "vllm"
            and spec.vllm.tensor_parallel_size > 1
            and getattr(r, stage).num_gpus < spec.vllm.tensor_parallel_size
        ]
        if short:
            raise ValueError("; ".join(short))
        return self
