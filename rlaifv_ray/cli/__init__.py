"""The `rlaifv-ray` command: one module per command group, each adding its subcommands to the
parser. Heavy imports happen inside each command, so `--help` and a config error are instant."""

from __future__ import annotations

import argparse
import sys

from ..errors import RlaifvError, user_error_in
from . import data, evaluate, runs, serve, toy


def main(argv: list[str] | None = None) -> int:
    from .. import logs

    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logs.configure(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))
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
    finally:
        logs.close_run_logs()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlaifv-ray",
        description="RLAIF-V on Ray: align multimodal LLMs for trustworthiness with open-source AI feedback.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    for group in (data, runs, toy, evaluate, serve):
        group.add_commands(sub)
    return p


if __name__ == "__main__":
    sys.exit(main())
