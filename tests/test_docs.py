"""Every document a comment or a config description cites is in the repository, with the section
or lesson it names."""

import re

from tests.conftest import REPO

CITATION = re.compile(r"docs/(\w+)\.md(?: (s\.[\d.]+(?:-[\d.]+)?|lesson \d+))?")


def _cited() -> set[tuple[str, str]]:
    found = set()
    for path in (REPO / "rlaifv_ray").rglob("*.py"):
        for doc, where in CITATION.findall(path.read_text()):
            found.add((doc, where))
    return found


def test_every_cited_document_section_and_lesson_exists():
    cited = _cited()
    assert {doc for doc, _ in cited} >= {"method", "shapesworld"}
    for doc, where in sorted(cited):
        text = (REPO / "docs" / f"{doc}.md").read_text()
        if where.startswith("lesson"):
            assert re.search(rf"^{where.split()[1]}\. ", text, re.M), f"docs/{doc}.md has no {where}"
        elif where:
            for section in re.findall(r"\d+(?:\.\d+)*", where):
                assert f"s.{section}" in text, f"docs/{doc}.md has no s.{section} (cited as {where})"


def test_config_fields_point_nowhere_outside_the_repository(capsys):
    from rlaifv_ray.cli import main

    assert main(["config", "--fields"]) == 0
    out = capsys.readouterr().out
    for outside in ("METHOD", "TOYWORLD", "DESIGN", "STYLE.md", "STACK.md"):
        assert outside not in out
    for doc in set(re.findall(r"docs/\w+\.md", out)):
        assert (REPO / doc).is_file()
