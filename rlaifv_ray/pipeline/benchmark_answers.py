"""A policy on the config's benchmarks (eval.benchmarks: POPE, AMBER, CHAIR) through Ray Data batch
inference: the AnswerQuestions stage on actors placed like sampling's, one pass over the questions of
every benchmark an evaluation has not answered yet.

RUN/benchmarks/images/<id>        each benchmark image, stored once by content (storage/images.py)
RUN/benchmarks/<name>/<tag>/      the answers of one policy (tag: policy_KKK, the summary's row), with
                                  a _SUCCESS manifest: a rerun answers nothing again
RUN/benchmarks/<name>/<tag>.scored.jsonl  each answer with what it was scored as (objects named,
                                  hallucinated, missed), beside the answers' parquet folder (which
                                  readers take whole). Scoring reruns from the stored answers: it is
                                  cheap, and an annotation file may have been corrected since.
RUN/benchmarks/quarantine/_answering/<tag>/  questions the pass could not answer (row id NAME/QUESTION_ID),
                                  with the reason; RUN/benchmarks/_timings/_answering/<tag>/ its batches
"""

from __future__ import annotations

import json
import logging

from .. import schema as S
from ..benchmarks import Benchmark, load_benchmark
from ..config import BenchmarkConfig, ModelSpec, RunConfig, StageResources
from ..errors import ConfigError
from ..metric_names import BENCHMARK
from ..stages.answer_questions import AnswerQuestions
from ..storage.images import put_images
from ..storage.store import RunStore, resume_key
from .stage import StageSpec, drain, returning_freed_memory

log = logging.getLogger(__name__)

BENCH_DIR = "benchmarks"
PASS_DIR = "_answering"  # one evaluation's pass over all its benchmarks (RUN/benchmarks/_answering/<tag>)


FILES = ("annotations", "captions", "association", "safe_words")  # BenchmarkConfig fields naming files


def read_text(path: str, what: str) -> str:
    store = RunStore(path)
    try:
        with store.fs.open_input_stream(store.root) as f:
            return f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc})") from None


def read_benchmark(bench: BenchmarkConfig) -> Benchmark:
    files = {
        role: (path, read_text(path, f"benchmark {bench.label}"))
        for role, path in [("questions", bench.path)] + [(f, getattr(bench, f)) for f in FILES]
        if path
    }
    return load_benchmark(bench.kind, files, bench.limit, bench.label)


def check_benchmarks(config: RunConfig) -> None:
    """Every benchmark file parses (before any work): one error naming each bad line."""
    problems = []
    for bench in config.eval.benchmarks:
        try:
            read_benchmark(bench)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def evaluate_benchmarks(config: RunConfig, policy: str, tag: str) -> dict[str, dict]:
    return run_benchmarks(
        config.run_dir,
        config.eval.benchmarks,
        config.models.policy.model_copy(update={"path": policy}),
        config.resources.sample,
        config.data.max_image_pixels,
        tag,
    )


def run_benchmarks(
    run_dir: str,
    benches: list[BenchmarkConfig],
    model: ModelSpec,
    resources: StageResources,
    max_pixels: int,
    tag: str,
) -> dict[str, dict]:
    """MODEL's metrics on each of BENCHES (answers kept under RUN/benchmarks/<name>/<tag>/). The
    questions of every benchmark not answered earlier go through one Ray Data pass: the policy is
    loaded once per evaluation, not once per benchmark."""
    store = RunStore(run_dir)
    spec = StageSpec(
        AnswerQuestions,
        dict(
            model=model.path,
            engine=model.engine,
            engine_options=model.engine_options(resources.engine_batch_size),
            max_pixels=max_pixels,
        ),
        resources,
        "answers",
    )
    read = [(bench, read_benchmark(bench)) for bench in benches]
    todo = []
    for bench, benchmark in read:
        asked = [(q.qid, q.image, q.text) for q in benchmark.questions]
        key = spec.resume_key(resume_key("benchmark", bench.answer_tokens, asked))
        if store.finished(f"{BENCH_DIR}/{bench.label}/{tag}", key):
            log.info(f"[{bench.label}] {tag}: answered earlier, scoring the stored answers")
        else:
            todo.append((bench, benchmark, key))
    if todo:
        _answer(store, todo, spec, model.path, tag)
    return {bench.label: _score(store, bench, benchmark, tag) for bench, benchmark in read}


def _answer(store: RunStore, todo: list, spec: StageSpec, model: str, tag: str) -> None:
    """One pass over the questions of TODO's benchmarks (row ids: NAME/QUESTION_ID, each row with
    its benchmark's answer length), then each benchmark's answers in its own folder."""
    import pyarrow as pa
    import ray

    rows = []
    for bench, benchmark, _ in todo:
        ids = _stage_images(store, bench, sorted({q.image for q in benchmark.questions}))
        rows += [
            {
                S.PROMPT_ID: f"{bench.label}/{q.qid}",
                S.IMAGE_ID: ids[q.image],
                S.INSTRUCTION: q.text,
                S.LABEL: q.label,
                S.KIND: q.kind,
                S.MAX_NEW_TOKENS: bench.answer_tokens,
            }
            for q in benchmark.questions
        ]
        log.info(f"[{bench.label}] {tag}: {len(benchmark.questions)} questions on {len(ids)} images, model {model}")
    stage = f"{PASS_DIR}/{tag}"
    for sub in ("", "quarantine/", "_timings/"):
        store.clear(f"{BENCH_DIR}/{sub}{stage}")
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // 256))
    with returning_freed_memory():
        drain(spec.apply(ds, stage, store.uri, BENCH_DIR, sink=True))  # the stage persists its answers
    answered = store.read_table(f"{BENCH_DIR}/{stage}", S.schema("answers")).to_pylist()
    for bench, _, key in todo:
        rel, prefix = f"{BENCH_DIR}/{bench.label}/{tag}", f"{bench.label}/"
        mine = [
            {**r, S.PROMPT_ID: r[S.PROMPT_ID][len(prefix) :]} for r in answered if r[S.PROMPT_ID].startswith(prefix)
        ]
        store.clear(rel)
        store.write_part(rel, pa.Table.from_pylist(mine, schema=S.schema("answers")), [r[S.PROMPT_ID] for r in mine])
        store.mark_finished(rel, key, model=model)
    store.clear(f"{BENCH_DIR}/{stage}")  # its quarantine and timings stay, for the audit


def _score(store: RunStore, bench: BenchmarkConfig, benchmark: Benchmark, tag: str) -> dict:
    rel = f"{BENCH_DIR}/{bench.label}/{tag}"
    questions = benchmark.questions
    table = store.read_table(rel, S.schema("answers"), columns=[S.PROMPT_ID, S.ANSWER]).to_pydict()
    answers = dict(zip(table[S.PROMPT_ID], table[S.ANSWER]))
    answered = [q for q in questions if q.qid in answers]
    metrics, details = benchmark.score(answered, [answers[q.qid] for q in answered])
    metrics.update(kind=bench.kind, questions=len(questions), unanswered=len(questions) - len(answered))
    store.write_bytes(f"{rel}.scored.jsonl", scored_lines(answered, answers, details))
    log.info(
        f"[{bench.label}] {tag}: "
        + ", ".join(f"{c} {metrics[c]:.3f}" for c in BENCHMARK[bench.kind])
        + (f", {metrics['unanswered']} unanswered" if metrics["unanswered"] else "")
    )
    return metrics


def scored_lines(questions, answers: dict[str, str], details: list[dict]) -> bytes:
    """JSONL: each question's answer beside what it was scored as."""
    return "".join(
        json.dumps({"question_id": q.qid, "image": q.image, "answer": answers[q.qid], **d}) + "\n"
        for q, d in zip(questions, details)
    ).encode()


def _stage_images(store: RunStore, bench: BenchmarkConfig, names: list[str]) -> dict[str, str]:
    """Copy the benchmark's images into the run (once: by content id), from a folder, s3:// or
    http(s)://; every image that cannot be read is named (an unreachable store raises as itself)."""
    from ..config import DataConfig
    from ..storage.image_refs import fetch_all

    root, limits = bench.image_root.rstrip("/"), DataConfig()
    refs = [f"{root}/{n}" for n in names]
    fetched = fetch_all(refs, f"benchmark {bench.label}", limits.max_image_bytes, limits.http_timeout_s)
    failed = [(n, reason) for n, (_, reason) in zip(names, fetched) if reason]
    if failed:
        missing = all("no such file" in r or "HTTP 404" in r for _, r in failed)
        raise ConfigError(
            f"benchmark {bench.label}: {len(failed)} image(s) {'missing' if missing else 'unreadable'} "
            f"under {root} (e.g. {', '.join(n for n, _ in failed[:3])}: {failed[0][1]}); its numbers "
            "would not be comparable"
        )
    ids = put_images(store, BENCH_DIR, [data for data, _ in fetched])
    return dict(zip(names, ids))
