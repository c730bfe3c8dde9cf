"""ShapesWorld: a synthetic world of coloured shapes whose truth is known.

Images with ground-truth object lists, biased SFT captions, yes/no questions, claim-extraction
examples, hallucination metrics, and the tiny real-architecture models trained on them. The rest of
the package meets ShapesWorld at three seams only: `toy:` locations (locations.py), prompts
with truth (inputs.py) and the held-out metrics below, which each summary row carries.
"""

from pathlib import Path as _Path

# held-out ShapesWorld metrics of each evaluated policy (pipeline/evaluate.py), in summary.json

# the committed ShapesWorld models (package data: a wheel has them), in the order toy build makes them
ROLES = ("labeler", "policy", "claim_llm")
PRETRAINED = _Path(__file__).resolve().parent / "pretrained"
