"""Sphinx extension: pages generated from the code, so they cannot drift.

At ``builder-inited`` it writes, under ``docs/_generated/`` (not committed),

* ``methods.md``: :data:`remix_jax.trainer.methods.METHODS` as a table, the
  fields each method sets, the method a deferred one trains as before
  ``config.rebalance_epoch`` and the paper of each method that is not a
  combination (:data:`remix_jax.trainer.methods.REFERENCES`);
* ``config_fields.md``: every field of ``configs/default.py`` with its
  default and the comment beside it in that file
  (:mod:`configs.fields`; the ``data`` fields take theirs from
  :class:`remix_jax.data.DataOptions`' docstring).

The guides pull them in with ``{include}``. :func:`methods_markdown` and
:func:`config_fields_markdown` are plain functions, so a test can call them
without Sphinx.
"""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERATED = ROOT / "docs" / "_generated"


def _cell(text) -> str:
  """``text`` made safe for one cell of a Markdown table."""
  return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _value(value) -> str:
  if isinstance(value, bool):
    return "yes" if value else "no"
  return str(value)


# --- Methods ----------------------------------------------------------------

_METHOD_COLUMNS = (
    ("mixer", "mixer"), ("label_rule", "label rule"), ("loss", "loss"),
    ("normalized_classifier", "cosine classifier"),
    ("reweight", "re-weighting"), ("resample", "re-sampling"),
    ("sumix.enabled", "SUMix"), ("sumix.rule", "SUMix rule"),
    ("sumix.reduction", "SUMix reduction"), ("partners", "partners"),
)


def methods_markdown() -> str:
  """The table of every method of ``remix_jax.trainer.methods.METHODS``."""
  from remix_jax.trainer import methods  # pylint: disable=g-import-not-at-top

  header = ["method", *(label for _, label in _METHOD_COLUMNS),
            "before `rebalance_epoch`", "reference"]
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  for name in methods.METHODS:
    fields = methods.method_fields(name)
    cells = [f"`{name}`"]
    for key, _ in _METHOD_COLUMNS:
      value = fields[key]
      if key.startswith("sumix.") and key != "sumix.enabled" and not fields[
          "sumix.enabled"]:
        cells.append("–")
        continue
      text = _cell(_value(value))
      cells.append(f"**{text}**" if value != methods.BASELINE[key] else text)
    base = methods.deferred_base(name)
    cells.append(f"`{base}`" if base else "–")
    cells.append(_cell(methods.REFERENCES.get(name, "–")))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


# --- Config fields ----------------------------------------------------------

_ROLE = re.compile(r":(\w+):`([^`]+)`")


def _myst(text: str) -> str:
  """reStructuredText inline markup of a docstring as MyST Markdown."""
  text = _ROLE.sub(r"{\1}`\2`", text)
  return text.replace("``", "`")


def config_sections() -> list[tuple]:
  """:func:`configs.fields.config_sections`, the descriptions in MyST."""
  from configs import fields  # pylint: disable=g-import-not-at-top
  return fields.config_sections(markup=_myst)


def config_fields() -> list[tuple[str, str, str]]:
  """:func:`configs.fields.config_fields`, the descriptions in MyST."""
  from configs import fields  # pylint: disable=g-import-not-at-top
  return fields.config_fields(markup=_myst)


def config_fields_markdown() -> str:
  """The tables of :func:`config_sections`, one per section."""
  out = []
  for heading, rows in config_sections():
    if heading:
      out += [heading, ""]
    out += ["| field | default | what it sets |", "|---|---|---|"]
    for field, default_value, description in rows:
      out.append(f"| `{field}` | {_cell(default_value)} | "
                 f"{_cell(description)} |")
    out.append("")
  return "\n".join(out)


# --- Sphinx -----------------------------------------------------------------

def write_generated(directory: pathlib.Path = GENERATED) -> None:
  """Writes the generated pages (only those whose text changed)."""
  directory.mkdir(parents=True, exist_ok=True)
  for name, text in (("methods.md", methods_markdown()),
                     ("config_fields.md", config_fields_markdown())):
    path = directory / name
    if not path.exists() or path.read_text() != text:
      path.write_text(text)


def _on_builder_inited(app) -> None:
  del app
  write_generated()


def setup(app):
  app.connect("builder-inited", _on_builder_inited)
  return {"version": "1", "parallel_read_safe": True,
          "parallel_write_safe": True}
