"""The transformers backend: any image-text-to-text checkpoint (or a text-only causal LM).

- generate: HF `generate` with a logits processor that samples each row from its own seeded
  generator, so a candidate depends only on its seed (HF's own sampling shares one RNG per batch).
- yes_no: one forward pass without a KV cache, and the vocabulary projection only at each
  question's last position; for 1-D-position families the questions about one image share a
  single encoding of the image prefix (its KV cache is computed once and repeated).
- sequence_logprobs: per-token log-probs of a given answer as the chat template closes the
  assistant turn (the tokens TRL's DPO trains on); the vocabulary projection and log-softmax run
  over completion positions only, a bounded number of tokens at a time (never full fp32 logits).
  For 1-D-position families the candidates of one prompt extend a single KV cache of it.
Text is always encoded as the chat template renders it, without the tokenizer's own special
tokens, exactly as TRL's collators do (a BOS-adding tokenizer would otherwise score a second BOS).
"""

from __future__ import annotations

from ..errors import ModelLoadError
from .base import GenerateRequest, LogprobRequest, SequenceLogprobs, YesNoRequest, check_model_path, user_message
from .chat import ChatFormat
from .hf_tensors import SeededSampler, cache_of, chunks, common_prefix, param_chunks, split_logprobs

_YES, _NO = ("yes", "Yes"), ("no", "No")
# Families whose positions are plain 1-D offsets, so a shared prefix cache can be extended exactly.
# Not Qwen2(.5)-VL: M-RoPE positions of the text after an image depend on the image grid
# (rope_deltas), which a cache extended by plain position ids would get wrong.
_PREFIX_SHARING_TYPES = {"llava", "llava_next", "idefics3"}
# Keys of a processor's output that align with input_ids (one value per token).
_TOKEN_ALIGNED = ("mm_token_type_ids", "token_type_ids")
# Largest logits block (tokens x vocabulary) materialised at once when scoring completions:
# 2**26 fp32 values = 256 MB, whatever the batch.
_LOGIT_BLOCK = 1 << 26


class HFEngine:
    def __init__(
        self,
        model: str,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        share_image_prefix: bool = True,
        device_map: str | None = None,
        chat_template_kwargs: dict | None = None,
    ):
        import torch
        import transformers

        from ..storage.model_cache import local_model

        self.name = model
        model = local_model(model)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.batch_size = batch_size
        check_model_path(model)
        try:
            config = transformers.AutoConfig.from_pretrained(model)
            self.multimodal = hasattr(config, "vision_config")
            self.chat = ChatFormat.load(model, self.multimodal, config.model_type, chat_template_kwargs)
            self.processor, self.tokenizer = self.chat.processor, self.chat.tokenizer
            cls = transformers.AutoModelForImageTextToText if self.multimodal else transformers.AutoModelForCausalLM
            # device_map="auto": accelerate spreads a model too large for one device over all
            # visible ones (and CPU memory after them)
            extra = {"device_map": device_map} if device_map else {}
            self.model = cls.from_pretrained(model, dtype=getattr(torch, dtype), **extra)
        except (OSError, ValueError, KeyError, ImportError) as exc:  # ImportError: a package the model needs
            raise ModelLoadError(f"model {model!r}: cannot be loaded ({exc})") from None
        if device_map:
            self.device = str(self.model.get_input_embeddings().weight.device)
        else:
            self.model.to(self.device)
        self.model.eval()
        self.share_image_prefix = share_image_prefix and config.model_type in _PREFIX_SHARING_TYPES
        self.yes_ids = self.chat.answer_token_ids(_YES)
        self.no_ids = self.chat.answer_token_ids(_NO)
        self.eos_ids = self.chat.eos_ids(self.model.generation_config)
        self.image_token = getattr(self.model.config, "image_token_id", None)

    def _body(self, **inputs):
        """The model without its vocabulary projection: hidden states (and a cache if asked)."""
        inputs.setdefault("use_cache", False)
        return self.model.base_model(**inputs)

    def _head(self, hidden):
        return self.model.get_output_embeddings()(hidden)

    def _encode(self, texts: list[str], images: list, padding_side: str):
        import torch

        if self.multimodal and any(img is not None for img in images):
            if any(img is None for img in images):
                raise ValueError("a batch mixes requests with and without images")
            batch = self.processor(
                text=texts,
                images=[[img] for img in images],  # one list per prompt, which every processor takes
                padding=True,
                return_tensors="pt",
                padding_side=padding_side,
                add_special_tokens=False,
            )
        else:
            batch = self.tokenizer(
                texts, padding=True, return_tensors="pt", padding_side=padding_side, add_special_tokens=False
            )
        return {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}

    # ---- generate ------------------------------------------------------------------------
    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        """Requests may differ in sampling params: each group of equal ones is batched on its own."""
        out = [""] * len(requests)
        for chunk in param_chunks(requests, self.batch_size):
            for i, text in zip(chunk, self._generate_chunk([requests[j] for j in chunk])):
                out[i] = text
        return out

    def _generate_chunk(self, requests: list[GenerateRequest]) -> list[str]:
        import torch
        from transformers import LogitsProcessorList

        params = requests[0].params
        batch = self._encode([self.chat.prompt(r.messages) for r in requests], [r.image for r in requests], "left")
        sampler = SeededSampler([r.seed for r in requests], params.temperature, params.top_p, self.device)
        with torch.no_grad():
            seqs = self.model.generate(
                **batch,
                do_sample=False,  # the sampler already picked the token; greedy just reads it
                max_new_tokens=params.max_new_tokens,
                logits_processor=LogitsProcessorList([sampler]),
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.eos_ids,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        new = seqs[:, batch["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    # ---- yes/no --------------------------------------------------------------------------
    def yes_no(self, requests: list[YesNoRequest]) -> list[tuple[float, float]]:
        results: list[tuple[float, float] | None] = [None] * len(requests)
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(id(r.image), []).append(i)
        for idx in groups.values():
            for chunk in chunks(idx, self.batch_size):
                probs = self._next_token_probs([requests[i] for i in chunk])
                yes = probs[:, self.yes_ids].sum(-1)
                no = probs[:, self.no_ids].sum(-1)
                for i, y, n in zip(chunk, yes.tolist(), no.tolist()):
                    results[i] = (y, n)
        return results  # type: ignore[return-value]

    def _next_token_probs(self, requests: list[YesNoRequest]):
        """Softmax over the vocabulary at the first answer position, one row per question."""
        import torch

        image = requests[0].image
        texts = [self.chat.prompt(user_message(r.question, r.image is not None)) for r in requests]
        batch = self._encode(texts, [r.image for r in requests], "right")
        ids, mask = batch["input_ids"], batch["attention_mask"]
        last = mask.sum(1) - 1
        rows = torch.arange(len(requests), device=ids.device)
        with torch.no_grad():
            prefix = common_prefix(ids, mask) if self.share_image_prefix and image is not None else 0
            if (
                self.image_token is not None
                and prefix
                and (ids[0, :prefix] == self.image_token).sum() < (ids[0] == self.image_token).sum()
            ):
                prefix = 0  # the shared part must hold the whole image
            if prefix and len(requests) > 1:
                hidden = self._forward_with_shared_prefix(batch, prefix)[rows, last - prefix]
            else:
                hidden = self._body(**batch).last_hidden_state[rows, last]
            logits = self._head(hidden)
        return torch.softmax(logits.float(), dim=-1)

    def _forward_with_shared_prefix(self, batch, prefix: int):
        """Hidden states of each row's tokens after `prefix`, with the prefix encoded once."""
        import torch

        ids, mask = batch["input_ids"], batch["attention_mask"]
        n = ids.shape[0]
        head = {k: v[:1] for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
        out = self._body(input_ids=ids[:1, :prefix], attention_mask=mask[:1, :prefix], use_cache=True, **head)
        cache, cache_kw = cache_of(out)
        cache.batch_repeat_interleave(n)
        suffix = ids[:, prefix:]
        positions = torch.arange(prefix, ids.shape[1], device=ids.device).expand(n, -1)
        return self._body(
            input_ids=suffix, attention_mask=mask, position_ids=positions, use_cache=True, **{cache_kw: cache}
        ).last_hidden_state

    # ---- sequence log-probs --------------------------------------------------------------
    def sequence_logprobs(self, requests: list[LogprobRequest]) -> list[SequenceLogprobs]:
        out: list[SequenceLogprobs] = []
        for chunk in chunks(requests, self.batch_size):
            out += self._logprobs_chunk(chunk)
        return out

    def completion_text(self, messages: list[dict], answer: str) -> str:
        return self.chat.completion(messages, answer)

    def _logprobs_chunk(self, requests: list[LogprobRequest]) -> list[SequenceLogprobs]:
        # Prompt (with its image) and completion are tokenized separately and concatenated, exactly as
        # TRL's DPO collator does, so stored reference log-probs cover the same tokens DPO trains on.
        import torch

        prompts = [self.chat.prompt(r.messages) for r in requests]
        completions = [self.completion_text(r.messages, r.answer) for r in requests]
        enc_c = self._encode(completions, [None] * len(requests), "right")
        if self.share_image_prefix:
            # candidates of one (image, prompt) share its encoding: the image is processed once
            keys = [(id(r.image), p) for r, p in zip(requests, prompts)]
            unique = {k: (r.image, k[1]) for k, r in zip(keys, requests)}
            enc_p = self._encode([p for _, p in unique.values()], [img for img, _ in unique.values()], "right")
            extra = {k: v for k, v in enc_p.items() if k not in ("input_ids", "attention_mask")}
            if all(isinstance(v, torch.Tensor) and v.shape[0] == len(unique) for v in extra.values()):
                index = torch.tensor([list(unique).index(k) for k in keys], device=self.device)
                return self._logprobs_shared_prefix(enc_p, extra, enc_c, index)
        # one encoding per request: image tensors come in each family's own layout (one per row,
        # flattened patches, packed slices), which only the processor knows how to batch
        enc_p = self._encode(prompts, [r.image for r in requests], "right")
        extra = {k: v for k, v in enc_p.items() if k not in ("input_ids", "attention_mask")}
        rows, aligned, spans = [], {k: [] for k in _TOKEN_ALIGNED if k in extra}, []
        for i in range(len(requests)):
            p_keep = enc_p["attention_mask"][i].bool()
            p_ids = enc_p["input_ids"][i][p_keep]
            c_ids = enc_c["input_ids"][i][enc_c["attention_mask"][i].bool()]
            rows.append(torch.cat([p_ids, c_ids]))
            spans.append((len(p_ids), len(p_ids) + len(c_ids)))
            for k in aligned:  # e.g. Qwen's mm_token_type_ids: the prompt's, then 0 (text) for the answer
                aligned[k].append(torch.cat([extra[k][i][p_keep], torch.zeros_like(c_ids)]))
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=rows[0].dtype, device=self.device)
        attention = torch.zeros((len(rows), width), dtype=torch.long, device=self.device)
        for k, values in aligned.items():
            extra[k] = torch.zeros((len(rows), width), dtype=values[0].dtype, device=self.device)
            for i, v in enumerate(values):
                extra[k][i, : len(v)] = v
        for i, r in enumerate(rows):  # right padding keeps every real token at its true position
            input_ids[i, : len(r)], attention[i, : len(r)] = r, 1
        with torch.no_grad():
            hidden = self._body(input_ids=input_ids, attention_mask=attention, **extra).last_hidden_state
            # token t is predicted at position t - 1
            row_of = torch.cat(
                [torch.full((end - start,), row, device=self.device) for row, (start, end) in enumerate(spans)]
            )
            pos = torch.cat([torch.arange(start - 1, end - 1, device=self.device) for start, end in spans])
            token_logps = self._token_logprobs(hidden[row_of, pos], input_ids[row_of, pos + 1])
        return split_logprobs(token_logps, [end - start for start, end in spans])

    def _logprobs_shared_prefix(self, enc_p, extra, enc_c, index) -> list[SequenceLogprobs]:
        """The same log-probs with each distinct prompt (and its image) encoded once: a prefix pass
        over the distinct prompts fills a KV cache, which every completion of that prompt extends
        (padding between prompt and completion is masked; positions stay true)."""
        import torch

        p_ids, p_mask = enc_p["input_ids"], enc_p["attention_mask"]
        p_len = p_mask.sum(1)
        c_ids, c_mask = enc_c["input_ids"], enc_c["attention_mask"]
        with torch.no_grad():
            out = self._body(input_ids=p_ids, attention_mask=p_mask, use_cache=True, **extra)
            cache, cache_kw = cache_of(out)
            cache.batch_select_indices(index)
            positions = p_len.index_select(0, index)[:, None] + torch.arange(c_ids.shape[1], device=self.device)
            hidden = self._body(
                input_ids=c_ids,
                attention_mask=torch.cat([p_mask.index_select(0, index), c_mask], 1),
                position_ids=positions,
                use_cache=True,
                **{cache_kw: cache},
            ).last_hidden_state
            # completion token j is predicted at the prompt's end (j = 0) or at completion position j - 1
            first = out.last_hidden_state[torch.arange(len(p_ids), device=self.device), p_len - 1].index_select(
                0, index
            )
            predictors = torch.cat([first[:, None], hidden[:, :-1]], 1)
            keep = c_mask.bool()
            token_logps = self._token_logprobs(predictors[keep], c_ids[keep])
        return split_logprobs(token_logps, c_mask.sum(1).tolist())

    def _token_logprobs(self, hidden, targets):
        """log p(target) for each (hidden state, target) pair: the vocabulary projection and the
        log-softmax run on a bounded block of tokens at a time, in fp32."""
        import torch

        vocab = self.model.get_output_embeddings().weight.shape[0]
        step = max(1, _LOGIT_BLOCK // vocab)
        out = []
        for i in range(0, len(targets), step):
            logits = self._head(hidden[i : i + step]).float()
            picked = logits.gather(-1, targets[i : i + step, None].to(logits.device))[:, 0]
            out.append(picked - torch.logsumexp(logits, -1))
        return torch.cat(out) if out else torch.zeros(0)
