"""Preference datasets (rlaifv / trl): format detection, conversion both ways, what `datasets` loads."""

import io

import pytest

from rlaifv_ray import schema as S
from rlaifv_ray.errors import ConfigError
from rlaifv_ray.preference_data import SOURCE, detect_format, from_pairs, to_pairs
from rlaifv_ray.toyworld.datasets import synthetic_pairs, write_pair_shards


def test_formats_are_detected_and_a_file_of_neither_names_what_it_lacks():
    assert detect_format(["ds_name", "image", "question", "chosen", "rejected", "idx"], "f") == "rlaifv"
    assert detect_format(["prompt", "images", "chosen", "rejected"], "f") == "trl"
    assert detect_format(["prompt", "image", "chosen", "rejected"], "f") == "trl"  # TRL's one-image form
    with pytest.raises(ConfigError) as err:
        detect_format(["image", "question", "chosen"], "shard-3.parquet")
    assert "shard-3.parquet" in str(err.value) and "as rlaifv it lacks column(s) rejected" in str(err.value)
    with pytest.raises(ConfigError, match=r"as trl it lacks column\(s\) images, chosen, rejected"):
        detect_format(["prompt", "answer"], "f")


@pytest.mark.parametrize("fmt", ["rlaifv", "trl"])
def test_our_pairs_survive_the_format_both_ways(fmt):
    cols, images = synthetic_pairs(5)
    table = from_pairs(cols, images, fmt, origin="test")
    batch = {**table.to_pydict(), SOURCE: [f"f#{i}" for i in range(5)]}
    back = to_pairs(batch, fmt)
    assert back[S.ERROR] == [None] * 5
    assert back[S.IMAGE] == images
    for ours, theirs in ((S.INSTRUCTION, S.INSTRUCTION), (S.CHOSEN, S.CHOSEN), (S.REJECTED, S.REJECTED)):
        assert back[theirs] == cols[ours]
    assert back[S.PROMPT_ID] == batch[SOURCE] and back[S.CHOSEN_ID][0] == "f#0/chosen"


def test_rows_without_a_usable_image_or_answer_carry_their_reason():
    png = synthetic_pairs(1)[1][0]
    batch = {
        SOURCE: ["a#0", "a#1", "a#2", "a#3", "a#4", "a#5"],
        "prompt": [
            "Describe.",
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Say."}]}],
            "Describe.",
            "Describe.",
            "Describe.",
            "  ",
        ],
        "images": [
            [{"bytes": png, "path": None}],
            [png],
            [{"bytes": None, "path": "x/1.jpg"}],
            [png, png],
            [png],
            [png],
        ],
        "chosen": [
            "A red circle.",
            [{"role": "assistant", "content": [{"type": "text", "text": "Yes."}]}],
            "a",
            "a",
            "",
            "a",
        ],
        "rejected": ["A blue square.", "No.", "b", "b", "b", "b"],
    }
    out = to_pairs(batch, "trl")
    assert out[S.ERROR][:2] == [None, None]
    assert (out[S.INSTRUCTION][1], out[S.CHOSEN][1]) == ("Say.", "Yes.")  # conversational content parts
    assert out[S.ERROR][2] == "image has no bytes (only a path: x/1.jpg)"
    assert out[S.ERROR][3] == "2 images in one pair; one per pair is supported"
    assert out[S.ERROR][4] == "empty chosen"
    assert out[S.ERROR][5] == "empty question"


@pytest.mark.parametrize("fmt,image_column", [("rlaifv", "image"), ("trl", "images")])
def test_written_shards_load_with_datasets_with_their_images_decoded(tmp_path, monkeypatch, fmt, image_column):
    import datasets
    from PIL import Image

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    paths = write_pair_shards(str(tmp_path / fmt), fmt, 10, 3)
    ds = datasets.load_dataset("parquet", data_files=paths, split="train")
    assert len(ds) == 10
    cols, images = synthetic_pairs(10)
    first = ds[0][image_column]
    first = first[0] if isinstance(first, list) else first
    assert isinstance(first, Image.Image)
    assert first.tobytes() == Image.open(io.BytesIO(images[0])).convert("RGB").tobytes()
    text = ds[3]["chosen"] if fmt == "rlaifv" else ds[3]["chosen"][0]["content"]
    assert text == cols[S.CHOSEN][3]


@pytest.mark.parametrize("fmt", ["rlaifv", "trl"])
def test_an_export_says_how_each_pair_was_built_and_what_an_edit_changed(fmt):
    """Provenance columns: builder (rlaif_v, claim_edit, imported) and, for an edit pair, the character
    spans of chosen and rejected that differ; they load with `datasets` under their declared features."""
    import datasets

    cols, images = synthetic_pairs(3)
    rejected = "There is a red circle. There is a blue star. There is a green square."
    cols[S.REJECTED][1], cols[S.CHOSEN][1] = rejected, "There is a red circle. There is a green square."
    cols[S.CHOSEN_ID][1] = "shapes-x/a3" + S.EDIT_SUFFIX
    cols[S.CHOSEN_SCORE][2] = None  # a pair imported from a dataset
    table = from_pairs(cols, images, fmt, origin="test")
    loaded = datasets.Dataset(table).cast(datasets.Features.from_dict(json_features(table)))
    assert loaded["builder"] == ["rlaif_v", "claim_edit", "imported"]
    assert loaded["edited_chosen_spans"][1] == [] and loaded["edited_chosen_spans"][0] == []
    (start, end), *rest = loaded["edited_rejected_spans"][1]
    assert not rest and rejected[start:end] == "There is a blue star. "


def json_features(table) -> dict:
    import json

    return json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]


def test_an_image_given_by_url_is_read_by_the_fetch_the_import_stage_hands_in():
    """to_pairs stays pure: a URL image is read by FETCH (the import stage's, with the run's limits),
    its failure is the row's reason, and without a fetch the row says it has only a path."""
    png = synthetic_pairs(1)[1][0]
    batch = {
        SOURCE: ["a#0", "a#1"],
        "image": [{"bytes": None, "path": "https://img/ok.png"}, {"bytes": None, "path": "s3://b/gone.png"}],
        "question": ["Describe.", "Describe."],
        "chosen": ["A red circle.", "A red circle."],
        "rejected": ["A blue square.", "A blue square."],
    }
    asked = []

    def fetch(url):
        asked.append(url)
        return (png, None) if url.endswith("ok.png") else (b"", "no such object")

    out = to_pairs(batch, "rlaifv", fetch)
    assert asked == ["https://img/ok.png", "s3://b/gone.png"]
    assert (out[S.IMAGE][0], out[S.ERROR][0]) == (png, None)
    assert (out[S.IMAGE][1], out[S.ERROR][1]) == (None, "no such object")
    assert to_pairs(batch, "rlaifv")[S.ERROR][0] == "image has no bytes (only a path: https://img/ok.png)"
