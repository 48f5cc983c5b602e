"""The repository is self-contained: no file cites a path outside it, and every relative link of the
README and of docs/ resolves (the file exists, and a #fragment names a heading of that file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where code, documentation and build files live (tests/ may read shared fixtures for real).
CHECKED = ("hepbench", "docs", "examples", "benchmarks", "results_schema", "container", "hepscore")
CHECKED_FILES = ("README.md", "entrypoint.sh", "Dockerfile", "Singularity.def", "Makefile")
OUTSIDE = re.compile(r"\.\./shared|shared/spec|shared/design")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOCS = (
    "data-format.md",
    "model.md",
    "training.md",
    "hepscore-contract.md",
    "qubo.md",
    "hpo.md",
    "containers.md",
    "development.md",
    "reports.md",
    "energy.md",
    "architectures.md",
    "devices.md",
    "engines.md",
    "installing.md",
    "running.md",
)


def _text_files():
    for name in CHECKED_FILES:
        yield ROOT / name
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".csv", ".png"):
                yield path


def _markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "slurm" / "README.md"]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, flags=re.M)}


def test_no_file_cites_a_path_outside_the_repository():
    hits = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "cite docs/<file>.md instead:\n" + "\n".join(hits)


def test_the_docs_index_and_the_readme_link_every_page():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    missing = [name for name in DOCS if f"]({name})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"
    assert "](docs/README.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("markdown", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(markdown):
    text = re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # https:, mailto: ...
            continue
        file_part, _, fragment = target.partition("#")
        linked = (markdown.parent / file_part).resolve() if file_part else markdown
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in _anchors(linked):
            broken.append(f"{target}: no heading #{fragment} in {linked.relative_to(ROOT)}")
    assert not broken, f"{markdown.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_docs_page_cited_in_code_exists():
    cited = re.compile(r"\bdocs/([\w.-]+\.md)")
    missing = set()
    for top in ("hepbench", "benchmarks", "container", "tests"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sh", ".yaml", ".def", ".md", ""):
                try:
                    text = path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue
                missing |= {
                    f"{path.relative_to(ROOT)}: docs/{name}"
                    for name in cited.findall(text)
                    if not (ROOT / "docs" / name).is_file()
                }
    assert not missing, "cited but absent: " + ", ".join(sorted(missing))
