"""Sphinx extension: pages generated from the code, so they cannot drift.

At ``builder-inited`` it writes, under ``docs/_generated/`` (not committed),

* ``methods.md``: :data:`remix_jax.trainer.methods.METHODS` as a table, the
  fields each method sets, the method a deferred one trains as before
  ``config.rebalance_epoch`` and the paper of each method that is not a
  combination (:data:`remix_jax.trainer.methods.REFERENCES`);
* ``config_fields.md``: every field of ``configs/default.py`` with its
  default and the comment beside it in that file (the ``data`` fields take
  theirs from :class:`remix_jax.data.DataOptions`' docstring).

The guides pull them in with ``{include}``. :func:`methods_markdown` and
:func:`config_fields_markdown` are plain functions, so a test can call them
without Sphinx.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import pathlib
import re
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = ROOT / "configs" / "default.py"
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

def _comments(source: str) -> dict[int, tuple[str, bool]]:
  """``{line: (comment text, whether the line holds only the comment)}``."""
  out = {}
  lines = source.splitlines()
  for tok in tokenize.generate_tokens(io.StringIO(source).readline):
    if tok.type == tokenize.COMMENT:
      row, col = tok.start
      alone = not lines[row - 1][:col].strip()
      out[row] = (tok.string.lstrip("#").strip(), alone)
  return out


def _dotted(node) -> str | None:
  """``'a.b'`` for the target ``c.a.b``; ``None`` for anything else."""
  parts = []
  while isinstance(node, ast.Attribute):
    parts.append(node.attr)
    node = node.value
  if isinstance(node, ast.Name) and node.id == "c" and parts:
    return ".".join(reversed(parts))
  return None


def _attribute_docs(cls) -> dict[str, str]:
  """The ``Attributes:`` section of a Google-style class docstring."""
  doc = (cls.__doc__ or "").splitlines()
  out, name, inside = {}, None, False
  for line in doc:
    if line.strip() == "Attributes:":
      inside = True
      continue
    if not inside:
      continue
    match = re.match(r"^    (\w+): (.*)$", line)
    if match:
      name = match.group(1)
      out[name] = match.group(2).strip()
    elif line.startswith("      ") and name:
      out[name] += " " + line.strip()
    elif line.strip():
      break
  return out


def _get(config, dotted: str):
  for part in dotted.split("."):
    config = config[part]
  return config


_ROLE = re.compile(r":(\w+):`([^`]+)`")


def _myst(text: str) -> str:
  """reStructuredText inline markup of a docstring as MyST Markdown."""
  text = _ROLE.sub(r"{\1}`\2`", text)
  return text.replace("``", "`")


#: ``(heading or None, [(field, default, description), ...])``.
Section = tuple


def config_sections() -> list[Section]:
  """Every field of ``configs/default.py`` with its default and comment, in
  the file's order, grouped by the file's section comments (a comment
  block after a blank line)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from configs import default  # pylint: disable=g-import-not-at-top
  from remix_jax import data  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import methods  # pylint: disable=g-import-not-at-top

  source = DEFAULT_CONFIG.read_text()
  lines = source.splitlines()
  comments = _comments(source)
  config = default.get_config()
  tree = ast.parse(source)
  get_config = next(n for n in tree.body
                    if isinstance(n, ast.FunctionDef) and n.name == "get_config")
  sections: list[list] = [[None, {}]]
  for stmt in get_config.body:
    block, line = [], stmt.lineno - 1
    while line in comments and comments[line][1]:
      block.insert(0, comments[line][0])
      line -= 1
    heading = bool(block) and not lines[line - 1].strip()
    if heading:
      sections.append([" ".join(block), {}])
      block = []
    if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
      continue
    field = _dotted(stmt.targets[0])
    if field is None:
      continue
    rows = sections[-1][1]
    trailing = comments.get(stmt.end_lineno, ("", True))
    notes = [" ".join(block)] if block else []
    if not trailing[1]:
      notes.append(trailing[0])
    value = _get(config, field)
    if field == "data":  # the DataOptions fields, documented there
      docs = _attribute_docs(data.DataOptions)
      for f in dataclasses.fields(data.DataOptions):
        rows[f"data.{f.name}"] = (_default(value[f.name]),
                                  _myst(docs.get(f.name, "")))
      continue
    if isinstance(value, ml_collections.ConfigDict):
      continue  # a section; its fields follow
    description = " ".join(notes)
    for section in sections:  # a later line that adds to a field's note
      if field in section[1]:
        rows = section[1]
        description = f"{rows[field][1]} {description}".strip()
    shown = ("from `method`" if field in methods.METHOD_FIELDS
             else _default(value))
    rows[field] = (shown, description)
  return [(heading, [(f, *row) for f, row in rows.items()])
          for heading, rows in sections if rows]


def config_fields() -> list[tuple[str, str, str]]:
  """``(field, default, description)`` of every field of
  ``configs/default.py``, in the file's order."""
  return [row for _, rows in config_sections() for row in rows]


def _default(value) -> str:
  if value is None:
    return "`None`"
  return f"`{value!r}`"


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
