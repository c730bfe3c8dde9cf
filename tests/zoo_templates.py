"""Chat templates and special tokens of the zoo's 2025-26 families (tests/zoo_recent.py), shaped
like their hub folders' templates at toy size: each keeps the quirk a loader or a DPO collator
trips on, not every branch (tools, videos, multi-turn reasoning) of the hub's Jinja.

| family       | quirk kept                                                                      |
|--------------|---------------------------------------------------------------------------------|
| qwen3_vl     | ChatML with no default system turn (Qwen2.5-VL's template adds one)              |
| qwen3_5      | opens `<think>\\n` at the generation prompt; `enable_thinking=false` closes it    |
| internvl     | ChatML with the hub's default (Chinese) system turn; image as `<IMG_CONTEXT>`    |
| gemma3       | writes `<bos>` itself (the tokenizer adds one too); `model` role; trims text     |
| minicpmv4_6  | ChatML, thinking like Qwen3.5; the processor expands the image into slice markup |
| qwen3 (text) | the model opens `<think>` itself; an assistant turn renders an empty think block |
| gemma3_text  | Gemma 3's template and tokenizer without images                                   |
"""

from __future__ import annotations

_CONTENT = (  # structured content, the image rendered as IMAGE (a placeholder replaced per family)
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}IMAGE{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
)
_QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"

# Qwen3-VL Instruct: no system turn unless one is given
QWEN3_VL = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    + _CONTENT.replace("IMAGE", _QWEN_IMAGE)
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen3.5 / MiniCPM-V 4.6: the last assistant turn carries an (empty) reasoning block; the generation
# prompt opens one unless enable_thinking is false
_THINKING = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and loop.last %}<think>\n\n</think>\n\n{% endif %}"
    + _CONTENT
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)
QWEN3_5 = _THINKING.replace("IMAGE", _QWEN_IMAGE)
MINICPMV4_6 = _THINKING.replace("IMAGE", "<|image_pad|>")

# Qwen3 text: the model writes <think> itself; enable_thinking=false prefills an empty block
QWEN3 = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' and loop.last %}<think>\n\n</think>\n\n{% endif %}"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)

_INTERNVL_SYSTEM = (  # the hub template's default system turn: its bytes are most of a short prompt
    "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"
)
INTERNVL = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + _INTERNVL_SYSTEM + "<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    + _CONTENT.replace("IMAGE", "<IMG_CONTEXT>\n")
    + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

GEMMA3 = (
    "{{ bos_token }}{% for m in messages %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}<start_of_turn>{{ role }}\n"
    "{% if m['content'] is string %}{{ m['content'] | trim }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<start_of_image>{% elif c['type'] == 'text' %}{{ c['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

QWEN_SPECIALS = [  # Qwen2-VL's, which every later Qwen keeps
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN3_SPECIALS = QWEN_SPECIALS + ["<think>", "</think>"]
INTERNVL_NAMED = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
GEMMA3_NAMED = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
GEMMA3_SPECIALS = ["<unk>", "<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", *GEMMA3_NAMED.values()]
MINICPM_NAMED = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "image_start_token": "<image>",
    "image_end_token": "</image>",
    "slice_start_token": "<slice>",
    "slice_end_token": "</slice>",
    "image_id_start_token": "<image_id>",
    "image_id_end_token": "</image_id>",
}

# Gemma's vocabulary spells newline runs as single tokens, and vLLM's Gemma 3 processor looks them up
ADDED_TOKENS = {"gemma3": ["\n\n", "\n\n\n", "\n\n\n\n"], "gemma3_text": ["\n\n", "\n\n\n", "\n\n\n\n"]}

# family: (style, specials, bos, eos, pad, extra generation eos, template, named special tokens)
TOKENIZERS = {
    "qwen3_vl": ("bytes", QWEN3_SPECIALS, None, "<|im_end|>", "<|endoftext|>", ["<|endoftext|>"], QWEN3_VL, {}),
    "qwen3_5": ("bytes", QWEN3_SPECIALS, None, "<|im_end|>", "<|endoftext|>", ["<|endoftext|>"], QWEN3_5, {}),
    "internvl": (
        "bytes",
        QWEN3_SPECIALS[:3] + list(INTERNVL_NAMED.values()),
        None,
        "<|im_end|>",
        "<|endoftext|>",
        ["<|endoftext|>"],
        INTERNVL,
        INTERNVL_NAMED,
    ),
    "gemma3": ("metaspace", GEMMA3_SPECIALS, "<bos>", "<eos>", "<pad>", ["<end_of_turn>"], GEMMA3, GEMMA3_NAMED),
    "minicpmv4_6": (
        "bytes",
        QWEN3_SPECIALS + [t for t in MINICPM_NAMED.values() if t not in QWEN3_SPECIALS],
        None,
        "<|im_end|>",
        "<|endoftext|>",
        ["<|endoftext|>"],
        MINICPMV4_6,
        MINICPM_NAMED,
    ),
    "qwen3": ("bytes", QWEN3_SPECIALS[:3] + QWEN3_SPECIALS[-2:], None, "<|im_end|>", "<|endoftext|>", [], QWEN3, {}),
    "gemma3_text": ("metaspace", GEMMA3_SPECIALS, "<bos>", "<eos>", "<pad>", ["<end_of_turn>"], GEMMA3, GEMMA3_NAMED),
}
