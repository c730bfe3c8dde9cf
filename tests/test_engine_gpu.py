"""The same engine on CUDA (skipped on CPU machines): results agree with the CPU path."""

import pytest

from rlaifv_ray.engines import GenerateRequest, SamplingParams, YesNoRequest, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.prompts import LABEL_PROMPT
from rlaifv_ray.toyworld.world import OBJECTS, scene_and_image

pytestmark = pytest.mark.gpu


def test_cuda_engine_matches_cpu(toy_models):
    cpu = load_engine(str(toy_models / "labeler"), device="cpu")
    gpu = load_engine(str(toy_models / "labeler"), device="cuda", dtype="float32")
    images = [scene_and_image(5, i)[1] for i in range(4)]
    requests = [
        YesNoRequest(LABEL_PROMPT.format(question=f"Is there a {o} in the image?"), img)
        for img in images
        for o in OBJECTS
    ]
    for (a, b), (c, d) in zip(cpu.yes_no(requests), gpu.yes_no(requests)):
        assert abs(a - c) < 1e-3 and abs(b - d) < 1e-3


def test_cuda_bf16_generation_is_seeded_and_describes_the_image(toy_models):
    """bf16 sampling on the GPU: the same seed gives the same answer, other seeds other answers,
    and the answers name objects that are in the images (the policy's CPU recall is ~0.9)."""
    from rlaifv_ray.toyworld.hallucination import hallucination_metrics

    gpu = load_engine(str(toy_models / "policy"), device="cuda")
    scenes, images = zip(*(scene_and_image(5, i) for i in range(8)))

    def sample(seeds):
        return gpu.generate(
            [
                GenerateRequest(user_message("Describe the image.", True), img, SamplingParams(0.7, 1.0, 32), seed=s)
                for img, s in zip(images, seeds)
            ]
        )

    first, again, other = sample(range(8)), sample(range(8)), sample(range(100, 108))
    assert first == again
    assert first != other
    assert all(t.strip() for t in first)
    assert hallucination_metrics(first, [s.kinds for s in scenes])["recall"] >= 0.5, first
