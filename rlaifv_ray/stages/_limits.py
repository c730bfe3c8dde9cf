"""Token bounds of a model's inputs, checked before any model time is spent: an over-long prompt
would be sampled in full (the hf engine) or fail inside the engine (vLLM: longer than
max_model_len), and a policy that echoes it hands the same text on to claims and labels."""

from __future__ import annotations

from ..locations import SIM

SIM_CONTEXT = 32_768  # engine sim's context: a long-context model's


class TokenBound:
    """Counts tokens of a text with MODEL's tokenizer; BOUND: the explicit limit, else the model's
    context (vLLM's max_model_len when set, else its config) minus the tokens it will generate and
    those of the prompt text around the checked one (TEMPLATE), times SHARE of what is left."""

    def __init__(
        self,
        model: str,
        generated: int,
        bound: int | None = None,
        engine_options: dict | None = None,
        template: str = "",
        share: float = 1.0,
    ):
        if model and model.startswith(SIM):  # engine sim: its latency model's token count, no tokenizer
            from ..engines.sim import tokens

            self.count_fn, context = tokens, SIM_CONTEXT
        else:
            import transformers

            from ..storage.model_cache import local_model

            path = local_model(model)
            tokenizer = transformers.AutoTokenizer.from_pretrained(path)
            self.count_fn = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
            context = (engine_options or {}).get("max_model_len") or _context_length(
                transformers.AutoConfig.from_pretrained(path)
            )
        self.bound = bound or max(1, int(share * (context - generated - self.count(template))))

    def count(self, text: str) -> int:
        return self.count_fn(text) if text else 0

    def problem(self, text: str, what: str) -> str | None:
        """A reason naming the length and the bound, or None when TEXT fits."""
        if len(text.encode("utf-8")) < self.bound:  # a token holds at least one byte: no need to count
            return None
        n = self.count(text)
        return f"{what} too long: {n} tokens, over the bound of {self.bound}" if n > self.bound else None


def _context_length(config) -> int:
    text = getattr(config, "text_config", None) or config
    return int(getattr(text, "max_position_embeddings", None) or getattr(config, "max_position_embeddings", 4096))
