"""The README stays a page for users and its links into docs/ hold; the docs site's pages are all in its nav
(``make docs`` builds the site with ``mkdocs build --strict``, which checks the links between the pages)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from conftest import REPO

README = REPO / "README.md"


def slug(heading: str) -> str:
    """The anchor GitHub and MkDocs give a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert [line.split()[:2] for line in first.splitlines()] == [["make", "demo"], ["make", "test"]]
    assert "issue " not in text.lower()  # issue numbers and version history live in CHANGELOG.md


def test_the_readme_links_resolve() -> None:
    links = [link for link in re.findall(r"\]\(([^)\s]+)\)", README.read_text()) if "://" not in link]
    assert len(links) > 10
    for link in links:
        path, _, anchor = link.partition("#")
        target = REPO / path
        assert target.is_file(), link
        if anchor:
            assert anchor in headings(target), link


def test_every_docs_page_is_in_the_site_nav() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    nav = {page for entry in config["nav"] for page in entry.values()}
    pages = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    assert pages == nav
    assert "changelog.md" in nav and '--8<-- "CHANGELOG.md"' in (REPO / "docs" / "changelog.md").read_text()


def test_the_changelog_has_one_section_a_version_up_to_the_current_one() -> None:
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    sections = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert sections[0] == version and sections[-1] == "0.1.0"
    assert len(set(sections)) == len(sections)  # one section a version
