"""Pairs built on Ray Data (pipeline/pairs.py) are the pairs the driver built from the whole labels
table, in the same blocks, so the reference stage writes the same parts; and the driver gives back
the heap it freed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.config import validate_config
from rlaifv_ray.pipeline.feedback import FeedbackRun
from rlaifv_ray.pipeline.pairs import BLOCK_ROWS, _from_items_blocks, build_args, build_pairs
from rlaifv_ray.stages.base import to_rows
from rlaifv_ray.stages.build_pairs import BuildPairs, length_balance

COLUMNS = [*BuildPairs.reads, S.TRUTH, S.CLAIMS, S.ACCEPTED]


def _blocks(ds) -> list[list[dict]]:
    import ray

    return [ray.get(ref).to_pylist() for bundle in ds.iter_internal_ref_bundles() for ref in bundle.block_refs]


def _in_the_driver(store, config):
    """The pairs as the driver built them before: the whole labels table read, grouped by prompt in
    sorted order, length balance over the list, then `ray.data.from_items`."""
    import ray

    labels = store.read_table("iter_000/labels", S.schema("labels"), columns=COLUMNS).to_pydict()
    build = BuildPairs(*build_args(config))
    groups: dict[str, list[dict]] = {}
    for row in to_rows(labels):
        groups.setdefault(row[S.PROMPT_ID], []).append(row)
    pairs = []
    for pid in sorted(groups):
        pairs += to_rows(build({k: [r[k] for r in groups[pid]] for k in groups[pid][0]}))
    keep, cut = length_balance([(p[S.CHOSEN], p[S.REJECTED]) for p in pairs])
    if not config.pairs.length_balance:
        keep, cut = [True] * len(pairs), None
    kept = [p for p, k in zip(pairs, keep) if k]
    ds = ray.data.from_items(kept, override_num_blocks=max(1, len(kept) // BLOCK_ROWS))
    return _blocks(ds), dict(build.counts), {"cut": cut, "before": len(pairs), "after": len(kept)}


@pytest.mark.parametrize(
    ("pairs", "max_blocks"),
    [
        ({"length_balance": True, "max_per_prompt": 4}, None),
        ({"builder": "mixed", "edit": "remove", "length_balance": False}, None),
        (
            {"length_balance": True, "max_per_prompt": 4},
            2,
        ),  # parts read together into fewer blocks, as the pair step does
    ],
    ids=["rlaif_v-balanced", "mixed", "parts-read-together"],
)
def test_pairs_on_ray_equal_the_driver_built_ones_block_for_block(clean_run, pairs, max_blocks):
    config, _ = clean_run
    raw = config.model_dump(mode="json")
    raw["pairs"] |= pairs
    config = validate_config(raw)
    run = FeedbackRun(config, 0, config.models.policy.path, "toy:16")
    labels = run._read("labels", COLUMNS, max_blocks=max_blocks)
    if max_blocks:
        assert labels.materialize().num_blocks() <= max_blocks < len(run.store.files("iter_000/labels"))
    ds, counts, balance = build_pairs(labels, config)
    want_blocks, want_counts, want_balance = _in_the_driver(run.store, config)
    assert sum(map(len, want_blocks)) > 10
    assert _blocks(ds) == want_blocks
    assert (counts, balance) == (want_counts, want_balance)
    if pairs.get("length_balance"):
        assert balance["cut"] is not None
    if pairs.get("builder") == "mixed":
        assert counts["answers_edited"] > 0


def test_re_cut_blocks_are_from_items_blocks(ray_local):
    """Rows spread over uneven blocks are re-cut exactly where from_items cuts N rows."""
    import ray

    for n in (1, 255, 256, 1000, 1283):
        rows = [{"i": i, "text": f"row {i}"} for i in range(n)]
        uneven = ray.data.from_items(rows, override_num_blocks=min(n, 7)).materialize()
        sources = [(ref, ray.get(ref).num_rows) for b in uneven.iter_internal_ref_bundles() for ref in b.block_refs]
        got = _blocks(_from_items_blocks(sources, n))
        want = _blocks(ray.data.from_items(rows, override_num_blocks=max(1, n // BLOCK_ROWS)))
        assert got == want, n


def test_metrics_fold_counts_per_part_on_the_workers(clean_run, monkeypatch):
    """feedback_metrics reads no table whole: the counts folded per part on Ray's workers equal what
    the whole labels and pairs tables give."""
    from rlaifv_ray.pipeline import metrics
    from rlaifv_ray.pipeline.metrics import _answer_counts, count_rows, fold_parts
    from rlaifv_ray.stability import add_up, answer_signals, signals_of
    from rlaifv_ray.storage.store import RunStore
    from rlaifv_ray.toyworld.truth import ShapesWorldTruth, label_counts, pair_counts

    config, _ = clean_run
    store = RunStore(config.run_dir)
    assert len(store.files("iter_000/labels")) > 3
    monkeypatch.setattr(metrics, "FILES_PER_TASK", 3)  # tasks of 3 parts and of the rest
    labels = store.read_table("iter_000/labels", S.schema("labels"))
    pairs = store.read_table("iter_000/pairs", S.schema("pairs"))
    # the manifests' row counts: folded too, and equal to the tables'
    manifest = store.read_json("iter_000/labels/_SUCCESS")
    assert count_rows(store, "iter_000/labels") == labels.num_rows == manifest["rows"]
    assert count_rows(store, "iter_000/pairs") == pairs.num_rows
    folded = add_up(fold_parts(store, "iter_000/labels", [S.ANSWER, S.SCORE], _answer_counts))
    assert signals_of(folded) == answer_signals(labels.column(S.ANSWER).to_pylist(), labels.column(S.SCORE).to_pylist())

    audit = ShapesWorldTruth().audit(
        lambda stage, columns, fn: fold_parts(store, f"iter_000/{stage}", columns, fn), {"labels": 1, "pairs": 1}
    )
    want_labels, want_pairs = label_counts(labels), pair_counts(pairs)
    assert want_labels["false_n"] > 0 and want_pairs["n"] == pairs.num_rows
    assert audit["false_claims"] == want_labels["false_n"] and audit["true_claims"] == want_labels["true_n"]
    assert audit["pair_accuracy"] == want_pairs["better"] / pairs.num_rows


def test_the_driver_hands_freed_heap_back_to_the_os():
    """returning_freed_memory's thread: 200 MB freed in 4 KB chunks, with every 64th still held (so
    the heap cannot just shrink from its top), leaves the process's RSS until the thread's first
    malloc_trim, not after, while the work inside goes on."""
    code = (
        "import time\n"
        "from rlaifv_ray.pipeline.stage import returning_freed_memory\n"
        "def rss():\n"
        "    return int([x for x in open('/proc/self/status') if x.startswith('VmRSS')][0].split()[1]) // 1024\n"
        "blocks = [bytearray(4096) for _ in range(50_000)]\n"
        "keep = blocks[::64]\n"
        "del blocks\n"
        "before = rss()\n"
        "with returning_freed_memory(every_s=0.1):\n"
        "    time.sleep(1.0)\n"
        "    print(before, rss())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    assert before - after > 100, (before, after)


def test_an_elastic_pool_grows_by_its_backlog_a_fixed_one_keeps_rays_rule(ray_local):
    """An elastic pool's dataset grows its pool once every actor is busy (behind a slower stage the
    backlog waits upstream, where Ray's default rule of 1.75 batches per actor never sees it); a
    fixed pool's dataset keeps Ray's default."""
    import ray

    from rlaifv_ray.config import StageResources
    from rlaifv_ray.pipeline.stage import GROW_AT_BATCHES_PER_ACTOR, StageSpec

    default = ray.data.DataContext.get_current().autoscaling_config.actor_pool_util_upscaling_threshold
    assert default != GROW_AT_BATCHES_PER_ACTOR
    for concurrency, want in (((1, 3), GROW_AT_BATCHES_PER_ACTOR), ((2, 2), default)):
        spec = StageSpec(BuildPairs, {}, StageResources(concurrency=concurrency), "pairs")
        ds = spec.apply(ray.data.range(4), "pairs", "/tmp/unused", "iter_000")
        assert ds.context.autoscaling_config.actor_pool_util_upscaling_threshold == want, concurrency
    assert ray.data.DataContext.get_current().autoscaling_config.actor_pool_util_upscaling_threshold == default
