"""A policy on the config's benchmarks (eval.benchmarks: POPE, AMBER discriminative) through Ray
Data batch inference: the AnswerQuestions stage on actors placed like sampling's.

RUN/benchmarks/images/<id>        each benchmark image, stored once by content (pipeline/images.py)
RUN/benchmarks/<name>/<tag>/      the answers of one policy (tag: policy_KKK, the summary's row),
                                  with a _SUCCESS manifest holding the metrics: a rerun skips it
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .. import schema as S
from ..benchmarks import Question, load_questions, score
from ..config import BenchmarkConfig, ModelSpec, RunConfig, StageResources
from ..errors import ConfigError
from ..stages.answer_questions import AnswerQuestions
from .images import put_images
from .stages import StageSpec
from .store import RunStore, resume_key

BENCH_DIR = "benchmarks"


def read_benchmark(bench: BenchmarkConfig) -> list[Question]:
    def text(path: str) -> str:
        store = RunStore(path)
        try:
            with store.fs.open_input_stream(store.root) as f:
                return f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"benchmark {bench.label}: cannot read {path} ({exc})") from None

    annotations = text(bench.annotations) if bench.annotations else None
    return load_questions(bench.kind, text(bench.path), bench.path, annotations, bench.limit, bench.label)


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


def evaluate_benchmarks(config: RunConfig, policy: str, tag: str, log=print) -> dict[str, dict]:
    return {b.label: run_benchmark(config.run_dir, b, config.models.policy.model_copy(update={"path": policy}),
                                   config.resources.sample, config.data.max_image_pixels, tag, log)
            for b in config.eval.benchmarks}


def run_benchmark(run_dir: str, bench: BenchmarkConfig, model: ModelSpec, resources: StageResources,
                  max_pixels: int, tag: str, log=print) -> dict:
    """MODEL's metrics on BENCH (answers kept under RUN/benchmarks/<name>/<tag>/)."""
    import ray

    from .feedback import apply_stage

    store = RunStore(run_dir)
    questions = read_benchmark(bench)
    rel = f"{BENCH_DIR}/{bench.label}/{tag}"
    spec = StageSpec(AnswerQuestions, dict(model=model.path, engine=model.engine,
                                           engine_options=model.engine_options(resources.engine_batch_size),
                                           max_new_tokens=bench.max_new_tokens, max_pixels=max_pixels),
                     resources, "answers")
    key = spec.resume_key(resume_key("benchmark", [(q.qid, q.image, q.text, q.label) for q in questions]))
    manifest = store.read_json(f"{rel}/_SUCCESS") or {}
    if manifest.get("config_hash") == key:
        log(f"[{bench.label}] {tag}: finished earlier, skipped")
        return manifest["metrics"]
    for sub in ("", "quarantine/", "_timings/"):
        store.clear(f"{BENCH_DIR}/{sub}{bench.label}/{tag}")
    ids = _stage_images(store, bench, sorted({q.image for q in questions}))
    rows = [{S.PROMPT_ID: q.qid, S.IMAGE_ID: ids[q.image], S.INSTRUCTION: q.text, S.LABEL: q.label, S.KIND: q.kind}
            for q in questions]
    log(f"[{bench.label}] {tag}: {len(rows)} questions on {len(ids)} images, model {model.path}")
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // 256))
    for _ in apply_stage(ds, spec, f"{bench.label}/{tag}", store.uri, BENCH_DIR).iter_batches(batch_size=None):
        pass  # the stage persists its answers
    table = store.read_table(rel, S.schema("answers"), columns=[S.PROMPT_ID, S.ANSWER]).to_pydict()
    answers = dict(zip(table[S.PROMPT_ID], table[S.ANSWER]))
    answered = [q for q in questions if q.qid in answers]
    metrics = {**score(answered, [answers[q.qid] for q in answered]), "questions": len(questions),
               "unanswered": len(questions) - len(answered)}
    store.mark_finished(rel, key, metrics=metrics, model=model.path)
    log(f"[{bench.label}] {tag}: accuracy {metrics['accuracy']:.3f}, F1 {metrics['f1']:.3f}, "
        f"yes-ratio {metrics['yes_ratio']:.3f}" + (f", {metrics['unanswered']} unanswered" if metrics["unanswered"] else ""))
    return metrics


def _stage_images(store: RunStore, bench: BenchmarkConfig, names: list[str]) -> dict[str, str]:
    """Copy the benchmark's images into the run (once: by content id); every missing one named."""
    root = RunStore(bench.image_root)

    def copy(name: str):
        try:
            data = root.read_bytes(name)
        except FileNotFoundError:  # other errors (an unreachable store) are the run's, not the file's
            return name, None
        return name, put_images(store, BENCH_DIR, [data])[0]

    with ThreadPoolExecutor(8) as pool:
        ids = dict(pool.map(copy, names))
    missing = [n for n, i in ids.items() if i is None]
    if missing:
        raise ConfigError(f"benchmark {bench.label}: {len(missing)} image(s) missing under {root.uri} "
                          f"(e.g. {', '.join(missing[:3])}); its numbers would not be comparable")
    return ids
