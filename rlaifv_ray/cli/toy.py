"""`rlaifv-ray toy build`: the ShapesWorld models from scratch."""

from __future__ import annotations

import json

from ..errors import RlaifvError
from .common import add_parser


def add_commands(sub) -> None:
    toy = sub.add_parser("toy", help="ShapesWorld: the synthetic world and its tiny models")
    toy_sub = toy.add_subparsers(title="toy commands", metavar="TOYCOMMAND")
    b = add_parser(
        toy_sub,
        "build",
        help="build the ShapesWorld tokenizer and models (skips what exists)",
        description="Train the vision tower, labeler, policy and claim LLM on ShapesWorld (about 20 minutes on 2 "
        "CPU cores) and save them as HF model folders.",
    )
    b.add_argument("--out", required=True, help="output folder (models go to OUT/policy, OUT/labeler, OUT/claim_llm)")
    b.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    b.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="F",
        help="train every model for F times its steps (default 1; e.g. 0.05 is a two-minute smoke build of the same "
        "code, whose models learn but do not meet the quality bars)",
    )
    b.set_defaults(func=_build)


def _build(args) -> int:
    from ..toyworld.build import BuildPlan, build

    if not 0 < args.scale <= 1:
        raise RlaifvError(f"toy build: --scale must be in (0, 1], got {args.scale}")
    plan = BuildPlan(seed=args.seed)
    print(json.dumps(build(args.out, plan.scaled(args.scale) if args.scale < 1 else plan), indent=2))
    return 0
