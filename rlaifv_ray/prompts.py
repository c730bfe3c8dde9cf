"""Prompt templates of the feedback pipeline, in one place (docs/method.md s.1.2-1.4).

The claim LLM is called twice: (question, answer) -> facts, then facts -> yes/no questions.
Two prompt sets:
- `instruct` (the default): for stock instruct LLMs (Llama-3, Qwen2.5, ...): a role, the question
  beside the answer, the format spelled out and worked examples of our own.
- `shapesworld`: the bare prompts the ShapesWorld claim LLM was trained on.
Instruct models wrap lists in many ways (preambles, "###" headers, numbering, "*", code fences,
trailing notes), so `parse_list` is tolerant of the wrapping and strict about the content: it
refuses text between items, and questions that do not end with "?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL_PROMPT = "{question} Please answer yes or no."
# scoring holistic (an ablation): the whole answer judged at once, instead of its claims one by one
HOLISTIC_QUESTION = 'Is the following description of the image accurate? "{answer}"'

_FACTS_EXAMPLES = """Example 1
Question: What is on the table?
Answer: A red mug stands next to an open laptop.
Facts:
- There is a red mug.
- There is a laptop.
- The laptop is open.
- The mug is next to the laptop.

Example 2
Question: Describe the image.
Answer: Two dogs run across a snowy field under a grey sky.
Facts:
- There are two dogs.
- The dogs are running.
- The field is snowy.
- The sky is grey."""

_QUESTIONS_EXAMPLES = """Example
Facts:
- There is a red mug.
- The laptop is open.
- There are two dogs.
Questions:
- Is there a red mug in the image?
- Is the laptop open?
- Are there two dogs in the image?"""


@dataclass(frozen=True)
class ClaimPrompts:
    facts: str  # fields: {question}, {answer}
    questions: str  # fields: {question}, {facts}


INSTRUCT = ClaimPrompts(
    facts=(
        "You are an expert annotator. Split an answer about an image into atomic facts.\n"
        "An atomic fact states exactly one thing (one object, one attribute, one count or one relation) "
        "and can be checked by looking at the image. Keep only what the answer claims about the image; "
        "never add facts of your own.\n"
        'Write one fact per line, each line starting with "- ". Write nothing else.\n\n'
        f"{_FACTS_EXAMPLES}\n\n"
        "Now your turn.\nQuestion: {question}\nAnswer: {answer}\nFacts:"
    ),
    questions=(
        "You are an expert annotator. Rewrite each fact about an image as a yes/no question whose answer "
        'is "yes" exactly when the fact is true.\n'
        'Write one question per fact, in the same order, one per line, each line starting with "- " and '
        'ending with "?". Write nothing else.\n\n'
        f"{_QUESTIONS_EXAMPLES}\n\n"
        "Now your turn.\nFacts:\n{facts}\nQuestions:"
    ),
)
SHAPESWORLD = ClaimPrompts(
    facts="Split the answer into atomic facts, one per line, each starting with '- '.\n"
    "### Answer:\n{answer}\n### Facts:",
    questions="Rewrite each fact as a yes/no question, one per line, each starting with '- '.\n"
    "### Facts:\n{facts}\n### Questions:",
)
PROMPT_SETS = {"instruct": INSTRUCT, "shapesworld": SHAPESWORLD}


def bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


# "- x", "* x", "• x", "+ x", "1. x", "1) x", "(1) x", "Fact 1: x", "Q1: x", "Question 1. x"
_ITEM = re.compile(r"^(?:[-*•+](?:\s+|$)|\(?\d{1,3}[.)](?:\s+|$)|(?:fact|question|q)\s*\d{1,3}\s*[:.)]\s*)(.*)$", re.I)
# An unmarked line talking about the task or to the reader is not a claim about the image.
_CHATTER = re.compile(r"\b(I|I'm|me|my|you|your|sorry|answer|facts?|questions?)\b", re.I)
# ... nor is a nested item giving the reason for the item above ("- This is inferred from the bread.")
_REASONING = re.compile(r"\b(inferr?\w*|based on|because|evidenced?|suggests?)\b", re.I)
_FENCE = re.compile(r"^```")


def parse_list(text: str, questions: bool = False) -> list[str]:
    """The items of a listed claim-LLM output; raises ValueError naming the problem.

    Lines before the first item (a preamble, an echoed "### Facts:" header) and after the last one
    (a closing note) are dropped; code fences and blank lines are ignored; lines indented deeper than
    the items are commentary on the item above and dropped, unless they are items themselves (a nested
    list's facts); markdown bold around an item and a bold
    label before it ("**Color:** The cat is orange.") are removed; a question's own answer after its
    "?" ("? (Yes)", "? Yes.") is cut off, so the labeler never sees it. Refused: no items, any other
    text between items, an empty item or a bare label ("**Color:**"), and (for questions) an item not
    ending with "?", (for facts) a last item cut off mid-sentence. Output without any list marker is
    read one item per line only if every line is a sentence about the image (no header, no
    "I"/"you"/"answer" chatter).
    """
    raw = [ln.rstrip() for ln in text.strip("\n").splitlines()]
    raw = [ln for ln in raw if ln.strip() and not _FENCE.match(ln.strip())]
    marked = [_ITEM.match(ln.strip()) for ln in raw]
    if any(marked):
        first = next(i for i, m in enumerate(marked) if m)
        last = max(i for i, m in enumerate(marked) if m)
        base = _indent(raw[first])
        # deeper lines: a nested item is a fact of its own, other text (or an item talking to the
        # reader) commentary on the item above
        span = [
            (ln, m)
            for ln, m in zip(raw[first : last + 1], marked[first : last + 1])
            if _indent(ln) <= base or (m and not _CHATTER.search(m.group(1)) and not _REASONING.search(m.group(1)))
        ]
        between = [ln.strip() for ln, m in span if not m]
        if between:
            raise ValueError(f"text between list items: {between[0]!r}")
        items = [_clean(m.group(1), questions) for _, m in span]
    else:
        lines = [ln.strip() for ln in raw]
        if any(ln.startswith("#") or ln.endswith(":") for ln in lines):
            raise ValueError(f"no list items (expected lines starting with '- '): {text.strip()[:80]!r}")
        items = [_clean(ln, questions) for ln in lines]
        if any(not item.endswith((".", "?")) or _CHATTER.search(item) for item in items):
            raise ValueError(f"no list items (expected lines starting with '- '): {text.strip()[:80]!r}")
    if not items:
        raise ValueError("empty output")
    if any(not item for item in items):
        raise ValueError("an empty list item")
    labels = [i for i in items if i.endswith(":")]
    if labels:
        raise ValueError(f"a label without a claim: {labels[0]!r}")
    if questions:
        bad = [q for q in items if not q.endswith("?")]
        if bad:
            raise ValueError(f"not a question: {bad[0]!r}")
    elif len(items) > 1 and all(i.endswith(_ENDS) for i in items[:-1]) and not items[-1].endswith(_ENDS):
        raise ValueError(f"the last item looks cut off: {items[-1]!r} (raise claims.max_new_tokens?)")
    return items


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


# "**Color:** x", "**Color**: x", "**Color** - x", "__Color:__ x": a label before the claim itself
_LABEL = re.compile(r"^(\*\*|__)[^*_]{1,40}?(?::\1|\1\s*[:–—-])\s+(?=\S)")
# "? (Yes)", "? Yes.", "? - No", "? Answer: yes", "? A: No": the question's own answer after it
_OWN_ANSWER = re.compile(r"\?\s*(?:[-–—:]\s*)?\(?(?:(?:a|answer)\s*:\s*)?(?:yes|no)\b\)?[.!]?\s*$", re.I)


_ENDS = (".", "!", "?", '"', "'", ")")


def _clean(item: str, questions: bool = False) -> str:
    item = _LABEL.sub("", item.strip())
    if len(item) > 4 and item.startswith("**") and item.endswith("**"):
        item = item[2:-2].strip()
    return _OWN_ANSWER.sub("?", item) if questions else item
