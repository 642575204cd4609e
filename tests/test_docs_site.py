"""The documentation site's API reference lists every public name (checked without a build).

``docs/_ext/api_reference.py`` writes the reference from the packages' ``__all__`` when Sphinx
builds the site; these tests read the pages it writes: each public name has a row in its
package's page, the row links to an entry that some page documents from the docstring, and every
public module a package exports has a page of its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib
import re

import conftest
import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


api_reference = conftest.api_reference()
PAGES = api_reference.pages()
PACKAGES = api_reference.packages()
DOCUMENTED = set(
    re.findall(r"^\.\. auto(?:function|class|data):: ([\w.]+)", "\n".join(PAGES.values()), re.M)
)


def _public(package: str) -> list[str]:
    return list(importlib.import_module(package).__all__)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_row_that_links_to_its_entry(package):
    page = PAGES[f"{package}.rst"]
    rows = dict(re.findall(r"^   \* - :(?:py:obj|doc):`(\w+) <([\w.]+)>`$", page, re.M))
    missing = [name for name in _public(package) if name not in rows]
    assert not missing, f"{package}: names without a row in docs/api/{package}.rst: {missing}"
    module = importlib.import_module(package)
    for name, target in rows.items():
        if target in PACKAGES:
            continue  # a public module: its row links to its own page
        assert target in DOCUMENTED, f"{package}.{name} links to {target}, which no page documents"
        owner, _, attribute = target.rpartition(".")
        assert getattr(importlib.import_module(owner), attribute) is getattr(module, name)


def test_every_top_level_name_is_on_a_page_of_its_part():
    grouped = "\n".join(
        PAGES[f"{group.slug}.rst"] for group in api_reference.GROUPS if f"{group.slug}.rst" in PAGES
    )
    modules = {name for name in _public("optim") if f"optim.{name}.rst" in PAGES}
    missing = [
        name
        for name in _public("optim")
        if name not in modules and not re.search(rf"^   \* - :py:obj:`{name} <", grouped, re.M)
    ]
    assert not missing, f"top-level names on no page of optim's parts: {missing}"


def test_every_exported_module_has_a_page():
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in _public(package):
            value = getattr(module, name)
            if type(value).__name__ == "module":
                assert f"{value.__name__}.rst" in PAGES, f"{package}.{name} has no page"


def test_the_site_includes_every_guide_and_the_reference():
    index = (DOCS / "index.md").read_text()
    # A toctree entry is a document name, or "Title <name>".
    entries = set(re.findall(r"^(?:.* <)?([\w/]+)>?$", index, re.M))
    guides = {path.stem for path in DOCS.glob("*.md") if path.stem != "index"}
    assert guides <= entries, f"pages missing from docs/index.md's toctree: {guides - entries}"
    assert "api/index" in entries


def test_the_fit_guide_shows_every_option_of_fit():
    import optim

    guide = (DOCS / "training_with_fit.md").read_text()
    headings = "\n".join(re.findall(r"^#+ .*$", guide, re.M))
    parameters = list(inspect.signature(optim.fit).parameters)[4:]  # after the positional four
    missing = [name for name in parameters if f"`{name}`" not in headings]
    assert not missing, f"options of optim.fit with no section in training_with_fit.md: {missing}"
