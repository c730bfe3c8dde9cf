"""Image-only processors for families whose stock processor also builds a video processor.

`Qwen2VLProcessor` / `Qwen2_5_VLProcessor` construct a video processor even for images, and
video processors import torchvision, which does not load beside a CPU torch (and is often
missing on lean inference images). These subclasses drop the video half; images, chat templates,
`mm_token_type_ids` and saving are the stock code. `load_processor` uses them only when the stock
loader fails for that reason.
"""

from __future__ import annotations

from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor


class _ImageOnly:
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    def to_dict(self):
        # saved under the stock class name, so the folder stays a stock checkpoint
        return {**super().to_dict(), "processor_class": type(self).__mro__[2].__name__}


class ImageOnlyQwen2VLProcessor(_ImageOnly, Qwen2VLProcessor):
    pass


class ImageOnlyQwen2_5_VLProcessor(_ImageOnly, Qwen2_5_VLProcessor):
    pass


IMAGE_ONLY = {"qwen2_vl": ImageOnlyQwen2VLProcessor, "qwen2_5_vl": ImageOnlyQwen2_5_VLProcessor}


def load_processor(model: str, model_type: str):
    """The model folder's processor; image-only for the families above (a stock folder, as the hub
    ships it, names the stock class)."""
    import transformers

    cls = IMAGE_ONLY.get(model_type, transformers.AutoProcessor)
    return cls.from_pretrained(model)
