"""notebooks/quickstart.ipynb: runs top to bottom offline and prints its
metrics; the committed file is the generator's output, without outputs."""

from __future__ import annotations

import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from notebooks import make_quickstart  # noqa: E402  pylint: disable=g-import-not-at-top
from tests.helpers import REPO  # noqa: E402  pylint: disable=g-import-not-at-top

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def _stream_text(nb) -> str:
  return "".join(out.get("text", "") for cell in nb.cells
                 if cell.cell_type == "code" for out in cell.get("outputs", [])
                 if out.output_type == "stream" and out.name == "stdout")


def test_committed_notebook_is_the_generated_one_without_outputs():
  committed = nbformat.read(NOTEBOOK, as_version=4)
  assert [c.source for c in committed.cells] == [
      c.source for c in make_quickstart.build().cells]
  for cell in committed.cells:
    if cell.cell_type == "code":
      assert cell.outputs == [] and cell.execution_count is None


def test_quickstart_notebook_runs_offline(tmp_path, monkeypatch):
  # The notebook's own parameters, made small; one CPU device as a user has.
  monkeypatch.setenv("QUICKSTART_EPOCHS", "3")
  monkeypatch.setenv("QUICKSTART_CUSTOM_STEPS", "60")
  monkeypatch.setenv("QUICKSTART_WORKDIR", str(tmp_path / "work"))
  (tmp_path / "tfds").mkdir()
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline plots
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(
      nb, timeout=300, kernel_name="python3",
      resources={"metadata": {"path": str(NOTEBOOK.parent)}})
  client.execute()  # raises CellExecutionError naming the failing cell

  code = [c for c in nb.cells if c.cell_type == "code"]
  assert all(c.execution_count is not None for c in code)
  assert not any(out.output_type == "error" for c in code for out in c.outputs)
  text = _stream_text(nb)
  assert re.search(r"\d+ training images, counts per class: \[", text)
  first, last = map(float, re.search(
      r"custom step: mean loss of the first \d+ steps ([\d.]+), "
      r"of the last \d+ steps ([\d.]+)", text).groups())
  assert last < first
  for label in ("ERM", "Remix"):
    top1 = float(re.search(rf"^{label}: top-1 ([\d.]+)%", text, re.M).group(1))
    assert 10.0 < top1 <= 100.0  # above chance (10 classes)
  images = [out for c in code for out in c.outputs
            if "image/png" in out.get("data", {})]
  assert len(images) >= 4  # histogram, mixer grid, loss curve, per-class plot
  assert (tmp_path / "work" / "remix" / "results.json").is_file()
