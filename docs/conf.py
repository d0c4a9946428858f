"""Sphinx configuration of the remix_jax documentation.

    python -m sphinx -W -b html docs /tmp/remix_jax_docs

The pages are MyST Markdown; the API reference is autodoc (with napoleon for
the Google-style docstrings) over the installed package, nothing mocked. The
methods table and the config fields are generated from the code by
``docs/_ext/remix_docs.py``.
"""

import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
# The checkout first: remix_jax, configs/ (for the generated config table)
# and the docs' own extension.
sys.path[:0] = [ROOT, os.path.join(DOCS, "_ext")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import remix_jax  # noqa: E402  pylint: disable=g-import-not-at-top

project = "remix_jax"
author = "The remix_jax maintainers"
copyright = "The remix_jax maintainers; Apache-2.0"  # pylint: disable=redefined-builtin
release = version = remix_jax.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "remix_docs",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "_ext"]

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"remix_jax {release}"
