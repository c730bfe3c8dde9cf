"""ShapesWorld: a synthetic world of coloured shapes whose truth is known.

Images with ground-truth object lists, biased SFT captions, yes/no questions, claim-extraction
examples, hallucination metrics, and the tiny real-architecture models trained on them.
"""
