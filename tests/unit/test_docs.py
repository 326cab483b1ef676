"""The docs keep up with the code: every module in the layout, the functions counted right, links alive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.names import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
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
    counts = {path.name: stated_function_counts(path.read_text()) for path in [README, *DOCS]}

    assert any(counts.values()), "the docs state the number of functions somewhere"
    assert {name: c for name, c in counts.items() if any(n != len(FUNCTIONS) for n in c)} == {}


def test_the_function_count_check_sees_a_stale_count() -> None:
    assert stated_function_counts("arm64 (as are all four: Graviton) and four Lambda functions") == [4, 4]


def test_the_readme_is_short_and_every_page_it_links_exists() -> None:
    text = README.read_text()
    links = re.findall(r"\]\(((?:docs|bench)/[^)#]+)\)", text)

    assert len(text.splitlines()) <= 160
    assert {f"docs/{page.name}" for page in DOCS} <= set(links)
    assert all((ROOT / link).exists() for link in links), links
