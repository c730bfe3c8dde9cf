"""LoRA for DPO (train.lora): peft's config from ours, and a strict resume of an adapter. No Ray in here."""

from __future__ import annotations

# Where the image encoder sits in the HF multimodal families we support (train/dpo.py freezes it):
# no adapter goes there.
VISION_TOWER_NAMES = ("vision_tower", "visual", "vision_model")


def is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def _load_adapter(model, checkpoint: str) -> None:
    """A resumed LoRA run: the checkpoint's adapter weights, strictly (every saved key must land)."""
    import os

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = os.path.join(checkpoint, "adapter_model.safetensors")
    if not os.path.exists(path):
        raise ValueError(f"{checkpoint}: no adapter_model.safetensors to resume the LoRA run from")
    result = set_peft_model_state_dict(model, load_file(path))
    if result.unexpected_keys:
        raise ValueError(f"{checkpoint}: adapter keys match no module ({result.unexpected_keys[:3]} ...)")


def lora_config(lora):
    """peft's LoraConfig from ours: adapters on the named linear layers of the language model only
    (a regex that skips every vision encoder name)."""
    from peft import LoraConfig

    towers = "|".join(VISION_TOWER_NAMES)
    layers = "|".join(lora.target_modules)
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        bias="none",
        target_modules=rf"^(?!.*\b(?:{towers})\.).*\.(?:{layers})$",
        task_type="CAUSAL_LM",
    )
