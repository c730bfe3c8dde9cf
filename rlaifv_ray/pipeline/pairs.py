"""An iteration's pairs built on Ray Data, nothing row-sized in the driver (docs/method.md s.1.5-1.7).

labels -> group by prompt on the workers (Ray Data; groups in prompt order) -> BuildPairs -> per
block, a task sums what the driver needs (builder counts, the length-balance sums of every cut) ->
the driver adds those up and picks the cut -> tasks keep the pairs that survive it and cut them
into the blocks `ray.data.from_items` made when the driver built the list itself, so the reference
stage batches, and names its parts, as before. The driver holds a few hundred bytes per block.
"""

from __future__ import annotations

import itertools

from .. import schema as S
from ..stages.build_pairs import CUTS, BuildPairs, balance_sums, kept, pick_cut, word_count

META = "_meta"  # the builder's counts of a prompt
COUNTS = ("answers_edited", "answers_unattributed", "prompts_whole_answer_fallback")
BLOCK_ROWS = 256  # pairs per block handed to the reference stage


def shuffle_blocks(rows: int) -> int:
    """The blocks the labels enter the group-by in: a sort shuffle makes a piece per input block per
    output block, so a block per labels part (one per sampling batch) would make 6,250^2 pieces at
    100k prompts (1,000 prompts took 34 s to group; jobs/perf_long.py, docs/scale.md). About 25,000
    labelled answers a block, at most 32."""
    return max(1, min(32, rows // 25_000))


def build_args(config) -> tuple:
    """BuildPairs' arguments from the run's config."""
    p = config.pairs
    holistic = config.scoring == "holistic"  # scores in thousandths of a probability
    min_gap = round(1000 * p.min_p_gap) if holistic else p.min_gap
    return (min_gap, p.max_per_prompt, config.seed, p.builder, p.edit == "replace", p.edit_share)


def _prompt_pairs(group, args: tuple):
    """One prompt's labelled answers -> its pairs, and one META row with the builder's
    counts (a prompt may count an unattributed answer and have no pairs)."""
    import pyarrow as pa

    from ..stages.base import to_rows

    build = BuildPairs(*args)
    cols = {k: group.column(k).to_pylist() for k in (*build.reads, S.TRUTH)}
    pairs = to_rows(build(cols))
    rows = [{**p, META: None} for p in pairs]
    rows.append({S.PROMPT_ID: cols[S.PROMPT_ID][0], META: [build.counts[k] for k in COUNTS]})
    return pa.Table.from_pylist(rows, schema=_built_schema())


def _built_schema():
    import pyarrow as pa

    fields = [S.schema("pairs").field(c) for c in BuildPairs.writes]
    return pa.schema([*fields, pa.field(META, pa.list_(pa.int64()))])


def _partials(block) -> dict:
    """A block's builder counts, its pairs, the length-balance sums of every cut and its first and
    last prompt, and whether its prompts are in order."""
    import pyarrow.compute as pc

    meta = block.filter(pc.is_valid(block.column(META))).column(META).to_pylist()
    lens = _lens(block.filter(pc.is_null(block.column(META))))
    ids = block.column(S.PROMPT_ID).to_pylist()
    return {
        "counts": [sum(m[i] for m in meta) for i in range(len(COUNTS))],
        "sums": balance_sums(lens),
        "pairs": len(lens),
        "ordered": all(a <= b for a, b in zip(ids, ids[1:])),
        "span": (ids[0], ids[-1]) if ids else None,
    }


def _lens(pairs) -> list[tuple[int, int]]:
    chosen, rejected = pairs.column(S.CHOSEN).to_pylist(), pairs.column(S.REJECTED).to_pylist()
    return [(word_count(c), word_count(r)) for c, r in zip(chosen, rejected)]


def _kept_pairs(block, cut: float | None):
    import pyarrow as pa
    import pyarrow.compute as pc

    pairs = block.filter(pc.is_null(block.column(META))).drop_columns([META])
    if cut is None:
        return pairs
    # typed: a block of only counts rows has no pairs, and an empty list would be a null-typed mask
    return pairs.filter(pa.array([kept(c, j, cut) for c, j in _lens(pairs)], pa.bool_()))


def build_pairs(labels, config) -> tuple[object | None, dict, dict]:
    """LABELS (a dataset of the label columns BuildPairs reads and TRUTH) -> (the pairs in
    from_items' blocks, None when there are none; the builder's counts; the length balance: cut,
    pairs before and after)."""
    import ray

    # A sort-based shuffle, order kept: its groups come out in prompt order (checked below), and on
    # a small machine it starts in seconds where the default hash shuffle's actors take tens. Set on
    # this dataset's own context: the run's other datasets keep theirs.
    labels.context.shuffle_strategy = "sort_shuffle_pull_based"
    labels.context.execution_options.preserve_order = True
    built = labels.groupby(S.PROMPT_ID).map_groups(_prompt_pairs, fn_args=(build_args(config),), batch_format="pyarrow")
    blocks = [ref for bundle in built.materialize().iter_internal_ref_bundles() for ref in bundle.block_refs]
    parts = ray.get([_remote(_partials).remote(b) for b in blocks])  # a few hundred bytes a block
    spans = [p["span"] for p in parts if p["span"]]
    if not all(p["ordered"] for p in parts) or any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
        raise RuntimeError("Ray Data's groupby returned prompts out of order: pairs would be ordered differently")
    sums = [[sum(p["sums"][i][k] for p in parts) for k in range(3)] for i in range(len(CUTS))]
    cut = pick_cut(sums) if config.pairs.length_balance else None
    kept_blocks = [_remote(_kept_pairs).remote(b, cut) for b in blocks]
    sizes = [p["pairs"] if cut is None else p["sums"][CUTS.index(cut)][2] for p in parts]
    before, after = sum(p["pairs"] for p in parts), sum(sizes)
    counts = {k: v for k, v in zip(COUNTS, (sum(p["counts"][i] for p in parts) for i in range(len(COUNTS)))) if v}
    pairs = _from_items_blocks(list(zip(kept_blocks, sizes)), after) if after else None
    return pairs, counts, {"cut": cut, "before": before, "after": after}


def _remote(fn):
    import ray

    return ray.remote(fn).options(num_cpus=0.1)  # a sliver: model actors may hold the cores


def _from_items_blocks(sources: list[tuple[object, int]], n: int):
    """SOURCES ((block ref, rows), in order; N rows in all) re-cut, lazily, into the blocks
    `ray.data.from_items` makes of N rows in max(1, N // BLOCK_ROWS) blocks: block i holds rows
    [i*size + min(i, rem), (i+1)*size + min(i+1, rem)). A task per block joins its slices as the
    reference stage asks for it. Not `from_arrow_refs` of eager tasks: that fetches every block's
    metadata and schema into the driver and keeps them with the dataset, 19 MB more at 1,500
    blocks than at 150 (docs/scale.md)."""
    import ray

    from .stage import io_task

    blocks = max(1, n // BLOCK_ROWS)
    size, rem = divmod(n, blocks)
    starts = [0, *itertools.accumulate(k for _, k in sources)]
    plan = []
    for i in range(blocks):
        lo, hi = i * size + min(i, rem), (i + 1) * size + min(i + 1, rem)
        plan.append(
            {
                "slices": [
                    [j, max(lo, s) - s, min(hi, s + k) - s]
                    for j, ((_, k), s) in enumerate(zip(sources, starts))
                    if s < hi and s + k > lo
                ]
            }
        )
    ds = ray.data.from_items(plan, override_num_blocks=blocks).map_batches(
        _concat_slices, fn_args=([ref for ref, _ in sources],), batch_size=1, batch_format="pyarrow", **io_task()
    )
    ds.context.execution_options.preserve_order = True  # the blocks in from_items' order, as before
    return ds


def _concat_slices(batch, refs: list):
    """One block of the re-cut: its slices [A, B) of the source blocks, joined."""
    import pyarrow as pa
    import ray

    slices = batch.column("slices")[0].as_py()
    tables = ray.get([refs[j] for j, _, _ in slices])
    return pa.concat_tables([t.slice(a, b - a) for t, (_, a, b) in zip(tables, slices)])
