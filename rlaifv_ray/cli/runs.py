"""Commands that run the method: `run` (the loop), `feedback` (one iteration's feedback), `train`
(DPO on an existing dataset) and `demo` (the ShapesWorld loop, end to end)."""

from __future__ import annotations

import json
import logging

from ..errors import RlaifvError
from .common import add_config, add_parser, load, model_arg, start_run

log = logging.getLogger(__name__)


def add_commands(sub) -> None:
    r = add_parser(
        sub,
        "run",
        help="run the whole RLAIF-V loop: feedback -> DPO -> evaluate, per iteration",
        description="Run config.iterations iterations of feedback collection, DPO on Ray Train and evaluation; "
        "writes RUN/summary.json, RUN/report.html and RUN/run.log. Rerunning the same command after a crash resumes "
        "at the first unfinished step.",
    )
    add_config(r)
    r.add_argument("--input", help="prompts (overrides data.input): FILE.jsonl, FILE.parquet, image folder, toy:N")
    r.set_defaults(func=_run)
    _add_feedback(sub)
    _add_train(sub)
    _add_demo(sub)


def _add_feedback(sub) -> None:
    f = add_parser(
        sub,
        "feedback",
        help="collect one iteration's AI feedback (sample, claims, labels, pairs)",
        description="Run one iteration of RLAIF-V feedback collection on Ray Data and write "
        "RUN/iter_NNN/{prompts,candidates,claims,labels,pairs,quarantine}/ and metrics.json. Rerunning the same "
        "command resumes at the first unfinished stage.",
    )
    add_config(f)
    f.add_argument("--policy", help="policy model for this iteration (default: models.policy.path)")
    f.add_argument("--iteration", type=int, default=0, help="iteration number K (default 0)")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="prompts: FILE.jsonl, FILE.parquet, a folder of images, or toy:N")
    src.add_argument("--toy", type=int, metavar="N", help="N ShapesWorld prompts (truth known: adds the audit)")
    f.set_defaults(func=_feedback)


def _add_train(sub) -> None:
    t = add_parser(
        sub,
        "train",
        help="DPO on an existing preference dataset (rlaifv or trl format)",
        description="Train the config's policy with DPO on the pairs at PAIRS: parquet shards in the RLAIF-V-Dataset "
        "format (image, question, chosen, rejected) or TRL's (prompt, images, chosen, rejected), detected per file. "
        "The pairs stream through the reference stage on Ray Data (reference log-probs of the starting policy, "
        "images decoded per batch), then Ray Train DPO; the policy is evaluated as in `run`. Rows with an unreadable "
        "image or an empty answer are quarantined with their reason (RUN/iter_000/quarantine/). Rerunning the same "
        "command resumes.",
    )
    add_config(t)
    t.add_argument("--pairs", required=True, help="a parquet file, a folder of shards, or s3://bucket/prefix")
    t.set_defaults(func=_train)


def _add_demo(sub) -> None:
    d = add_parser(
        sub,
        "demo",
        help="the ShapesWorld loop on this machine, end to end, with a metrics table",
        description="Build the ShapesWorld models if missing (the committed ones are used by default), then run the "
        "RLAIF-V loop locally (the shipped toy config) and print held-out CHAIRs / CHAIRi / recall / mean words per "
        "iteration, F1 on a POPE-format (adversarial split) and an AMBER-format ShapesWorld benchmark, CHAIRs on "
        "an Object-HalBench-format one (COCO-style annotations), which picks the best policy (RUN/best.json), and "
        "accuracy on an MMStar-format multiple-choice one (counting, colour, shape, position), which guards the pick. "
        "--set tracking.mlflow.uri=http://127.0.0.1:5000 logs it to MLflow.",
    )
    d.add_argument("--workdir", default="runs/demo", help="run directory (default runs/demo)")
    d.add_argument("--models", help="ShapesWorld model folder (default: the committed models; built when missing)")
    d.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a toy.yaml field, e.g. --set models.labeler_mode=ground_truth",
    )
    d.set_defaults(func=_demo)


def _run(args) -> int:
    config = load(args, *([f"data.input={args.input}"] if args.input else []))
    print(json.dumps(run_loop(config), indent=2))
    return 0


def _feedback(args) -> int:
    from ..locations import toy_prompt_spec
    from ..pipeline.feedback import run_feedback

    config = load(args, *([f"data.input={args.input}"] if args.input else []))
    if args.iteration < 0:
        raise RlaifvError("feedback: --iteration must be >= 0")
    policy = model_arg("--policy", args.policy) if args.policy else config.models.policy.path
    spec = toy_prompt_spec(args.toy) if args.toy is not None else config.data.input
    start_run(config)
    metrics = run_feedback(config, args.iteration, policy, spec)
    print(json.dumps(metrics, indent=2))
    log.info(
        " -> ".join(f"{k} {v}" for k, v in metrics["rows"].items())
        + f" | quarantined {sum(metrics['quarantined'].values())} | yield {metrics['pair_yield']:.2f} pairs/prompt"
        + f" | {metrics['wall_seconds']['total']:.0f} s"
    )
    return 0


def _train(args) -> int:
    from ..driver import preflight, train_on_pairs
    from ..pipeline.dataset_pairs import dataset_files
    from ..report import summary_table

    config = load(args)
    preflight(config, needs_input=False)
    fmt, shards = dataset_files(args.pairs)  # formats and columns checked before Ray starts
    log.info(f"train: {len(shards)} {fmt} shard(s) from {args.pairs}")
    start_run(config)
    summary = train_on_pairs(config, args.pairs)
    log.info(summary_table(summary))
    print(json.dumps(summary, indent=2))
    return 0


def run_loop(config) -> list[dict]:
    from ..driver import preflight, run
    from ..report import summary_table
    from ..storage.store import RunStore

    preflight(config)
    start_run(config)
    summary = run(config)
    log.info(summary_table(summary))
    store = RunStore(config.run_dir)
    best = store.read_json("best.json") if config.eval.select else None
    if best:
        log.info(
            f"best by {best['metric']} ({best['mode']}): the policy after iteration {best['iteration']}, "
            f"{best['value']:.3f} ({best['checkpoint']})"
        )
    log.info(f"report: {store.uri_of('report.html')}")
    return summary


def _demo(args) -> int:
    from pathlib import Path

    from ..config import load_config
    from ..locations import TOY_MODELS, TOY_ROLES
    from ..toyworld.build import build
    from ..toyworld.datasets import write_benchmark

    models = Path(args.models) if args.models else TOY_MODELS
    if not all((models / r / "config.json").exists() for r in TOY_ROLES):
        log.info(f"demo: building ShapesWorld models in {models} (about 15 minutes on 2 cores)")
        build(models)
    # POPE-, AMBER-, Object-HalBench- and MMStar-format benchmarks from ShapesWorld truth, answered by
    # every policy beside the held-out CHAIR; the best policy is picked by the caption benchmark's
    # CHAIRs among those whose multiple-choice accuracy held
    bench = Path(args.workdir).resolve() / "benchmark_data"
    benchmarks = [
        write_benchmark(str(bench / "pope"), "pope", 100, split="adversarial"),
        write_benchmark(str(bench / "amber"), "amber_disc", 100),
        write_benchmark(str(bench / "objhal"), "chair", 100),
        write_benchmark(str(bench / "mcq"), "mcq", 50),
    ]
    overrides = [
        f"run_dir={args.workdir}",
        f"eval.benchmarks={json.dumps(benchmarks)}",
        'eval.select={"metric": "objhal_chair_s", "guard": {"metric": "shapes_mcq_accuracy", "max_drop": 0.05}}',
        *(f"models.{r}.path={models / r}" for r in TOY_ROLES),
        *args.set,
    ]
    config = load_config("toy", overrides)  # the shipped config: package data, so a wheel install has it
    log.info(f"demo: {config.iterations} iterations of RLAIF-V on ShapesWorld in {config.run_dir}")
    print(json.dumps(run_loop(config), indent=2))
    return 0
