"""A model folder's processor, image-only where its video half cannot load.

Most 2025-26 processors (Qwen2/2.5/3-VL, Qwen3.5, InternVL, MiniCPM-V, GLM-4.1V, LLaVA-OneVision
...) build a video processor even for images, and every transformers video processor needs
torchvision, which does not load beside a CPU torch and is often missing on lean inference images.
`load_processor` tries the stock `AutoProcessor` first; when it fails for that reason alone, it
loads the same processor class again with an *inert* video processor: an object of the folder's own
video processor class that holds the folder's video settings (some processors read them while they
are built) and refuses videos. Images, chat templates and saving are the stock code, so no family
is named here and a folder the engine saves stays a stock checkpoint.
"""

from __future__ import annotations

from ..errors import ModelLoadError


def load_processor(model: str, model_type: str = ""):
    """The processor of a model folder or hub id. Raises ModelLoadError with one line naming the
    model and what is missing when neither the stock nor the image-only load works."""
    import transformers

    try:
        return transformers.AutoProcessor.from_pretrained(model)
    except ImportError as exc:
        if "torchvision" not in str(exc).lower():
            raise _missing(model, exc) from None
    cls = image_only_class(_processor_class(model, model_type))
    try:
        processor = cls.from_pretrained(model, video_processor=inert_video_processor(model, model_type))
    except ImportError as exc:  # the processor class itself needs torchvision (Pixtral's)
        raise _missing(model, exc) from None
    # from_pretrained passes its keyword arguments on to the tokenizer, which would save them
    if hasattr(processor, "tokenizer"):
        processor.tokenizer.init_kwargs.pop("video_processor", None)
    return processor


def _missing(model: str, exc: ImportError) -> ModelLoadError:
    """One line: transformers' backend messages run over several, with install instructions."""
    first = " ".join(str(exc).split()).split(". ")[0].rstrip(".")
    return ModelLoadError(f"model {model!r}: its processor needs a package that is missing ({first})")


def image_only_class(cls: type) -> type:
    """CLS (a processor class) accepting an inert video processor: the stock check looks the video
    base class up in transformers' namespace, where without torchvision it is only a placeholder."""
    if cls not in _IMAGE_ONLY:

        def check_argument_for_proper_class(self, name, argument):
            if type(argument) in _INERT.values():
                return type(argument)
            return cls.check_argument_for_proper_class(self, name, argument)

        body = {
            "check_argument_for_proper_class": check_argument_for_proper_class,
            "__module__": cls.__module__,
        }
        _IMAGE_ONLY[cls] = type(cls.__name__, (cls,), body)  # saved configs keep naming the stock class
    return _IMAGE_ONLY[cls]


def _processor_class(model: str, model_type: str) -> type:
    """The processor class a folder names (where AutoProcessor looks), else its model type's."""
    import json

    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES, processor_class_from_name
    from transformers.utils import cached_file

    name = None
    for file in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        path = cached_file(model, file, _raise_exceptions_for_missing_entries=False)
        if path:
            with open(path, encoding="utf-8") as f:
                name = json.load(f).get("processor_class")
        if name:
            break
    name = name or PROCESSOR_MAPPING_NAMES.get(model_type)
    cls = processor_class_from_name(name) if name else None
    if cls is None:
        raise ModelLoadError(f"model {model!r}: no processor class found for model type {model_type!r}")
    return cls


def inert_video_processor(model: str, model_type: str = "", config: dict | None = None):
    """An instance of the folder's video processor class (from its saved config, else the one
    transformers maps to MODEL_TYPE) that holds its settings without building torchvision
    transforms; calling it raises. config: the settings, when there is no folder to read."""
    from transformers.video_processing_utils import BaseVideoProcessor

    if config is None:
        try:
            config, _ = BaseVideoProcessor.get_video_processor_dict(model)
        except OSError:  # no video processor config saved: the class's defaults
            config = {}
    name = config.get("video_processor_type")
    stock = _video_class(name, model_type)
    if stock is None:  # its module imports torchvision itself (InternVL's): the base class, same settings
        stock = BaseVideoProcessor
    return _inert_class(stock, name or stock.__name__)(config)


def _video_class(name: str | None, model_type: str):
    """The real video processor class NAME (or, unnamed, MODEL_TYPE's), imported from its module:
    without torchvision transformers' own maps hold no names and its top-level names are
    placeholders, but the modules import and define the classes."""
    import importlib

    from transformers.video_processing_utils import BaseVideoProcessor

    # the module itself: without torchvision the auto package's attribute of that name is a placeholder
    auto = importlib.import_module("transformers.models.auto.video_processing_auto")
    if name is None:  # families that borrow another's video processor (Qwen3.5 uses Qwen3-VL's)
        name = getattr(auto, "MISSING_VIDEO_PROCESSOR_MAPPING_NAMES", {}).get(model_type, {}).get("torchvision")
    # the model type's own module first, then those whose name starts the class name (Qwen3VL...)
    prefix = (name or "").lower()
    others = sorted(auto.VIDEO_PROCESSOR_MAPPING_NAMES, key=lambda mt: not prefix.startswith(mt.replace("_", "")))
    for mt in (mt for mt in dict.fromkeys([model_type, *others]) if mt):
        module_name = auto.model_type_to_module_name(mt)
        path = f"transformers.models.{module_name}.video_processing_{module_name}"
        try:
            module = importlib.import_module(path)
        except Exception:  # noqa: BLE001 - no such module, or one that needs torchvision at import time
            continue
        found = [
            c
            for c in vars(module).values()
            if isinstance(c, type) and issubclass(c, BaseVideoProcessor) and c.__module__ == path
        ]
        for cls in found:
            if cls.__name__ == name or (name is None and mt == model_type):
                return cls
        if name is None:
            return None
    return None


_INERT: dict[tuple[type, str], type] = {}
_IMAGE_ONLY: dict[type, type] = {}


def _inert_class(stock: type, name: str) -> type:
    """A subclass of STOCK under the folder's class NAME (so a saved processor config names the
    stock class): it keeps the settings as attributes and refuses to process videos."""
    if (stock, name) not in _INERT:

        def __init__(self, config: dict):
            self.__dict__.update({k: v for k, v in config.items() if k != "video_processor_type"})

        def refuse(self, *args, **kwargs):
            raise ValueError(f"{name} was loaded image-only (torchvision is missing): videos are not supported")

        def to_dict(self):
            return {**{k: v for k, v in self.__dict__.items() if not k.startswith("_")}, "video_processor_type": name}

        _INERT[stock, name] = type(
            name,
            (stock,),
            {"__init__": __init__, "__call__": refuse, "preprocess": refuse, "to_dict": to_dict},
        )
    return _INERT[stock, name]
