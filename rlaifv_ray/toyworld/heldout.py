"""Held-out evaluation of ShapesWorld models through the engine Protocol (any backend)."""

from __future__ import annotations

from ..engines.base import GenerateRequest, SamplingParams, YesNoRequest, user_message
from ..prompts import LABEL_PROMPT, SHAPESWORLD, bullets, parse_list
from ..seeds import derive_seed
from .examples import HELDOUT_OFFSET, claim_examples, qa_examples
from .hallucination import hallucination_metrics, mentions, planted_share
from .text import BIAS_PAIRS, INSTRUCTIONS, question_for
from .world import scene_and_image


def heldout_scenes(num: int, seed: int):
    return [scene_and_image(seed, HELDOUT_OFFSET + i) for i in range(num)]


def sample_answers(engine, scenes, seed: int, temperature: float = 0.7, max_new_tokens: int = 48) -> list[str]:
    """One answer per held-out image, each with its own derived seed."""
    params = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens)
    requests = [
        GenerateRequest(
            user_message(INSTRUCTIONS[i % len(INSTRUCTIONS)], True), image, params, derive_seed(seed, "eval", i)
        )
        for i, (_, image) in enumerate(scenes)
    ]
    return engine.generate(requests)


def eval_policy(engine, num: int, seed: int, temperature: float = 0.7) -> dict:
    scenes = heldout_scenes(num, seed)
    answers = sample_answers(engine, scenes, seed, temperature)
    truths = [s.kinds for s, _ in scenes]
    result = hallucination_metrics(answers, truths)
    result["planted_share"] = planted_share(answers, truths, BIAS_PAIRS)
    result["temperature"] = temperature
    return result


def eval_labeler(engine, num: int, seed: int, policy_engine=None) -> dict:
    """Yes/no accuracy on balanced held-out questions (hard negatives included), per question
    kind; with a policy, also the share of the policy's false claims the labeler rejects."""
    examples = [e for i in range(num) for e in qa_examples(seed, HELDOUT_OFFSET + i, 4, paraphrase=False)]
    kinds = [e.kind for e in examples]
    probs = engine.yes_no([YesNoRequest(e.prompt, e.image) for e in examples])
    correct = [(py > pn) == (e.answer == "yes") for (py, pn), e in zip(probs, examples)]
    by_kind: dict[str, list[bool]] = {}
    for k, c in zip(kinds, correct):
        by_kind.setdefault(k, []).append(c)
    result = {
        "n": len(examples),
        "accuracy": sum(correct) / len(correct),
        "accuracy_by_kind": {k: sum(v) / len(v) for k, v in sorted(by_kind.items())},
    }
    if policy_engine is not None:
        result.update(false_claim_rejection(engine, policy_engine, num, seed))
    return result


def false_claim_rejection(labeler, policy, num: int, seed: int) -> dict:
    """docs/shapesworld.md lesson 2: judge a labeler by how many of the policy's false claims it rejects."""
    scenes = heldout_scenes(num, seed)
    answers = sample_answers(policy, scenes, seed)
    asks, truth = [], []
    for (scene, image), answer in zip(scenes, answers):
        for kind in mentions(answer):
            asks.append(YesNoRequest(LABEL_PROMPT.format(question=question_for(kind)), image))
            truth.append(kind in scene.kinds)
    probs = labeler.yes_no(asks) if asks else []
    false_rejected = [py <= pn for (py, pn), t in zip(probs, truth) if not t]
    true_accepted = [py > pn for (py, pn), t in zip(probs, truth) if t]
    return {
        "policy_false_claims": len(false_rejected),
        "false_claim_rejection": sum(false_rejected) / len(false_rejected) if false_rejected else None,
        "true_claim_acceptance": sum(true_accepted) / len(true_accepted) if true_accepted else None,
    }


def eval_claim_llm(engine, num: int, seed: int) -> dict:
    """Share of held-out answers whose facts AND questions both equal the reference exactly."""
    examples = [claim_examples(seed, HELDOUT_OFFSET + i) for i in range(num)]
    params = SamplingParams(temperature=0.0, max_new_tokens=96)
    facts_out = engine.generate([GenerateRequest(user_message(f.prompt, False), None, params) for f, _ in examples])
    # The second call reads the model's own facts, as the pipeline does.
    q_prompts = []
    for text in facts_out:
        try:
            q_prompts.append(SHAPESWORLD.questions.format(facts=bullets(parse_list(text))))
        except ValueError:
            q_prompts.append(SHAPESWORLD.questions.format(facts=text))
    questions_out = engine.generate([GenerateRequest(user_message(p, False), None, params) for p in q_prompts])
    facts_ok = [f.strip() == ref.answer for f, (ref, _) in zip(facts_out, examples)]
    both_ok = [ok and q.strip() == ref.answer for ok, q, (_, ref) in zip(facts_ok, questions_out, examples)]
    return {"n": num, "facts_exact": sum(facts_ok) / num, "exact": sum(both_ok) / num}


def eval_best_of_n(ranker, num: int, seed: int, n: int, temperature: float = 0.7) -> dict:
    """Best-of-N on held-out images: hallucination metrics of the answer picked by the normalized
    reward, by the summed reward and at random, and of all samples (docs/method.md s.3)."""
    from ..reward import pick

    scenes = heldout_scenes(num, seed)
    params = SamplingParams(temperature=temperature, max_new_tokens=48)
    samples = [
        ranker.sample(image, INSTRUCTIONS[i % len(INSTRUCTIONS)], n, derive_seed(seed, "bon", i), params)
        for i, (_, image) in enumerate(scenes)
    ]
    scores = ranker.score(
        [(image, INSTRUCTIONS[i % len(INSTRUCTIONS)], samples[i]) for i, (_, image) in enumerate(scenes)]
    )
    truths = [s.kinds for s, _ in scenes]
    result = {
        "n": n,
        "images": num,
        "temperature": temperature,
        "all_samples": hallucination_metrics(
            [a for ans in samples for a in ans], [t for t, ans in zip(truths, samples) for _ in ans]
        ),
    }
    for how in ("normalized", "summed", "random"):
        picked = [
            ans[pick(sc, how, seed=derive_seed(seed, "random-pick", i))]
            for i, (ans, sc) in enumerate(zip(samples, scores))
        ]
        result[f"by_{how}"] = hallucination_metrics(picked, truths)
    # a score's length bias: its correlation with the answer's word count over all samples
    words = [len(a.split()) for ans in samples for a in ans]
    flat = [r for sc in scores for r in sc]
    result["length_correlation"] = {
        how: _correlation(words, [getattr(r, how) for r in flat]) for how in ("normalized", "summed")
    }
    return result


def _correlation(xs: list[float], ys: list[float]) -> float | None:
    import statistics

    try:
        return round(statistics.correlation(xs, ys), 3)
    except statistics.StatisticsError:  # a constant series
        return None
