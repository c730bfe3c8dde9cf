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


def test_dpo_scores_exactly_the_generated_tokens(zoo_dir, torch_threads, tmp_path):
    """Sampled answers of a thinking policy, collated as DPO's Ray Train workers do: the completion
    tokens are the sampled token ids and the end of turn, and the reference stage scores as many."""
    from rlaifv_ray.engines import LogprobRequest
    from rlaifv_ray.train.dpo import PrecomputedRefCollator, load_policy

    path = str(zoo_dir / "qwen3_5")
    engine = load_engine(path)
    image = scene_and_image(3, 1)[1]
    msgs = user_message("Describe the image.", True)
    params = SamplingParams(temperature=1.0, max_new_tokens=10)
    batch = engine._encode([engine.chat.prompt(msgs)], [image], "left")
    with torch.no_grad():  # the policy's own token ids, as the engine generates them
        sampler_out = [engine.generate([GenerateRequest(msgs, image, params, seed=s)])[0] for s in (3, 4)]
        greedy = engine.model.generate(**batch, do_sample=False, max_new_tokens=6, eos_token_id=engine.eos_ids)
    generated = greedy[0, batch["input_ids"].shape[1] :].tolist()
    answer = engine.tokenizer.decode(generated, skip_special_tokens=True)
    assert engine.chat.token_ids(answer) == generated, "pick a model whose greedy answer round-trips"
    _, processor = load_policy(path)
    collator = PrecomputedRefCollator(processor=processor)
    pair = {
        "images": [png_bytes(image)],
        "prompt": [{"role": "user", "content": "Describe the image."}],
        "chosen": [{"role": "assistant", "content": answer}],
        "rejected": [{"role": "assistant", "content": sampler_out[0]}],
        "ref_chosen_logps": 0.0,
        "ref_rejected_logps": 0.0,
    }
    out = collator([pair])
    scored = out["input_ids"][0][out["completion_mask"][0].bool()].tolist()
    tail = engine.chat.token_ids("<|im_end|>\n")
    assert scored == generated + tail
    ref = engine.sequence_logprobs([LogprobRequest(msgs, answer, image)])[0]
    assert len(ref.tokens) == len(scored)
