"""Pairs from an existing preference dataset, with reference log-probs computed on Ray Data.

parquet shards (a file, a folder, s3://...) -> row batches read per row group -> ImportPairs
(format to our pairs; images stored once, like the prompts stage's) -> ReferenceLogps actors ->
RUN/iter_000/pairs. One stream: no table and no image set is ever whole in one process. Each
stage's output has its _SUCCESS manifest, so the same command resumes; rows without a usable
image or answer go to RUN/iter_000/quarantine/imported/ with their reason.
"""

from __future__ import annotations

import logging
import time

from ..config import RunConfig
from ..errors import ConfigError
from ..preference_data import SOURCE, detect_format
from ..storage.store import RunStore, resume_key
from .feedback import FeedbackRun
from .stage import StageSpec, drain, io_task, returning_freed_memory

log = logging.getLogger(__name__)

IMPORTED = "imported"
READ_ROWS = 256  # rows per batch read from a shard: a few MB of images, whatever the row-group size


def dataset_files(path: str) -> tuple[str, list[tuple[str, int]]]:
    """The parquet files of PATH (a file, a folder of shards or an s3:// prefix) with their sizes,
    and the format they share; one error naming every file that is not usable."""
    import pyarrow.parquet as pq
    from pyarrow.fs import FileSelector, FileType

    store = RunStore(path)
    info = store.fs.get_file_info(store.root)
    if info.type == FileType.NotFound:
        raise ConfigError(f"--pairs {path}: no such file or folder")
    if info.type == FileType.File:
        found = [info]
    else:
        found = sorted(
            (
                i
                for i in store.fs.get_file_info(FileSelector(store.root, recursive=True))
                if i.type == FileType.File and i.path.endswith(".parquet")
            ),
            key=lambda i: i.path,
        )
    if not found:
        raise ConfigError(f"--pairs {path}: no .parquet files in it")
    formats, problems = {}, []
    for i in found:
        try:
            columns = pq.read_schema(store.fs.open_input_file(i.path)).names
            formats[i.path] = detect_format(columns, i.path)
        except ConfigError as exc:
            problems.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - not parquet at all
            problems.append(f"{i.path}: not a readable parquet file ({type(exc).__name__}: {exc})")
    if len(set(formats.values())) > 1:
        problems.append("files mix formats: " + ", ".join(f"{p} is {f}" for p, f in formats.items()))
    if problems:
        raise ConfigError(f"--pairs {path}:\n" + "\n".join(f"  - {p}" for p in problems))
    return next(iter(formats.values())), [(i.path, i.size) for i in found]


class ImportRun(FeedbackRun):
    """One "iteration" whose pairs come from a dataset instead of the policy's own feedback; it
    reuses the feedback run's stage adapter, storage and resume manifests."""

    def __post_init__(self):
        self.store = self.store or RunStore(self.config.run_dir)
        self.dir = f"iter_{self.iteration:03d}"
        self.fmt, self.shards = dataset_files(self.input_spec)
        from ..stages.import_pairs import ImportPairs
        from .stage_specs import stage_specs

        reference = stage_specs(self.config, self.policy, self.policy)["reference"]
        data = self.config.data
        # the run's limits on images fetched by URL; at their defaults out of the key, as before them
        limits = {
            k: getattr(data, k)
            for k in ("max_image_bytes", "http_timeout_s")
            if getattr(data, k) != type(data).model_fields[k].default
        }
        # decoding checks are light: one small actor, whatever the stage resources say
        imports = StageSpec(
            ImportPairs,
            dict(fmt=self.fmt, max_pixels=data.max_image_pixels, **limits),
            reference.resources.model_copy(update=dict(num_gpus=0, num_cpus=0.25, concurrency=(1, 1), threads=1)),
            "pairs",
        )
        self.specs = {IMPORTED: imports, "reference": reference}
        imported = imports.resume_key(resume_key("import", self.input_spec, self.shards))
        self.keys = {IMPORTED: imported, "pairs": reference.resume_key(imported)}
        self.walls = {}

    def run(self) -> dict:
        t0 = time.time()
        if self.store.exists(f"{self.dir}/prompts"):
            raise ConfigError(
                f"{self.store.uri_of(self.dir)} holds a feedback run's pairs: give `train --pairs` "
                "its own run_dir (--set run_dir=...)"
            )
        todo = [s for s in (IMPORTED, "pairs") if not self.store.finished(f"{self.dir}/{s}", self.keys[s])]
        if todo:
            for stage in todo:
                self._fresh(stage)
            ds = self._shards() if todo[0] == IMPORTED else self._read(IMPORTED)
            if todo[0] == IMPORTED:
                ds = self._apply(ds, IMPORTED)
            ds = self._apply(ds, "reference", out_dir="pairs", sink=True)
            log.info(f"[{self.dir}] {len(self.shards)} {self.fmt} shard(s) -> {' -> '.join(todo)}")
            with returning_freed_memory():
                drain(ds)  # the stages persist their own output
            for stage in todo:
                self.store.mark_finished(f"{self.dir}/{stage}", self.keys[stage])
        self.walls["total"] = time.time() - t0
        return self._metrics()

    def _shards(self):
        import pyarrow.parquet as pq
        import ray

        parts = []
        for path, _ in self.shards:
            groups = pq.ParquetFile(self.store.fs.open_input_file(path)).metadata.num_row_groups
            parts += [{"path": path, "row_group": g} for g in range(groups)]
        return ray.data.from_items(parts, override_num_blocks=max(1, len(parts))).map_batches(
            _read_row_group, fn_args=(self.input_spec,), batch_size=1, batch_format="pyarrow", **io_task()
        )

    def _metrics(self) -> dict:
        rows = {s: (self.store.read_json(f"{self.dir}/{s}/_SUCCESS") or {}).get("rows", 0) for s in (IMPORTED, "pairs")}
        quarantined = {s: n for s in (IMPORTED, "pairs") if (n := self.store.count_rows(f"{self.dir}/quarantine/{s}"))}
        reasons: dict[str, int] = {}
        for reason in self.store.read_table(f"{self.dir}/quarantine/{IMPORTED}").to_pydict().get("reason", []):
            key = reason.split(":")[0].split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        metrics = {
            "iteration": self.iteration,
            "policy": self.policy,
            "input": self.input_spec,
            "format": self.fmt,
            "shards": len(self.shards),
            "rows": rows,
            "quarantined": quarantined,
            "quarantine_reasons": reasons,
            "pairs": rows["pairs"],
            "wall_seconds": {k: round(v, 2) for k, v in self.walls.items()},
        }
        self.store.write_json(
            f"{self.dir}/metrics.json", {**(self.store.read_json(f"{self.dir}/metrics.json") or {}), **metrics}
        )
        return metrics


def _read_row_group(batch, root: str):
    """One shard's row group, in batches of READ_ROWS rows, each row with its FILE#ROW id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = RunStore(root)
    for path, group in zip(batch.column("path").to_pylist(), batch.column("row_group").to_pylist()):
        f = pq.ParquetFile(store.fs.open_input_file(path))
        start = sum(f.metadata.row_group(g).num_rows for g in range(group))
        name = path.rsplit("/", 1)[-1]
        for part in f.iter_batches(batch_size=READ_ROWS, row_groups=[group]):
            ids = [f"{name}#{start + i}" for i in range(part.num_rows)]
            start += part.num_rows
            yield pa.Table.from_batches([part]).append_column(SOURCE, pa.array(ids, pa.string()))


def import_pairs(config: RunConfig, iteration: int, policy: str, path: str, store: RunStore | None = None) -> dict:
    """Import (or resume importing) the pairs at PATH as iteration K's pairs; returns its metrics.
    STORE: the run's, opened by the caller (the driver)."""
    if store is not None:
        return ImportRun(config, iteration, policy, path, store=store).run()
    with RunStore(config.run_dir).reachable() as store:
        return ImportRun(config, iteration, policy, path, store=store).run()
