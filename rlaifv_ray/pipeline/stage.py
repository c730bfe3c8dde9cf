"""A pipeline stage as one object: the stage class, its arguments, its pool (resources, batch
size, concurrency) and the resume key its output is kept under. Every pipeline (feedback,
benchmarks, imports) runs its stages through `StageSpec.apply` and `drain`, so they are placed,
persisted and quarantined the same way (pipeline/teed_stage.py)."""

from __future__ import annotations

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
        return ds.map_batches(
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


def drain(ds) -> None:
    """Run DS, whose last stage is a sink, to its end: its stages persist their own output, and
    only a row count per batch comes back to the driver."""
    for _ in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        pass


def io_task() -> dict:
    """I/O tasks: a sliver of a CPU each (at a whole CPU they wait forever behind model actors
    holding a small machine's cores) and at most two at once (or they crowd the actors out)."""
    import ray

    return {"num_cpus": 0.1, "compute": ray.data.TaskPoolStrategy(size=2)}
