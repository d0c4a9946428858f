"""The code blocks of README.md and of the docs' guides work as written.

Every fenced block has a language. A ```python block is executed as it
stands (with ``$TFDS_DATA_DIR`` in a temporary directory, where the bundled
digits get prepared). A ```bash / ```sh block is split into commands, and
each command is either run with tiny overrides or checked without training
(:func:`_check_command` says which, per kind of command; a command no
checker knows fails the test). A ```text block right after a code block is
that block's output: a python block must print it exactly, a shell command
run with tiny overrides must print each of its lines with any numbers
(``...`` lines are skipped). Other text blocks are left alone.

The developers' performance log (``docs/dev/``) is a record of past
commands, not instructions, and is not checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import shlex
import subprocess
import sys
import tomllib

import pytest

from tests.helpers import REPO

DOCS = REPO / "docs"
#: The pages whose code blocks are checked.
PAGES = sorted([REPO / "README.md", *DOCS.glob("*.md"),
                *(DOCS / "results").glob("*.md")])
#: Languages a block may have; ``{...}`` (a MyST directive) is allowed too.
LANGUAGES = {"python", "bash", "sh", "text", "bibtex"}


@dataclasses.dataclass
class Block:
  page: str  # relative to the repository
  line: int  # of the opening fence
  language: str
  code: str
  output: str | None = None  # the ```text block right after it, if any

  @property
  def name(self) -> str:
    return f"{self.page}:{self.line}"


_FENCE = re.compile(r"^(\s*)```(\S*)(?:\s.*)?$")


def _blocks(path) -> list[Block]:
  """The fenced blocks of a Markdown page, each text block right after a
  code block attached to it as its output."""
  lines = path.read_text().splitlines()
  rel = str(path.relative_to(REPO))
  blocks, i, previous_end = [], 0, None
  while i < len(lines):
    match = _FENCE.match(lines[i])
    if not match:
      i += 1
      continue
    indent, language = len(match.group(1)), match.group(2)
    start, body = i, []
    i += 1
    while i < len(lines) and lines[i].strip() != "```":
      body.append(re.sub(rf"^ {{0,{indent}}}", "", lines[i]))
      i += 1
    i += 1
    block = Block(rel, start + 1, language, "\n".join(body) + "\n")
    follows = (previous_end is not None and
               all(not l.strip() for l in lines[previous_end:start]))
    if (language == "text" and follows and blocks and
        blocks[-1].language in ("python", "bash", "sh")):
      blocks[-1].output = block.code
    blocks.append(block)
    previous_end = i
  return blocks


ALL_BLOCKS = [b for page in PAGES for b in _blocks(page)]


def _of(*languages):
  return [pytest.param(b, id=b.name) for b in ALL_BLOCKS
          if b.language in languages]


def test_every_block_has_a_known_language():
  bad = [f"{b.name} ```{b.language}" for b in ALL_BLOCKS
         if b.language not in LANGUAGES and not b.language.startswith("{")]
  assert not bad, ("mark commands ```bash or ```python and output ```text: "
                   + ", ".join(bad))


def test_the_readme_and_the_guides_have_code_to_check():
  pages = {b.page for b in ALL_BLOCKS if b.language in ("python", "bash")}
  assert {"README.md", "docs/library.md", "docs/training.md"} <= pages


# --- Python blocks ----------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path, monkeypatch):
  """An empty tfds data directory in ``$TFDS_DATA_DIR``."""
  path = tmp_path / "tfds"
  path.mkdir()
  monkeypatch.setenv("TFDS_DATA_DIR", str(path))
  return path


@pytest.mark.parametrize("block", _of("python"))
def test_python_block_runs(block, data_dir, monkeypatch):
  del data_dir
  monkeypatch.chdir(REPO)
  monkeypatch.syspath_prepend(str(REPO))  # configs/, as from the checkout
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    exec(compile(block.code, block.name, "exec"), {"__name__": "__main__"})  # pylint: disable=exec-used
  if block.output is not None:
    assert out.getvalue().splitlines() == block.output.splitlines()


# --- Shell blocks -----------------------------------------------------------

def _commands(code: str) -> list[list[str]]:
  """The commands of a shell block: continuation lines joined, a quoted
  string may span lines, comments dropped, ``a && b`` split in two."""
  commands, pending = [], ""
  for line in code.splitlines():
    pending += line[:-1] + " " if line.endswith("\\") else line + "\n"
    if line.endswith("\\"):
      continue
    try:
      words = shlex.split(pending, comments=True)
    except ValueError:  # a quotation that goes on on the next line
      continue
    pending = ""
    command = []
    for word in words + ["&&"]:
      if word == "&&":
        if command:
          commands.append(command)
        command = []
      else:
        command.append(word)
  assert not pending.strip(), f"unterminated command: {pending!r}"
  return commands


def _ci_script() -> str:
  return (REPO / ".ci" / "run").read_text()


def _check_pip(args, run):
  del run
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
  assert args[0] == "install", args
  extras = tomllib.loads((REPO / "pyproject.toml").read_text())[
      "project"]["optional-dependencies"]
  words = iter(args[1:])
  for word in words:
    if word in ("-e", "--editable"):
      word = next(words)
      match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
      assert match, f"pip install -e {word}: install the checkout"
      for extra in filter(None, (match.group(1) or "").split(",")):
        assert extra in extras, f"no extra {extra!r} in pyproject.toml"
    elif word == "-r":
      assert (REPO / next(words)).is_file()
    else:
      Requirement(word)  # a valid requirement specifier


def _check_in_ci(command):
  """Checked by being CI's own command (``.ci/run``)."""
  def check(args, run):
    del run
    line = " ".join([command, *args])
    assert line in _ci_script(), f"{line!r} is not what .ci/run runs"
  return check


def _check_sphinx(args, run):
  del run
  assert args[:5] == ["sphinx", "-W", "-b", "html", "docs"], args
  assert "python -m sphinx -W -b html docs" in _ci_script()


def _check_python_c(code, run):
  compile(code, "<python -c>", "exec")
  if "download_and_prepare" not in code:  # needs the network otherwise
    run([sys.executable, "-c", code])


def _run_main(args, run, tmp_path):
  """``main.py``: the offline quickstart runs for one epoch; a config that
  needs real data or several hosts is parsed and validated, not trained."""
  sys.path.insert(0, str(REPO))
  try:
    import main  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(REPO))
  from remix_jax.trainer import config_lib  # pylint: disable=g-import-not-at-top
  argv = ["main.py", *args]
  saved, sys.argv = sys.argv, argv  # config_flags reads the overrides there
  try:
    flags = main._parse_flags(argv, verbose=True)  # pylint: disable=protected-access
  finally:
    sys.argv = saved
  config = config_lib.validate_config(flags.config)
  if (config.data.name != "sklearn_digits" or
      config.distributed.coordinator_address):
    return None
  key = tuple(a for i, a in enumerate(args)  # the command without its workdir
              if not a.startswith("--workdir")
              and not (i and args[i - 1] == "--workdir"))
  if key not in _TRAINED:  # the same command on two pages trains once
    _TRAINED[key] = run([sys.executable, str(REPO / "main.py"), *args,
                         f"--workdir={tmp_path / 'workdir'}",
                         "--config.num_epochs=1"])
  return _TRAINED[key]


#: Output of the main.py commands trained so far, by their arguments.
_TRAINED: dict[tuple[str, ...], str] = {}


def _run_reproduce(args, run, tmp_path):
  """``reproduce.py``: ``--readme_table`` prints; anything else is listed
  with ``--dry_run`` instead of trained."""
  script = [sys.executable, str(REPO / "experiments" / "remix_paper" /
                                "reproduce.py")]
  if "--readme_table" in args:
    return run(script + args)
  args = [a for a in args if a != "--report_only"]
  return run(script + args + ["--dry_run", f"--runs_dir={tmp_path / 'runs'}"])


_PARSE_ONLY = """\
import argparse, os, runpy, sys
parse = argparse.ArgumentParser.parse_args
def parse_and_stop(self, *args, **kwargs):
  parse(self, *args, **kwargs)
  print("arguments accepted")
  raise SystemExit(0)
argparse.ArgumentParser.parse_args = parse_and_stop
sys.argv = sys.argv[1:]
sys.path[:0] = [os.path.dirname(os.path.abspath(sys.argv[0])), {repo!r}]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _parse_script(script, args, run):
  """Any other script: its own argument parser accepts the arguments (it
  stops right after parsing them)."""
  path = REPO / script
  assert path.is_file(), f"no script {script}"
  out = run([sys.executable, "-c", _PARSE_ONLY.format(repo=str(REPO)),
             str(path), *args])
  assert "arguments accepted" in out


def _check_bash(args, run):
  """``bash benchmarks/*.sh``: the device check's arguments are accepted by
  ``benchmarks/device_check.py`` (it needs a GPU, or minutes for its dry
  run: ``tests/experiments/test_device_check.py`` runs that); the wheels'
  download needs the network, so the script only has to exist."""
  script, *rest = args
  assert (REPO / script).is_file(), f"no script {script}"
  if script == "benchmarks/device_check.sh":
    _parse_script("benchmarks/device_check.py", rest, run)
  else:
    assert script == "benchmarks/device_wheels.sh", f"no check for {script}"


def _check_command(words, run, tmp_path):
  """Runs or checks one command; returns its output when it ran."""
  name, *args = words
  if name == "export":
    assert all(re.fullmatch(r"\w+=\S*", a) for a in args), words
    return None
  if name == "pip":
    return _check_pip(args, run)
  if name == "bash":
    return _check_bash(args, run)
  assert name == "python", f"no check for the command {words}"
  if args[:2] == ["-m", "pytest"]:
    return _check_in_ci("python -m")(args[1:], run)
  if args[:2] == ["-m", "sphinx"]:
    return _check_sphinx(args[1:], run)
  if args[0] == "-c":
    return _check_python_c(args[1], run)
  if args[0] == "main.py":
    return _run_main(args[1:], run, tmp_path)
  if args[0] == "experiments/remix_paper/reproduce.py":
    return _run_reproduce(args[1:], run, tmp_path)
  return _parse_script(args[0], args[1:], run)


def _number_pattern(line: str) -> re.Pattern:
  """``line`` with every number free."""
  parts = re.split(r"\d+(?:\.\d+)?", line.strip())
  return re.compile(r"\d+(?:\.\d+)?".join(map(re.escape, parts)))


@pytest.mark.parametrize("block", _of("bash", "sh"))
def test_shell_block_runs_or_checks(block, data_dir, tmp_path, monkeypatch):
  monkeypatch.chdir(REPO)
  env = dict(os.environ, TFDS_DATA_DIR=str(data_dir), XLA_FLAGS="",
             PYTHONPATH=os.pathsep.join(
                 [str(REPO), os.environ.get("PYTHONPATH", "")]))

  def run(argv):
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, (argv, done.stdout[-3000:],
                                  done.stderr[-3000:])
    return done.stdout + done.stderr

  outputs = [_check_command(words, run, tmp_path)
             for words in _commands(block.code)]
  ran = [o for o in outputs if o is not None]
  if block.output is not None:
    assert ran, f"{block.name}: output shown for a command that is not run"
    lines = re.split(r"[\r\n]+", ran[-1])
    for expected in block.output.splitlines():
      if expected.strip() in ("", "...", "…"):
        continue
      pattern = _number_pattern(expected)
      assert any(pattern.search(l) for l in lines), (
          f"{block.name}: no line like {expected!r} in the output")


# --- Links and wording ------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(REPO)))
                                  for p in PAGES])
def test_local_links_point_at_files(page):
  text = page.read_text()
  missing = [target for target in _LINK.findall(text)
             if not re.match(r"[a-z]+:|#", target)
             and not (page.parent / target.split("#")[0]).exists()]
  assert not missing, f"{page.name}: links to missing files {missing}"


def test_user_docs_speak_of_no_numbered_attempts():
  pages = [REPO / "README.md", *DOCS.rglob("*.md")]
  bad = [str(p.relative_to(REPO)) for p in pages
         if DOCS / "dev" not in p.parents
         and re.search(r"\battempts? \d+", p.read_text())]
  assert not bad, f"only docs/dev/performance_log.md keeps the history: {bad}"


def test_generated_tables_cover_every_method_and_field():
  sys.path.insert(0, str(DOCS / "_ext"))
  try:
    import remix_docs  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(DOCS / "_ext"))
  from configs import default  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import methods  # pylint: disable=g-import-not-at-top

  table = remix_docs.methods_markdown()
  for name in methods.METHODS:
    assert f"| `{name}` |" in table
  fields = [f for f, _, _ in remix_docs.config_fields()]
  flat = default.get_config().to_dict()

  def leaves(d, prefix=""):
    for key, value in d.items():
      if isinstance(value, dict):
        yield from leaves(value, f"{prefix}{key}.")
      else:
        yield f"{prefix}{key}"

  assert sorted(fields) == sorted(leaves(flat))
  described = dict((f, d) for f, _, d in remix_docs.config_fields())
  assert described["mix_alpha"].startswith("Beta(α, α)")
