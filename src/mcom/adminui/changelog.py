"""The project's CHANGELOG.md, rendered for the "Change log" page.

Looked up at the repository root first (development checkout: ``<repo>/CHANGELOG.md``), then as
package data (``mcom/CHANGELOG.md``, shipped in the wheel). Markdown is rendered with
markdown-it-py (CommonMark; already installed as a dependency of ``rich``) with raw HTML disabled,
so the file cannot inject markup, and unsafe link schemes (``javascript:``) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from markdown_it import MarkdownIt

import mcom

FILENAME = "CHANGELOG.md"


@dataclass(frozen=True)
class Changelog:
    source: str  # where it was read from, for the page footer
    html: str


def _candidates() -> list[Path]:
    package_dir = Path(mcom.__file__).resolve().parent
    return [package_dir.parent.parent / FILENAME]


def read_text() -> tuple[str, str] | None:
    """``(source, markdown)`` of the change log, or None when it is nowhere to be found."""
    for path in _candidates():
        if path.is_file():
            return str(path), path.read_text(encoding="utf-8")
    shipped = resources.files("mcom").joinpath(FILENAME)
    if shipped.is_file():
        return f"mcom/{FILENAME} (package data)", shipped.read_text(encoding="utf-8")
    return None


def render_markdown(text: str) -> str:
    """Markdown → HTML: headings, lists, code, emphasis, links; raw HTML is escaped."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    return str(md.render(text))


def load() -> Changelog | None:
    found = read_text()
    if found is None:
        return None
    source, text = found
    return Changelog(source=source, html=render_markdown(text))
