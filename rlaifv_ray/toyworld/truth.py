"""What ShapesWorld's ground truth adds to a run, behind one interface (inputs.PromptSource.truth):
the audit of each iteration's feedback and the held-out evaluation of each policy. The generic
layers ask the input for its truth and never look at what kind of input it is.
"""

from __future__ import annotations

from .. import schema as S


class ShapesWorldTruth:
    def audit(self, store, d: str, rows: dict) -> dict:
        """Labeler accuracy on true and on false claims; pair accuracy and ties in truth."""
        from .metrics import claim_truth, mentions

        out: dict = {}
        if rows["labels"]:
            labels = store.read_table(
                f"{d}/labels", S.schema("labels"), columns=[S.TRUTH, S.CLAIMS, S.ACCEPTED]
            ).to_pylist()
            true_ok = true_n = false_ok = false_n = 0
            for r in labels:
                for claim, accepted in zip(r[S.CLAIMS], r[S.ACCEPTED]):
                    truth = claim_truth(claim, r[S.TRUTH] or [])
                    if truth is True:
                        true_n += 1
                        true_ok += accepted
                    elif truth is False:
                        false_n += 1
                        false_ok += not accepted
            out.update(
                {
                    "true_claims": true_n,
                    "false_claims": false_n,
                    "true_claim_acceptance": true_ok / true_n if true_n else None,
                    "false_claim_rejection": false_ok / false_n if false_n else None,
                }
            )
        if rows["pairs"]:
            pairs = store.read_table(
                f"{d}/pairs", S.schema("pairs"), columns=[S.TRUTH, S.CHOSEN, S.REJECTED]
            ).to_pylist()
            better = ties = worse = 0
            words_c = words_r = 0
            for p in pairs:
                truth = set(p[S.TRUTH] or [])
                h_c = sum(1 for k in mentions(p[S.CHOSEN]) if k not in truth)
                h_r = sum(1 for k in mentions(p[S.REJECTED]) if k not in truth)
                better += h_c < h_r
                ties += h_c == h_r
                worse += h_c > h_r
                words_c += len(p[S.CHOSEN].split())
                words_r += len(p[S.REJECTED].split())
            n = len(pairs)
            out.update(
                {
                    "pair_accuracy": better / n,
                    "pair_ties_in_truth": ties / n,
                    "pair_inverted_in_truth": worse / n,
                    "mean_words_chosen": words_c / n,
                    "mean_words_rejected": words_r / n,
                }
            )
        return out

    def evaluate(self, engine, num: int, seed: int, temperature: float) -> dict:
        """CHAIRs, CHAIRi, recall and length of the policy behind ENGINE on NUM held-out scenes."""
        from .evaluate import eval_policy

        return eval_policy(engine, num, seed, temperature)
