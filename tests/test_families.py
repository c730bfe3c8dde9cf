"""Every engine method on every model family of the zoo (tiny random-init models of the real
classes, with their tokenizers' real quirks): batching, prefix sharing and DPO's reference
log-probs must agree exactly with the plain computation and with TRL. The measured gaps go to
$RLAIFV_FAMILY_REPORT (JSON) when set."""

import copy
import json
import math
import os

import pytest
import torch

from rlaifv_ray.engines import GenerateRequest, LogprobRequest, SamplingParams, YesNoRequest, load_engine
from rlaifv_ray.engines.base import user_message
from rlaifv_ray.toyworld.world import png_bytes, scene_and_image
from tests import zoo
from tests.test_train import _for_trl
from tests.zoo_tokenizers import eos_ids_of

VISION = zoo.VISION_FAMILIES
QUESTIONS = ["Is there a red circle in the image?", "Is there a blue square?", "Is there a triangle in the picture?"]
ANSWERS = ["There is a red circle.", "There is a blue square and a green triangle.", "A yellow circle."]


REPORT: dict = {}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield REPORT
    if os.environ.get("RLAIFV_FAMILY_REPORT"):
        with open(os.environ["RLAIFV_FAMILY_REPORT"], "w") as f:
            json.dump(REPORT, f, indent=2)


def _record(family: str, **values) -> None:
    REPORT.setdefault(family, {}).update(values)


def _gap(a, b) -> float:
    return max(abs(x - y) for x, y in zip(a, b))


def _images():
    small = scene_and_image(3, 0)[1]
    wide = scene_and_image(3, 1)[1].resize((112, 56))  # another size: anyres tiles / another Qwen grid
    return small, wide


def _close(a, b, tol=1e-4):
    return max(abs(x - y) for x, y in zip(a, b)) < tol


@pytest.mark.parametrize("family", VISION)
def test_yes_no_batched_and_prefix_shared_equal_one_at_a_time(zoo_dir, torch_threads, family):
    small, wide = _images()
    requests = [YesNoRequest(q, img) for img in (small, wide) for q in QUESTIONS]
    shared = load_engine(str(zoo_dir / family))
    plain = load_engine(str(zoo_dir / family), share_image_prefix=False)
    batched = shared.yes_no(requests)
    single = [plain.yes_no([r])[0] for r in requests]
    _record(
        family,
        yes_no_batched_vs_single=_gap([p for x in batched for p in x], [p for x in single for p in x]),
        yes_no_prefix_shared=shared.share_image_prefix,
    )
    assert _close([p for pair in batched for p in pair], [p for pair in single for p in pair])
    assert all(0 < y + n <= 1 for y, n in batched)


@pytest.mark.parametrize("family", VISION)
def test_sequence_logprobs_batched_and_prefix_shared_equal_one_at_a_time(zoo_dir, torch_threads, family):
    small, wide = _images()
    msgs = user_message("Describe the image.", True)
    requests = [LogprobRequest(msgs, a, img) for img in (small, wide) for a in ANSWERS]
    shared = load_engine(str(zoo_dir / family), batch_size=4)  # chunks cut through a prompt's candidates
    plain = load_engine(str(zoo_dir / family), share_image_prefix=False)
    batched = shared.sequence_logprobs(requests)
    single = [plain.sequence_logprobs([r])[0] for r in requests]
    _record(family, logprobs_batched_vs_single=_gap([b.total for b in batched], [s.total for s in single]))
    assert [len(b.tokens) for b in batched] == [len(s.tokens) for s in single]
    assert _close([b.total for b in batched], [s.total for s in single])
    assert all(_close(b.tokens, s.tokens) for b, s in zip(batched, single))


@pytest.mark.parametrize("family", VISION + zoo.TEXT_FAMILIES)
def test_generate_is_seeded_and_stops_at_any_eos(zoo_dir, torch_threads, family):
    engine = load_engine(str(zoo_dir / family))
    image = _images()[0] if family in VISION else None
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    reqs = [
        GenerateRequest(user_message("Describe the image.", image is not None), image, params, seed=s)
        for s in (1, 2, 1)
    ]
    out = engine.generate(reqs)
    assert out[0] == out[2]
    assert len(engine.eos_ids) >= 1 and set(engine.eos_ids) >= set(eos_ids_of(zoo_dir / family))
    prompt = engine.chat.prompt(reqs[0].messages)
    ids = engine._encode([prompt], [image], "left")["input_ids"][0].tolist()
    bos = engine.tokenizer.bos_token_id
    assert bos is None or ids.count(bos) <= 1, "the tokenizer's BOS must not be added to a template's own"


@pytest.mark.parametrize("family", VISION)
def test_reference_logps_cover_trls_tokens_and_give_ln2_at_step_0(zoo_dir, torch_threads, tmp_path, family):
    """Stored-reference DPO loss == ln 2 when policy == reference, and == TRL's live-reference loss
    when they differ: the engine scores exactly the tokens TRL's collator trains on."""
    import datasets
    from trl import DPOTrainer

    from rlaifv_ray import schema as S
    from rlaifv_ray.config import TrainConfig
    from rlaifv_ray.train.dpo import build_trainer, dpo_args, load_policy, pair_examples

    path = str(zoo_dir / family)
    engine = load_engine(path)
    small, wide = _images()
    cols = {
        k: []
        for k in (S.PROMPT_ID, S.IMAGE, S.INSTRUCTION, S.CHOSEN, S.REJECTED, S.REF_CHOSEN_LOGP, S.REF_REJECTED_LOGP)
    }
    for i, (image, (chosen, rejected)) in enumerate(zip((small, wide), zip(ANSWERS, ANSWERS[1:]))):
        msgs = user_message("Describe the image.", True)
        ref = engine.sequence_logprobs([LogprobRequest(msgs, chosen, image), LogprobRequest(msgs, rejected, image)])
        for k, v in (
            (S.PROMPT_ID, f"p{i}"),
            (S.IMAGE, png_bytes(image)),
            (S.INSTRUCTION, "Describe the image."),
            (S.CHOSEN, chosen),
            (S.REJECTED, rejected),
            (S.REF_CHOSEN_LOGP, ref[0].total),
            (S.REF_REJECTED_LOGP, ref[1].total),
        ):
            cols[k].append(v)
    examples = pair_examples(cols, cols[S.IMAGE])
    reference, processor = load_policy(path)
    args = dpo_args(TrainConfig(beta=0.1, batch_size=2), str(tmp_path / "out"))

    same = build_trainer(copy.deepcopy(reference), processor, copy.deepcopy(examples), args)
    batch = same.data_collator(copy.deepcopy(examples))
    with torch.no_grad():
        step0 = same.compute_loss(same.model, batch).item()
    _record(family, dpo_step0_loss=step0)
    assert step0 == pytest.approx(math.log(2), abs=1e-4)

    policy = copy.deepcopy(reference)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    ours = build_trainer(policy, processor, copy.deepcopy(examples), args)
    plain = _for_trl(examples)
    live = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        processing_class=processor,
        train_dataset=datasets.Dataset.from_list(plain),
    )
    with torch.no_grad():
        loss_ours = ours.compute_loss(policy, ours.data_collator(copy.deepcopy(examples))).item()
        loss_live = live.compute_loss(policy, live.data_collator(copy.deepcopy(plain))).item()
    _record(family, dpo_stored_vs_live_ref=abs(loss_ours - loss_live), dpo_loss_perturbed=loss_ours)
    assert abs(loss_ours - math.log(2)) > 1e-3, "policy and reference should differ here"
    assert loss_ours == pytest.approx(loss_live, abs=1e-4)


@pytest.mark.parametrize("family", VISION)
def test_dpo_freezes_the_vision_encoder_and_trains_the_projector(zoo_dir, family):
    from rlaifv_ray.train.dpo import freeze_vision_tower, load_policy

    # each family's encoder and projector as transformers names them, written out here rather than
    # taken from freeze_vision_tower: (encoder prefix, projector prefix)
    expected = {
        "llava15": ("model.vision_tower.", "model.multi_modal_projector."),
        "llava_next": ("model.vision_tower.", "model.multi_modal_projector."),
        "qwen2_vl": ("model.visual.", "model.visual.merger."),
        "qwen2_5_vl": ("model.visual.", "model.visual.merger."),
        "idefics3": ("model.vision_model.", "model.connector."),
        "qwen3_vl": ("model.visual.", ("model.visual.merger.", "model.visual.deepstack_merger_list.")),
        "qwen3_5": ("model.visual.", "model.visual.merger."),
        "internvl": ("model.vision_tower.", "model.multi_modal_projector."),
        "gemma3": ("model.vision_tower.", "model.multi_modal_projector."),
        "minicpmv4_6": ("model.vision_tower.", "model.merger."),  # not vision_tower.vit_merger: an encoder layer
    }
    encoder_prefix, projector_prefix = expected[family]
    model, _ = load_policy(str(zoo_dir / family))
    freeze_vision_tower(model)
    names = {n: p.requires_grad for n, p in model.named_parameters()}
    encoder = {n for n in names if n.startswith(encoder_prefix) and not n.startswith(projector_prefix)}
    projector = {n for n in names if n.startswith(projector_prefix)}
    if family == "qwen3_vl":
        assert {n for n in projector if "deepstack" in n}, "Qwen3-VL's deepstack mergers are projectors"
    language = {n for n in names if n.startswith(("model.language_model.", "model.text_model."))}
    assert encoder and projector and language
    assert not any(names[n] for n in encoder), f"{family}: the vision encoder must be frozen"
    assert all(names[n] for n in projector | language), f"{family}: projector and language model must train"


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_5", "internvl", "minicpmv4_6"])
def test_folder_with_a_video_processor_loads_and_saves_without_torchvision(zoo_dir, tmp_path, family):
    import importlib.util
    import json

    import transformers

    folder = zoo_dir / family
    if importlib.util.find_spec("torchvision") is None:  # the stock loader needs torchvision here
        with pytest.raises((ImportError, OSError, ValueError)):
            transformers.AutoProcessor.from_pretrained(str(folder))
    engine = load_engine(str(folder))
    engine.processor.save_pretrained(tmp_path / "saved")  # as DPO saves the trained policy's folder
    saved = json.loads((tmp_path / "saved" / "processor_config.json").read_text())
    assert (
        saved["processor_class"]
        == type(engine.processor).__name__
        == json.loads((folder / "processor_config.json").read_text())["processor_class"]
    )
    assert saved["video_processor"]["video_processor_type"].endswith("VideoProcessor")
    out = engine.generate(
        [
            GenerateRequest(
                user_message("Describe the image.", True),
                _images()[0],
                SamplingParams(temperature=0.0, max_new_tokens=4),
            )
        ]
    )
    assert isinstance(out[0], str)


def test_a_processor_that_needs_torchvision_itself_fails_with_one_line(zoo_dir, tmp_path):
    """Pixtral's processor class (Mistral 3) needs torchvision even for images: the engine says so in
    one line naming the model and the package, not a traceback of transformers' install notes."""
    import importlib.util
    import shutil

    from rlaifv_ray.errors import ModelLoadError

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here: the processor loads")
    folder = tmp_path / "pixtral_processor"
    shutil.copytree(zoo_dir / "gemma3", folder)
    config = json.loads((folder / "processor_config.json").read_text())
    (folder / "processor_config.json").write_text(json.dumps({**config, "processor_class": "PixtralProcessor"}))
    with pytest.raises(ModelLoadError) as err:
        load_engine(str(folder))
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and "Torchvision" in message, message


def test_yes_no_reads_every_spelling_of_the_answer_words(zoo_dir):
    engine = load_engine(str(zoo_dir / "llava15"))  # SentencePiece-style: "Yes" and "▁Yes" both exist
    spelled = {engine.tokenizer.convert_ids_to_tokens(i) for i in engine.yes_ids}
    assert {"Yes", "▁Yes"} <= spelled or {"yes", "▁yes"} <= spelled
    assert all(engine.tokenizer.convert_tokens_to_string([t]).strip() in ("yes", "Yes") for t in spelled)


@pytest.mark.parametrize("family", VISION)
def test_ranker_scores_each_family_on_the_answer_tokens(zoo_dir, torch_threads, tmp_path, family):
    """Best-of-N rewards per family: zero when policy == reference, the same in a batch as alone,
    and over the answer's own tokens (the template's closing markup left out) for every tokenizer."""
    import shutil

    import transformers

    from rlaifv_ray.reward import Ranker

    path = zoo_dir / family
    shutil.copytree(path, tmp_path / "policy")
    model = transformers.AutoModelForImageTextToText.from_pretrained(path)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    model.save_pretrained(tmp_path / "policy")
    reference = load_engine(str(path))
    ranker = Ranker(load_engine(str(tmp_path / "policy")), reference, beta=0.1)
    image = _images()[1]
    batched = ranker.score([(image, "Describe the image.", ANSWERS)])[0]
    alone = [ranker.score([(image, "Describe the image.", [a])])[0][0] for a in ANSWERS]
    assert _close([r.normalized for r in batched], [r.normalized for r in alone])
    assert len({round(r.normalized, 6) for r in batched}) == len(ANSWERS)  # the policy really differs
    completion_tokens = [
        len(reference.chat.token_ids(reference.completion_text(user_message("x", True), a))) for a in ANSWERS
    ]
    assert all(0 < r.tokens < n for r, n in zip(batched, completion_tokens))
    same = Ranker(reference, reference, beta=0.1).score([(image, "Describe the image.", ANSWERS)])[0]
    assert all(r.normalized == 0 for r in same)


def test_device_map_auto_loads_through_accelerate_and_scores_the_same(zoo_dir, torch_threads):
    """The CPU path of `device_map: auto` (on GPUs it spreads a model over the actor's GPUs)."""
    path = str(zoo_dir / "llava_next")
    plain, mapped = load_engine(path), load_engine(path, device_map="auto")
    assert mapped.device == "cpu"  # inputs go where the embeddings were placed
    image = _images()[1]
    questions = [YesNoRequest(q, image) for q in QUESTIONS]
    scored = [LogprobRequest(user_message("Describe the image.", True), a, image) for a in ANSWERS]
    assert _close(
        [p for pair in plain.yes_no(questions) for p in pair], [p for pair in mapped.yes_no(questions) for p in pair]
    )
    assert _close(
        [s.total for s in plain.sequence_logprobs(scored)], [s.total for s in mapped.sequence_logprobs(scored)]
    )
