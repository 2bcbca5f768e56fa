"""MkDocs hook: the model cards ``progface/weights/*.md`` as pages under ``model-cards/``.

The cards stay single-source beside the weight files they describe (they ship in the wheel).
This hook adds them to the site at build time. Their relative links are written relative to
``progface/weights/``; links into ``docs/`` (figures) and to other cards are rewritten so they
resolve from ``model-cards/``. Any other relative link is left as it is, so that a strict build
reports it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.structure.files import File

CARDS = "progface/weights"
PAGES = "model-cards"
TARGET = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")  # [text](target "title")


def on_files(files, config):
    root = Path(config.config_file_path).resolve().parent
    docs = Path(config.docs_dir).resolve()
    for card in sorted((root / CARDS).glob("*.md")):
        text = relink(card.read_text(encoding="utf-8"), card.parent, root / CARDS, docs)
        files.append(File.generated(config, f"{PAGES}/{card.name}", content=text))
    return files


def relink(text: str, card_dir: Path, cards: Path, docs: Path) -> str:
    """``text`` with its relative link targets rewritten for a page in ``docs/model-cards/``."""
    page_dir = docs / PAGES

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|#|/)", target):  # url, anchor, absolute
            return match.group(0)
        path, hash_, anchor = target.partition("#")
        resolved = (card_dir / path).resolve()
        if resolved.parent == cards and resolved.suffix == ".md":  # another card
            resolved = page_dir / resolved.name
        elif docs not in resolved.parents:
            return match.group(0)
        new = os.path.relpath(resolved, page_dir).replace(os.sep, "/")
        return f"{match.group(1)}{new}{hash_}{anchor}{match.group(3)}"

    return TARGET.sub(fix, text)
