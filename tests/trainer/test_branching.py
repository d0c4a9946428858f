"""Deferred methods branched from their base run: the shared prefix gives
the same run as training from scratch (tiny configs, a few epochs)."""

import dataclasses
import json
import os

import pytest

from configs import quickstart
from experiments.remix_paper import report as paper_report
from experiments.remix_paper import runner
from experiments.remix_paper import status
from experiments.remix_paper import tables
from remix_jax.trainer import checkpointing
from remix_jax.trainer import methods
from remix_jax.trainer import run_record
from remix_jax.trainer import train


@dataclasses.dataclass(frozen=True)
class TinyCell(tables.Cell):
  """A cell whose runs are 3 quickstart epochs, re-balancing from epoch 2."""

  def config(self, seed):
    c = quickstart.get_config()
    c.method = self.method
    c.batch_size, c.eval_batch_size = 32, 64
    c.num_epochs, c.rebalance_epoch = 3, 2
    c.eval_every_epochs = c.checkpoint_every_epochs = 1
    c.log_every_steps, c.progress_bar, c.num_devices = 5, False, 1
    c.data.split_seed = seed
    return c


def test_deferred_bases():
  assert {m: methods.deferred_base(m) for m in (
      "drw", "drs", "remix_drw", "remix_drs", "mixup_drw", "ldam_drw",
      "remix_ldam_drw", "erm", "remix", "rw", "cutmix_sumix")} == {
          "drw": "erm", "drs": "erm", "remix_drw": "remix",
          "remix_drs": "remix", "mixup_drw": "mixup", "ldam_drw": "ldam",
          "remix_ldam_drw": "remix_ldam", "erm": None, "remix": None,
          "rw": None, "cutmix_sumix": None}
  with pytest.raises(ValueError, match="unknown method 'nope'"):
    methods.deferred_base("nope")


def test_saved_steps_and_copy_checkpoint_refusals(tmp_path):
  src, dst = tmp_path / "src", tmp_path / "dst"
  for name in ("8", "16", "24.orbax-checkpoint-tmp-1", "corrupt"):
    (src / "checkpoints" / name).mkdir(parents=True)
  (src / "checkpoints" / "16" / "data").write_text("x")
  assert checkpointing.saved_steps(str(src)) == [8, 16]
  assert checkpointing.saved_steps(str(dst)) == []
  with pytest.raises(ValueError, match=r"has no checkpoint 24 \(it has"):
    checkpointing.copy_checkpoint(str(src), 24, str(dst))
  copied = checkpointing.copy_checkpoint(str(src), 16, str(dst))
  assert open(os.path.join(copied, "data")).read() == "x"
  assert os.listdir(dst / "checkpoints") == ["16"]
  with pytest.raises(ValueError, match="already holds checkpoints"):
    checkpointing.copy_checkpoint(str(src), 8, str(dst))


def test_stop_at_epoch_out_of_range_is_refused_before_anything(tmp_path):
  with pytest.raises(ValueError, match=r"stop_at_epoch=4 must be in 1..3"):
    train.train_and_evaluate(TinyCell("erm").config(0), str(tmp_path / "w"),
                             stop_at_epoch=4)
  assert not (tmp_path / "w").exists()


def test_branch_and_continue_equals_training_from_scratch(tmp_path, capsys):
  erm, drw = TinyCell("erm"), TinyCell("drw")
  runs_dir, data_dir = tmp_path / "runs", tmp_path / "tfds"
  data_dir.mkdir()
  calls, finished = [], []

  def train_fn(config, workdir, **kwargs):
    result = train.train_and_evaluate(config, workdir, **kwargs)
    calls.append((os.path.basename(workdir), kwargs.get("stop_at_epoch"),
                  tuple(kwargs.get("allow_changes", ()))))
    if kwargs.get("stop_at_epoch"):
      # The prefix stops with its checkpoint and without final results.
      assert result["stopped"] and result["epoch"] == 2
      assert checkpointing.saved_steps(workdir)[-1] == result["step"]
      assert not os.path.exists(os.path.join(workdir, "results.json"))
    return result

  runs = status.table_runs([erm, drw], str(runs_dir))
  assert runner.train_runs(runs, str(runs_dir), str(data_dir),
                           lambda: finished.append(1), train_fn=train_fn)
  assert calls == [(erm.run_name(0), 2, ()), (erm.run_name(0), None, ()),
                   (drw.run_name(0), None, ("method", "reweight"))]
  assert len(finished) == 2
  branched_dir = runs_dir / drw.run_name(0)
  branch = json.loads((branched_dir / "branch.json").read_text())
  spe = branch["step"] // 2
  # The line before each run trains says what it now starts from: the base
  # from its evaluation at the branch, the branched run from its checkpoint.
  out = capsys.readouterr().out
  assert (f"== {runs_dir / erm.run_name(0)}: in progress, last evaluated "
          "epoch 2 (top-1 ") in out
  assert (f"== {branched_dir}: in progress (checkpoint at step "
          f"{branch['step']})\n") in out
  assert (branch["method"], branch["base"], branch["epoch"]) == (
      "erm", erm.run_name(0), 2)
  # The run record names the branch's change and its step.
  history = json.loads((branched_dir / "config.json").read_text())["history"]
  assert history == [{"step": branch["step"], "changes": {
      "method": ["erm", "drw"], "reweight": ["none", "drw"]}}]

  # DRW trained from step 0 is the same run, bit for bit on CPU: before the
  # switch DRW's class weights are all 1, which changes no float.
  scratch_config = drw.config(0)
  scratch_config.data.data_dir = str(data_dir)
  scratch = train.train_and_evaluate(scratch_config, str(tmp_path / "scratch"))
  branched = json.loads((branched_dir / "results.json").read_text())["metrics"]
  assert branched["per_class"] == scratch["per_class"]
  assert branched["top1"] == scratch["top1"] and branched["step"] == 3 * spe

  # The report marks the row and joins the curves at the branch.
  summaries = paper_report.write_report("tiny", [erm, drw], str(runs_dir),
                                        str(tmp_path / "results"))
  md = (tmp_path / "results" / "tiny.md").read_text()
  assert "s0: branched from ERM at epoch 2" in md
  erm_run, drw_run = summaries[0].runs[0], summaries[1].runs[0]
  # Both went on from checkpoint 2·spe, by plan: the base after stopping at
  # the switch, the branch at its start. Neither is a restart.
  assert erm_run.resumed_at == drw_run.resumed_at == [branch["step"]]
  assert erm_run.branched_at == [branch["step"]]
  assert erm_run.restarts == drw_run.restarts == []
  assert "resumed from checkpoint" not in md
  assert [p[0] for p in drw_run.curve] == [1, 2, 3]
  assert drw_run.curve[:2] == erm_run.curve[:2]
  assert drw_run.curve[2][1] == pytest.approx(scratch["top1"], abs=0.01)
  assert (tmp_path / "results" / "tiny_curves.png").stat().st_size > 1000
  archived = json.loads((tmp_path / "results" / "runs" / "tiny" /
                         f"{drw.run_name(0)}.json").read_text())
  assert archived["branch"]["epoch"] == 2 and archived["curve"] == drw_run.curve


def test_branch_refuses_a_run_that_differs_beyond_the_deferred_fields(
    tmp_path):
  erm = TinyCell("erm")
  base_dir = tmp_path / erm.run_name(0)
  config = erm.config(0)
  config.data.data_dir = str(tmp_path)
  stopped = train.train_and_evaluate(config, str(base_dir), stop_at_epoch=1)
  run = status.run_status(TinyCell("drw"), 0, str(tmp_path))
  runner.branch(run, erm, str(base_dir), stopped["step"], 1)
  other = TinyCell("drw").config(0)
  other.data.data_dir = str(tmp_path)
  other.learning_rate = 0.01
  with pytest.raises(run_record.ConfigChangedError,
                     match=r"learning_rate 0.05 -> 0.01"):
    train.train_and_evaluate(other, run.workdir,
                             allow_changes=("method", "reweight"))
