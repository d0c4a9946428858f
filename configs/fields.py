"""Every field of ``configs/default.py`` with its default and the comment
beside it, read from the file itself (the ``data`` fields take theirs from
:class:`remix_jax.data.DataOptions`' docstring): the docs' table of config
fields and ``main.py --helpfull`` show the same text.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import pathlib
import re
import tokenize
from typing import Callable

DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parent / "default.py"


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


#: ``(heading or None, [(field, default, description), ...])``.
Section = tuple


def config_sections(markup: Callable[[str], str] = str) -> list[Section]:
  """Every field of ``configs/default.py`` with its default and comment, in
  the file's order, grouped by the file's section comments (a comment
  block after a blank line).

  Args:
    markup: applied to the descriptions of the ``data`` fields, which come
      from :class:`remix_jax.data.DataOptions`' docstring
      (reStructuredText).

  Returns:
    ``[(heading or None, [(field, default, description), ...]), ...]``.
  """
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
                                  markup(docs.get(f.name, "")))
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


def config_fields(markup: Callable[[str], str] = str
                  ) -> list[tuple[str, str, str]]:
  """``(field, default, description)`` of every field of
  ``configs/default.py``, in the file's order (``markup``: as for
  :func:`config_sections`)."""
  return [row for _, rows in config_sections(markup) for row in rows]


def _default(value) -> str:
  if value is None:
    return "`None`"
  return f"`{value!r}`"
