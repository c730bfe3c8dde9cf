"""DPO's variants on edit pairs: token weights (RLHF-V's), mDPO's image-conditioned preference and
anchor. Each loss is checked against a computation of its own from the inference engine's per-token
log-probs, and at step 0 (the policy is its own reference) every term is ln 2."""

import copy
import math

import pytest
import torch

from rlaifv_ray import schema as S
from rlaifv_ray.config import TrainConfig
from rlaifv_ray.pair_diff import edited
from rlaifv_ray.toyworld.world import png_bytes, scene_and_image
from tests.zoo import VISION_FAMILIES

SEED = 7
# (chosen, rejected): a sentence removed at the end, in the middle and at the start, and one replaced
EDITS = [
    ("There is a red circle.", "There is a red circle. There is a blue square."),
    (
        "There is a green triangle. There is a yellow square.",
        "There is a green triangle. There is a red circle. There is a yellow square.",
    ),
    ("There is a yellow square.", "There is a red triangle. There is a yellow square."),
    ("There is a blue circle. There is a red square.", "There is a blue circle. There is a green square."),
]


def test_edited_tokens_are_those_outside_the_matching_blocks():
    removed = edited([1, 2, 3, 4, 5], [1, 2, 9, 9, 3, 4, 5])
    assert removed == ([False] * 5, [False, False, True, True, False, False, False])
    replaced = edited([1, 2, 7, 4], [1, 2, 8, 8, 4])
    assert replaced == ([False, False, True, False], [False, False, True, True, False])
    # a token repeated all over a long answer still matches (difflib's popular-token heuristic is off)
    long = [5, 6] * 150
    assert not any(edited(long, long + [9])[0]) and edited(long, long + [9])[1][-1]


def _edit_pairs(policy: str, corruption: str | None = None) -> dict[str, list]:
    """EDITS as the pairs stage stores them: reference log-probs from the real ReferenceLogps stage."""
    from rlaifv_ray.stages.reference_logps import ReferenceLogps

    batch = {
        S.PROMPT_ID: [f"p{i}" for i in range(len(EDITS))],
        S.CHOSEN_ID: [f"p{i}/a0{S.EDIT_SUFFIX}" for i in range(len(EDITS))],
        S.INSTRUCTION: ["Describe the image."] * len(EDITS),
        S.CHOSEN: [c for c, _ in EDITS],
        S.REJECTED: [r for _, r in EDITS],
        S.IMAGE: [png_bytes(scene_and_image(5, i)[1]) for i in range(len(EDITS))],
    }
    return ReferenceLogps(policy, corruption=corruption, seed=SEED)(batch)


def _perturbed(policy_path: str, tmp_path):
    """The policy moved away from its reference (so no term is ln 2), saved so the engine scores it too."""
    from rlaifv_ray.train.dpo import load_policy

    model, processor = load_policy(policy_path)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in model.model.language_model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    out = tmp_path / "perturbed"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return model, processor, str(out)


def _loss(trainer, examples) -> float:
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, trainer.data_collator(copy.deepcopy(examples))).item()


def _engine_logps(path: str, cols: dict, image_of=None):
    """Per pair, the engine's per-token log-probs of chosen and rejected, and their completion ids."""
    from rlaifv_ray.engines import LogprobRequest, load_engine
    from rlaifv_ray.engines.base import user_message
    from rlaifv_ray.media import load_image

    engine = load_engine(path)
    msgs = user_message("Describe the image.", True)
    out = []
    for i in range(len(cols[S.PROMPT_ID])):
        image = load_image(cols[S.IMAGE][i])
        image = image_of(i, image) if image_of else image
        sides = [cols[S.CHOSEN][i], cols[S.REJECTED][i]]
        logps = engine.sequence_logprobs([LogprobRequest(msgs, a, image) for a in sides])
        ids = [engine.chat.token_ids(engine.chat.completion(msgs, a)) for a in sides]
        out.append((logps, ids))
    return out


def test_token_weighted_dpo_weighs_the_edited_tokens_of_policy_and_reference(toy_models, torch_threads, tmp_path):
    """train.token_weight W: an edit pair's edited tokens count W times in the policy's and the
    reference's sums. W = 1 is today's DPO to 1e-5 on every step of a run; at step 0 any W is ln 2
    (the reference stage and the collator weigh the same tokens); on a moved policy the loss is the
    weighted DPO loss computed from the engine's per-token log-probs."""
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    cols = _edit_pairs(path)
    assert all(v is not None for v in cols[S.REF_REJECTED_EDITED_LOGP])
    images = cols[S.IMAGE]

    def losses(train, steps=3):
        model, processor = load_policy(path)
        args = dpo_args(train, str(tmp_path / f"out{id(train)}"))
        args.max_steps, args.per_device_train_batch_size, args.learning_rate = steps, 2, 1e-3
        trainer = build_trainer(model, processor, pair_examples(cols, images, train), args, train=train)
        trainer.train()
        return [h["loss"] for h in trainer.state.log_history if "loss" in h]

    today, w1 = losses(TrainConfig()), losses(TrainConfig(token_weight={"edited": 1.0}))
    assert w1 == pytest.approx(today, abs=1e-5) and abs(today[-1] - math.log(2)) > 1e-3
    w3 = losses(TrainConfig(token_weight={"edited": 3.0}), steps=1)
    assert w3[0] == pytest.approx(math.log(2), abs=1e-5)

    model, processor, moved = _perturbed(path, tmp_path)
    train = TrainConfig(beta=0.1, token_weight={"edited": 3.0})
    trainer = build_trainer(
        model, processor, pair_examples(cols, images, train), dpo_args(train, str(tmp_path)), train=train
    )
    expected = []
    for i, ((chosen, rejected), ids) in enumerate(_engine_logps(moved, cols)):
        masks = edited(*ids)
        policy = [sum(t * (3.0 if e else 1.0) for t, e in zip(s.tokens, m)) for s, m in zip((chosen, rejected), masks)]
        ref = [
            cols[S.REF_CHOSEN_LOGP][i] + 2 * cols[S.REF_CHOSEN_EDITED_LOGP][i],
            cols[S.REF_REJECTED_LOGP][i] + 2 * cols[S.REF_REJECTED_EDITED_LOGP][i],
        ]
        margin = 0.1 * ((policy[0] - ref[0]) - (policy[1] - ref[1]))
        expected.append(-math.log(1 / (1 + math.exp(-margin))))
    plain = TrainConfig(beta=0.1)
    unweighted = build_trainer(
        load_policy(moved)[0], processor, pair_examples(cols, images, plain), dpo_args(plain, str(tmp_path))
    )
    assert _loss(trainer, pair_examples(cols, images, train)) == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert abs(_loss(unweighted, pair_examples(cols, images, plain)) - sum(expected) / len(expected)) > 1e-3


def test_image_preference_and_anchor_follow_mdpo(toy_models, torch_threads, tmp_path):
    """train.image_preference {weight, corruption} and train.anchor: loss = DPO + weight x
    -log sigmoid(beta (chosen log ratio on its image - on the corrupted one)) - log sigmoid(chosen
    reward). The reference stage and the collator corrupt each pair's image alike (seeded per pair):
    at step 0 each term is ln 2; on a moved policy the loss is mDPO's computed from the engine."""
    from rlaifv_ray.media import corrupt_image, corruption_seed
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(toy_models / "policy")
    cols = _edit_pairs(path, corruption="crop")
    images = cols[S.IMAGE]
    train = TrainConfig(beta=0.1, image_preference={"weight": 0.5, "corruption": "crop"}, anchor=True)
    examples = pair_examples(cols, images, train, SEED)
    model, processor = load_policy(path)
    at_start = build_trainer(model, processor, examples, dpo_args(train, str(tmp_path)), train=train)
    assert _loss(at_start, examples) == pytest.approx(math.log(2) * (1 + 0.5 + 1), abs=1e-5)
    with pytest.raises(ValueError, match="no reference log-prob on a corrupted image"):
        pair_examples({**cols, S.REF_CHOSEN_CORRUPT_LOGP: [None] * len(EDITS)}, images, train, SEED)

    model, processor, moved = _perturbed(path, tmp_path)
    trainer = build_trainer(model, processor, examples, dpo_args(train, str(tmp_path)), train=train)

    def corrupted(i, image):
        return corrupt_image(image, "crop", corruption_seed(SEED, cols[S.PROMPT_ID][i], cols[S.CHOSEN_ID][i]))

    plain, on_corrupt = _engine_logps(moved, cols), _engine_logps(moved, cols, corrupted)
    terms = []
    for i in range(len(EDITS)):
        (chosen, rejected), _ = plain[i]
        chosen_ratio = chosen.total - cols[S.REF_CHOSEN_LOGP][i]
        dpo = 0.1 * (chosen_ratio - (rejected.total - cols[S.REF_REJECTED_LOGP][i]))
        image = 0.1 * (chosen_ratio - (on_corrupt[i][0][0].total - cols[S.REF_CHOSEN_CORRUPT_LOGP][i]))
        terms.append([-math.log(1 / (1 + math.exp(-x))) for x in (dpo, image, 0.1 * chosen_ratio)])
    expected = sum(d + 0.5 * m + a for d, m, a in terms) / len(terms)
    assert _loss(trainer, examples) == pytest.approx(expected, abs=1e-4)
    assert trainer._metrics["train"]["rewards/image_margins"] or trainer._metrics["eval"]["rewards/image_margins"]


@pytest.mark.parametrize("family", VISION_FAMILIES)
def test_every_family_takes_token_weights_the_image_preference_and_the_anchor(zoo_dir, torch_threads, tmp_path, family):
    """On every vision family of the zoo, the reference stage (the engine, a corrupted image through
    the family's own processor) and DPO's collator score the same tokens of the same pixels: at step 0
    each of the three terms is ln 2, token weights on."""
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(zoo_dir / family)
    cols = _edit_pairs(path, corruption="crop")
    train = TrainConfig(
        beta=0.1, token_weight={"edited": 5.0}, image_preference={"weight": 0.5, "corruption": "crop"}, anchor=True
    )
    examples = pair_examples(cols, cols[S.IMAGE], train, SEED)
    model, processor = load_policy(path)
    trainer = build_trainer(model, processor, examples, dpo_args(train, str(tmp_path)), train=train)
    assert _loss(trainer, examples) == pytest.approx(math.log(2) * (1 + 0.5 + 1), abs=1e-4)


def test_dpo_variants_train_alike_under_ddp_and_fsdp_on_ray_train(toy_models, ray_local, tmp_path):
    """Token weights, the image preference and the anchor together, LoRA on 2 Ray Train workers under
    each strategy: step 1 is ln 2 per term, the per-step losses agree, the image margin is logged."""
    import json
    from pathlib import Path

    from rlaifv_ray.config import validate_config
    from rlaifv_ray.train.launch import train_dpo
    from tests.conftest import toy_config
    from tests.test_train import _write_pairs

    policy = str(toy_models / "policy")
    cols = _edit_pairs(policy, corruption="noise")
    losses = {}
    for strategy in ("ddp", "fsdp"):
        config = validate_config(
            toy_config(
                tmp_path / strategy,
                toy_models,
                **{
                    "seed": SEED,
                    "train.workers": 2,
                    "train.batch_size": 4,
                    "train.epochs": 3,
                    "train.lr": 5e-3,
                    "train.lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
                    "train.strategy": strategy,
                    "train.token_weight": {"edited": 2.0},
                    "train.image_preference": {"weight": 1.0, "corruption": "noise"},
                    "train.anchor": True,
                },
            )
        )
        _write_pairs(config.run_dir, cols)
        train_dpo(config, 0, policy)
        steps = json.loads((Path(config.run_dir) / "iter_000" / "train_log.json").read_text())["steps"]
        losses[strategy] = [s["loss"] for s in steps]
        assert losses[strategy][0] == pytest.approx(3 * math.log(2), abs=1e-4)
        assert all("rewards/image_margins" in s for s in steps)
    assert losses["fsdp"] == pytest.approx(losses["ddp"], abs=1e-4)
    assert abs(losses["ddp"][2] - 3 * math.log(2)) > 1e-3  # it learned (step 1 warms up at lr 0)
