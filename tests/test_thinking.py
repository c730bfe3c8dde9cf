"""Thinking templates (Qwen3.5, MiniCPM-V 4.6, Qwen3): every prompt ends where the answer begins,
after the template's closed reasoning block, so the labeler reads yes/no at the answer's first
token and DPO scores exactly the tokens the policy generated (plus the template's end of turn).
`chat_template_kwargs` reach the template on the engine and in DPO's collator alike."""

import pytest
import torch

from rlaifv_ray.engines import GenerateRequest, SamplingParams, YesNoRequest, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.toyworld.world import png_bytes, scene_and_image

CLOSED = "<|im_start|>assistant\n<think>\n\n</think>\n\n"


@pytest.mark.parametrize("family", ["qwen3_5", "minicpmv4_6", "qwen3"])
def test_prompts_end_after_the_closed_reasoning_block(zoo_dir, family):
    engine = load_engine(str(zoo_dir / family))
    image = family != "qwen3"
    raw = engine.processor.apply_chat_template(
        user_message("Is there a red circle?", image) if image else [{"role": "user", "content": "x"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert not raw.endswith(CLOSED), "the hub-shaped template itself leaves the block open (or to the model)"
    labeler_prompt = engine.chat.prompt(user_message("Is there a red circle?", image))
    assert labeler_prompt.endswith(CLOSED), labeler_prompt
    off = load_engine(str(zoo_dir / family), chat_template_kwargs={"enable_thinking": False})
    assert off.chat.prompt(user_message("Is there a red circle?", image)) == labeler_prompt
    # the completion DPO scores holds the answer and the end of turn, no template markup
    assert engine.chat.completion(user_message("x", image), "A red circle.") == "A red circle.<|im_end|>\n"


def test_yes_no_is_read_at_the_answers_first_token(zoo_dir, torch_threads):
    engine = load_engine(str(zoo_dir / "qwen3_5"))
    image = scene_and_image(3, 0)[1]
    ((p_yes, p_no),) = engine.yes_no([YesNoRequest("Is there a red circle?", image)])
    prompt = engine.chat.prompt(user_message("Is there a red circle?", True))
    batch = engine._encode([prompt], [image], "right")
    with torch.no_grad():
        probs = torch.softmax(engine.model(**batch).logits[0, -1].float(), -1)
    assert p_yes == pytest.approx(probs[engine.yes_ids].sum().item(), abs=1e-5)
    assert p_no == pytest.approx(probs[engine.no_ids].sum().item(), abs=1e-5)
    assert engine.tokenizer.decode(batch["input_ids"][0, -4:]).endswith("</think>\n\n")


def test_dpo_scores_exactly_the_generated_tokens(zoo_dir, torch_threads):
    """A thinking policy's pair, collated as DPO's Ray Train workers do: DPO's prompt tokens are the
    very tokens the engine generates after (so the answer's tokens are what the policy sampled
    there), its completion is the answer's tokens plus the end of turn, and the reference stage
    scores as many tokens."""
    from rlaifv_ray.engines import LogprobRequest
    from rlaifv_ray.train.dpo import PrecomputedRefCollator, load_policy

    path = str(zoo_dir / "qwen3_5")
    engine = load_engine(path)
    image = scene_and_image(3, 1)[1]
    msgs = user_message("Describe the image.", True)
    generation_input = engine._encode([engine.chat.prompt(msgs)], [image], "left")["input_ids"][0].tolist()
    sampled = engine.generate([GenerateRequest(msgs, image, SamplingParams(temperature=1.0, max_new_tokens=10))])[0]
    answer = "There is a red circle."
    _, processor = load_policy(path)
    pair = {
        "images": [png_bytes(image)],
        "prompt": [{"role": "user", "content": "Describe the image."}],
        "chosen": [{"role": "assistant", "content": answer}],
        "rejected": [{"role": "assistant", "content": sampled}],
        "ref_chosen_logps": 0.0,
        "ref_rejected_logps": 0.0,
    }
    out = PrecomputedRefCollator(processor=processor)([pair])
    real, completion = out["attention_mask"][0].bool(), out["completion_mask"][0].bool()
    assert out["input_ids"][0][real & ~completion].tolist() == generation_input
    scored = out["input_ids"][0][completion].tolist()
    assert scored == engine.chat.token_ids(answer) + engine.chat.token_ids("<|im_end|>\n")
    ref = engine.sequence_logprobs([LogprobRequest(msgs, answer, image)])[0]
    assert len(ref.tokens) == len(scored)
