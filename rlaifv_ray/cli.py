"""The `rlaifv-ray` command. Heavy imports happen inside each subcommand."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import RlaifvError, user_error_in


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except RlaifvError as exc:
        print(f"rlaifv-ray: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlaifv-ray: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a stage's own error, raised in a Ray worker, arrives wrapped by Ray
        cause = user_error_in(exc)
        if cause is None:
            raise
        print(f"rlaifv-ray: error: {cause}", file=sys.stderr)
        return 2


CONFIG_HELP = "run config YAML, or a shipped one by name: toy, cluster_7b, cluster_72b, qwen2_5_vl_7b"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlaifv-ray",
        description="RLAIF-V on Ray: align multimodal LLMs for trustworthiness with open-source AI feedback.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    c = sub.add_parser(
        "config",
        help="validate a run config and print it resolved",
        description="Validate CONFIG (with overrides) and print the resolved YAML; lists every problem at once.",
    )
    c.add_argument("config", nargs="?", help=CONFIG_HELP)
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. --set sampling.n=4 (repeatable)",
    )
    c.add_argument("--fields", action="store_true", help="list every config field with its description")
    c.set_defaults(func=_cmd_config)

    f = sub.add_parser(
        "feedback",
        help="collect one iteration's AI feedback (sample, claims, labels, pairs)",
        description="Run one iteration of RLAIF-V feedback collection on Ray Data and write "
        "RUN/iter_NNN/{prompts,candidates,claims,labels,pairs,quarantine}/ and metrics.json. "
        "Rerunning the same command resumes at the first unfinished stage.",
    )
    f.add_argument("config", help=CONFIG_HELP)
    f.add_argument("--policy", help="policy model for this iteration (default: models.policy.path)")
    f.add_argument("--iteration", type=int, default=0, help="iteration number K (default 0)")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="prompts: FILE.jsonl, FILE.parquet, a folder of images, or toy:N")
    src.add_argument("--toy", type=int, metavar="N", help="N ShapesWorld prompts (truth known: adds the audit)")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    f.set_defaults(func=_cmd_feedback)

    toy = sub.add_parser("toy", help="ShapesWorld: the synthetic world and its tiny models")
    toy_sub = toy.add_subparsers(title="toy commands", metavar="TOYCOMMAND")
    b = toy_sub.add_parser(
        "build",
        help="build the ShapesWorld tokenizer and models (skips what exists)",
        description="Train the vision tower, labeler, policy and claim LLM on ShapesWorld "
        "(about 20 minutes on 2 CPU cores) and save them as HF model folders.",
    )
    b.add_argument("--out", required=True, help="output folder (models go to OUT/policy, OUT/labeler, OUT/claim_llm)")
    b.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    b.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="train every model for F times its steps (default 1; e.g. 0.05 is a two-minute smoke "
        "build of the same code, whose models learn but do not meet the quality bars)",
    )
    b.set_defaults(func=_cmd_toy_build)

    e = sub.add_parser(
        "eval",
        help="evaluate a model on a benchmark file (POPE, AMBER, CHAIR) or held-out ShapesWorld",
        description="--bench KIND --file F --image-root DIR --model M: the model's greedy answers to "
        "a benchmark file on Ray Data, scored: accuracy, precision, recall, F1 and yes-ratio "
        "(pope, amber_disc); CHAIRs, CHAIRi, recall (chair); CHAIR, Cover, Hal, Cog "
        "(amber_gen). --answers A.jsonl instead of --model scores answers made elsewhere "
        "({question_id, answer} per line) without loading a model or starting Ray. Without "
        "--bench, one model on N held-out ShapesWorld images: --model: hallucination metrics "
        "of sampled answers; --labeler: yes/no accuracy; --claim-llm: claim extraction "
        "exact match.",
    )
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="policy model folder or hub id")
    who.add_argument("--answers", help="with --bench: JSONL of {question_id, answer} to score (no model, no Ray)")
    who.add_argument("--labeler", help="labeler model folder or hub id")
    who.add_argument("--claim-llm", help="claim LLM folder or hub id")
    e.add_argument("--bench", choices=["pope", "amber_disc", "chair", "amber_gen"], help="benchmark kind of --file")
    e.add_argument("--file", help="with --bench: the benchmark file (local or s3://)")
    e.add_argument("--image-root", help="with --bench and --model: folder the file's image names are relative to")
    e.add_argument("--annotations", help="with --bench: AMBER's annotations.json, or COCO instances_*.json (chair)")
    e.add_argument(
        "--captions", help="with --bench chair: COCO captions_*.json (objects its captions name count as present)"
    )
    e.add_argument("--association", help="with --bench amber_gen: AMBER's relation.json")
    e.add_argument("--safe-words", help="with --bench amber_gen: AMBER's safe_words.txt")
    e.add_argument("--limit", type=int, metavar="N", help="with --bench: the first N questions only")
    e.add_argument(
        "--max-new-tokens",
        type=int,
        metavar="N",
        help="with --bench and --model: answer length cap (default 8 for yes/no, 512 for captions)",
    )
    e.add_argument(
        "--out",
        help="with --bench: keep the answers in this run directory (default: a temp dir); with "
        "--answers: write each answer with what it was scored as (JSONL) to this file",
    )
    e.add_argument("--policy", help="with --labeler: also measure rejection of this policy's false claims")
    e.add_argument(
        "--best-of",
        type=int,
        metavar="N",
        help="with --model: best-of-N by the implicit reward vs the summed reward vs random",
    )
    e.add_argument("--reference", help="with --best-of: the reference (pre-alignment) policy")
    e.add_argument("--beta", type=float, default=0.1, help="with --best-of: reward beta (default 0.1)")
    e.add_argument("--num", type=int, default=200, help="held-out images (default 200)")
    e.add_argument("--seed", type=int, default=1, help="held-out image seed (default 1)")
    e.add_argument("--temperature", type=float, default=0.7, help="policy sampling temperature (default 0.7)")
    e.add_argument("--engine", default="hf", choices=["hf"], help="backend (default hf)")
    e.add_argument("--json", action="store_true", help="print one JSON object only")
    e.set_defaults(func=_cmd_eval)

    r = sub.add_parser(
        "run",
        help="run the whole RLAIF-V loop: feedback -> DPO -> evaluate, per iteration",
        description="Run config.iterations iterations of feedback collection, DPO on Ray Train and "
        "evaluation; writes RUN/summary.json and RUN/report.html. Rerunning the same "
        "command after a crash resumes at the first unfinished step.",
    )
    r.add_argument("config", help=CONFIG_HELP)
    r.add_argument("--input", help="prompts (overrides data.input): FILE.jsonl, FILE.parquet, image folder, toy:N")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser(
        "train",
        help="DPO on an existing preference dataset (rlaifv or trl format)",
        description="Train the config's policy with DPO on the pairs at PAIRS: parquet shards in the "
        "RLAIF-V-Dataset format (image, question, chosen, rejected) or TRL's (prompt, "
        "images, chosen, rejected), detected per file. The pairs stream through the "
        "reference stage on Ray Data (reference log-probs of the starting policy, images "
        "decoded per batch), then Ray Train DPO; the policy is evaluated as in `run`. "
        "Rows with an unreadable image or an empty answer are quarantined with their reason "
        "(RUN/iter_000/quarantine/). Rerunning the same command resumes.",
    )
    t.add_argument("config", help=CONFIG_HELP)
    t.add_argument("--pairs", required=True, help="a parquet file, a folder of shards, or s3://bucket/prefix")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    t.set_defaults(func=_cmd_train)

    x = sub.add_parser(
        "export",
        help="write a run's pairs as a preference dataset (rlaifv or trl format)",
        description="Write iteration K's pairs of RUN (default: the last iteration with pairs) as "
        "parquet shards train-NNNNN-of-MMMMM.parquet in OUT (a folder or s3://...): the "
        "RLAIF-V-Dataset columns (--format rlaifv) or TRL's vision preference format "
        "(--format trl), with the images inline. datasets.load_dataset('parquet', "
        "data_files=...) loads them; `rlaifv-ray train --pairs` reads them back.",
    )
    x.add_argument("run", help="run directory (local or s3://)")
    x.add_argument(
        "--iteration",
        type=_iteration,
        metavar="K",
        help="iteration, or `best`: the pairs the best policy (RUN/best.json) was trained on (default: "
        "the last with finished pairs)",
    )
    x.add_argument("--format", required=True, choices=["trl", "rlaifv"], help="output format")
    x.add_argument("--out", required=True, help="output folder or s3://bucket/prefix")
    x.add_argument("--rows-per-shard", type=int, default=1000, metavar="N", help="pairs per shard (default 1000)")
    x.add_argument("--overwrite", action="store_true", help="replace parquet files already in OUT")
    x.set_defaults(func=_cmd_export)

    pl = sub.add_parser(
        "plan",
        help="per-GPU memory of every stage and of DPO, from the models' config.json",
        description="Estimate per-GPU memory for each feedback stage (weights, KV cache, logits) and "
        "for DPO (weights, gradients, AdamW, activations) from each model's config.json "
        "(local, s3:// or the hub's; no weights). Exits 1 when something cannot fit, "
        "naming the fix. `run` checks the same plan before any work when GPU sizes are "
        "known (resources.gpu_memory_gb, train.gpu_memory_gb).",
    )
    pl.add_argument("config", help=CONFIG_HELP)
    pl.add_argument("--gpu-memory", type=float, metavar="GB", help="one feedback GPU (default resources.gpu_memory_gb)")
    pl.add_argument(
        "--train-gpu-memory", type=float, metavar="GB", help="one training GPU (default train.gpu_memory_gb)"
    )
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    pl.set_defaults(func=_cmd_plan)

    sv = sub.add_parser(
        "serve",
        help="serve the best-of-N ranker on Ray Serve (blocks; Ctrl-C stops)",
        description="Deploy the ranker (POST /v1/rank, POST /v1/generate, GET /healthz) with the "
        "config's serve: section and block. Binds 127.0.0.1 unless serve.host says "
        "otherwise; set the variable named by serve.token_env (default "
        "RLAIFV_SERVE_TOKEN) to require a bearer token.",
    )
    sv.add_argument("config", help=CONFIG_HELP)
    sv.add_argument("--policy", help="aligned policy (default: the run's best policy by eval.select, else its last)")
    sv.add_argument("--reference", help="reference policy (default: models.policy.path)")
    sv.add_argument("--port", type=int, help="HTTP port (default serve.port, 8000)")
    sv.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    sv.set_defaults(func=_cmd_serve)

    d = sub.add_parser(
        "demo",
        help="the ShapesWorld loop on this machine, end to end, with a metrics table",
        description="Build the ShapesWorld models if missing (the committed ones are used by default), "
        "then run the RLAIF-V loop locally (the shipped toy config) and print "
        "held-out CHAIRs / CHAIRi / recall / mean words per iteration, F1 on a "
        "POPE-format (adversarial split) and an AMBER-format ShapesWorld benchmark, and "
        "CHAIRs on an Object-HalBench-format one (COCO-style annotations), which picks "
        "the best policy (RUN/best.json).",
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
    d.set_defaults(func=_cmd_demo)
    return p


def _cmd_config(args) -> int:
    from .config import describe_fields, load_config

    if args.fields:
        print("\n".join(describe_fields()))
        return 0
    if not args.config:
        raise RlaifvError("config: give a CONFIG file (or --fields)")
    import yaml

    config = load_config(args.config, args.set)
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def _cmd_feedback(args) -> int:
    from .config import load_config
    from .pipeline.feedback import run_feedback
    from .pipeline.store import RunStore

    overrides = list(args.set) + ([f"data.input={args.input}"] if args.input else [])
    config = load_config(args.config, overrides)  # every config problem (and path), before any work
    if args.iteration < 0:
        raise RlaifvError("feedback: --iteration must be >= 0")
    policy = _model_arg("--policy", args.policy) if args.policy else config.models.policy.path
    spec = f"toy:{args.toy}" if args.toy is not None else config.data.input
    _init_ray()
    RunStore(config.run_dir).write_bytes("config.yaml", _config_yaml(config))
    metrics = run_feedback(config, args.iteration, policy, spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(metrics, indent=2))
    rows = metrics["rows"]
    print(
        " -> ".join(f"{k} {v}" for k, v in rows.items())
        + f" | quarantined {sum(metrics['quarantined'].values())} | yield {metrics['pair_yield']:.2f} pairs/prompt"
        + f" | {metrics['wall_seconds']['total']:.0f} s",
        file=sys.stderr,
    )
    return 0


def _model_arg(flag: str, value: str) -> str:
    """A model given on the command line, resolved like a config's model paths (before Ray starts)."""
    from pathlib import Path

    from .config import resolve_model_path
    from .errors import ConfigError

    try:
        return resolve_model_path(value, Path.cwd())
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def _init_ray() -> None:
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS (set by `ray job submit`) joins the cluster; otherwise a local Ray starts.
        ray.init(log_to_driver=False)


def _config_yaml(config) -> bytes:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode()


def _cmd_toy_build(args) -> int:
    from .toyworld.build import BuildPlan, build

    if not 0 < args.scale <= 1:
        raise RlaifvError(f"toy build: --scale must be in (0, 1], got {args.scale}")
    plan = BuildPlan(seed=args.seed)
    plan = plan.scaled(args.scale) if args.scale < 1 else plan
    manifest = build(args.out, plan, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(manifest, indent=2))
    return 0


def _cmd_eval(args) -> int:
    if args.num < 1:
        raise RlaifvError("eval: --num must be at least 1")
    if args.answers and not args.bench:
        raise RlaifvError("eval --answers needs --bench KIND and --file (the questions they answer)")
    log = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    if args.bench:
        print(json.dumps(_bench(args, log), indent=None if args.json else 2))
        return 0
    from .engines import load_engine
    from .toyworld import evaluate

    if args.best_of is not None:
        if not (args.model and args.reference) or args.best_of < 2:
            raise RlaifvError("eval --best-of N needs N >= 2, --model POLICY and --reference REFERENCE")
        from .reward import Ranker

        log(f"best-of-{args.best_of} with {args.model} against {args.reference} on {args.num} held-out images")
        ranker = Ranker(load_engine(args.model, args.engine), load_engine(args.reference, args.engine), args.beta)
        result = evaluate.eval_best_of_n(ranker, args.num, args.seed, args.best_of, args.temperature)
    elif args.model:
        log(f"evaluating policy {args.model} on {args.num} held-out images")
        result = evaluate.eval_policy(load_engine(args.model, args.engine), args.num, args.seed, args.temperature)
    elif args.labeler:
        policy = load_engine(args.policy, args.engine) if args.policy else None
        log(f"evaluating labeler {args.labeler} on {args.num} held-out images")
        result = evaluate.eval_labeler(load_engine(args.labeler, args.engine), args.num, args.seed, policy)
    else:
        log(f"evaluating claim LLM {args.claim_llm} on {args.num} held-out answers")
        result = evaluate.eval_claim_llm(load_engine(args.claim_llm, args.engine), args.num, args.seed)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _bench(args, log) -> dict:
    import tempfile
    from pathlib import Path

    from pydantic import ValidationError

    from .config import BenchmarkConfig, ModelSpec, StageResources
    from .pipeline.benchmarks import read_benchmark, read_text, run_benchmark, scored_lines

    if not args.file or not (args.answers or (args.model and args.image_root)):
        raise RlaifvError("eval --bench KIND needs --file, and --answers FILE or --model with --image-root")
    fields = dict(
        kind=args.bench,
        path=args.file,
        image_root=args.image_root or ".",
        annotations=args.annotations,
        captions=args.captions,
        association=args.association,
        safe_words=args.safe_words,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
    )
    try:
        bench = BenchmarkConfig.model_validate(
            {k: v for k, v in fields.items() if v is not None}, context={"base": str(Path.cwd())}
        )
    except ValidationError as exc:
        raise RlaifvError(
            "eval --bench: " + "; ".join(f"{'.'.join(map(str, e['loc'])) or 'files'}: {e['msg']}" for e in exc.errors())
        ) from None
    benchmark = read_benchmark(bench)  # a malformed file fails here, naming its lines, before Ray starts
    head = {"benchmark": bench.label, "kind": bench.kind}
    if args.answers:
        from .benchmarks import parse_answers, score_answers

        answers = parse_answers(read_text(args.answers, "--answers"), args.answers)
        metrics, details = score_answers(benchmark, answers, args.answers)
        if args.out:
            Path(args.out).write_bytes(scored_lines(benchmark.questions, answers, details))
        log(f"scored {len(answers)} answers from {args.answers}")
        return {**head, "answers": args.answers, **metrics}
    model = ModelSpec(path=_model_arg("--model", args.model), engine=args.engine)
    out = args.out or tempfile.mkdtemp(prefix="rlaifv-eval-")
    _init_ray()
    metrics = run_benchmark(out, bench, model, StageResources(), 1024 * 1024, "policy", log)
    return {**head, "model": model.path, "answers": out, **metrics}


def _cmd_plan(args) -> int:
    from .config import load_config
    from .plan import as_json, plan, table

    config = load_config(args.config, args.set)
    rows = plan(config, args.gpu_memory, args.train_gpu_memory)
    print(json.dumps(as_json(rows), indent=2) if args.json else table(rows))
    return 1 if any(row.fits is False for row in rows) else 0


def _cmd_run(args) -> int:
    from .config import load_config

    overrides = list(args.set) + ([f"data.input={args.input}"] if args.input else [])
    config = load_config(args.config, overrides)  # every config problem, before any work
    summary = _run_loop(config)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_train(args) -> int:
    from .config import load_config
    from .driver import preflight, train_on_pairs
    from .pipeline.import_pairs import dataset_files
    from .pipeline.store import RunStore

    config = load_config(args.config, args.set)
    preflight(config, needs_input=False)
    fmt, shards = dataset_files(args.pairs)  # formats and columns checked before Ray starts
    print(f"train: {len(shards)} {fmt} shard(s) from {args.pairs}", file=sys.stderr)
    _init_ray()
    RunStore(config.run_dir).write_bytes("config.yaml", _config_yaml(config))
    summary = train_on_pairs(config, args.pairs, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(_table(summary), file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def _iteration(value: str) -> int | str:
    if value == "best":
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a number or `best`, got {value!r}")


def _cmd_export(args) -> int:
    from .pipeline.export import export_pairs

    if args.rows_per_shard < 1:
        raise RlaifvError("export: --rows-per-shard must be at least 1")
    result = export_pairs(
        args.run,
        args.out,
        args.format,
        args.iteration,
        args.rows_per_shard,
        args.overwrite,
        log=lambda m: print(m, file=sys.stderr),
    )
    print(json.dumps(result, indent=2))
    return 0


def _run_loop(config) -> list[dict]:
    from .driver import preflight, run
    from .pipeline.store import RunStore

    preflight(config)
    _init_ray()
    RunStore(config.run_dir).write_bytes("config.yaml", _config_yaml(config))
    summary = run(config, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(_table(summary), file=sys.stderr)
    best = RunStore(config.run_dir).read_json("best.json") if config.eval.select else None
    if best:
        print(
            f"best by {best['metric']} ({best['mode']}): the policy after iteration {best['iteration']}, "
            f"{best['value']:.3f} ({best['checkpoint']})",
            file=sys.stderr,
        )
    print(f"report: {RunStore(config.run_dir).uri_of('report.html')}", file=sys.stderr)
    return summary


def _table(summary: list[dict]) -> str:
    cols = ("iteration", "chair_s", "chair_i", "recall", "mean_words", "pairs", "pair_accuracy")
    cols += tuple(sorted({k for r in summary for k in r if k.endswith(("_f1", "_chair_s", "_chair"))}))  # benchmarks
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["  ".join(f"{c:>13}" for c in cols)]
    lines += ["  ".join(f"{fmt(r.get(c)):>13}" for c in cols) for r in summary]
    return "\n".join(lines)


def _cmd_serve(args) -> int:
    from .serve.run import serve_until_stopped

    overrides = list(args.set) + [
        f"serve.{k}={v}" for k, v in (("policy", args.policy), ("reference", args.reference), ("port", args.port)) if v
    ]
    return serve_until_stopped(args.config, overrides, _init_ray)


def _cmd_demo(args) -> int:
    from pathlib import Path

    from .config import load_config
    from .toyworld.build import PRETRAINED, ROLES, build

    models = Path(args.models) if args.models else PRETRAINED
    if not all((models / r / "config.json").exists() for r in ROLES):
        print(f"demo: building ShapesWorld models in {models} (about 15 minutes on 2 cores)", file=sys.stderr)
        build(models, log=lambda m: print(m, file=sys.stderr))
    from .toyworld.datasets import write_benchmark

    # POPE-, AMBER- and Object-HalBench-format benchmarks from ShapesWorld truth, answered by every
    # policy beside the held-out CHAIR; the best policy is picked by the caption benchmark's CHAIRs
    bench = Path(args.workdir).resolve() / "benchmark_data"
    benchmarks = [
        write_benchmark(str(bench / "pope"), "pope", 100, split="adversarial"),
        write_benchmark(str(bench / "amber"), "amber_disc", 100),
        write_benchmark(str(bench / "objhal"), "chair", 100),
    ]
    overrides = (
        [
            f"run_dir={args.workdir}",
            f"eval.benchmarks={json.dumps(benchmarks)}",
            'eval.select={"metric": "objhal_chair_s"}',
        ]
        + [f"models.{r}.path={models / r}" for r in ROLES]
        + list(args.set)
    )
    config = load_config("toy", overrides)  # the shipped config: package data, so a wheel install has it
    print(f"demo: {config.iterations} iterations of RLAIF-V on ShapesWorld in {config.run_dir}", file=sys.stderr)
    summary = _run_loop(config)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
