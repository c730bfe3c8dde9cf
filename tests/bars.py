"""The quality bars every ShapesWorld model set must meet (issue: foundation), checked in one place."""

from rlaifv_ray.engines import load_engine
from rlaifv_ray.toyworld import heldout

HELDOUT_SEED = 1


def measure(models_dir, num: int = 200) -> dict:
    policy = load_engine(str(models_dir / "policy"))
    labeler = load_engine(str(models_dir / "labeler"))
    return {
        "policy": heldout.eval_policy(policy, num, HELDOUT_SEED),
        "labeler": heldout.eval_labeler(labeler, num, HELDOUT_SEED, policy_engine=policy),
        "claim_llm": heldout.eval_claim_llm(load_engine(str(models_dir / "claim_llm")), 100, HELDOUT_SEED),
    }


def failures(m: dict) -> list[str]:
    p, lab, c = m["policy"], m["labeler"], m["claim_llm"]
    checks = {
        "policy CHAIRs >= 0.20 (it hallucinates from the bias)": p["chair_s"] >= 0.20,
        "policy recall >= 0.80 (it is competent)": p["recall"] >= 0.80,
        "half of the policy's hallucinations are planted partners": p["planted_share"] >= 0.5,
        "labeler yes/no accuracy >= 0.90 (hard negatives included)": lab["accuracy"] >= 0.90,
        "labeler rejects >= 80% of the policy's false claims": (lab["false_claim_rejection"] or 0) >= 0.80,
        "claim LLM exact on >= 90% of held-out answers": c["exact"] >= 0.90,
    }
    return [name for name, ok in checks.items() if not ok]
