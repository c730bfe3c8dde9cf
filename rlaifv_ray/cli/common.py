"""What several commands share: config arguments, model arguments, and starting a run."""

from __future__ import annotations

import argparse

from ..locations import SHIPPED_CONFIGS

CONFIG_HELP = f"run config YAML, or a shipped one by name: {', '.join(SHIPPED_CONFIGS)}"


def add_parser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand with the flags every command has: -v/--verbose and -q/--quiet."""
    parser = sub.add_parser(name, **kwargs)
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0, help="also print debug lines")
    loud.add_argument("-q", "--quiet", action="count", default=0, help="print warnings and errors only")
    return parser


def add_config(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    """CONFIG and --set KEY=VALUE, as every config-reading command takes them."""
    parser.add_argument("config", nargs=None if positional else "?", help=CONFIG_HELP)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set sampling.n=4 (repeatable)",
    )


def load(args, *extra: str):
    """The validated config of ARGS (CONFIG, --set, then EXTRA overrides): every problem at once,
    before any work."""
    from ..config import load_config

    return load_config(args.config, [*args.set, *extra])


def start_run(config) -> None:
    """Join (or start) Ray, record the resolved config as RUN/config.yaml and log to RUN/run.log."""
    from ..driver import record_run

    init_ray()
    record_run(config)


def init_ray() -> None:
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS (set by `ray job submit`) joins the cluster; otherwise a local Ray starts.
        ray.init(log_to_driver=False)


def model_arg(flag: str, value: str) -> str:
    """A model given on the command line, resolved like a config's model paths (before Ray starts)."""
    from pathlib import Path

    from ..config import resolve_model_path
    from ..errors import ConfigError

    try:
        return resolve_model_path(value, Path.cwd())
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
