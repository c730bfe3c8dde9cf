"""ShapesWorld: a synthetic world of coloured shapes whose truth is known.

Images with ground-truth object lists, biased SFT captions, yes/no questions, claim-extraction
examples, hallucination metrics, and the tiny real-architecture models trained on them. The rest of
the package meets ShapesWorld at three seams only: `toy:` locations (locations.py: where the
committed models lie), prompts with truth (inputs.py) and the held-out metrics each summary row
carries (metric_names.HELDOUT).
"""
