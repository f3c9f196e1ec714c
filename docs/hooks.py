"""MkDocs hook: the package's docstrings use Sphinx roles (:class:`Face`), which mkdocstrings renders as the
role's name before the code; keep the code and drop the role."""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:mod|class|meth|func|attr|data|obj|exc|const):(<code>)")


def on_page_content(html: str, **_: Any) -> str:
    return ROLE.sub(r"\1", html)
