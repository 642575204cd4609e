"""The notebooks of ``notebooks/``, shown in the site with the outputs stored in them.

Sphinx reads sources only under ``docs/``: each build copies ``notebooks/*.ipynb`` into
``docs/notebooks/`` (ignored by git), rewriting only the files that changed, so that the site
always shows the notebooks as they are and no copy is kept in the repository.
"""

from __future__ import annotations

import pathlib
import shutil


def copy_notebooks(source: pathlib.Path, target: pathlib.Path) -> list[pathlib.Path]:
    """Mirror ``source/*.ipynb`` into ``target``: copy new or changed ones, drop removed ones."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {path.name: path for path in sorted(source.glob("*.ipynb"))}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, path in wanted.items():
        copy = target / name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copyfile(path, copy)
    return [target / name for name in wanted]


def setup(app):
    def copy(app):
        docs = pathlib.Path(app.srcdir)
        copy_notebooks(docs.parent / "notebooks", docs / "notebooks")

    app.connect("builder-inited", copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
