"""Evaluation after each iteration: eval.*, its benchmark files and the best-policy pick."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .fields import LocalPath, Strict


class BenchmarkConfig(Strict):
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


class SelectConfig(Strict):
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
        from ..benchmarks import DIRECTION

        if isinstance(data, dict) and data.get("mode") is None and isinstance(data.get("metric"), str):
            known = [c for c in DIRECTION if data["metric"] == c or data["metric"].endswith("_" + c)]
            if known:  # the longest: objhal_chair_s is a chair_s, not a ...
                data = {**data, "mode": DIRECTION[max(known, key=len)]}
        return data


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

    @model_validator(mode="after")
    def _select_known(self) -> EvalConfig:
        from ..benchmarks import COLUMNS
        from ..toyworld import HELDOUT_COLUMNS

        known = [*HELDOUT_COLUMNS] + [f"{b.label}_{c}" for b in self.benchmarks for c in COLUMNS[b.kind]]
        if self.select is not None and self.select.metric not in known:
            raise ValueError(f"select.metric {self.select.metric!r} is not a summary metric; known: {', '.join(known)}")
        return self
