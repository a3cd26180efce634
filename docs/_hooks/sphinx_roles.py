"""mkdocs hook: Sphinx cross-reference roles left in docstrings become links.

Docstrings say ``:func:`dynafit.refine``` (Sphinx's roles); mkdocstrings renders that
as the text ``:func:`` followed by the code ``dynafit.refine``. This hook turns each
into an optional cross-reference for mkdocs-autorefs: a link when the name is on a page
of the API reference, plain code otherwise (a private helper, say).
"""

import re

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

ROLE = re.compile(r":(?:func|meth|class|mod|data|attr|obj):<code>([A-Za-z_][\w.]*)</code>")


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return ROLE.sub(
        lambda m: f'<autoref identifier="{m[1]}" optional><code>{m[1]}</code></autoref>', html
    )
