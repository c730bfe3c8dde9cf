"""Where log lines go. Every module logs to its `rlaifv_ray.*` logger; the command line decides:
stderr (INFO, DEBUG with --verbose, warnings only with --quiet) and RUN/run.log for a run's
commands, which keeps INFO and up with time, level and logger whatever stderr shows, so a cluster's
log collector can filter by level and module. Ray Data's progress bars are Ray's own and unchanged."""

from __future__ import annotations

import logging
import sys
import tempfile

ROOT = "rlaifv_ray"
RUN_LOG = "run.log"
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Console(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


_console: logging.Handler | None = None
_run_logs: list[tuple[logging.FileHandler, object, str | None]] = []  # handler, store, upload name


def configure(verbosity: int = 0) -> None:
    """verbosity: -1 quiet, 0 normal, 1 verbose. Calling it again replaces the console handler."""
    global _console
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
    if _console is not None:
        logger.removeHandler(_console)
    _console = logging.StreamHandler(sys.stderr)
    _console.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    _console.setFormatter(_Console())
    logger.addHandler(_console)


def to_run_dir(run_dir: str) -> None:
    """Append this command's log lines to RUN/run.log. An object-store run dir gets the lines when
    the command ends (close_run_logs): they are kept in a local file until then."""
    from .storage.store import RunStore

    store = RunStore(run_dir)
    if "://" in run_dir:
        path, name = tempfile.NamedTemporaryFile(prefix="rlaifv-run-", suffix=".log", delete=False).name, RUN_LOG
    else:
        store.fs.create_dir(store.root, recursive=True)
        path, name = store.path(RUN_LOG), None
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    logging.getLogger(ROOT).addHandler(handler)
    _run_logs.append((handler, store, name))


def to_run_logs_only(level: int, message: str) -> None:
    """MESSAGE into the run logs without the console: the CLI prints a failure's line itself, last."""
    record = logging.LogRecord(f"{ROOT}.cli", level, __file__, 0, message, None, None)
    for handler, _, _ in _run_logs:
        handler.handle(record)


def close_run_logs() -> None:
    """Detach the run logs; an object store's run.log gets this command's lines appended. A store
    that cannot be reached now (the command may be ending because of it) keeps the lines in the
    local file, which is named: closing never raises over the command's own outcome."""
    import os

    while _run_logs:
        handler, store, name = _run_logs.pop()
        logging.getLogger(ROOT).removeHandler(handler)
        handler.close()
        if name is None:
            continue
        try:
            with open(handler.baseFilename, "rb") as f:
                earlier = store.read_bytes(name) if store.exists(name) else b""
                store.write_bytes(name, earlier + f.read())
        except Exception as exc:  # noqa: BLE001 - any storage failure means the same here
            logging.getLogger(__name__).warning(
                f"{store.uri_of(name)} not updated ({type(exc).__name__}); this command's log lines are in "
                f"{handler.baseFilename}"
            )
        else:
            os.unlink(handler.baseFilename)
