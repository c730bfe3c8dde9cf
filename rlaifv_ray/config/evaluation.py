"""Evaluation after each iteration: eval.*, its benchmark files and the best-policy pick."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..metric_names import BENCHMARK_KINDS
from .fields import LocalPath, Strict


class BenchmarkConfig(Strict):
    kind: Literal[BENCHMARK_KINDS] = Field(
        description="pope: JSONL {question_id, image, text, label}; amber_disc / amber_gen: AMBER's discriminative / "
        "generative queries [{id, image, query}] with its annotations.json; chair: JSONL {question_id, "
        "image, text} (describe-the-image prompts, Object HalBench style) with COCO-format annotations; mcq: JSONL "
        "{question_id, image, question, options (list or letter -> text, or flat A/B/C/D), answer, category?, "
        "hint?} (MMStar, MMBench, SEED-Bench, ScienceQA-IMG, AI2D style), a general-ability guard."
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
        description="Answer length cap (default: 8 for yes/no kinds, 512 for chair / amber_gen, as the paper; "
        "64 for mcq, room for 'The answer is (B) because ...').",
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
        return self.max_new_tokens or {"chair": 512, "amber_gen": 512, "mcq": 64}.get(self.kind, 8)


def known_direction(metric: str) -> str | None:
    """min / max for a metric whose better direction is known (benchmark metrics by their suffix)."""
    from ..metric_names import BENCHMARK_DIRECTION
    from ..stability import SIGNAL_DIRECTION

    known = {**BENCHMARK_DIRECTION, **SIGNAL_DIRECTION}
    matches = [c for c in known if metric == c or metric.endswith("_" + c)]
    return known[max(matches, key=len)] if matches else None  # the longest: objhal_chair_s is a chair_s


class _Directed(Strict):
    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data):
        if isinstance(data, dict) and data.get("mode") is None and isinstance(data.get("metric"), str):
            mode = known_direction(data["metric"])
            if mode:
                data = {**data, "mode": mode}
            else:
                raise ValueError(f"{data['metric']!r}: which way is better is not known; set mode (min or max)")
        return data


class GuardConfig(_Directed):
    metric: str = Field(description="A summary.json metric that must not get much worse (e.g. shapes_mcq_accuracy).")
    max_drop: float = Field(ge=0, description="How much worse than the starting policy's value it may get.")
    mode: Literal["min", "max"] = Field(
        description="Which way is better (default: known for benchmark metrics and stability signals)."
    )


class SelectConfig(_Directed):
    metric: str = Field(
        description="A summary.json metric: chair_s, recall ... (held-out ShapesWorld) or "
        "<benchmark>_<metric> (e.g. objhal_chair_s, pope_f1)."
    )
    mode: Literal["min", "max"] = Field(
        description="Lower or higher is better (default: known for CHAIR, recall, F1, accuracy, Cover, Hal, Cog)."
    )
    guard: GuardConfig | None = Field(
        None,
        description="Pick only among policies whose guard metric is at most max_drop worse than the starting "
        "policy's (e.g. {metric: mmstar_accuracy, max_drop: 0.02}: less hallucination must not cost general "
        "ability); best.json lists the iterations it excluded.",
    )


class EvalConfig(Strict):
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
        if any("/" in n for n in names):  # a name is a folder of the run, and a prefix of its rows' ids
            raise ValueError(f"benchmark names cannot hold '/': {names}")
        return v

    def metrics(self) -> list[str]:
        """The summary.json metrics a run with these benchmarks has."""
        from ..metric_names import HELDOUT, benchmark_metrics
        from ..stability import SIGNALS

        return [*HELDOUT, *benchmark_metrics(self.benchmarks), *SIGNALS]

    @model_validator(mode="after")
    def _select_known(self) -> EvalConfig:
        known = self.metrics()
        wrong = [
            f"{where} {metric!r} is not a summary metric; known: {', '.join(known)}"
            for where, metric in (
                ("select.metric", self.select and self.select.metric),
                ("select.guard.metric", self.select and self.select.guard and self.select.guard.metric),
            )
            if metric and metric not in known
        ]
        if wrong:
            raise ValueError("; ".join(wrong))
        return self


class CollapseConfig(Strict):
    min_words_share: float = Field(
        0.5, gt=0, le=1, description="Collapse when the candidates' mean words fall below this share of iteration 0's."
    )
    max_repeated_share: float = Field(
        0.5, gt=0, le=1, description="Collapse when more than this share of the candidates repeat a sentence."
    )
    stop: bool = Field(False, description="Stop the run on a collapse (false: warn and go on).")


class StopConfig(Strict):
    patience: int | None = Field(
        None, ge=1, description="Stop when eval.select's metric has not improved for this many iterations."
    )
    guards: list[GuardConfig] = Field(
        default_factory=list,
        description="Stop when a metric gets more than max_drop worse than the starting policy's "
        "(e.g. [{metric: pope_f1, max_drop: 0.03}]).",
    )
    collapse: CollapseConfig = Field(
        default_factory=CollapseConfig,
        description="Checked on each iteration's candidates before DPO: a warning, or a stop with collapse.stop.",
    )
