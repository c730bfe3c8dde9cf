"""Chat-template rendering shared by every backend, so all of them see the same prompt text and
score the same completion tokens (the ones TRL's DPO trains on)."""

from __future__ import annotations

_SENTINEL = "\x00ANSWER\x00"
# Leading/trailing whitespace and markup: a template that trims or escapes the answer fails the probe
_PROBE = "  probe {answer} <b>&amp;</b>\n two lines  "


class ChatFormat:
    """Rendering is cached per conversation: a ranker renders one prompt for many candidates, and
    the answer is substituted into the rendered assistant turn (checked once per conversation
    against a real rendering; a template that transforms the answer is always rendered).

    template_kwargs go to every `apply_chat_template` call (e.g. `{"enable_thinking": False}`).
    A prompt ends where the answer begins: where a template writes markup into an assistant turn
    before the answer (a thinking template's empty `<think>\n\n</think>\n\n`), the prompt
    includes it, so a policy samples its answer after a closed reasoning block, a labeler reads
    yes/no at the answer's first token, and DPO scores the answer's tokens only (docs/method.md)."""

    def __init__(self, processor, tokenizer, multimodal: bool, template_kwargs: dict | None = None):
        self.processor, self.tokenizer, self.multimodal = processor, tokenizer, multimodal
        self.template_kwargs = dict(template_kwargs or {})
        self._prompts: dict[str, str] = {}
        self._turns: dict[str, str | None] = {}

    @classmethod
    def load(cls, model: str, multimodal: bool, model_type: str = "", template_kwargs: dict | None = None):
        import transformers

        if multimodal:
            from .processors import load_processor

            processor = load_processor(model, model_type)
            return cls(processor, ensure_pad_token(processor.tokenizer), True, template_kwargs)
        tokenizer = ensure_pad_token(transformers.AutoTokenizer.from_pretrained(model))
        return cls(tokenizer, tokenizer, False, template_kwargs)

    def _render(self, messages: list[dict], **options) -> str:
        owner, msgs = self._owner_and_messages(messages)
        return owner.apply_chat_template(msgs, tokenize=False, **self.template_kwargs, **options)

    def _owner_and_messages(self, messages: list[dict]):
        if self.multimodal:
            return self.processor, messages
        # text-only chat templates want string content
        return self.tokenizer, [{**m, "content": text_of(m["content"])} for m in messages]

    def prompt(self, messages: list[dict]) -> str:
        """The generation prompt, extended by the markup an assistant turn writes before its answer
        when that is more than whitespace (a leading space is the answer's own first token)."""
        key = _key(messages)
        if key not in self._prompts:
            if len(self._prompts) > 4096:
                self._prompts.clear()
            prompt = self._render(messages, add_generation_prompt=True)
            full = self._render(messages + [self._assistant(_SENTINEL)])
            if full.startswith(prompt) and _SENTINEL in full:
                lead = full[len(prompt) : full.index(_SENTINEL)]
                prompt += lead if lead.strip() else ""
            self._prompts[key] = prompt
        return self._prompts[key]

    def _assistant(self, answer: str) -> dict:
        return {"role": "assistant", "content": answer if not self.multimodal else [{"type": "text", "text": answer}]}

    def completion(self, messages: list[dict], answer: str) -> str:
        """The answer as the chat template renders an assistant turn (e.g. "answer<|im_end|>\\n"):
        the text after the generation prompt, which is what TRL's DPO trains on."""
        key = _key(messages)
        if key not in self._turns:
            if len(self._turns) > 4096:
                self._turns.clear()
            turn = self._render_completion(messages, _SENTINEL)
            exact = self._render_completion(messages, _PROBE) == turn.replace(_SENTINEL, _PROBE)
            self._turns[key] = turn if exact and turn.count(_SENTINEL) == 1 else None
        turn = self._turns[key]
        return turn.replace(_SENTINEL, answer) if turn is not None else self._render_completion(messages, answer)

    def answer_spans(
        self, messages: list[list[dict]], answers: list[str], token_counts: list[int] | None = None
    ) -> list[tuple[int, int] | None]:
        """Per answer, the [first, end) range of its completion's tokens that overlap the answer text
        (the rest is template markup). token_counts: how many tokens the caller's own tokenization
        has; extra ones are leading special tokens, which shift the range. None where the template
        transforms the answer or the tokenizer gives no character offsets."""
        completions, starts = [], []
        for m, answer in zip(messages, answers):
            completions.append(self.completion(m, answer))
            turn = self._turns.get(_key(m))  # where the answer starts in the rendered turn
            # a template that transforms answers (Gemma's trim) still writes a stripped one as given
            starts.append(turn.index(_SENTINEL) if turn is not None else completions[-1].find(answer))
        try:
            offsets = self.tokenizer(completions, add_special_tokens=False, return_offsets_mapping=True)[
                "offset_mapping"
            ]
        except NotImplementedError:  # slow tokenizers have no offsets
            return [None] * len(answers)
        spans = []
        for i, (start, answer) in enumerate(zip(starts, answers)):
            inside = [j for j, (a, b) in enumerate(offsets[i]) if a < start + len(answer) and b > start]
            shift = (token_counts[i] - len(offsets[i])) if token_counts else 0
            spans.append((inside[0] + shift, inside[-1] + 1 + shift) if start >= 0 and inside and shift >= 0 else None)
        return spans

    def _render_completion(self, messages: list[dict], answer: str) -> str:
        prompt = self.prompt(messages)
        full = self._render(messages + [self._assistant(answer)])
        if not full.startswith(prompt):
            raise ValueError("the chat template renders the prompt differently with an answer appended")
        return full[len(prompt) :]

    def token_ids(self, text: str) -> list[int]:
        """Plain tokenization (special tokens as written in the text, none added)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def answer_token_ids(self, words) -> list[int]:
        """Every vocabulary entry that reads as one of `words` (e.g. "Yes", "▁Yes", "ĠYes"): which
        variant starts an answer depends on the template's last character and the tokenizer."""
        ids = {self.tokenizer.encode(w, add_special_tokens=False)[0] for w in words}
        for token, i in self.tokenizer.get_vocab().items():
            if any(w in token for w in words) and self.tokenizer.convert_tokens_to_string([token]).strip() in words:
                ids.add(i)
        return sorted(ids)

    def eos_ids(self, generation_config=None) -> list[int]:
        """The ids that end a turn: the model's generation config may list several (Llama-3's
        <|eot_id|> and <|end_of_text|>, Qwen's <|im_end|> and <|endoftext|>) beside the tokenizer's."""
        listed = getattr(generation_config, "eos_token_id", None)
        listed = [listed] if isinstance(listed, int) else list(listed or [])
        return sorted(set(listed) | {self.tokenizer.eos_token_id} - {None})


def ensure_pad_token(tokenizer):
    """Batching needs a pad token; many hub tokenizers (Llama-3, Mistral) ship none. Padding is
    always masked, so the eos token serves, as TRL's collators also assume."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _key(messages: list[dict]) -> str:
    import json

    return json.dumps(messages, sort_keys=True)


def text_of(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(item.get("text", "") for item in content if item.get("type") == "text")
