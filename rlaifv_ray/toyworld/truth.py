"""What ShapesWorld's ground truth adds to a run, behind one interface (inputs.PromptSource.truth):
the audit of each iteration's feedback and the held-out evaluation of each policy. The generic
layers ask the input for its truth and never look at what kind of input it is.
"""

from __future__ import annotations

from .. import schema as S


class ShapesWorldTruth:
    def mentions(self, text: str) -> list[str]:
        """The ShapesWorld objects TEXT names, in order ("red circle"): the rules claim extractor's."""
        from .hallucination import mentions

        return mentions(text)

    def claim_truth(self, claim: str, objects: list[str]) -> bool | None:
        """Whether CLAIM holds of an image with OBJECTS (None: it names no object)."""
        from .hallucination import claim_truth

        return claim_truth(claim, objects)

    def audit(self, fold, rows: dict) -> dict:
        """Labeler accuracy on true and on false claims; pair accuracy and ties in truth.
        FOLD(stage, columns, fn): fn(table) of each of the stage's parts (pipeline/metrics.py), so the
        audit adds up counts and never holds the rows."""
        out: dict = {}
        if rows["labels"]:
            c = _total(fold("labels", [S.TRUTH, S.CLAIMS, S.ACCEPTED], label_counts))
            out.update(
                {
                    "true_claims": c["true_n"],
                    "false_claims": c["false_n"],
                    "true_claim_acceptance": c["true_ok"] / c["true_n"] if c["true_n"] else None,
                    "false_claim_rejection": c["false_ok"] / c["false_n"] if c["false_n"] else None,
                }
            )
        if rows["pairs"]:
            c = _total(fold("pairs", [S.TRUTH, S.CHOSEN, S.REJECTED], pair_counts))
            n = c["n"]
            out.update(
                {
                    "pair_accuracy": c["better"] / n,
                    "pair_ties_in_truth": c["ties"] / n,
                    "pair_inverted_in_truth": c["worse"] / n,
                    "mean_words_chosen": c["words_chosen"] / n,
                    "mean_words_rejected": c["words_rejected"] / n,
                }
            )
        return out

    def evaluate(self, engine, num: int, seed: int, temperature: float) -> dict:
        """CHAIRs, CHAIRi, recall and length of the policy behind ENGINE on NUM held-out scenes."""
        from .heldout import eval_policy

        return eval_policy(engine, num, seed, temperature)


def label_counts(table) -> dict:
    """Of a labels part: true and false claims (in truth), and how many the labeler got right."""
    from .hallucination import claim_truth

    c = dict.fromkeys(("true_n", "true_ok", "false_n", "false_ok"), 0)
    for r in table.to_pylist():
        for claim, accepted in zip(r[S.CLAIMS], r[S.ACCEPTED]):
            truth = claim_truth(claim, r[S.TRUTH] or [])
            if truth is True:
                c["true_n"] += 1
                c["true_ok"] += accepted
            elif truth is False:
                c["false_n"] += 1
                c["false_ok"] += not accepted
    return c


def pair_counts(table) -> dict:
    """Of a pairs part: pairs whose chosen side names fewer absent objects than the rejected (better),
    as many (ties), more (worse); and the words of each side."""
    from .hallucination import mentions

    c = dict.fromkeys(("n", "better", "ties", "worse", "words_chosen", "words_rejected"), 0)
    for p in table.to_pylist():
        truth = set(p[S.TRUTH] or [])
        h_c = sum(1 for k in mentions(p[S.CHOSEN]) if k not in truth)
        h_r = sum(1 for k in mentions(p[S.REJECTED]) if k not in truth)
        c["n"] += 1
        c["better"] += h_c < h_r
        c["ties"] += h_c == h_r
        c["worse"] += h_c > h_r
        c["words_chosen"] += len(p[S.CHOSEN].split())
        c["words_rejected"] += len(p[S.REJECTED].split())
    return c


def _total(parts: list[dict]) -> dict:
    return {k: sum(p[k] for p in parts) for k in parts[0]} if parts else {}
