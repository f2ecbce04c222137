"""The documentation is self-contained and in step with the code.

- the configuration table in docs/configuration.md is what scripts/config_reference.py generates
  from the settings models (and config.example.toml's comments);
- the README links every page of docs/, and so does the docs index;
- every relative link in the README and docs/ points at a file that exists (and a heading that
  exists, for `#anchor` links);
- no file cites the external design document the project grew from, or its section numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# The design notes outside the repository, and section numbers (\u00a7) pointing into them; spelt
# in pieces so that this file does not match its own check. Words like HANDLERS_SPEC do not match.
_NAMES = ["SP" + "EC", "STACK" + "-NOTES", "STY" + r"LE\.md"]
EXTERNAL_DOC = re.compile(r"\b(" + "|".join(_NAMES) + r")\b|\u00a7")


def doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if p.name != "README.md")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", DOCS / "README.md", *doc_pages()]


def test_configuration_table_matches_the_settings():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "config_reference.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_configuration_page_names_every_key_and_env_var():
    from ayb_jobs.config import all_keys

    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for key in all_keys():
        section, name = key.split(".")
        assert f"`{key}`" in page
        assert f"`AYB_{section.upper()}_{name.upper()}`" in page


@pytest.mark.parametrize("index", ["README.md", "docs/README.md"])
def test_every_docs_page_is_linked(index: str):
    text = (ROOT / index).read_text(encoding="utf-8")
    prefix = "docs/" if index == "README.md" else ""
    assert doc_pages(), "docs/ has no pages"
    missing = [p.name for p in doc_pages() if f"]({prefix}{p.name}" not in text]
    assert not missing, f"{index} does not link: {missing}"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading slugs: lower-case, punctuation dropped, spaces to hyphens."""
    slugs = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    text = re.sub(r"<!--.*?-->", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)  # notes to editors
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            broken.append(f"{target} (points outside the repository)")
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def _tracked_text_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30, check=True).stdout
    return [name for name in out.splitlines() if (ROOT / name).is_file()]


def test_no_file_cites_the_external_design_document():
    offenders = []
    for name in _tracked_text_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if EXTERNAL_DOC.search(line):
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not offenders, "point at docs/ instead:\n" + "\n".join(offenders)
