"""The docs keep up with the code: every module in the layout, the functions counted right, every
page's links alive, and no page restating a benchmark figure other than bench/results.md's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stacks.functions import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
RESULTS = ROOT / "bench" / "results.md"
PAGES = [README, *DOCS]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A benchmark figure as the pages state it: a ratio such as 1.12x, or a range 1.04-1.07x.
RATIO = re.compile(r"\b(\d+\.\d+)(?:-(\d+\.\d+))?x\b")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
STATED_COUNT = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight) (?:Lambda )?functions\b", re.IGNORECASE
)
ALL_OF_THEM = re.compile(r"\ball (\d+|four|five|six)\b(?= functions|:)", re.IGNORECASE)


def layout() -> str:
    text = README.read_text()
    return text[text.index("## Layout") : text.index("## ", text.index("## Layout") + 3)]


@pytest.mark.parametrize(
    "module",
    [
        *sorted(p.stem for p in (ROOT / "runtime" / "chalicelib").glob("*.py") if p.stem != "__init__"),
        *sorted(
            p.stem
            for p in (ROOT / "runtime" / "chalicelib" / "adapters").glob("*.py")
            if p.stem != "__init__"
        ),
        *sorted(p.stem for p in (ROOT / "infrastructure" / "stacks").glob("*.py") if p.stem != "__init__"),
    ],
)
def test_every_runtime_and_stack_module_is_in_the_readmes_layout(module: str) -> None:
    assert re.search(rf"\b{module}\b", layout()), f"{module} is missing from the README's layout"


def stated_function_counts(text: str) -> list[int]:
    found = [match.group(1).lower() for match in STATED_COUNT.finditer(text)]
    found += [match.group(1).lower() for match in ALL_OF_THEM.finditer(text)]
    return [int(n) if n.isdigit() else NUMBERS[n] for n in found]


def test_every_count_of_functions_the_docs_state_is_the_apps() -> None:
    counts = {path.name: stated_function_counts(path.read_text()) for path in PAGES}

    assert any(counts.values()), "the docs state the number of functions somewhere"
    assert {name: c for name, c in counts.items() if any(n != len(FUNCTIONS) for n in c)} == {}


def test_the_function_count_check_sees_a_stale_count() -> None:
    assert stated_function_counts("arm64 (as are all four: Graviton) and four Lambda functions") == [4, 4]


def test_the_readme_is_short_and_links_every_page() -> None:
    text = README.read_text()
    links = set(LINK.findall(text))

    assert len(text.splitlines()) <= 160
    assert {f"docs/{page.name}" for page in DOCS} <= links


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path) -> list[str]:
    """The links of ``page`` to files (and their headings) of the repository that are not there."""
    broken = []
    for link in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = page.parent / path if path else page
        if not target.exists() or (anchor and target.suffix == ".md" and anchor not in anchors(target)):
            broken.append(link)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_of_every_page_leads_somewhere(page: Path) -> None:
    assert broken_links(page) == []


def test_a_link_written_from_the_wrong_folder_is_caught(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "timeline.png").write_bytes(b"")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# A page\n![picture](docs/timeline.png), ![picture](timeline.png), [up](#a-page), [no](#gone)"
    )

    assert broken_links(page) == ["docs/timeline.png", "#gone"]


def stale_figures(text: str, results: str) -> list[str]:
    """Ratios stated in ``text`` that the benchmark results do not hold."""
    measured = set(re.findall(r"\d+\.\d+", results))
    stated = [n for match in RATIO.finditer(text) for n in match.groups() if n]
    return [n for n in stated if n not in measured]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_no_page_restates_a_benchmark_figure_the_results_do_not_hold(page: Path) -> None:
    assert stale_figures(page.read_text(), RESULTS.read_text()) == []


def test_a_stale_benchmark_figure_is_caught() -> None:
    results = "| **ours: API function** | 205 | **1.12** |"

    assert stale_figures("cold start 1.12x the floor", results) == []
    assert stale_figures("cold start 1.04-1.07x the floor", results) == ["1.04", "1.07"]
