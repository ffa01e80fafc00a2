"""The README and the docs/ pages: every link and repository path they mention exists in the
repository, nothing points outside it, and the README's first screen is enough to run the tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*```")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# A path written from the repository root, in prose or in a command: it starts with one of the
# repository's top-level folders (not preceded by a path character, so `$DATA/docs/x` or
# `out/jaxsim/y` do not count).
TOP = ("jaxsim", "tests", "benchmarks", "docs", "scripts", "weights", ".ci")
ROOT_PATH = re.compile(r"(?<![\w./$~-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./*<>-]*)")
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])([\w./-]*\w\.md)\b")


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _repo_files() -> set[Path]:
    hidden = {".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__"}
    return {p for p in ROOT.rglob("*") if not hidden & set(p.relative_to(ROOT).parts)}


def _headings(path: Path) -> set[str]:
    """GitHub's anchors for the page's headings (outside code blocks)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and (match := re.match(r"#{1,6}\s+(.*)", line)):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _exists(relative: str) -> bool:
    """``relative`` (from the repository root) names a file or folder of the repository."""
    if "<" in relative:  # a placeholder such as weights/<model>/<hash>/: its fixed prefix must exist
        return (ROOT / relative.split("<", 1)[0]).exists()
    if "*" in relative:
        return any(ROOT.glob(relative))
    return (ROOT / relative).exists()


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_relative_link_resolves_inside_the_repository(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        path = (page.parent / file_part).resolve() if file_part else page
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _headings(path):
            broken.append(f"{target} (no such heading)")
    assert broken == [], f"{_page_id(page)}: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_repository_path_mentioned_exists(page):
    text = LINK.sub("", page.read_text(encoding="utf-8"))  # links are checked above
    missing = [p for p in ROOT_PATH.findall(text) if not _exists(p.rstrip(".,:;"))]
    assert missing == [], f"{_page_id(page)} mentions {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_nothing_points_outside_the_repository(page):
    text = LINK.sub("", page.read_text(encoding="utf-8"))
    assert "../" not in text, f"{_page_id(page)} has a path that leaves the repository"
    names = {p.name for p in _repo_files()}
    unknown = sorted({Path(m).name for m in MARKDOWN_NAME.findall(text)} - names)
    assert unknown == [], f"{_page_id(page)} cites Markdown files that are not in the repository: {unknown}"


def test_readme_starts_with_the_two_commands_and_what_they_need():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None and text[: block.start()].count("\n") < 15
    assert [line.split("#")[0].strip() for line in block.group(1).splitlines()] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    first_screen = "\n".join(text.splitlines()[:35])  # prerequisites and expectations come first
    for needed in ("`make`", "Python ≥ 3.11", "`venv`", "Debian/Ubuntu", "Chromium", "2.3 GB",
                   "7–20 minutes", "skipped"):
        assert needed in first_screen, needed


def test_readme_fits_on_a_few_screens_and_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, page.name


def test_ci_requires_the_browser_then_runs_command_2():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert "make test" in lines
    assert lines.index("bash scripts/browser.sh --require") < lines.index("make test")
