"""Commands about configs and data: `config`, `plan`, `export`."""

from __future__ import annotations

import argparse
import json

from ..errors import RlaifvError
from .common import add_config, add_parser, load


def add_commands(sub) -> None:
    c = add_parser(
        sub,
        "config",
        help="validate a run config and print it resolved",
        description="Validate CONFIG (with overrides) and print the resolved YAML; lists every problem at once.",
    )
    add_config(c, positional=False)
    c.add_argument("--fields", action="store_true", help="list every config field with its description")
    c.set_defaults(func=_config)

    pl = add_parser(
        sub,
        "plan",
        help="per-GPU memory of every stage and of DPO, from the models' config.json",
        description="Estimate per-GPU memory for each feedback stage (weights, KV cache, logits) and for DPO "
        "(weights, gradients, AdamW, activations) from each model's config.json (local, s3:// or the hub's; no "
        "weights). Exits 1 when something cannot fit, naming the fix. `run` checks the same plan before any work "
        "when GPU sizes are known (resources.gpu_memory_gb, train.gpu_memory_gb). Then the CPUs per GPU each "
        "GPU pool of the stream needs for the pipeline's own work, with a warning where resources gives fewer.",
    )
    add_config(pl)
    pl.add_argument("--gpu-memory", type=float, metavar="GB", help="one feedback GPU (default resources.gpu_memory_gb)")
    pl.add_argument(
        "--train-gpu-memory", type=float, metavar="GB", help="one training GPU (default train.gpu_memory_gb)"
    )
    pl.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pl.set_defaults(func=_plan)

    x = add_parser(
        sub,
        "export",
        help="write a run's pairs as a preference dataset (rlaifv or trl format)",
        description="Write iteration K's pairs of RUN (default: the last iteration with pairs) as parquet shards "
        "train-NNNNN-of-MMMMM.parquet in OUT (a folder or s3://...): the RLAIF-V-Dataset columns (--format rlaifv) "
        "or TRL's vision preference format (--format trl), with the images inline. datasets.load_dataset('parquet', "
        "data_files=...) loads them; `rlaifv-ray train --pairs` reads them back.",
    )
    x.add_argument("run", help="run directory (local or s3://)")
    x.add_argument(
        "--iteration",
        type=_iteration,
        metavar="K",
        help="iteration, or `best`: the pairs the best policy (RUN/best.json) was trained on (default: the last "
        "with finished pairs)",
    )
    x.add_argument("--format", required=True, choices=["trl", "rlaifv"], help="output format")
    x.add_argument("--out", required=True, help="output folder or s3://bucket/prefix")
    x.add_argument("--rows-per-shard", type=int, default=1000, metavar="N", help="pairs per shard (default 1000)")
    x.add_argument("--overwrite", action="store_true", help="replace parquet files already in OUT")
    x.set_defaults(func=_export)


def _config(args) -> int:
    from ..config import describe_fields

    if args.fields:
        print("\n".join(describe_fields()))
        return 0
    if not args.config:
        raise RlaifvError("config: give a CONFIG file (or --fields)")
    import yaml

    print(yaml.safe_dump(load(args).model_dump(mode="json"), sort_keys=False), end="")
    return 0


def _plan(args) -> int:
    from ..pipeline import cpu_plan
    from ..plan import as_json, plan, table

    config = load(args)
    rows, cpus = plan(config, args.gpu_memory, args.train_gpu_memory), cpu_plan.cpu_plan(config)
    if args.json:
        print(json.dumps({"memory": as_json(rows), "cpus": cpu_plan.cpu_json(cpus)}, indent=2))
    else:
        # simulated models (engine sim) hold no memory: their config has only the CPU part
        print("\n\n".join(t for t in (table(rows) if rows or not cpus else "", cpu_plan.cpu_table(cpus)) if t))
    return 1 if any(row.fits is False for row in rows) else 0


def _iteration(value: str) -> int | str:
    if value == "best":
        return value
    if value.isdigit():
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a number or `best`, got {value!r}")


def _export(args) -> int:
    from ..pipeline.export import export_pairs

    if args.rows_per_shard < 1:
        raise RlaifvError("export: --rows-per-shard must be at least 1")
    result = export_pairs(args.run, args.out, args.format, args.iteration, args.rows_per_shard, args.overwrite)
    print(json.dumps(result, indent=2))
    return 0
