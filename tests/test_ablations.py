"""The paper's ablations as config switches (docs/method.md): confounded candidates
(sampling.deconfound false) and a one-shot schedule (schedule one_shot). Each default is the method,
and leaves the resume keys of runs made before the switch existed as they were."""

import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.config import validate_config
from rlaifv_ray.engines import GenerateRequest, SamplingParams, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.stages.sample_candidates import SampleCandidates, decoding
from rlaifv_ray.toyworld.world import png_bytes, scene_and_image
from tests.conftest import toy_config


def test_confounded_decoding_gives_each_candidate_its_own_setting():
    base = SamplingParams(0.7, 1.0, 40)
    assert decoding(8, base, True) == [base] * 8
    confounded = decoding(8, base, False)
    assert confounded[0] == SamplingParams(0.0, 1.0, 40)  # greedy
    temperatures = [p.temperature for p in confounded[1:]]
    assert min(temperatures) == pytest.approx(0.35) and max(temperatures) == pytest.approx(1.05)
    assert len(set(confounded)) == 8 and {p.top_p for p in confounded} == {0.8, 1.0}
    assert {p.max_new_tokens for p in confounded} == {40}
    assert decoding(2, base, False) == [SamplingParams(0.0, 1.0, 40), SamplingParams(0.35, 1.0, 40)]


def test_confounded_candidates_are_sampled_under_their_settings(toy_models, torch_threads):
    """Candidate 0 is the policy's greedy answer, whatever the run's seed."""
    image = scene_and_image(4, 2)[1]
    rows = {S.PROMPT_ID: ["p"], S.IMAGE: [png_bytes(image)], S.INSTRUCTION: ["Describe the image."]}
    settings = dict(model=str(toy_models / "policy"), n=4, temperature=0.7, top_p=1.0, max_new_tokens=40)
    seed0 = SampleCandidates(**settings, run_seed=0, deconfound=False)(dict(rows))[S.ANSWER]
    seed1 = SampleCandidates(**settings, run_seed=1, deconfound=False)(dict(rows))[S.ANSWER]
    greedy = load_engine(settings["model"]).generate(
        [GenerateRequest(user_message("Describe the image.", True), image, SamplingParams(0.0, 1.0, 40))]
    )
    assert seed0[0] == seed1[0] == greedy[0]
    assert seed0[1:] != seed1[1:]  # the sampled ones follow their seeds


def test_switches_at_their_defaults_keep_the_methods_resume_keys(tmp_path, toy_models):
    from rlaifv_ray.pipeline.stage_specs import stage_specs

    policy = str(toy_models / "policy")
    method = stage_specs(validate_config(toy_config(tmp_path, toy_models)), policy, policy)["candidates"]
    off = validate_config(toy_config(tmp_path, toy_models, **{"sampling.deconfound": False}))
    assert "deconfound" not in method.kwargs  # the key a run made before the switch existed has
    assert stage_specs(off, policy, policy)["candidates"].resume_key("up") != method.resume_key("up")


def test_one_shot_samples_every_iteration_from_the_starting_policy(tmp_path, toy_models):
    """The policy an iteration trains stays its reference (and self-labeler); only sampling moves."""
    from rlaifv_ray.driver import sampler
    from rlaifv_ray.pipeline.feedback import FeedbackRun

    assert sampler(validate_config(toy_config(tmp_path, toy_models))) is None  # iterative: the policy samples
    config = validate_config(toy_config(tmp_path, toy_models, schedule="one_shot", **{"models.labeler_mode": "self"}))
    start, trained = config.models.policy.path, str(tmp_path / "run" / "iter_000" / "checkpoint")
    assert sampler(config) == start
    specs = FeedbackRun(config, 1, trained, "toy:4", sampler(config)).specs
    assert specs["candidates"].kwargs["model"] == start
    assert specs["reference"].kwargs["model"] == specs["labels"].kwargs["model"] == trained
    with pytest.raises(Exception, match="schedule"):
        validate_config(toy_config(tmp_path, toy_models, schedule="once"))


def test_holistic_scoring_asks_one_question_per_answer_and_scores_its_yes_probability():
    from rlaifv_ray.prompts import HOLISTIC_QUESTION
    from rlaifv_ray.stages.build_pairs import BuildPairs
    from rlaifv_ray.stages.extract_claims import ExtractClaims
    from rlaifv_ray.stages.scores import holistic_score

    answers = ["There is a red circle.", "A blue square."]
    out = ExtractClaims(mode="holistic")({S.ANSWER: answers})
    assert out[S.CLAIMS] == [[a] for a in answers] and out[S.CLAIM_ERROR] == [None, None]
    assert out[S.QUESTIONS] == [[HOLISTIC_QUESTION.format(answer=a)] for a in answers]
    assert holistic_score([(0.6, 0.2)]) == 750 and holistic_score([]) is None and holistic_score([(0, 0)]) is None
    # pairs need min_p_gap (0.2 -> 200 thousandths) between the yes-probabilities
    scores = {"a": 900, "b": 750, "c": 650, "d": 100}
    rows = {
        S.PROMPT_ID: ["p"] * 4,
        S.ANSWER_ID: list(scores),
        S.ANSWER: [f"answer {k}" for k in scores],
        S.SCORE: list(scores.values()),
        S.IMAGE_ID: ["i"] * 4,
        S.INSTRUCTION: ["Describe the image."] * 4,
        S.TRUTH: [[]] * 4,
    }
    pairs = BuildPairs(200, 10, 0)(rows)
    got = {(c, r) for c, r in zip(pairs[S.CHOSEN_ID], pairs[S.REJECTED_ID])}
    assert got == {("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")}


def test_holistic_config_drops_the_claim_llm_and_keeps_the_methods_keys(tmp_path, toy_models):
    from rlaifv_ray.errors import ConfigError
    from rlaifv_ray.pipeline.feedback import FeedbackRun

    method = validate_config(toy_config(tmp_path, toy_models))
    holistic = validate_config(toy_config(tmp_path, toy_models, scoring="holistic"))
    assert method.stage_models()["claims"] is not None and holistic.stage_models()["claims"] is None
    a, b = (FeedbackRun(c, 0, c.models.policy.path, "toy:4") for c in (method, holistic))
    assert "holistic" not in a.specs["labels"].kwargs and b.specs["labels"].kwargs["holistic"] is True
    assert a.keys["candidates"] == b.keys["candidates"] and a.keys["claims"] != b.keys["claims"]
    # the pairs key holds the pair settings the scoring uses, and only those
    wider = validate_config(toy_config(tmp_path, toy_models, **{"pairs.min_p_gap": 0.5}))
    assert FeedbackRun(wider, 0, wider.models.policy.path, "toy:4").keys == a.keys
    with pytest.raises(ConfigError, match="scoring holistic"):
        validate_config(toy_config(tmp_path, toy_models, scoring="holistic", **{"models.labeler_mode": "ground_truth"}))


@pytest.mark.parametrize("holistic", [True, False])
def test_the_report_plots_either_kind_of_candidate_score(tmp_path, holistic):
    """Claim scores are -(rejected claims) <= 0; holistic ones yes-probabilities in thousandths."""
    import pyarrow as pa

    from rlaifv_ray.report import write_report
    from rlaifv_ray.storage.store import RunStore

    store = RunStore(str(tmp_path))
    scores = [125, 500, 990, 1000] if holistic else [0, 0, -1, -3]
    store.write_part("iter_000/labels", pa.table({S.SCORE: pa.array(scores, pa.int64())}), ["a"])
    summary = [{"iteration": 0, "chair_s": 0.3, "recall": 0.9}, {"iteration": 1, "chair_s": 0.2, "recall": 0.9}]
    write_report(store, summary, holistic=holistic)
    assert store.read_bytes("scores.png")[:4] == b"\x89PNG" and store.exists("report.html")
