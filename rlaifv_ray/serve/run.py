"""`rlaifv-ray serve`: deploy the ranker and block until SIGTERM or SIGINT, at any moment of start-up
included. No heavy import at module level: the signal handlers go in before Ray is even imported."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def serve_until_stopped(config_path: str, overrides: list[str], init_ray) -> int:
    """INIT_RAY: starts (or joins) Ray as every command does. Returns the exit code (0 on a stop)."""
    import os
    import signal
    import threading

    stop, received = threading.Event(), []

    def _stop(signum, frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    def _listen():  # as Kubernetes, systemd and a terminal stop a service
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop)

    _listen()  # before anything slow: a stop during start-up (a rolling update's) is a stop too
    from ..config import load_config

    config = load_config(config_path, overrides)
    from ray import serve

    from .app import bind, resolve_models

    s = config.serve
    policy, reference = resolve_models(config)
    if stop.is_set():
        log.info(f"rlaifv-ray serve: {received[0]} before start-up, nothing started")
        return 0
    try:
        init_ray()
    except SystemExit:  # ray.init's own SIGTERM handler (sys.exit) fired while it started
        received.append("SIGTERM")
        stop.set()
    _listen()  # again: ray.init installs its own handlers over ours
    if not stop.is_set():
        serve.start(http_options={"host": s.host, "port": s.port})
        serve.run(bind(config), name="ranker", route_prefix="/")
    if not stop.is_set():
        auth = "bearer token required" if os.environ.get(s.token_env) else f"no token ({s.token_env} unset)"
        log.info(
            f"ranker ready at http://{s.host}:{s.port} (policy {policy}, reference {reference}; {auth}); "
            "Ctrl-C or SIGTERM stops"
        )
    while not stop.wait(1.0):  # a timed wait: the handlers run between waits
        pass
    _quiet_shutdown()
    log.info(f"rlaifv-ray serve: {received[0]}, deployment shut down")
    return 0


def _quiet_shutdown() -> None:
    """Serve's shutdown kills its controller while the controller's own graceful_shutdown task is in
    flight, and the raylet reports that failed task to this driver's stdout: expected here, not
    something an operator must read. Every other line it prints is kept."""
    import contextlib
    import io
    import logging

    import ray
    from ray import serve

    quiet = logging.getLogger("ray.serve")
    level, out = quiet.level, io.StringIO()
    quiet.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(out):  # the raylet's lines are printed by a driver thread
            if ray.is_initialized():
                serve.shutdown()
                ray.shutdown()
    finally:
        quiet.setLevel(level)
        kept = [line for line in out.getvalue().splitlines() if "graceful_shutdown" not in line]
        if kept:
            print("\n".join(kept), flush=True)
