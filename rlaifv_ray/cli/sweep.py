"""`sweep`: variants of a config x seeds, as ordinary runs on Ray, their results side by side."""

from __future__ import annotations

import logging

from .common import add_parser

log = logging.getLogger(__name__)

EXAMPLE = """\
example SWEEP.yaml:
  base: toy                 # a shipped config name or a config file
  out: runs/sweep           # local or s3://
  seeds: [0, 1]             # each variant runs once per seed (the run's `seed`)
  set: {iterations: 3}      # dotted keys, as --set, applied to every run
  variants:                 # name -> dotted overrides
    rlaif-v: {}
    confounded: {sampling.deconfound: false}
    holistic: {scoring: holistic}
"""


def add_commands(sub) -> None:
    import argparse
    import textwrap

    s = add_parser(
        sub,
        "sweep",
        help="run variants of a config over seeds, side by side (ablations, recipe search)",
        description=textwrap.fill(
            "Run every variant x seed of SWEEP.yaml as an ordinary run in OUT/<variant>/seed_<s>/, "
            "several at once on a Ray cluster. A stage whose resume key matches one another run of the sweep finished "
            "is copied, not computed again (its _SUCCESS manifest names it: shared_from). Writes OUT/table.json, "
            "OUT/table.md, one PNG per metric and OUT/status.json; a failed run is named there and the others go on. "
            "Rerunning the same command resumes every run.",
            width=100,
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("sweep", help="the sweep file (YAML)")
    s.add_argument(
        "--max-concurrent",
        type=int,
        metavar="K",
        help="runs at once (default: as many as the cluster's CPUs and GPUs hold now, one on a small machine; "
        "set it to let an autoscaling cluster grow for the runs waiting)",
    )
    s.set_defaults(func=_sweep)


def _sweep(args) -> int:
    from pathlib import Path

    from .. import logs
    from ..driver import preflight, run_recorded
    from ..errors import ConfigError
    from ..pipeline.sweep_runs import run_sweep
    from ..storage.store import RunStore
    from ..sweep.spec import load_sweep
    from ..sweep.table import write_tables
    from .common import init_ray

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise ConfigError("sweep: --max-concurrent must be >= 1")
    sweep = load_sweep(args.sweep)  # every run's config validated before Ray starts
    for run in sweep.runs:  # ... and checked the way `run` checks one (driver.preflight)
        preflight(run.config)
    init_ray()
    store = RunStore(sweep.out)
    store.write_bytes("sweep.yaml", Path(args.sweep).read_bytes())
    logs.to_run_dir(sweep.out)
    status = run_sweep(sweep.runs, sweep.out, run_recorded, args.max_concurrent)
    failed = {name: s["error"] for name, s in status.items() if s["state"] == "failed"}
    write_tables(sweep, failed)
    print(store.read_bytes("table.md").decode(), end="")
    log.info(f"sweep: {store.uri_of('table.md')}, {store.uri_of('table.json')} and a PNG per metric")
    if failed:
        log.error(f"sweep: {len(failed)} of {len(status)} runs failed: {', '.join(failed)} (see OUT/status.json)")
        return 1
    return 0
