"""CHAIR on captions (Object HalBench): which annotated objects a description names, and which it invents.

Questions: JSONL {question_id, image, text[, image_id]}. Truth: COCO-format instance annotations
({images: [{id, file_name}], annotations: [{image_id, category_id}], categories: [{id, name[,
synonyms]}]}); optionally COCO captions ({annotations: [{image_id, caption}]}) whose named objects
join an image's truth, as CHAIR does. An image is found by the question's image_id, else its file name,
else the COCO id in a name like COCO_val2014_000000391895.jpg.

CHAIRs: share of answers naming at least one object not in the image. CHAIRi: hallucinated mentions /
all mentions (repeats count, as in CHAIR). recall: annotated objects named / annotated objects.
"""

from __future__ import annotations

import re

from .files import document, first
from .objects import Tally, Vocabulary

_COCO_ID = re.compile(r"(\d+)\.\w+$")


def load_truth(
    annotations: tuple[str, str], captions: tuple[str, str] | None, problems: list[str]
) -> tuple[Vocabulary, dict[str, dict]]:
    """(vocabulary, image key -> {"objects": set, "id": image id}) where an image's keys are its id
    and its file name."""
    source, text = annotations
    doc = document(text, source, problems)
    categories, names = {}, {}
    for i, cat in enumerate(doc.get("categories") or [], 1):
        if not isinstance(cat, dict) or cat.get("id") is None or not cat.get("name"):
            problems.append(f"{source} categories item {i}: needs id and name")
            continue
        names[cat["id"]] = str(cat["name"])
        categories[str(cat["name"])] = [str(s) for s in cat.get("synonyms") or []]
    if doc and not categories:
        problems.append(f"{source}: no categories (a COCO instances file lists them)")
    vocabulary = Vocabulary.for_categories(categories)
    images: dict[str, dict] = {}
    for img in doc.get("images") or []:
        entry = {"id": str(img.get("id")), "objects": set()}
        images[entry["id"]] = entry
        if img.get("file_name"):
            images[str(img["file_name"]).rsplit("/", 1)[-1]] = entry
    for i, ann in enumerate(doc.get("annotations") or [], 1):
        entry = images.get(str(ann.get("image_id")))
        if entry is None or ann.get("category_id") not in names:
            problems.append(
                f"{source} annotations item {i}: unknown image_id {ann.get('image_id')!r} "
                f"or category_id {ann.get('category_id')!r}"
            )
            continue
        entry["objects"].add(names[ann["category_id"]])
    if captions is not None:
        cap_source, cap_text = captions
        for ann in document(cap_text, cap_source, problems).get("annotations") or []:
            entry = images.get(str(ann.get("image_id")))
            if entry is not None:
                entry["objects"].update(obj for _, obj in vocabulary.mentions(str(ann.get("caption", ""))))
    return vocabulary, images


def question_fields(item: dict, images: dict[str, dict]) -> dict:
    image, text = first(item, "image"), first(item, "text", "question")
    missing = [
        k for k, v in (("question_id", item.get("question_id")), ("image", image), ("text", text)) if v in (None, "")
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    name = str(image).rsplit("/", 1)[-1]
    coco_id = _COCO_ID.search(name)
    entry = (
        images.get(str(item.get("image_id")))
        or images.get(name)
        or (images.get(str(int(coco_id.group(1)))) if coco_id else None)
    )
    if entry is None:
        raise ValueError(f"image {image!r} is not in the annotations")
    return dict(qid=str(item["question_id"]), image=str(image), text=str(text), truth=tuple(sorted(entry["objects"])))


def score(vocabulary: Vocabulary, questions, answers: list[str]) -> tuple[dict, list[dict]]:
    tally, details = Tally(), []
    for q, answer in zip(questions, answers):
        truth = set(q.truth)
        said = vocabulary.mentions(answer)
        wrong = [obj for _, obj in said if obj not in truth]
        named = {obj for _, obj in said}
        tally.add(answer, len(said), len(wrong), len(truth & named), len(truth))
        details.append(
            {"mentions": [list(m) for m in said], "hallucinated": sorted(set(wrong)), "missed": sorted(truth - named)}
        )
    t = tally.metrics()
    metrics = {
        "n": t["n"],
        "chair_s": t["answers_hallucinating"],
        "chair_i": t["mentions_hallucinated"],
        "recall": t["objects_covered"],
        "mean_words": t["mean_words"],
        "mentions": t["mentions"],
        "hallucinated_mentions": t["hallucinated_mentions"],
    }
    return metrics, details
