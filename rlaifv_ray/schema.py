"""Column names and Arrow schemas of every dataset the pipeline writes.

Stages name columns through these constants, never through scattered string literals.
"""

from __future__ import annotations

# prompts
PROMPT_ID = "prompt_id"
IMAGE = "image"  # encoded image bytes (PNG/JPEG)
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
# labels (one row per question)
CLAIM_INDEX = "claim_index"
CLAIM = "claim"
QUESTION = "question"
P_YES = "p_yes"
P_NO = "p_no"
ACCEPTED = "accepted"
# pairs
CHOSEN = "chosen"
REJECTED = "rejected"
CHOSEN_SCORE = "chosen_score"
REJECTED_SCORE = "rejected_score"
CHOSEN_ID = "chosen_id"
REJECTED_ID = "rejected_id"
REF_CHOSEN_LOGP = "ref_chosen_logp"
REF_REJECTED_LOGP = "ref_rejected_logp"
# quarantine
STAGE = "stage"
REASON = "reason"
ROW = "row"  # the offending row as JSON (image bytes elided)


def _schemas():
    import pyarrow as pa

    prompt = [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(IMAGE, pa.binary(), nullable=False),
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
    label = [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(ANSWER_ID, pa.string(), nullable=False),
        pa.field(CLAIM_INDEX, pa.int32(), nullable=False),
        pa.field(CLAIM, pa.string(), nullable=False),
        pa.field(QUESTION, pa.string(), nullable=False),
        pa.field(P_YES, pa.float64(), nullable=False),
        pa.field(P_NO, pa.float64(), nullable=False),
        pa.field(ACCEPTED, pa.bool_(), nullable=False),
    ]
    pair = [
        pa.field(PROMPT_ID, pa.string(), nullable=False),
        pa.field(IMAGE, pa.binary(), nullable=False),
        pa.field(INSTRUCTION, pa.string(), nullable=False),
        pa.field(CHOSEN, pa.string(), nullable=False),
        pa.field(REJECTED, pa.string(), nullable=False),
        pa.field(CHOSEN_ID, pa.string(), nullable=False),
        pa.field(REJECTED_ID, pa.string(), nullable=False),
        pa.field(CHOSEN_SCORE, pa.int32(), nullable=False),
        pa.field(REJECTED_SCORE, pa.int32(), nullable=False),
        pa.field(REF_CHOSEN_LOGP, pa.float64()),
        pa.field(REF_REJECTED_LOGP, pa.float64()),
    ]
    quarantine = [
        pa.field(STAGE, pa.string(), nullable=False),
        pa.field(REASON, pa.string(), nullable=False),
        pa.field(ROW, pa.string(), nullable=False),
    ]
    return {name: pa.schema(fields) for name, fields in
            dict(prompts=prompt, candidates=candidate, claims=claims, labels=label, pairs=pair,
                 quarantine=quarantine).items()}


def schema(name: str):
    """The Arrow schema of one dataset: prompts, candidates, claims, labels, pairs, quarantine."""
    schemas = _schemas()
    if name not in schemas:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(schemas)}")
    return schemas[name]


def missing_columns(batch_columns, required) -> list[str]:
    """Required columns absent from a batch, for stages that declare what they read."""
    have = set(batch_columns)
    return [c for c in required if c not in have]
