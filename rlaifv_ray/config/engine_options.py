"""Per-backend engine options of a model: models.<role>.vllm and models.<role>.sim."""

from __future__ import annotations

from pydantic import Field

from .fields import Strict


class VLLMOptions(Strict):
    max_model_len: int = Field(4096, ge=64, description="Longest prompt + answer in tokens (sizes the KV cache).")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of the actor's GPU memory vLLM may use; lower it when actors share a GPU."
    )
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine shards the model over.")
    enable_prefix_caching: bool = Field(
        True,
        description="Reuse the KV cache of shared prefixes (the image and "
        "prompt of one row's candidates and questions).",
    )
    enforce_eager: bool = Field(False, description="Skip CUDA graphs / compilation (faster start, slower steps).")
    yes_no_top_k: int = Field(
        20, ge=4, description="Log-probs read at the first answer token; yes/Yes/no/No outside the top k count as 0."
    )


class SimOptions(Strict):
    time_scale: float = Field(
        1.0, ge=0, description="Simulated seconds x this = seconds slept (0: none; the pipeline's own CPU alone)."
    )
    image_tokens: int = Field(576, ge=0, description="Tokens one image costs the latency model.")
    answer_words: int = Field(100, ge=3, description="Mean words of a sampled answer.")
