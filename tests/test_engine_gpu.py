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
    requests = [YesNoRequest(LABEL_PROMPT.format(question=f"Is there a {o} in the image?"), img)
                for img in images for o in OBJECTS]
    for (a, b), (c, d) in zip(cpu.yes_no(requests), gpu.yes_no(requests)):
        assert abs(a - c) < 1e-3 and abs(b - d) < 1e-3


def test_cuda_bf16_generation_runs(toy_models):
    gpu = load_engine(str(toy_models / "policy"), device="cuda")
    image = scene_and_image(5, 0)[1]
    out = gpu.generate([GenerateRequest(user_message("Describe the image.", True), image,
                                        SamplingParams(0.7, 1.0, 32), seed=s) for s in range(4)])
    assert len(out) == 4 and all(isinstance(t, str) for t in out)
