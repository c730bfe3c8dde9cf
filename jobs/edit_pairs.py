"""What claim-level edits make of a finished ShapesWorld iteration (docs/method.md s.6), as JSON.

    python jobs/edit_pairs.py RUN_DIR [--iteration K] [--examples 3]

From the iteration's labels (answers, their claims and the labeler's verdicts) and ShapesWorld's
truth, no model loaded:
- attribution: the share of answers whose claims cannot all be matched to a sentence, with the
  run's own claims (the toy claim LLM's "There is a red circle.") and with the same facts split the
  way a stock instruct LLM under the `instruct` prompt splits them ("There is a circle.", "The
  circle is red.": one object or one attribute per fact; a stand-in, no instruct LLM runs here);
- edits: answers with a rejected claim, edits made, and the share of edits whose every changed
  sentence named an object that is not in the image;
- examples: edit pairs printed whole (answer, rejected claims, chosen text, truth);
- builders: the pairs each pairs.builder makes from these labels (the run's min_gap and
  max_per_prompt), their pair accuracy against truth (fewer absent objects named by chosen than
  by rejected), ties and mean words.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlaifv_ray import schema as S
from rlaifv_ray.config import load_config
from rlaifv_ray.stages.build_pairs import BuildPairs
from rlaifv_ray.stages.claim_edit import Candidate, attribute, edit
from rlaifv_ray.storage.store import RunStore
from rlaifv_ray.toyworld.hallucination import mentions

_TOY_FACT = re.compile(r"^There (?:is|are) (?:a |an |\w+ )?(\w+) (\w+?)s?\.$")
BUILDERS = {
    "rlaif_v": ("rlaif_v", True),
    "claim_edit/remove": ("claim_edit", False),
    "claim_edit/replace": ("claim_edit", True),
    "mixed/replace": ("mixed", True),
}


def instruct_style(fact: str) -> list[str]:
    """A toy fact as atomic facts of one object or one attribute each (INSTRUCT's examples' style)."""
    m = _TOY_FACT.match(fact)
    return [f"There is a {m[2]}.", f"The {m[2]} is {m[1]}."] if m else [fact]


def absent(text: str, truth: set) -> int:
    return sum(1 for k in mentions(text) if k not in truth)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--iteration", type=int, default=0)
    ap.add_argument("--examples", type=int, default=3, help="edit pairs to print whole")
    a = ap.parse_args(argv)
    store = RunStore(a.run_dir)
    config = load_config(str(Path(a.run_dir) / "config.yaml"))
    d = f"iter_{a.iteration:03d}"
    if not store.exists(f"{d}/labels/_SUCCESS"):
        print(f"edit_pairs: {store.uri_of(d)} has no finished labels", file=sys.stderr)
        return 2
    cols = [*BuildPairs.reads, S.CLAIMS, S.ACCEPTED, S.TRUTH]
    rows = store.read_table(f"{d}/labels", S.schema("labels"), columns=cols).to_pylist()
    by_prompt = defaultdict(list)
    for r in rows:
        by_prompt[r[S.PROMPT_ID]].append(r)

    counts = defaultdict(int)
    examples = []
    for group in by_prompt.values():
        cands = [Candidate(r[S.ANSWER], list(r[S.CLAIMS] or []), list(r[S.ACCEPTED] or [])) for r in group]
        for r, c in zip(group, cands):
            if not c.claims:
                continue
            counts["answers_with_claims"] += 1
            counts["unattributed_toy"] += None in attribute(c.answer, c.claims)
            split = [f for claim in c.claims for f in instruct_style(claim)]
            counts["unattributed_instruct"] += None in attribute(c.answer, split)
            if all(c.accepted):
                continue
            counts["answers_with_a_rejected_claim"] += 1
            e = edit(c, [o for o in cands if o is not c])
            if e is None:
                continue
            truth = set(r[S.TRUTH] or [])
            counts["edits"] += 1
            counts["edits_of_false_sentences"] += all(absent(c.answer[s:t], truth) for s, t in e.edited)
            if len(examples) < a.examples and e.replaced:
                rejected = [claim for claim, ok in zip(c.claims, c.accepted) if not ok]
                examples.append(
                    {"answer": c.answer, "rejected_claims": rejected, "chosen": e.chosen, "truth": sorted(truth)}
                )
    n = counts["answers_with_claims"]
    out = {
        "run": store.uri,
        "iteration": a.iteration,
        "answers": len(rows),
        "attribution": {
            "answers_with_claims": n,
            "unattributed_share_toy_claims": round(counts["unattributed_toy"] / n, 4) if n else None,
            "unattributed_share_instruct_style": round(counts["unattributed_instruct"] / n, 4) if n else None,
        },
        "edits": {
            "answers_with_a_rejected_claim": counts["answers_with_a_rejected_claim"],
            "edits": counts["edits"],
            "share_removing_a_false_sentence": round(counts["edits_of_false_sentences"] / counts["edits"], 4)
            if counts["edits"]
            else None,
        },
        "examples": examples,
        "builders": {name: _builder(by_prompt, config, *spec) for name, spec in BUILDERS.items()},
    }
    print(json.dumps(out, indent=1))
    return 0


def _builder(by_prompt: dict, config, builder: str, replace: bool) -> dict:
    p = config.pairs
    build = BuildPairs(p.min_gap, p.max_per_prompt, config.seed, builder, replace, p.edit_share)
    better = ties = words_c = words_r = n = edits = 0
    for pid in sorted(by_prompt):
        group = by_prompt[pid]
        truth = set(group[0][S.TRUTH] or [])
        pairs = build({k: [r[k] for r in group] for k in group[0]})
        for chosen, rejected, cid in zip(pairs[S.CHOSEN], pairs[S.REJECTED], pairs[S.CHOSEN_ID]):
            h_c, h_r = absent(chosen, truth), absent(rejected, truth)
            better, ties, n = better + (h_c < h_r), ties + (h_c == h_r), n + 1
            words_c, words_r = words_c + len(chosen.split()), words_r + len(rejected.split())
            edits += cid.endswith(S.EDIT_SUFFIX)
    return {
        "pairs": n,
        "edit_pairs": edits,
        "pair_accuracy": round(better / n, 4) if n else None,
        "ties": round(ties / n, 4) if n else None,
        "mean_words_chosen_rejected": [round(words_c / n, 2), round(words_r / n, 2)] if n else None,
        "counts": dict(build.counts),
    }


if __name__ == "__main__":
    sys.exit(main())
