"""Share of claim-LLM outputs (tests/fixtures/claim_outputs.json: the shapes instruct models
produce, and outputs that must be refused) read correctly by the claim parser, against the strict
'- '-only parser it replaced. Prints JSON.

    python jobs/claim_parse_rate.py [FIXTURE]
"""

import json
import sys
from pathlib import Path

from rlaifv_ray.prompts import parse_list

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "claim_outputs.json"


def strict_dash_bullets(text: str, questions: bool = False) -> list[str]:
    """The parser before: every non-blank line must be '- item'."""
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


def measure(parse, cases: list[dict]) -> dict:
    right = wrong = 0
    for case in cases:
        try:
            got = parse(case["text"], questions=case["kind"] == "questions")
        except ValueError:
            got = None
        right += got == case["expected"]
        wrong += got is not None and got != case["expected"]  # a wrong claim list accepted
    return {"correct": right, "wrong_accepted": wrong, "rate": round(right / len(cases), 4)}


def main() -> None:
    cases = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else FIXTURE).read_text())
    print(
        json.dumps(
            {
                "cases": len(cases),
                "must_refuse": sum(c["expected"] is None for c in cases),
                "parse_list": measure(parse_list, cases),
                "strict_dash_bullets": measure(strict_dash_bullets, cases),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
