"""A pipeline stage as one object: the stage class, its arguments, its pool (resources, batch
size, concurrency) and the resume key its output is kept under. Every pipeline (feedback,
benchmarks, imports) runs its stages through `StageSpec.apply` and `drain`, so they are placed,
persisted and quarantined the same way (pipeline/teed_stage.py)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..config import StageResources
from ..stages.base import Stage
from ..storage.store import resume_key
from .teed_stage import TeedStage


@dataclass(frozen=True)
class StageSpec:
    cls: type[Stage]  # callable on a dict of columns; knows nothing of Ray
    kwargs: dict  # its constructor's arguments: what its output depends on, with its upstream
    resources: StageResources  # its actor pool: CPUs, GPUs, batch size, concurrency
    output: str  # the schema of the rows it writes (schema.py)
    # what the stage gets from the run's input, not its settings: the input's truth (inputs.py), which
    # the input's spec in the upstream key already fixes, so it is not in this stage's key
    context: dict = field(default_factory=dict)

    def resume_key(self, upstream: str, **settings) -> str:
        """What this stage's output depends on; `settings`: what the driver adds around the stage."""
        return resume_key(upstream, f"{self.cls.__module__}.{self.cls.__qualname__}", self.kwargs, settings)

    def apply(self, ds, name: str, run_uri: str, iter_dir: str, sink: bool = False):
        """DS through this stage on an actor pool sized and placed by its resources; its rows
        persist in RUN/ITER_DIR/NAME. A SINK, the last stage of a pipeline, passes on its batches'
        row counts instead of its rows (drain)."""
        import ray

        r = self.resources
        lo, hi = r.concurrency
        out = ds.map_batches(
            TeedStage,
            fn_constructor_kwargs=dict(
                stage=name,
                stage_cls=self.cls,
                kwargs={**self.kwargs, **self.context},
                run_uri=run_uri,
                iter_dir=iter_dir,
                output=self.output,
                threads=r.threads or max(1, int(r.num_cpus)),
                sink=sink,
            ),
            compute=ray.data.ActorPoolStrategy(min_size=lo, max_size=hi),
            batch_size=r.batch_size,
            batch_format="pyarrow",
            num_cpus=r.num_cpus,
            num_gpus=r.num_gpus,
        )
        if lo < hi:
            grow_to_backlog(out)
        return out


# Ray Data grows an actor pool when its batches in flight per actor reach this (default 1.75 of the
# 2 it allows). Behind a slower stage, backpressure keeps the backlog upstream, so at 1.75 the pool
# only saw its own batches and grew by one actor per batch time: an elastic labeler took 2.5 min to
# go from 3 to 15 actors on a 15,360-prompt run with the CPUs mostly idle (docs/scale.md). At 1.0 it
# grows, by its queued batches, as soon as every actor is busy.
GROW_AT_BATCHES_PER_ACTOR = 1.0


def grow_to_backlog(ds) -> None:
    """DS's elastic actor pools grow as soon as all their actors are busy."""
    import dataclasses

    config = ds.context.autoscaling_config
    ds.context.autoscaling_config = dataclasses.replace(
        config, actor_pool_util_upscaling_threshold=GROW_AT_BATCHES_PER_ACTOR
    )


def drain(ds) -> None:
    """Run DS, whose last stage is a sink, to its end: its stages persist their own output, and
    only a row count per batch comes back to the driver."""
    for _ in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        pass


@contextmanager
def returning_freed_memory(every_s: float = 5.0):
    """While inside, a thread hands the driver's freed heap back to the OS every EVERY_S seconds
    and once at the end (release_freed_memory): through a stream, the pair step's shuffle and the
    metrics' folds, whose scheduling of every block and task the driver frees but would keep."""
    done = threading.Event()

    def trim() -> None:
        while not done.wait(every_s):
            release_freed_memory()

    thread = threading.Thread(target=trim, name="rlaifv-heap-trim", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        release_freed_memory()


def release_freed_memory() -> None:
    """glibc's malloc_trim: the heap the driver's threads freed (Ray's scheduling of every block,
    its RPC buffers) is returned to the OS instead of staying in the process's arenas, where it grew
    the driver's RSS with the number of blocks (docs/scale.md). A no-op off glibc."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim this way
        pass


def io_task() -> dict:
    """I/O tasks: a sliver of a CPU each (at a whole CPU they wait forever behind model actors
    holding a small machine's cores) and at most two at once (or they crowd the actors out)."""
    import ray

    return {"num_cpus": 0.1, "compute": ray.data.TaskPoolStrategy(size=2)}
