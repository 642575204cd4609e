"""Sphinx configuration of the documentation site: Sphinx, myst-nb, the book theme.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` after
``pip install -e ".[docs]"``. The API reference (``docs/api/``) is written at build time
from the packages' ``__all__`` by ``docs/_ext/api_reference.py``: a new public name
appears without editing these pages.
"""

from __future__ import annotations

import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(
    0, str(DOCS.parent)
)  # `import optim` from this checkout, installed or not

project = "optim"
author = "the optim authors"
copyright = "2026, the optim authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "api_reference",
    "notebook_pages",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# Notebooks are shown with their stored outputs; the test suite is what executes them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Docstrings: Google style (optax's), rendered by napoleon.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# The Attributes sections say what a field holds; the annotations (jax.Array spelled
# by its private module) add nothing a reader needs.
napoleon_attr_annotations = False
# The Args sections say the types: the written unions of arrays and schedules are long.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autosummary_generate = False  # the reference pages are written by api_reference instead
add_module_names = True
add_function_parentheses = False  # `optim.adam`, as written in the guides
# The page outline names a class's attributes without repeating the class (params,
# not FitResult.params).
toc_object_entries_show_parents = "hide"

html_theme = "sphinx_book_theme"
html_title = "optim"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
    "use_download_button": False,
}
html_show_sourcelink = False
