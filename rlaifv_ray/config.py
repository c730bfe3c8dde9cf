"""Typed run configuration: loaded from YAML, `--set a.b=c` overrides, validated once.

Every field has a description (shown by `rlaifv-ray config --help-fields`). A bad config raises
ONE ConfigError listing every problem, before any work starts.

Relative paths (run_dir, model folders, data.input, serve.policy/reference) mean the directory the
command runs in (for `ray job submit --working-dir .`, the uploaded directory). They are made
absolute once, here, so a Ray worker running elsewhere reads the same folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError

# Hugging Face hub ids: "name" or "namespace/name" (huggingface_hub's validate_repo_id, simplified).
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")


def resolve_model_path(value: str, base: str | Path) -> str:
    """A model location as every process will read it: URIs (s3://) and absolute paths as given
    (an absolute path may name a mount that only the GPU nodes have), a relative folder that exists
    under `base` as its absolute path, `toy:ROLE` for a committed ShapesWorld model, else a hub id.
    Raises ValueError for anything else."""
    if "://" in value:
        return value
    if value.startswith("toy:"):
        return _toy_model(value[len("toy:") :])
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if (Path(base) / path).is_dir():
        return str((Path(base) / path).resolve())
    if _HUB_ID.fullmatch(value) and ".." not in value:
        return value
    raise ValueError(
        f"{value!r} is neither a model folder ({Path(base) / path} does not exist) nor a hub id "
        "(name or namespace/name)"
    )


def _toy_model(role: str) -> str:
    """The committed ShapesWorld model of ROLE (package data: found from a clone or a wheel alike)."""
    pretrained = Path(__file__).resolve().parent / "toyworld" / "pretrained"
    roles = ("policy", "labeler", "claim_llm")
    if role not in roles:
        raise ValueError(f"toy:{role}: the ShapesWorld models are toy:{', toy:'.join(roles)}")
    if not (pretrained / role / "config.json").is_file():
        raise ValueError(
            f"toy:{role}: {pretrained / role} is missing; `rlaifv-ray toy build --out {pretrained}` rebuilds it"
        )
    return str(pretrained / role)


def resolve_local_path(value: str, base: str | Path) -> str:
    """A local path made absolute against `base`; URIs (s3://...) and toy:N specs pass unchanged."""
    if "://" in value or value.startswith("toy:"):
        return value
    return str((Path(base) / Path(value).expanduser()).resolve())


def _resolved_against_base(resolve):
    """A validator applying `resolve(value, base)` when validate_config passed a base directory
    (assignments and workers re-validating a resolved config pass none: values stay as they are)."""

    def check(value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base")
        return value if base is None else resolve(value, base)

    return AfterValidator(check)


ModelLocation = Annotated[str, _resolved_against_base(resolve_model_path)]
LocalPath = Annotated[str, _resolved_against_base(resolve_local_path)]


class _Strict(BaseModel):
    # A typo in a key must fail, not silently take the default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class VLLMOptions(_Strict):
    max_model_len: int = Field(4096, ge=64, description="Longest prompt + answer in tokens (sizes the KV cache).")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of the actor's GPU memory vLLM may use; lower it when actors share a GPU."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine shards the model over.")
    enable_prefix_caching: bool = Field(
        True,
        description="Reuse the KV cache of shared prefixes (the image and "
        "prompt of one row's candidates and questions).",
    )
    enforce_eager: bool = Field(False, description="Skip CUDA graphs / compilation (faster start, slower steps).")
    yes_no_top_k: int = Field(
        20, ge=4, description="Log-probs read at the first answer token; yes/Yes/no/No outside the top k count as 0."
    )


class ModelSpec(_Strict):
    path: ModelLocation = Field(
        description="Model folder (relative to the directory the command runs in), s3:// folder, "
        "or Hugging Face hub id."
    )
    engine: Literal["hf", "vllm"] = Field("hf", description="Backend: hf (transformers) or vllm (GPU clusters).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; auto = bfloat16 on GPU, float32 on CPU."
    )
    device_map: Literal["auto"] | None = Field(
        None,
        description="hf engine: 'auto' spreads a model too large for one GPU over the actor's GPUs "
        "(set the stage's num_gpus to match); default: the whole model on one device.",
    )
    vllm: VLLMOptions = Field(default_factory=VLLMOptions, description="Engine options used when engine is vllm.")

    def engine_options(self, batch_size: int | None = None) -> dict:
        """Keyword arguments for `load_engine(path, engine, ...)`; batch_size: the stage's engine batch."""
        if self.engine == "vllm":
            return {"dtype": self.dtype, **self.vllm.model_dump()}  # vLLM schedules its own batches
        return {
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


class ModelsConfig(_Strict):
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


class ClaimExtractionConfig(_Strict):
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


class SamplingConfig(_Strict):
    n: int = Field(8, ge=2, le=64, description="Candidates per prompt (official: 10); pairs need at least 2.")
    temperature: float = Field(0.7, gt=0, le=2.0, description="Sampling temperature, identical for every candidate.")
    top_p: float = Field(1.0, gt=0, le=1.0, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Answer length cap in tokens (official: 512).")


class PairsConfig(_Strict):
    min_gap: int = Field(1, ge=1, description="Minimum score gap |S_a - S_b| for a pair; ties are discarded.")
    max_per_prompt: int = Field(2, ge=1, description="Pairs kept per instruction (seeded choice).")
    length_balance: bool = Field(
        True, description="Drop pairs so mean chosen and rejected lengths match (METHOD s.1.7)."
    )


class DataConfig(_Strict):
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


class LoraConfig(_Strict):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Linear layers of the language model that get adapters (the vision encoder never does).",
    )


class TrainConfig(_Strict):
    beta: float = Field(0.1, gt=0, description="DPO beta.")
    lr: float = Field(
        5e-5, gt=0, lt=1.0, description="Learning rate; tiny models collapse above ~1.5e-4 (TOYWORLD lesson 3)."
    )
    epochs: int = Field(1, ge=1, description="Epochs over each iteration's pairs.")
    batch_size: int = Field(8, ge=1, description="Global batch size (pairs per optimizer step), split over workers.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps with linear warm-up (cosine after).")
    workers: int = Field(1, ge=1, description="Ray Train workers (data parallel).")
    use_gpu: bool = Field(False, description="Train on GPUs (one per worker).")
    gpu_memory_gb: float | None = Field(
        None,
        gt=0,
        description="Memory of one training GPU (e.g. 40 for an A100 40GB); "
        "when set, the memory plan must fit before any work.",
    )
    num_cpus_per_worker: float = Field(1.0, gt=0, description="CPUs per Ray Train worker (also its torch threads).")
    checkpoint_steps: int = Field(10, ge=1, description="Save a resumable Ray Train checkpoint every this many steps.")
    max_failures: int = Field(2, ge=0, description="Worker-group restarts (from the last checkpoint) before DPO fails.")
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="ddp: every worker holds the whole model (HF Trainer); fsdp: FSDP2 shards parameters, "
        "gradients and AdamW state over the workers (fp32 master weights, bf16 compute on GPUs); "
        "with train.lora, fsdp shards the frozen base (bf16 on GPUs) and trains fp32 adapters.",
    )
    lora: LoraConfig | None = Field(
        None,
        description="Train LoRA adapters instead of every weight (peft); the next "
        "policy is the merged model, the adapter is saved beside it.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, about a third more compute."
    )
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=list,
        description="Experiment trackers for the DPO logs; tensorboard logs land in RUN/iter_NNN/tensorboard/.",
    )

    @model_validator(mode="after")
    def _strategy_supports(self) -> TrainConfig:
        if self.strategy == "fsdp" and self.batch_size % self.workers:
            raise ValueError(
                f"train.strategy fsdp needs train.batch_size ({self.batch_size}) divisible by "
                f"train.workers ({self.workers})"
            )
        return self


class BenchmarkConfig(_Strict):
    kind: Literal["pope", "amber_disc", "chair", "amber_gen"] = Field(
        description="pope: JSONL {question_id, image, text, label}; amber_disc / amber_gen: AMBER's discriminative / "
        "generative queries [{id, image, query}] with its annotations.json; chair: JSONL {question_id, "
        "image, text} (describe-the-image prompts, Object HalBench style) with COCO-format annotations."
    )
    path: LocalPath = Field(description="The benchmark file (local or s3://).")
    image_root: LocalPath = Field(description="Folder (local or s3://) the file's image names are relative to.")
    annotations: LocalPath | None = Field(
        None,
        description="amber_disc / amber_gen: AMBER's annotations.json (by id; "
        "amber_disc needs none when each query carries its truth); "
        "chair: COCO instances_*.json (required).",
    )
    captions: LocalPath | None = Field(
        None,
        description="chair: COCO captions_*.json; objects its reference captions "
        "name join each image's truth, as CHAIR does.",
    )
    association: LocalPath | None = Field(
        None,
        description="amber_gen: AMBER's relation.json (object -> associated "
        "words); without it the vocabulary is the annotated words.",
    )
    safe_words: LocalPath | None = Field(None, description="amber_gen: AMBER's safe_words.txt (never hallucinations).")
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Name in summary.json and the report (default: the file's stem).",
    )
    limit: int | None = Field(None, ge=1, description="Evaluate the first N questions only.")
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        description="Answer length cap (default: 8 for yes/no kinds, 512 for chair / amber_gen, as the paper).",
    )

    @model_validator(mode="after")
    def _files_fit_kind(self) -> BenchmarkConfig:
        if self.kind == "chair" and not self.annotations:
            raise ValueError("kind chair needs `annotations` (COCO instances_*.json)")
        if self.kind == "amber_gen" and not self.annotations:
            raise ValueError("kind amber_gen needs `annotations` (AMBER's annotations.json)")
        wrong = [
            f
            for f, kinds in (("captions", ("chair",)), ("association", ("amber_gen",)), ("safe_words", ("amber_gen",)))
            if getattr(self, f) and self.kind not in kinds
        ]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: not used by kind {self.kind}")
        return self

    @property
    def label(self) -> str:
        return self.name or self.path.rstrip("/").rsplit("/", 1)[-1].split(".")[0]

    @property
    def answer_tokens(self) -> int:
        return self.max_new_tokens or (512 if self.kind in ("chair", "amber_gen") else 8)


class SelectConfig(_Strict):
    metric: str = Field(
        description="A summary.json metric: chair_s, recall ... (held-out ShapesWorld) or "
        "<benchmark>_<metric> (e.g. objhal_chair_s, pope_f1)."
    )
    mode: Literal["min", "max"] = Field(
        description="Lower or higher is better (default: known for CHAIR, recall, F1, accuracy, Cover, Hal, Cog)."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data):
        from .benchmarks import DIRECTION

        if isinstance(data, dict) and data.get("mode") is None and isinstance(data.get("metric"), str):
            known = [c for c in DIRECTION if data["metric"] == c or data["metric"].endswith("_" + c)]
            if known:  # the longest: objhal_chair_s is a chair_s, not a ...
                data = {**data, "mode": DIRECTION[max(known, key=len)]}
        return data


class EvalConfig(_Strict):
    toy_heldout: int = Field(
        200,
        ge=0,
        description="Held-out ShapesWorld images for CHAIR/recall after each iteration "
        "(0 = skip; only meaningful for ShapesWorld policies).",
    )
    seed: int = Field(1, ge=0, description="Held-out image seed (disjoint from every training seed).")
    temperature: float = Field(0.7, gt=0, le=2.0, description="Sampling temperature of the evaluated answers.")
    benchmarks: list[BenchmarkConfig] = Field(
        default_factory=list,
        description="Benchmark files (POPE, AMBER, CHAIR): the starting and every trained policy "
        "answers them greedily on Ray Data (placed like sampling); metrics go to "
        "summary.json and the report.",
    )
    select: SelectConfig | None = Field(
        None,
        description="Pick the best policy by a metric after each iteration: "
        "RUN/best.json; `serve` and `export --iteration best` use it.",
    )

    @field_validator("benchmarks")
    @classmethod
    def _distinct_names(cls, v: list[BenchmarkConfig]) -> list[BenchmarkConfig]:
        names = [b.label for b in v]
        if len(set(names)) < len(names):
            raise ValueError(f"benchmark names must differ (set `name`): {names}")
        return v

    @model_validator(mode="after")
    def _select_known(self) -> EvalConfig:
        from .benchmarks import COLUMNS

        known = ["chair_s", "chair_i", "recall", "mean_words"] + [
            f"{b.label}_{c}" for b in self.benchmarks for c in COLUMNS[b.kind]
        ]
        if self.select is not None and self.select.metric not in known:
            raise ValueError(f"select.metric {self.select.metric!r} is not a summary metric; known: {', '.join(known)}")
        return self


class ServeConfig(_Strict):
    policy: ModelLocation | None = Field(
        None,
        description="Aligned policy to serve (default: RUN/best.json's when "
        "eval.select is set, else the last trained checkpoint in run_dir, "
        "else models.policy.path).",
    )
    reference: ModelLocation | None = Field(
        None, description="Reference of the reward (default: models.policy.path, the policy before alignment)."
    )
    beta: float | None = Field(None, gt=0, description="Reward beta (default: train.beta).")
    host: str = Field("127.0.0.1", description="HTTP bind address; 0.0.0.0 exposes the ranker to the network.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    token_env: str = Field(
        "RLAIFV_SERVE_TOKEN",
        description="Environment variable holding the bearer token; "
        "when it is set, every route but /healthz requires it.",
    )
    max_batch_size: int = Field(16, ge=1, description="Dynamic batching: requests scored together (1 = off).")
    batch_wait_timeout_s: float = Field(0.01, ge=0, description="How long a batch waits to fill.")
    score_batch: int = Field(
        128,
        ge=1,
        description="hf engine: candidates scored in one forward pass; a dynamic "
        "batch's candidates share passes of up to this many (each holds "
        "its own KV cache: lower it for big models on small GPUs).",
    )
    max_ongoing_requests: int = Field(
        64,
        ge=1,
        description="Requests a replica accepts at once (more wait at the "
        "proxy); keep it above max_batch_size so batches fill.",
    )
    replicas: tuple[int, int] = Field((1, 1), description="Autoscaling (min, max) replicas.")
    target_ongoing_requests: float = Field(8, gt=0, description="Autoscaling target of in-flight requests per replica.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs per replica (also its torch threads).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica.")
    max_request_bytes: int = Field(8 << 20, ge=1024, description="Larger request bodies get 413.")
    max_candidates: int = Field(32, ge=1, description="Most candidates per /v1/rank request.")
    max_n: int = Field(16, ge=1, description="Most samples per /v1/generate request.")
    max_answer_chars: int = Field(4000, ge=1, description="Longest candidate answer accepted.")

    @field_validator("replicas")
    @classmethod
    def _min_le_max(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[1] < v[0]:
            raise ValueError(f"needs 1 <= min <= max, got {v}")
        return v


class StageResources(_Strict):
    concurrency: tuple[int, int] = Field(
        (1, 1), description="Actor pool (min, max) size; max > min lets the pool grow."
    )
    batch_size: int = Field(16, ge=1, description="Rows per batch handed to one actor call.")
    engine_batch_size: int = Field(
        32,
        ge=1,
        description="hf engine: sequences per forward pass (lower it for big "
        "models; one row may hold many: candidates, questions).",
    )
    num_gpus: float = Field(0.0, ge=0, description="GPUs per actor (fractions share a GPU).")
    num_cpus: float = Field(0.5, gt=0, description="CPUs per actor; 0.5 keeps 2-core machines from starving.")
    threads: int | None = Field(
        None,
        ge=1,
        description="torch threads per actor (default: max(1, num_cpus)); "
        "more than the reserved CPUs lets a bottleneck stage use idle cores.",
    )

    @field_validator("concurrency")
    @classmethod
    def _min_le_max(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if lo < 1 or hi < lo:
            raise ValueError(f"needs 1 <= min <= max, got ({lo}, {hi})")
        return v


class ResourcesConfig(_Strict):
    gpu_memory_gb: float | None = Field(
        None,
        gt=0,
        description="Memory of one GPU where the stages run (e.g. 48 for an "
        "L40S); when set, each stage is checked to hold its "
        "model's weights (local folders).",
    )
    sample: StageResources = Field(default_factory=StageResources, description="Policy sampling actors.")
    claims: StageResources = Field(default_factory=StageResources, description="Claim-LLM actors.")
    label: StageResources = Field(
        default_factory=lambda: StageResources(concurrency=(1, 2)), description="Labeler actors (elastic)."
    )
    reference: StageResources = Field(default_factory=StageResources, description="Reference log-prob actors.")


class RunConfig(_Strict):
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
    serve: ServeConfig = Field(default_factory=ServeConfig, description="The best-of-N ranker on Ray Serve.")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="Per-stage actor resources.")

    @model_validator(mode="after")
    def _stages_hold_their_models(self) -> RunConfig:
        m, r = self.models, self.resources
        labeler = m.labeler if m.labeler_mode == "model" else m.policy if m.labeler_mode == "self" else None
        uses = {"sample": m.policy, "reference": m.policy, "label": labeler, "claims": m.claim_llm}
        short = [
            f"resources.{stage}.num_gpus is {getattr(r, stage).num_gpus:g} but its vLLM model shards over "
            f"tensor_parallel_size={spec.vllm.tensor_parallel_size} GPUs"
            for stage, spec in uses.items()
            if spec is not None
            and spec.engine == "vllm"
            and spec.vllm.tensor_parallel_size > 1
            and getattr(r, stage).num_gpus < spec.vllm.tensor_parallel_size
        ]
        if r.gpu_memory_gb:
            for stage, spec in uses.items():
                need = weights_gb(spec.path, spec.dtype) if spec is not None else None
                gpus = getattr(r, stage).num_gpus
                if need is None or gpus == 0:
                    continue
                have = _gpus_used(spec, gpus) * r.gpu_memory_gb
                if need > 0.9 * have:  # weights alone; activations and the KV cache need the rest
                    short.append(
                        f"resources.{stage}: its model {spec.path} needs {need:.1f} GB of weights but "
                        f"gets {have:g} GB of GPU memory (num_gpus {gpus:g} x {r.gpu_memory_gb:g} GB); "
                        "raise num_gpus with device_map: auto (hf) or vllm.tensor_parallel_size"
                    )
        if short:
            raise ValueError("; ".join(short))
        return self


_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def weights_gb(path: str, dtype: str) -> float | None:
    """Size of a local model folder's weights once loaded in `dtype` (auto = bfloat16, the GPU
    default), from its safetensors files; None where that cannot be known here (hub ids, s3://)."""
    import json

    folder = Path(path)
    files = list(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    try:
        stored = json.loads((folder / "config.json").read_text()).get("dtype") or "float32"
    except (OSError, ValueError):
        stored = "float32"
    ratio = _DTYPE_BYTES["bfloat16" if dtype == "auto" else dtype] / _DTYPE_BYTES.get(stored, 4)
    return sum(f.stat().st_size for f in files) * ratio / 1e9


def _gpus_used(spec: ModelSpec, num_gpus: float) -> float:
    """GPUs one engine spreads its weights over: its share of one GPU, or several with
    hf device_map auto / vLLM tensor parallelism."""
    if spec.engine == "vllm":
        return max(min(num_gpus, 1.0), float(spec.vllm.tensor_parallel_size)) if num_gpus >= 1 else num_gpus
    return num_gpus if spec.device_map == "auto" else min(num_gpus, 1.0)


SHIPPED_CONFIGS = ("toy", "cluster_7b", "cluster_72b", "qwen2_5_vl_7b")


def shipped_config(path: str | Path) -> Path:
    """A config file, or the name of one shipped in the package (`toy`, ...): found from a clone or
    a wheel install alike."""
    if str(path) in SHIPPED_CONFIGS and not Path(path).is_file():
        return Path(__file__).resolve().parent / "configs" / f"{path}.yaml"
    return Path(path)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read YAML, apply `a.b=c` overrides (values parsed as YAML), validate; ConfigError lists all problems."""
    import yaml

    path = shipped_config(path)
    if not path.is_file():
        raise ConfigError(f"config {path}: no such file (shipped configs: {', '.join(SHIPPED_CONFIGS)})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    problems = []
    for item in overrides:
        try:
            _apply_override(raw, item)
        except ValueError as exc:
            problems.append(str(exc))
    return validate_config(raw, source=str(path), problems=problems)


def validate_config(
    raw: dict, source: str = "config", problems: list[str] | None = None, base: str | Path | None = None
) -> RunConfig:
    """Validate a raw config; relative paths resolve against `base` (default: the current directory)."""
    problems = list(problems or [])
    config = None
    try:
        config = RunConfig.model_validate(raw, context={"base": Path(base or Path.cwd())})
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            got = (
                f" (got {err['input']!r})"
                if err["type"] not in ("missing",) and not isinstance(err["input"], dict)
                else ""
            )
            problems.append(f"{where}: {err['msg']}{got}")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n{listing}")
    return config


def _apply_override(raw: dict, item: str) -> None:
    import yaml

    if "=" not in item:
        raise ValueError(f"--set {item!r}: expected key.path=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {item!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else value


def describe_fields(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[str]:
    """One line per config field with its description, for CLI help."""
    lines = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        nested = next(
            (a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        lines.append(f"{prefix}{name}: {info.description or ''}")
        if nested is not None:
            lines += describe_fields(nested, prefix + name + ".")
    return lines
