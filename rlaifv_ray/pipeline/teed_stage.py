"""The Ray Data adapter around a stage: run it, persist its output, quarantine its bad rows.

Ray Data calls `TeedStage` on pyarrow batches inside actors. Good rows are written as a part file
of the stage's directory (so every stage's output is auditable and a crashed run resumes), rows
with an `error` go to `quarantine/<stage>/` with their reason, and the good rows flow on. A batch
that fails as a whole is retried row by row; that is never silent: the cause is logged once per
actor and cause, and each batch's timing record names it (metrics.json counts them per stage).
"""

from __future__ import annotations

import json
import logging
import os
import time

from .. import schema as S
from ..errors import RlaifvError
from ..storage.store import RunStore

log = logging.getLogger(__name__)


class TeedStage:
    def __init__(
        self,
        stage: str,
        stage_cls: type,
        kwargs: dict,
        run_uri: str,
        iter_dir: str,
        output: str,
        threads: int = 1,
        sink: bool = False,
    ):
        import sys

        try:
            self.stage_fn = stage_cls(**kwargs)
        except RlaifvError as exc:  # e.g. a model that cannot be loaded: say which stage needed it
            raise type(exc)(f"stage {stage}: {exc}") from None
        if "torch" in sys.modules:  # not for a stage without torch (engine sim, a pure-logic stage)
            # two torch actors on 2 cores must not fight (docs/shapesworld.md lesson 6)
            sys.modules["torch"].set_num_threads(threads)
        self.name, self.iter_dir, self.output = stage, iter_dir, output
        # the last stage passes on a row count, not its rows: nothing downstream reads them, and an
        # extra task per batch to count them doubled the blocks the driver keeps stats of
        self.sink = sink
        # rows carry image ids; a stage that reads pixels gets its batch's images here, late
        self.fetches_images = S.IMAGE in getattr(stage_cls, "reads", ())
        # ... and a stage that brings images (an import) has them stored once, by content id
        self.stores_images = S.IMAGE in getattr(stage_cls, "writes", ())
        self.schema = S.schema(output)
        self.store = RunStore(run_uri)
        import ray

        # which actor did the work, for the audit of elastic pools (timings show pool size over time)
        self.actor = f"{ray.get_runtime_context().get_node_id()[:12]}:{os.getpid()}"
        self._causes_logged: set[str] = set()

    def __call__(self, table):
        import pyarrow as pa

        if table.num_rows == 0:
            return pa.table({"rows": [0]}) if self.sink else self.schema.empty_table()
        t0, started = time.perf_counter(), time.time()
        batch = table.to_pydict()
        ids = self.stage_fn.row_ids(batch)
        if self.fetches_images:
            from ..storage.images import fetch_images

            batch[S.IMAGE] = fetch_images(self.store, self.iter_dir, batch[S.IMAGE_ID])
        t_stage = time.perf_counter()
        out, row_by_row = self._isolating_failures(batch)
        t_stage = time.perf_counter() - t_stage
        n = len(next(iter(out.values()))) if out else 0
        errors = out.get(S.ERROR) or [None] * n
        good = [i for i in range(n) if not errors[i]]
        bad = [i for i in range(n) if errors[i]]
        if self.stores_images:
            from ..storage.images import put_images

            out[S.IMAGE_ID] = [None] * n
            for i, image in zip(good, put_images(self.store, self.iter_dir, [out[S.IMAGE][i] for i in good])):
                out[S.IMAGE_ID][i] = image
        good_table = pa.Table.from_pydict(
            {f.name: [out[f.name][i] for i in good] for f in self.schema}, schema=self.schema
        )
        self.store.write_part(f"{self.iter_dir}/{self.name}", good_table, ids)
        if bad:
            q = pa.Table.from_pydict(
                {
                    S.STAGE: [self.name] * len(bad),
                    S.REASON: [errors[i] for i in bad],
                    S.ROW: [row_json(out, i) for i in bad],
                },
                schema=S.schema("quarantine"),
            )
            self.store.write_part(f"{self.iter_dir}/quarantine/{self.name}", q, ids)
        self.store.write_json(
            f"{self.iter_dir}/_timings/{self.name}/{_name(ids)}.json",
            {
                "seconds": time.perf_counter() - t0,
                # the stage's call (its model and its Python); the rest is this adapter's: image
                # fetches, tables, part writes (jobs/perf_scale.py reports the share)
                "stage_seconds": t_stage,
                "rows_in": table.num_rows,
                "rows_out": len(good),
                "actor": self.actor,
                "ids": ids,  # the batch's commit: what a resumed stream skips (pipeline/stream_resume.py)
                "start": started,
                "end": time.time(),
                **({"row_by_row": row_by_row} if row_by_row else {}),
            },
        )
        return pa.table({"rows": [len(good)]}) if self.sink else good_table

    def _isolating_failures(self, batch: dict) -> tuple[dict, str | None]:
        """The stage's output, and the cause when the batch failed and its rows were retried alone."""
        try:
            return self.stage_fn(batch), None
        except RlaifvError:
            raise  # a problem of the run (model, config, storage), not of a row
        except Exception as batch_exc:  # noqa: BLE001 - retried row by row below; what still fails is quarantined
            n = len(next(iter(batch.values())))
            cause = f"{type(batch_exc).__name__}: {batch_exc}"[:500]
            if cause not in self._causes_logged:
                self._causes_logged.add(cause)
                log.warning(f"stage {self.name}: a batch of {n} rows failed ({cause}); retrying its rows one at a time")
            outs = []
            for i in range(n):
                row = {k: v[i : i + 1] for k, v in batch.items()}
                try:
                    outs.append(self.stage_fn(row))
                except RlaifvError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the row is quarantined with it
                    outs.append({**row, S.ERROR: [f"{self.name} error: {type(exc).__name__}: {exc}"[:2000]]})
            keys = list(dict.fromkeys(k for o in outs for k in o))
            merged = {k: [] for k in keys}
            for o in outs:
                m = len(next(iter(o.values())))
                for k in keys:
                    merged[k] += list(o.get(k) or [None] * m)
            return merged, cause


def _name(ids: list[str]) -> str:
    import hashlib

    return hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:20]


def row_json(out: dict, i: int) -> str:
    row = {k: v[i] for k, v in out.items() if k != S.IMAGE}
    if S.IMAGE in out:
        row["image_bytes"] = len(out[S.IMAGE][i] or b"")
    return json.dumps(row, default=str)
