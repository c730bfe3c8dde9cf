"""One iteration of feedback collection as a streaming Ray Data pipeline (docs/method.md s.1).

prompts -> SampleCandidates -> ExtractClaims -> LabelClaims   (one stream: a labeler starts on
the first claims while sampling still runs) -> group by prompt -> BuildPairs -> length balance
-> ReferenceLogps -> pairs. Every stage writes parquet under RUN/iter_NNN/<stage>/ with a
_SUCCESS manifest holding its resume key (pipeline/stage_specs.py); a rerun skips stages whose key
still matches. Images are stored once under RUN/iter_NNN/images/ and rows carry their id
(storage/images.py). This module alone sets actor pools, concurrency, batch sizes and CPU/GPU
resources, all from the config.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .. import schema as S
from ..config import RunConfig
from ..errors import ConfigError
from ..inputs import PromptSource
from ..storage.images import put_images
from ..storage.store import RunStore, resume_key
from .metrics import count_rows, feedback_metrics
from .stage import drain, io_task, returning_freed_memory
from .stage_specs import stage_specs

log = logging.getLogger(__name__)

STREAM = ("candidates", "claims", "labels")
# A block per stored part (a sampling batch) lets every stage pass each batch on as it is done, but
# the driver keeps tens of KB for each block a stream passes, until it exits: at 100k prompts a
# block per part took it from 263 to 691 MB (jobs/perf_long.py, docs/scale.md). The stream's blocks
# are capped by its actors instead, not by its prompts: 30 blocks per actor ran 32 simulated GPUs
# at 0.93 of the ideal, 6 per actor at 0.82.
STREAM_BLOCKS_PER_ACTOR = 32


@dataclass
class FeedbackRun:
    config: RunConfig
    iteration: int
    policy: str  # the reference (and a self-labeler): the policy this iteration trains
    input_spec: str
    sampler: str | None = None  # who samples the candidates, when not the policy (schedule one_shot)
    store: RunStore | None = None  # the run's, when its caller holds it open

    def __post_init__(self):
        self.store = self.store or RunStore(self.config.run_dir)
        self.dir = f"iter_{self.iteration:03d}"
        self.source = PromptSource(self.input_spec)
        self.sampler = self.sampler or self.policy
        self.specs = stage_specs(self.config, self.policy, self.sampler, self.source.truth)
        self.keys = self._resume_keys()
        self.walls: dict[str, float] = {}

    # -- stage wiring (pipeline/stage_specs.py) -------------------------------------------------------
    def _resume_keys(self) -> dict[str, str]:
        """Each stage's resume key: its own settings and its upstream's key (pipeline/stage_specs.py)."""
        c, spec = self.config, self.specs
        prompts = resume_key(
            "prompts", self.input_spec, self.iteration, c.seed, c.data.model_dump(mode="json", exclude={"input"})
        )
        candidates = spec["candidates"].resume_key(prompts)
        claims = spec["claims"].resume_key(candidates)
        labels = spec["labels"].resume_key(claims)
        # a setting the run ignores is not in its key
        unused = ({"min_p_gap"} if c.scoring == "claims" else {"min_gap"}) | c.pairs.unused()
        pairs = spec["reference"].resume_key(labels, pairs=c.pairs.model_dump(mode="json", exclude=unused))
        return {"prompts": prompts, "candidates": candidates, "claims": claims, "labels": labels, "pairs": pairs}

    def _apply(self, ds, name: str, out_dir: str | None = None, sink: bool = False):
        return self.specs[name].apply(ds, out_dir or name, self.store.uri, self.dir, sink)

    def _read(self, stage: str, columns: list[str] | None = None, max_blocks: int | None = None):
        """STAGE's parts as a dataset (COLUMNS only, when given): a block per part, or parts read
        together into at most MAX_BLOCKS blocks."""
        import ray

        # Not ray.data.read_parquet: its file-listing task always asks for a whole CPU and
        # deadlocks behind model actors on a 2-core machine.
        files = [{"path": f} for f in self.store.files(f"{self.dir}/{stage}")]
        per_block = -(-len(files) // max_blocks) if max_blocks else 1
        # from_items' own cut is at most 200 blocks: past 3,200 prompts a stream block held several
        # sampling batches, and each stage passed nothing on until all were done (docs/scale.md)
        blocks = max(1, -(-len(files) // per_block))
        return ray.data.from_items(files, override_num_blocks=blocks).map_batches(
            _read_parts,
            fn_args=(self.store.uri, columns),
            batch_size=per_block,
            batch_format="pyarrow",
            **io_task(),
        )

    def stream_blocks(self) -> int:
        """The most blocks the stream's stored inputs are read into: STREAM_BLOCKS_PER_ACTOR per
        actor of its pools at their largest."""
        r = self.config.resources
        return STREAM_BLOCKS_PER_ACTOR * sum(pool.concurrency[1] for pool in (r.sample, r.claims, r.label))

    def _fresh(self, stage: str) -> None:
        for rel in (stage, f"quarantine/{stage}", f"_timings/{stage}"):
            self.store.clear(f"{self.dir}/{rel}")

    # -- the iteration -----------------------------------------------------------------------
    def run(self) -> dict:
        info = {"iteration": self.iteration, "policy": self.policy, "sampler": self.sampler, "input": self.input_spec}
        with returning_freed_memory():
            t0 = time.time()
            self._prompts()
            self._stream()
            self._pairs()
            self.walls["total"] = time.time() - t0
            metrics = feedback_metrics(self.store, self.dir, info, self.walls, self.source.truth)
        # merged: the driver adds its train/eval sections to the same file
        self.store.write_json(
            f"{self.dir}/metrics.json", {**(self.store.read_json(f"{self.dir}/metrics.json") or {}), **metrics}
        )
        return metrics

    def _prompts(self) -> None:
        rel = f"{self.dir}/prompts"
        if self.store.finished(rel, self.keys["prompts"], companions=(f"{self.dir}/images",)):
            log.info(f"[{self.dir}] prompts: finished earlier, skipped")
            return
        t0 = time.time()
        self._fresh("prompts")
        self.store.clear(f"{self.dir}/images")  # content-addressed: images of other inputs must not linger
        # A part per sampling batch: the stream reads a part as one block, and a stage's task passes
        # its output on when its block is done, so 256 prompts in one part were sampled to the end
        # on one actor before claims saw an answer (jobs/perf_scale.py found it, docs/scale.md).
        per_part = self.config.resources.sample.batch_size
        good, n_good, n_bad = [], 0, 0
        for chunk in self.source.chunks(self.iteration, self.config.seed, self.config.data, size=max(per_part, 256)):
            bad = [r for r in chunk if r[S.ERROR]]
            good += [r for r in chunk if not r[S.ERROR]]
            while len(good) >= per_part:
                self._write_prompts(good[:per_part])
                n_good, good = n_good + per_part, good[per_part:]
            if bad:
                self._quarantine_prompts(bad)
                n_bad += len(bad)
        if good or not n_good:  # the rest; an input without a good row still writes its (empty) part
            self._write_prompts(good)
            n_good += len(good)
        self.store.mark_finished(rel, self.keys["prompts"], rows=count_rows(self.store, rel), quarantined=n_bad)
        self.walls["prompts"] = time.time() - t0
        log.info(f"[{self.dir}] prompts: {n_good} read, {n_bad} quarantined")

    def _write_prompts(self, rows: list[dict]) -> None:
        import pyarrow as pa

        schema = S.schema("prompts")
        for r, image in zip(rows, put_images(self.store, self.dir, [r[S.IMAGE] for r in rows])):
            r[S.IMAGE_ID] = image
        table = pa.Table.from_pylist([{f.name: r[f.name] for f in schema} for r in rows], schema=schema)
        self.store.write_part(f"{self.dir}/prompts", table, [r[S.PROMPT_ID] for r in rows])

    def _quarantine_prompts(self, bad: list[dict]) -> None:
        import pyarrow as pa

        from .teed_stage import row_json

        q = {
            S.STAGE: ["prompts"] * len(bad),
            S.REASON: [r[S.ERROR] for r in bad],
            S.ROW: [row_json({k: [r[k]] for k in r}, 0) for r in bad],
        }
        table = pa.table(q, schema=S.schema("quarantine"))
        self.store.write_part(f"{self.dir}/quarantine/prompts", table, [r[S.PROMPT_ID] for r in bad])

    def _stream(self) -> None:
        todo = [s for s in STREAM if not self.store.finished(f"{self.dir}/{s}", self.keys[s])]
        for s in STREAM[: len(STREAM) - len(todo)]:
            log.info(f"[{self.dir}] {s}: finished earlier, skipped")
        if not todo:
            return
        from . import stream_resume

        first = STREAM.index(todo[0])
        t0 = time.time()
        resumed = {s: stream_resume.begin(self.store, self.dir, s, self.keys[s]) for s in STREAM[first:]}
        ds = None
        for i, stage in enumerate(STREAM[first:], start=first):
            # what the stage has not done of its upstream's stored rows (all of them on a fresh
            # start), then, past the first stage, what its upstream makes now
            left = self._left(stage, "prompts" if i == 0 else STREAM[i - 1], resumed[stage])
            ds = left if ds is None else ds if left is None else ds.union(left)
            if ds is not None:
                ds = self._apply(ds, stage, sink=stage == STREAM[-1])
        if ds is not None:
            done = [s for s in STREAM[first:] if resumed[s]]
            log.info(
                f"[{self.dir}] streaming {' -> '.join(STREAM[first:])}"
                + (f" (resuming {', '.join(done)})" if done else "")
            )
            drain(ds)
        for stage in STREAM[first:]:
            rel = f"{self.dir}/{stage}"
            manifest = self.store.mark_finished(rel, self.keys[stage], rows=count_rows(self.store, rel))
            log.info(f"[{self.dir}] {stage}: {manifest['rows']} rows")
        self.walls["stream"] = time.time() - t0

    def _left(self, stage: str, upstream: str, resumed: bool):
        """UPSTREAM's stored rows STAGE has still to do; None when UPSTREAM has stored none."""
        from .stream_resume import done_ids, not_done

        if not self.store.files(f"{self.dir}/{upstream}"):
            return None
        rows = self._read(upstream, max_blocks=self.stream_blocks())
        if not resumed:
            return rows
        done = done_ids(self.store, self.dir, stage)
        log.info(f"[{self.dir}] {stage}: {len(done)} input rows done before the stop, skipped")
        return rows.map_batches(not_done, fn_args=(done,), batch_size=None, batch_format="pyarrow", **io_task())

    def _pairs(self) -> None:
        rel = f"{self.dir}/pairs"
        if self.store.finished(rel, self.keys["pairs"]):
            log.info(f"[{self.dir}] pairs: finished earlier, skipped")
            return
        self._fresh("pairs")
        t0 = time.time()
        from ..stages.build_pairs import BuildPairs
        from .pairs import build_pairs, shuffle_blocks

        columns = [*BuildPairs.reads, S.TRUTH, S.CLAIMS, S.ACCEPTED]
        answers = (self.store.read_json(f"{self.dir}/labels/_SUCCESS") or {}).get("rows", 0)
        labels = self._read("labels", columns, max_blocks=shuffle_blocks(answers))
        pairs, built, balance = build_pairs(labels, self.config)
        self.walls["build_pairs"] = time.time() - t0
        t1 = time.time()
        if pairs is not None:
            drain(self._apply(pairs, "reference", out_dir="pairs", sink=True))
        self.walls["reference"] = time.time() - t1
        extra = (
            {"builder": {"name": self.config.pairs.builder, **built}} if self.config.pairs.builder != "rlaif_v" else {}
        )
        rows = count_rows(self.store, rel)
        manifest = self.store.mark_finished(rel, self.keys["pairs"], rows=rows, length_balance=balance, **extra)
        log.info(
            f"[{self.dir}] pairs: {manifest['rows']} (length balance cut {balance['cut']}, "
            f"{balance['before']} -> {balance['after']})"
        )


def _read_parts(batch, run_uri: str, columns: list[str] | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = RunStore(run_uri).fs
    paths = batch.column("path").to_pylist()
    return pa.concat_tables([pq.read_table(p, filesystem=fs, columns=columns) for p in paths])


def run_feedback(
    config: RunConfig,
    iteration: int,
    policy: str,
    input_spec: str,
    sampler: str | None = None,
    store: RunStore | None = None,
) -> dict:
    """Run (or resume) one iteration's feedback collection; returns its metrics. SAMPLER: the model
    that samples the candidates, when not POLICY; STORE: the run's, opened by the caller (the driver)."""
    if config.models.labeler_mode == "ground_truth" and PromptSource(input_spec).truth is None:
        raise ConfigError(f"models.labeler_mode ground_truth needs ShapesWorld input (toy:N), got {input_spec!r}")
    if store is not None:
        return FeedbackRun(config, iteration, policy, input_spec, sampler, store).run()
    with RunStore(config.run_dir).reachable() as store:
        return FeedbackRun(config, iteration, policy, input_spec, sampler, store).run()
