"""The `rlaifv-ray` command: one module per command group, each adding its subcommands to the
parser. Heavy imports happen inside each command, so `--help` and a config error are instant."""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import RlaifvError, user_error_in
from . import data, evaluate, runs, serve, sweep, toy


def main(argv: list[str] | None = None) -> int:
    from .. import logs

    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logs.configure(getattr(args, "verbose", 0) - getattr(args, "quiet", 0))
    code, last_word = _command(args)
    if last_word:  # in RUN/run.log as well, then the command's last line on stderr
        logs.to_run_logs_only(logging.ERROR, last_word)
    logs.close_run_logs()  # its own warning (a store gone) comes before that line
    if last_word:
        print(f"rlaifv-ray: {last_word}", file=sys.stderr)
    return code


def _command(args) -> tuple[int, str | None]:
    """(exit code, the line that explains a failure)."""
    try:
        return args.func(args) or 0, None
    except RlaifvError as exc:
        return 2, f"error: {exc}"
    except KeyboardInterrupt:
        return 130, "interrupted"
    except Exception as exc:  # a stage's own error, raised in a Ray worker, arrives wrapped by Ray
        cause = user_error_in(exc)
        if cause is None:  # a bug: its traceback, after the run log is closed
            from .. import logs

            logs.close_run_logs()
            raise
        return 2, f"error: {cause}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rlaifv-ray",
        description="RLAIF-V on Ray: align multimodal LLMs for trustworthiness with open-source AI feedback.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    for group in (data, runs, sweep, toy, evaluate, serve):
        group.add_commands(sub)
    return p


if __name__ == "__main__":
    sys.exit(main())
