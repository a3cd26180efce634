"""mkdocs hook: the four notebooks become pages of the site.

Their sources are ``examples/NN_name.py`` (jupytext percent format, paired with the
committed ``.ipynb`` files). This hook adds each source, read from the repository's
``examples/`` folder, as the page ``examples/NN_name/`` before mkdocs-jupyter looks at
the files, so mkdocs-jupyter renders it (without executing it: ``execute: false`` in
mkdocs.yml). Nothing is copied into ``docs/``.
"""

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]


@event_priority(100)  # before mkdocs-jupyter's on_files (default priority 0)
def on_files(files: Files, config: MkDocsConfig) -> Files:
    sources = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
    if not sources:
        raise PluginError(f"docs/_hooks/notebooks.py: no notebook sources in {ROOT / 'examples'}")
    for source in sources:
        # src_dir is the repository root, so the page's path is examples/NN_name.py
        files.append(
            File(
                source.relative_to(ROOT).as_posix(),
                src_dir=str(ROOT),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files
