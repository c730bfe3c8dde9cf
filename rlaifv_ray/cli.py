"""The `rlaifv-ray` command. Heavy imports happen inside each subcommand."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import RlaifvError


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlaifv-ray",
        description="RLAIF-V on Ray: align multimodal LLMs for trustworthiness with open-source AI feedback.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    c = sub.add_parser("config", help="validate a run config and print it resolved",
                       description="Validate CONFIG (with overrides) and print the resolved YAML; "
                                   "lists every problem at once.")
    c.add_argument("config", nargs="?", help="run config YAML")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field, e.g. --set sampling.n=4 (repeatable)")
    c.add_argument("--fields", action="store_true", help="list every config field with its description")
    c.set_defaults(func=_cmd_config)

    f = sub.add_parser("feedback", help="collect one iteration's AI feedback (sample, claims, labels, pairs)",
                       description="Run one iteration of RLAIF-V feedback collection on Ray Data and write "
                                   "RUN/iter_NNN/{prompts,candidates,claims,labels,pairs,quarantine}/ and metrics.json. "
                                   "Rerunning the same command resumes at the first unfinished stage.")
    f.add_argument("config", help="run config YAML")
    f.add_argument("--policy", help="policy model for this iteration (default: models.policy.path)")
    f.add_argument("--iteration", type=int, default=0, help="iteration number K (default 0)")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="prompts: FILE.jsonl, FILE.parquet, a folder of images, or toy:N")
    src.add_argument("--toy", type=int, metavar="N", help="N ShapesWorld prompts (truth known: adds the audit)")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    f.set_defaults(func=_cmd_feedback)

    toy = sub.add_parser("toy", help="ShapesWorld: the synthetic world and its tiny models")
    toy_sub = toy.add_subparsers(title="toy commands", metavar="TOYCOMMAND")
    b = toy_sub.add_parser("build", help="build the ShapesWorld tokenizer and models (skips what exists)",
                           description="Train the vision tower, labeler, policy and claim LLM on ShapesWorld "
                                       "(about 20 minutes on 2 CPU cores) and save them as HF model folders.")
    b.add_argument("--out", required=True, help="output folder (models go to OUT/policy, OUT/labeler, OUT/claim_llm)")
    b.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    b.set_defaults(func=_cmd_toy_build)

    e = sub.add_parser("eval", help="evaluate a model on held-out ShapesWorld",
                       description="Evaluate one model on N held-out ShapesWorld images. --model: hallucination "
                                   "metrics of sampled answers; --labeler: yes/no accuracy; --claim-llm: claim "
                                   "extraction exact match.")
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="policy model folder or hub id")
    who.add_argument("--labeler", help="labeler model folder or hub id")
    who.add_argument("--claim-llm", help="claim LLM folder or hub id")
    e.add_argument("--policy", help="with --labeler: also measure rejection of this policy's false claims")
    e.add_argument("--num", type=int, default=200, help="held-out images (default 200)")
    e.add_argument("--seed", type=int, default=1, help="held-out image seed (default 1)")
    e.add_argument("--temperature", type=float, default=0.7, help="policy sampling temperature (default 0.7)")
    e.add_argument("--engine", default="hf", choices=["hf"], help="backend (default hf)")
    e.add_argument("--json", action="store_true", help="print one JSON object only")
    e.set_defaults(func=_cmd_eval)

    d = sub.add_parser("demo", help="build ShapesWorld models if missing and evaluate them",
                       description="Evaluate the ShapesWorld models (the committed ones, or those in --workdir, "
                                   "built there first when missing) and print their held-out metrics as JSON.")
    d.add_argument("--workdir", help="model folder (default: the committed models shipped with the package)")
    d.add_argument("--build", action="store_true", help="train the models into --workdir even if present")
    d.add_argument("--num", type=int, default=200, help="held-out images (default 200)")
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

    config = load_config(args.config, args.set)  # every config problem, before any work
    if args.iteration < 0:
        raise RlaifvError("feedback: --iteration must be >= 0")
    spec = f"toy:{args.toy}" if args.toy is not None else args.input
    _init_ray()
    RunStore(config.run_dir).write_bytes("config.yaml", _config_yaml(config))
    metrics = run_feedback(config, args.iteration, args.policy or config.models.policy.path, spec,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(metrics, indent=2))
    rows = metrics["rows"]
    print(" -> ".join(f"{k} {v}" for k, v in rows.items())
          + f" | quarantined {sum(metrics['quarantined'].values())} | yield {metrics['pair_yield']:.2f} pairs/prompt"
          + f" | {metrics['wall_seconds']['total']:.0f} s", file=sys.stderr)
    return 0


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

    manifest = build(args.out, BuildPlan(seed=args.seed), log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(manifest, indent=2))
    return 0


def _cmd_eval(args) -> int:
    from .engines import load_engine
    from .toyworld import evaluate

    if args.num < 1:
        raise RlaifvError("eval: --num must be at least 1")
    log = (lambda m: None) if args.json else (lambda m: print(m, file=sys.stderr))
    if args.model:
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


def _cmd_demo(args) -> int:
    from pathlib import Path

    from .engines import load_engine
    from .toyworld import evaluate
    from .toyworld.build import PRETRAINED, ROLES, build

    work = Path(args.workdir) if args.workdir else PRETRAINED
    if args.build or not all((work / r / "config.json").exists() for r in ROLES):
        print(f"demo: building ShapesWorld models in {work} (about 15 minutes on 2 cores)", file=sys.stderr)
        build(work, log=lambda m: print(m, file=sys.stderr))
    print(f"demo: evaluating the models in {work} on {args.num} held-out images", file=sys.stderr)
    policy = load_engine(str(work / "policy"))
    labeler = load_engine(str(work / "labeler"))
    report = {
        "models": str(work),
        "policy": evaluate.eval_policy(policy, args.num, seed=1),
        "labeler": evaluate.eval_labeler(labeler, args.num, seed=1, policy_engine=policy),
        "policy_as_self_labeler": evaluate.eval_labeler(policy, args.num, seed=1, policy_engine=policy),
        "claim_llm": evaluate.eval_claim_llm(load_engine(str(work / "claim_llm")), min(args.num, 100), seed=1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
