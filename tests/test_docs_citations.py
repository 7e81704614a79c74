"""Every guide the code cites exists, and so does every section it names.

Scans the tracked source files (``git ls-files``: ``*.py``, ``*.sql``, ``*.yml``,
``*.yaml``, ``*.md``, ``*.toml``, ``*.sh``, ``Makefile``, ``.sqlfluff``) for
citations of the guides in ``docs/``:

* a path, ``docs/<name>.md``, optionally with a GitHub anchor ``#<heading-slug>``;
* a file and section numbers, with or without the ``docs/`` folder:
  ``domain.md section 2``, ``domain.md sections 3c, 4 and 5``, ``domain.md 3a``
  (the section must be a heading that starts with that number, ``## 2.``);
* a table, ``Table 3-1 of domain.md`` or ``domain.md 3a, Table 3-2`` (a heading
  must name the table);
* in Markdown files, a relative link to a ``.md`` file, ``[text](domain.md#anchor)``,
  resolved from the linking file's folder.

A bare file name with a section (``domain.md section 2``) is resolved in ``docs/``.
Reads text only: no build, no warehouse, no network.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = "docs"
SCANNED_SUFFIXES = (".py", ".sql", ".yml", ".yaml", ".md", ".toml", ".sh")
SCANNED_NAMES = ("Makefile", ".sqlfluff")
#: This file names citation forms in its docstring and builds broken ones in its own tests.
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()

_SECTION_ID = r"\d+[a-z]?"
CITATION = re.compile(
    rf"""
    (?:Table\s+(?P<table_before>\d+-\d+)\s+of\s+)?
    (?<![\w./-])(?P<path>(?:{DOCS}/)?[a-z0-9_-]+\.md)(?![\w(])
    (?:\#(?P<anchor>[a-z0-9_-]+))?
    (?:,?\s+(?:sections?\s+)?(?P<sections>{_SECTION_ID}(?:(?:\s*,\s*|\s+and\s+){_SECTION_ID})*)\b)?
    (?:,?\s+Table\s+(?P<table_after>\d+-\d+))?
    """,
    re.VERBOSE,
)
MARKDOWN_LINK = re.compile(r"\]\((?P<target>[^()\s#:]+\.md)(?:#(?P<anchor>[^()\s]+))?\)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Citation:
    """One citation of a guide: where it is written, the file it names, and what in that file."""

    source: str
    line: int
    path: str
    anchor: str | None
    sections: tuple[str, ...]
    tables: tuple[str, ...]


def citations(source: str, text: str) -> list[Citation]:
    """The guide citations in ``text`` (the contents of the file ``source``).

    A path with a folder (``docs/x.md``) is a citation; a bare name (``x.md``) is one
    only when it names a section or a table, since bare names also occur as plain
    words (``README.md``). Markdown links in ``.md`` files are citations too,
    resolved from the linking file's folder.
    """
    found = []
    for match in CITATION.finditer(text):
        path = match["path"]
        sections = tuple(re.findall(_SECTION_ID, match["sections"] or ""))
        tables = tuple(t for t in (match["table_before"], match["table_after"]) if t)
        if not path.startswith(f"{DOCS}/"):
            if not (sections or tables):
                continue
            path = f"{DOCS}/{path}"
        line = text.count("\n", 0, match.start("path")) + 1
        found.append(Citation(source, line, path, match["anchor"], sections, tables))
    if source.endswith(".md"):
        for match in MARKDOWN_LINK.finditer(text):
            path = posixpath.normpath(posixpath.join(posixpath.dirname(source), match["target"]))
            line = text.count("\n", 0, match.start("target")) + 1
            found.append(Citation(source, line, path, match["anchor"], (), ()))
    return found


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return text.replace(" ", "-")


def problems(root: Path, cited: list[Citation]) -> list[str]:
    """What is missing for each citation: the file, a numbered section, a table heading or an anchor."""
    headings: dict[str, list[str]] = {}
    messages = []
    for citation in cited:
        where = f"{citation.source}:{citation.line} cites {citation.path}"
        target = root / citation.path
        if citation.path.startswith("../") or citation.path.startswith("/"):
            messages.append(f"{where}, which is outside the repository")
            continue
        if not target.is_file():
            messages.append(f"{where}, which does not exist")
            continue
        if citation.path not in headings:
            headings[citation.path] = _HEADING.findall(target.read_text(encoding="utf-8"))
        titles = headings[citation.path]
        for section in citation.sections:
            if not any(re.match(rf"{re.escape(section)}[.):]?\s", title) for title in titles):
                messages.append(f"{where} section {section}, which has no heading '{section}. ...'")
        for table in citation.tables:
            if not any(re.search(rf"\bTable {re.escape(table)}\b", title) for title in titles):
                messages.append(f"{where} Table {table}, which no heading names")
        if citation.anchor and citation.anchor not in {github_anchor(t) for t in titles}:
            messages.append(f"{where}#{citation.anchor}, which matches no heading")
    return messages


def tracked_sources(root: Path) -> list[str]:
    """Tracked files to scan, paths relative to ``root``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    return sorted(
        path
        for path in listed
        if path
        and path != SELF
        and (path.endswith(SCANNED_SUFFIXES) or Path(path).name in SCANNED_NAMES)
        and (root / path).is_file()
    )


def all_citations(root: Path, sources: list[str]) -> list[Citation]:
    found = []
    for source in sources:
        found.extend(citations(source, (root / source).read_text(encoding="utf-8", errors="replace")))
    return found


@pytest.fixture(scope="module")
def repository_citations() -> list[Citation]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    return all_citations(ROOT, tracked_sources(ROOT))


def test_every_cited_guide_and_section_exists(repository_citations: list[Citation]) -> None:
    assert problems(ROOT, repository_citations) == []


def test_the_scan_finds_the_citations_of_the_guides(repository_citations: list[Citation]) -> None:
    cited = {c.path for c in repository_citations}
    assert {f"{DOCS}/domain.md", f"{DOCS}/style.md"} <= cited
    assert any(c.sections for c in repository_citations if c.path == f"{DOCS}/domain.md")


# The forms below are built from pieces so that the scan of the repository does not read them.
_GUIDE = "guide" + ".md"


def test_citation_forms_are_recognised() -> None:
    text = "\n".join(
        [
            f"see docs/{_GUIDE} for more",
            f"the rule of {_GUIDE} section 2 applies",
            f"KPIs ({_GUIDE} sections 3c, 4 and 5)",
            f"matrix ({_GUIDE} 3a, Table 3-2)",
            f"Table 3-1 of {_GUIDE} measured",
            f"[guide](docs/{_GUIDE}#what-a-run-does)",
            "README" + ".md and dg.MetadataValue" + ".md(text) and the plain word " + _GUIDE,
        ]
    )
    found = [(c.line, c.path, c.sections, c.tables, c.anchor) for c in citations("x.py", text)]
    path = f"{DOCS}/{_GUIDE}"
    assert found == [
        (1, path, (), (), None),
        (2, path, ("2",), (), None),
        (3, path, ("3c", "4", "5"), (), None),
        (4, path, ("3a",), ("3-2",), None),
        (5, path, (), ("3-1",), None),
        (6, path, (), (), "what-a-run-does"),
    ]
    link = f"[the guide]({_GUIDE}#what-a-run-does) and [up](../{_GUIDE})"
    assert [(c.path, c.anchor) for c in citations("docs/other.md", link)] == [
        (path, "what-a-run-does"),
        (_GUIDE, None),
    ]
    assert citations("x.py", link) == []


def test_missing_guide_section_table_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / DOCS).mkdir()
    guide = tmp_path / DOCS / _GUIDE
    guide.write_text(
        "# Guide\n\n## 2. Stages\n\n### 3a. Value matrix (Table 3-2)\n\n## What a run does\n", encoding="utf-8"
    )
    good = citations(
        "x.sql",
        f"{_GUIDE} section 2; {_GUIDE} 3a, Table 3-2; docs/{_GUIDE}#what-a-run-does",
    )
    assert len(good) == 3
    assert problems(tmp_path, good) == []

    bad = citations("x.sql", f"{_GUIDE} sections 2 and 4; Table 3-1 of {_GUIDE}; docs/{_GUIDE}#nowhere")
    assert problems(tmp_path, bad) == [
        f"x.sql:1 cites docs/{_GUIDE} section 4, which has no heading '4. ...'",
        f"x.sql:1 cites docs/{_GUIDE} Table 3-1, which no heading names",
        f"x.sql:1 cites docs/{_GUIDE}#nowhere, which matches no heading",
    ]

    guide.rename(tmp_path / DOCS / "renamed.md")
    assert problems(tmp_path, good) == [
        f"x.sql:1 cites docs/{_GUIDE}, which does not exist",
        f"x.sql:1 cites docs/{_GUIDE}, which does not exist",
        f"x.sql:1 cites docs/{_GUIDE}, which does not exist",
    ]
