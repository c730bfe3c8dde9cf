"""`rlaifv-ray eval`: a model on a benchmark file (or answers made elsewhere), or one model on
held-out ShapesWorld."""

from __future__ import annotations

import json
import logging

from ..errors import RlaifvError
from ..metric_names import BENCHMARK_KINDS
from .common import add_parser, init_ray, model_arg

log = logging.getLogger(__name__)


def add_commands(sub) -> None:
    e = add_parser(
        sub,
        "eval",
        help="evaluate a model on a benchmark file (POPE, AMBER, CHAIR, multiple choice) or held-out ShapesWorld",
        description="--bench KIND --file F --image-root DIR --model M: the model's greedy answers to a benchmark file "
        "on Ray Data, scored: accuracy, precision, recall, F1 and yes-ratio (pope, amber_disc); CHAIRs, CHAIRi, recall "
        "(chair); CHAIR, Cover, Hal, Cog (amber_gen); accuracy, per-category accuracy and the share of answers "
        "naming no option (mcq: MMStar / MMBench / SEED-Bench style, answers read without a judge). --answers "
        "A.jsonl instead of --model scores answers made "
        "elsewhere ({question_id, answer} per line) without loading a model or starting Ray. Without --bench, one "
        "model on N held-out ShapesWorld images: --model: hallucination metrics of sampled answers; --labeler: yes/no "
        "accuracy; --claim-llm: claim extraction exact match.",
    )
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="policy model folder or hub id")
    who.add_argument("--answers", help="with --bench: JSONL of {question_id, answer} to score (no model, no Ray)")
    who.add_argument("--labeler", help="labeler model folder or hub id")
    who.add_argument("--claim-llm", help="claim LLM folder or hub id")
    _bench_arguments(e)
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
    e.set_defaults(func=_eval)


def _bench_arguments(e) -> None:
    e.add_argument("--bench", choices=BENCHMARK_KINDS, help="benchmark kind of --file")
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
        help="with --bench and --model: answer length cap (default 8 for yes/no, 512 for captions, 64 for mcq)",
    )
    e.add_argument(
        "--out",
        help="with --bench: keep the answers in this run directory (default: a temp dir); with --answers: write each "
        "answer with what it was scored as (JSONL) to this file",
    )


def _eval(args) -> int:
    if args.num < 1:
        raise RlaifvError("eval: --num must be at least 1")
    if args.answers and not args.bench:
        raise RlaifvError("eval --answers needs --bench KIND and --file (the questions they answer)")
    if args.json:  # one JSON object on stdout, nothing else on stderr but problems
        from .. import logs

        logs.configure(-1)
    result = _bench(args) if args.bench else _heldout(args)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _heldout(args) -> dict:
    from ..engines import load_engine
    from ..toyworld import heldout

    if args.best_of is not None:
        if not (args.model and args.reference) or args.best_of < 2:
            raise RlaifvError("eval --best-of N needs N >= 2, --model POLICY and --reference REFERENCE")
        from ..reward import Ranker

        log.info(f"best-of-{args.best_of} with {args.model} against {args.reference} on {args.num} held-out images")
        ranker = Ranker(load_engine(args.model, args.engine), load_engine(args.reference, args.engine), args.beta)
        return heldout.eval_best_of_n(ranker, args.num, args.seed, args.best_of, args.temperature)
    if args.model:
        log.info(f"evaluating policy {args.model} on {args.num} held-out images")
        return heldout.eval_policy(load_engine(args.model, args.engine), args.num, args.seed, args.temperature)
    if args.labeler:
        policy = load_engine(args.policy, args.engine) if args.policy else None
        log.info(f"evaluating labeler {args.labeler} on {args.num} held-out images")
        return heldout.eval_labeler(load_engine(args.labeler, args.engine), args.num, args.seed, policy)
    log.info(f"evaluating claim LLM {args.claim_llm} on {args.num} held-out answers")
    return heldout.eval_claim_llm(load_engine(args.claim_llm, args.engine), args.num, args.seed)


def _bench(args) -> dict:
    import tempfile
    from pathlib import Path

    from ..config import BenchmarkConfig, ModelSpec, StageResources, validate_section
    from ..pipeline.benchmark_answers import read_benchmark, read_text, run_benchmarks, scored_lines

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
    bench = validate_section(BenchmarkConfig, {k: v for k, v in fields.items() if v is not None}, "eval --bench")
    benchmark = read_benchmark(bench)  # a malformed file fails here, naming its lines, before Ray starts
    head = {"benchmark": bench.label, "kind": bench.kind}
    if args.answers:
        from ..benchmarks import parse_answers, score_answers

        answers = parse_answers(read_text(args.answers, "--answers"), args.answers)
        metrics, details = score_answers(benchmark, answers, args.answers)
        if args.out:
            Path(args.out).write_bytes(scored_lines(benchmark.questions, answers, details))
        log.info(f"scored {len(answers)} answers from {args.answers}")
        return {**head, "answers": args.answers, **metrics}
    model = ModelSpec(path=model_arg("--model", args.model), engine=args.engine)
    out = args.out or tempfile.mkdtemp(prefix="rlaifv-eval-")
    init_ray()
    metrics = run_benchmarks(out, [bench], model, StageResources(), 1024 * 1024, "policy")[bench.label]
    return {**head, "model": model.path, "answers": out, **metrics}
