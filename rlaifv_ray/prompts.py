"""Prompt templates of the feedback pipeline, in one place (METHOD.md s.1 steps 2-4).

The claim LLM is called twice: answer -> facts, then facts -> yes/no questions. Both outputs are
"- " bullet lists so that one strict parser reads them.
"""

FACTS_PROMPT = (
    "Split the answer into atomic facts, one per line, each starting with '- '.\n"
    "### Answer:\n{answer}\n### Facts:"
)
QUESTIONS_PROMPT = (
    "Rewrite each fact as a yes/no question, one per line, each starting with '- '.\n"
    "### Facts:\n{facts}\n### Questions:"
)
LABEL_PROMPT = "{question} Please answer yes or no."


def bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def parse_bullets(text: str) -> list[str]:
    """Strictly parse a '- ' bullet list; raises ValueError naming the first bad line."""
    items = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("- ") or not line[2:].strip():
            raise ValueError(f"not a '- ' bullet: {line!r}")
        items.append(line[2:].strip())
    if not items:
        raise ValueError("empty output")
    return items
