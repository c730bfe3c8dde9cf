"""rlaifv-ray: RLAIF-V trustworthiness alignment of multimodal LLMs on Ray.

Importing this package is deliberately light (no ray, torch, transformers or vllm): heavy
imports live inside the functions that need them so the CLI starts fast.
"""

__version__ = "0.1.0"
