"""The vLLM backend: the same Protocol as `hf`, for GPU clusters (and vLLM's CPU build in CI).

- generate: one vLLM request per candidate with its own `SamplingParams(seed=...)`, so a candidate
  depends only on its seed (never n>1: Ray Data LLM keeps only the first of n samples).
- yes_no: one greedy token with the top-k log-probs of the first answer token; p_yes / p_no are
  P(yes)+P(Yes) / P(no)+P(No) over the full vocabulary, as in `hf`. A word outside the top k counts
  as 0; its true probability is below the k-th one (`yes_no_top_k`, default 20), which for a yes/no
  question is negligible: the answer tokens are the top ones.
- sequence_logprobs: prompt log-probs of prompt + completion token ids, tokenized separately like
  TRL's DPO collator (the same tokens the `hf` engine scores).
GPU placement is the pipeline's business (Ray sets the actor's visible GPUs); the engine runs in
the calling process (no engine-core subprocess), so it lives and dies with its actor.
"""

from __future__ import annotations

import math
import os

from ..errors import ModelLoadError
from .base import GenerateRequest, LogprobRequest, SequenceLogprobs, YesNoRequest, check_model_path, user_message
from .chat import ChatFormat

_YES, _NO = ("yes", "Yes"), ("no", "No")


class VLLMEngine:
    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        max_model_len: int = 4096,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        enable_prefix_caching: bool = True,
        enforce_eager: bool = False,
        yes_no_top_k: int = 20,
        seed: int = 0,
        chat_template_kwargs: dict | None = None,
    ):
        import torch
        import transformers

        from ..storage.model_cache import local_model

        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import vllm

        self.name = model
        model = local_model(model)
        check_model_path(model)
        if dtype == "auto":
            dtype = "bfloat16" if torch.cuda.is_available() else "float32"
        try:
            config = transformers.AutoConfig.from_pretrained(model)
            # vLLM fails on a top-k larger than the vocabulary (tiny or custom models)
            yes_no_top_k = min(yes_no_top_k, config.get_text_config().vocab_size)
            self.multimodal = hasattr(config, "vision_config")
            self.chat = ChatFormat.load(model, self.multimodal, config.model_type, chat_template_kwargs)
            self.llm = vllm.LLM(
                model=vllm_loadable(model, config),
                tokenizer=model,
                dtype=dtype,
                seed=seed,
                max_model_len=max_model_len,
                gpu_memory_utilization=gpu_memory_utilization,
                tensor_parallel_size=tensor_parallel_size,
                enable_prefix_caching=enable_prefix_caching,
                enforce_eager=enforce_eager,
                max_logprobs=yes_no_top_k,
                **({"limit_mm_per_prompt": {"image": 1}} if self.multimodal else {}),
                # Tensor parallel inside a Ray actor: the actor holds all tp GPUs and vLLM runs its
                # ranks as local processes. Its "ray" backend (its choice inside a placement group)
                # would ask Ray for GPUs the actor already holds and wait forever.
                **({"distributed_executor_backend": "mp"} if tensor_parallel_size > 1 else {}),
            )
        except (OSError, ValueError, KeyError, ImportError) as exc:  # ImportError: a package the model needs
            raise ModelLoadError(f"model {model!r}: vLLM cannot load it ({exc})") from None
        self._sampling = vllm.SamplingParams
        self.top_k = yes_no_top_k
        self.yes_ids = self.chat.answer_token_ids(_YES)
        self.no_ids = self.chat.answer_token_ids(_NO)

    def _input(self, image, token_ids: list[int]) -> dict:
        # token ids, never text: vLLM would add the tokenizer's BOS to a text prompt whose chat
        # template already wrote one (and TRL trains without it)
        item = {"prompt_token_ids": token_ids}
        if image is not None:
            if not self.multimodal:
                raise ValueError(f"{self.name} is a text-only model; it cannot take an image")
            item["multi_modal_data"] = {"image": image}
        return item

    def _run(self, inputs: list[dict], params):
        return self.llm.generate(inputs, params, use_tqdm=False)

    def generate(self, requests: list[GenerateRequest]) -> list[str]:
        if not requests:
            return []
        params = [
            self._sampling(
                temperature=r.params.temperature, top_p=r.params.top_p, max_tokens=r.params.max_new_tokens, seed=r.seed
            )
            for r in requests
        ]
        outs = self._run(
            [self._input(r.image, self.chat.token_ids(self.chat.prompt(r.messages))) for r in requests], params
        )
        return [o.outputs[0].text.strip() for o in outs]

    def yes_no(self, requests: list[YesNoRequest]) -> list[tuple[float, float]]:
        if not requests:
            return []
        params = self._sampling(temperature=0.0, max_tokens=1, logprobs=self.top_k)
        inputs = [
            self._input(r.image, self.chat.token_ids(self.chat.prompt(user_message(r.question, r.image is not None))))
            for r in requests
        ]
        result = []
        for out in self._run(inputs, params):
            top = out.outputs[0].logprobs[0]  # {token id: Logprob} at the first answer position
            p = {t: math.exp(lp.logprob) for t, lp in top.items()}
            result.append((sum(p.get(t, 0.0) for t in self.yes_ids), sum(p.get(t, 0.0) for t in self.no_ids)))
        return result

    def sequence_logprobs(self, requests: list[LogprobRequest]) -> list[SequenceLogprobs]:
        if not requests:
            return []
        inputs, lengths = [], []
        for r in requests:
            completion = self.chat.token_ids(self.chat.completion(r.messages, r.answer))
            prompt = self.chat.token_ids(self.chat.prompt(r.messages))  # vLLM expands the image token
            inputs.append(self._input(r.image, token_ids=prompt + completion))
            lengths.append(len(completion))
        params = self._sampling(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        result = []
        for out, n in zip(self._run(inputs, params), lengths):
            ids, lps = out.prompt_token_ids[-n:], out.prompt_logprobs[-n:]
            tokens = [lp[t].logprob for t, lp in zip(ids, lps)]
            result.append(SequenceLogprobs(float(sum(tokens)), tokens))
        return result


def vllm_loadable(model: str, config) -> str:
    """A folder vLLM's loader accepts. transformers 5 saves a CLIP or SigLIP tower flattened
    (`vision_tower.embeddings...`: LLaVA, Gemma 3); vLLM expects the hub layout
    (`vision_tower.vision_model...`).
    Such a folder is copied once, keys renamed, into the cache; any other folder is used as is."""
    import json
    import re
    import shutil
    from pathlib import Path

    from safetensors import safe_open

    from ..storage.model_cache import cached_folder

    flat = re.compile(r"^((?:model\.)?vision_tower\.)(?!vision_model\.)")
    vision = getattr(config, "vision_config", None)
    src = Path(model)
    weights = sorted(src.glob("*.safetensors")) if src.is_dir() else []
    if getattr(vision, "model_type", None) not in ("clip_vision_model", "siglip_vision_model") or not weights:
        return model
    with safe_open(weights[0], "pt") as f:
        if not any(flat.match(k) for k in f.keys()):
            return model
    stamp = "|".join(f"{w.resolve()}:{w.stat().st_mtime_ns}:{w.stat().st_size}" for w in weights)

    def rename(key: str) -> str:
        return flat.sub(r"\1vision_model.", key)

    def copy_renamed(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        for item in src.iterdir():
            if item.suffix == ".safetensors":
                save_file(
                    {rename(k): v for k, v in load_file(item).items()}, folder / item.name, metadata={"format": "pt"}
                )
            elif item.name.endswith(".safetensors.index.json"):
                index = json.loads(item.read_text())
                index["weight_map"] = {rename(k): v for k, v in index["weight_map"].items()}
                (folder / item.name).write_text(json.dumps(index))
            elif item.is_file():
                shutil.copy2(item, folder / item.name)

    return cached_folder("vllm-layout", stamp, copy_renamed)
