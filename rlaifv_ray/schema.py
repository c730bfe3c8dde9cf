"""Column names and Arrow schemas of every dataset the pipeline writes.

Stages name columns through these constants, never through scattered string literals.
"""

from __future__ import annotations

# prompts
PROMPT_ID = "prompt_id"
IMAGE_ID = "image_id"  # content id of the prompt's image, stored once in iter_NNN/images/ (storage/images.py)
IMAGE = "image"  # encoded image bytes (PNG/JPEG): inputs and stages only, never a stored dataset
INSTRUCTION = "instruction"
TRUTH = "truth"  # ground-truth object list (ShapesWorld only; empty elsewhere)
# candidates
SAMPLE_INDEX = "sample_index"
SEED = "seed"
ANSWER = "answer"
ANSWER_ID = "answer_id"
# claims
CLAIMS = "claims"
QUESTIONS = "questions"
CLAIM_ERROR = "claim_error"
# labels (one row per answer: lists aligned with claims/questions)
P_YES = "p_yes"
P_NO = "p_no"
ACCEPTED = "accepted"
SCORE = "score"  # S = -(rejected claims) (holistic: p(yes) x 1000); null when the answer has no usable claims
# pairs
CHOSEN = "chosen"
REJECTED = "rejected"
CHOSEN_SCORE = "chosen_score"
REJECTED_SCORE = "rejected_score"
CHOSEN_ID = "chosen_id"
REJECTED_ID = "rejected_id"
REF_CHOSEN_LOGP = "ref_chosen_logp"
REF_REJECTED_LOGP = "ref_rejected_logp"
# an edit pair (pairs.builder claim_edit / mixed): its chosen id is the answer's id + EDIT_SUFFIX, and
# the reference log-probs of the tokens chosen and rejected do not share (train.token_weight)
EDIT_SUFFIX = "+edit"
REF_CHOSEN_EDITED_LOGP = "ref_chosen_edited_logp"
REF_REJECTED_EDITED_LOGP = "ref_rejected_edited_logp"
# the chosen answer under a corrupted image (train.image_preference)
REF_CHOSEN_CORRUPT_LOGP = "ref_chosen_corrupt_logp"
# A pair's columns, once: what the builder writes, then the reference log-probs; the pairs schema
# below is in this order.
PAIR_BUILT = (
    PROMPT_ID,
    IMAGE_ID,
    INSTRUCTION,
    TRUTH,
    CHOSEN,
    REJECTED,
    CHOSEN_ID,
    REJECTED_ID,
    CHOSEN_SCORE,
    REJECTED_SCORE,
)
PAIR_LOGPS = (
    REF_CHOSEN_LOGP,
    REF_REJECTED_LOGP,
    REF_CHOSEN_EDITED_LOGP,
    REF_REJECTED_EDITED_LOGP,
    REF_CHOSEN_CORRUPT_LOGP,
)
PAIR_COLUMNS = PAIR_BUILT + PAIR_LOGPS
# what a pairs file in our own columns carries (`rlaifv-ray export`, ShapesWorld's held-out pairs):
# a pair, its scores and reference log-probs, without what only this run's audit reads
PAIR_FILE = (
    PROMPT_ID,
    IMAGE_ID,
    INSTRUCTION,
    CHOSEN,
    REJECTED,
    CHOSEN_ID,
    CHOSEN_SCORE,
    REJECTED_SCORE,
    REF_CHOSEN_LOGP,
    REF_REJECTED_LOGP,
)
# benchmark answers (prompt_id: the question's id)
LABEL = "label"  # the right answer, yes | no
KIND = "kind"  # the question's kind (AMBER: existence / attribute / relation)
MAX_NEW_TOKENS = "max_new_tokens"  # the answer's length cap (its benchmark's; not stored)
# any stage: a non-null reason sends the row to quarantine
ERROR = "error"
# quarantine
STAGE = "stage"
REASON = "reason"
ROW = "row"  # the offending row as JSON (image bytes elided)


def _schemas():
    import pyarrow as pa

    fields = {**_feedback_fields(pa), **_other_fields(pa)}
    assert tuple(f.name for f in fields["pairs"]) == PAIR_COLUMNS, "the pairs schema and PAIR_COLUMNS differ"
    return {name: pa.schema(columns) for name, columns in fields.items()}


def _feedback_fields(pa) -> dict[str, list]:
    """Each feedback stage's rows: the rows it read plus the columns it adds."""
    prompt = [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(IMAGE_ID, pa.string(), nullable=False),
        pa.field(INSTRUCTION, pa.string(), nullable=False),
        pa.field(TRUTH, pa.list_(pa.string())),
    ]
    candidate = prompt + [
        pa.field(ANSWER_ID, pa.string(), nullable=False),
        pa.field(SAMPLE_INDEX, pa.int32(), nullable=False),
        pa.field(SEED, pa.int64(), nullable=False),
        pa.field(ANSWER, pa.string(), nullable=False),
    ]
    claims = candidate + [
        pa.field(CLAIMS, pa.list_(pa.string())),
        pa.field(QUESTIONS, pa.list_(pa.string())),
        pa.field(CLAIM_ERROR, pa.string()),
    ]
    label = claims + [
        pa.field(P_YES, pa.list_(pa.float64())),
        pa.field(P_NO, pa.list_(pa.float64())),
        pa.field(ACCEPTED, pa.list_(pa.bool_())),
        pa.field(SCORE, pa.int32()),
    ]
    return dict(prompts=prompt, candidates=candidate, claims=claims, labels=label)


def _other_fields(pa) -> dict[str, list]:
    pair = [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(IMAGE_ID, pa.string(), nullable=False),
        pa.field(INSTRUCTION, pa.string(), nullable=False),
        pa.field(TRUTH, pa.list_(pa.string())),
        pa.field(CHOSEN, pa.string(), nullable=False),
        pa.field(REJECTED, pa.string(), nullable=False),
        pa.field(CHOSEN_ID, pa.string(), nullable=False),
        pa.field(REJECTED_ID, pa.string(), nullable=False),
        pa.field(CHOSEN_SCORE, pa.int32()),  # null: pairs imported from a dataset (no claims, no scores)
        pa.field(REJECTED_SCORE, pa.int32()),
        pa.field(REF_CHOSEN_LOGP, pa.float64()),
        pa.field(REF_REJECTED_LOGP, pa.float64()),
        pa.field(REF_CHOSEN_EDITED_LOGP, pa.float64()),  # null: not an edit pair
        pa.field(REF_REJECTED_EDITED_LOGP, pa.float64()),
        pa.field(REF_CHOSEN_CORRUPT_LOGP, pa.float64()),  # null: no train.image_preference
    ]
    answers = [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(IMAGE_ID, pa.string(), nullable=False),
        pa.field(INSTRUCTION, pa.string(), nullable=False),
        pa.field(LABEL, pa.string(), nullable=False),
        pa.field(KIND, pa.string(), nullable=False),
        pa.field(ANSWER, pa.string(), nullable=False),
    ]
    quarantine = [
        pa.field(STAGE, pa.string(), nullable=False),
        pa.field(REASON, pa.string(), nullable=False),
        pa.field(ROW, pa.string(), nullable=False),
    ]
    return dict(pairs=pair, answers=answers, quarantine=quarantine)


def schema(name: str):
    """The Arrow schema of one dataset: prompts, candidates, claims, labels, pairs, answers, quarantine."""
    schemas = _schemas()
    if name not in schemas:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(schemas)}")
    return schemas[name]


def require_columns(batch, required, stage: str) -> None:
    """Fail with the stage's name and every missing column (stages declare what they read)."""
    missing = [c for c in required if c not in batch]
    if missing:
        raise KeyError(f"{stage}: input lacks column(s) {', '.join(missing)}; has {', '.join(batch)}")
