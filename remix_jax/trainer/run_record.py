"""The config that trained a workdir, stored in ``workdir/config.json`` and
compared on every resume, so that one workdir holds one run.

Every field must match the stored one except :data:`FREE_FIELDS`, which
cannot change what is trained; a record older than a field of
:data:`ADDED_FIELDS` matches that field's value there. A deliberate change (a lower learning rate
after a NaN, more epochs) is allowed by naming the fields
(``train_and_evaluate(..., allow_changes=[...])``, ``main.py
--allow_changes=...``); the record then keeps the new values and a history
entry of the change.
"""

from __future__ import annotations

import json
import logging
import os

from remix_jax import files

#: The record's file name in the workdir.
RECORD_FILE = "config.json"

#: Fields that may change freely when a run resumes: logging, evaluation,
#: checkpoint cadence, where the data lives and how the processes meet.
FREE_FIELDS = (
    "progress_bar", "metric_writer", "log_every_steps", "eval_every_epochs",
    "eval_batch_size",
    "checkpoint_every_epochs", "keep_checkpoints", "data.data_dir",
    "distributed.coordinator_address", "distributed.process_id",
    # Kernel choices: the same math, up to float reassociation.
    "conv_impl", "weight_grad_chunks",
)


#: Fields newer than some records, each with the value that trains as the
#: records' runs did: a record without the field matches that value.
ADDED_FIELDS = {
    "mix_prob": 1.0, "partners": "permutation", "unimix_tau": -0.5,
    "la_tau": 1.0, "data.partner_power": 1.0, "mix_skip_epochs": [0, 0],
}


class ConfigChangedError(ValueError):
  """The config differs from the one that trained the workdir (one line)."""


def flatten(config) -> dict:
  """``{dotted field: JSON value}`` of a ``ConfigDict`` (or its JSON dict)."""
  tree = config if isinstance(config, dict) else json.loads(
      config.to_json_best_effort())
  flat = {}

  def walk(prefix, node):
    for key, value in node.items():
      if isinstance(value, dict):
        walk(f"{prefix}{key}.", value)
      else:
        flat[prefix + key] = value

  walk("", tree)
  return flat


def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError) as err:
    raise ConfigChangedError(
        f"{path} cannot be read ({err}); it records the config that trained "
        "this workdir: restore it from a copy, or start over in a new "
        "--workdir") from None


def stored_config(workdir: str):
  """The flat config that trained ``workdir``, or ``None`` for a new one."""
  record = _read_json(os.path.join(workdir, RECORD_FILE))
  return None if record is None else flatten(record["config"])


def load_config(workdir: str):
  """The config that trained ``workdir`` as a ``ConfigDict`` (its method
  resolved, as recorded).

  Raises:
    ConfigChangedError: ``workdir`` has no readable run record (one line).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  record = _read_json(os.path.join(workdir, RECORD_FILE))
  if record is None:
    raise ConfigChangedError(
        f"{os.path.abspath(workdir)} has no run record ({RECORD_FILE}); it "
        "is not a workdir the trainer wrote")
  return ml_collections.ConfigDict(record["config"])


#: The value of a field that one of two configs does not have.
_MISSING = object()


def differences(stored: dict, new: dict) -> dict:
  """The fields in which two flat configs (:func:`flatten`) differ.

  Args:
    stored: the flat config that trained a run (its record, or the config
      in its ``results.json``).
    new: the flat config of this call.

  Returns:
    ``{field: (stored value, new value)}`` of every field but
    :data:`FREE_FIELDS` whose values differ, sorted by field; a field of
    :data:`ADDED_FIELDS` that ``stored`` lacks has its value there, any
    other field one of them lacks has the value ``_MISSING`` there.
  """
  stored = {**{k: v for k, v in ADDED_FIELDS.items() if k in new}, **stored}
  return {key: (stored.get(key, _MISSING), new.get(key, _MISSING))
          for key in sorted(set(stored) | set(new))
          if key not in FREE_FIELDS
          and stored.get(key, _MISSING) != new.get(key, _MISSING)}


def _fmt(value) -> str:
  return repr(tuple(value)) if isinstance(value, list) else repr(value)


def check(workdir: str, config, allow_changes=(), *,
          has_checkpoints: bool | None = None) -> dict:
  """Compares ``config`` with the config that trained ``workdir``.

  The trainer writes the record before the run's first checkpoint
  (:meth:`remix_jax.trainer.saving.RunSaver.save`), so checkpoints without a
  record were not written by this workdir's run, and a record without
  checkpoints belongs to a run that saved nothing.

  Args:
    workdir: the run's directory.
    config: the config of this run.
    allow_changes: fields (dotted) that may differ from the stored config.
    has_checkpoints: whether ``workdir`` holds checkpoints: ``True`` refuses
      them without a record; ``False`` accepts any config (the record is
      replaced at the first save); ``None``: unknown, compare with the
      record when there is one.

  Returns:
    ``{field: (stored, new)}`` of the allowed changes (empty for a new
    workdir or the same config).

  Raises:
    ConfigChangedError: one line naming each changed field and its two
      values, an ``allow_changes`` entry that is not a field, or checkpoints
      without a record.
  """
  new = flatten(config)
  unknown = sorted(set(allow_changes) - set(new))
  if unknown:
    raise ConfigChangedError(
        f"--allow_changes names {', '.join(unknown)}, not config fields")
  if has_checkpoints is False:
    return {}
  old = stored_config(workdir)
  if old is None:
    if has_checkpoints:
      raise ConfigChangedError(
          f"workdir {os.path.abspath(workdir)} has checkpoints but no run "
          f"record ({RECORD_FILE}), so nothing shows which config trained "
          "them; use a new --workdir")
    return {}
  changes = differences(old, new)
  refused = [key for key in changes if key not in allow_changes]
  if refused:
    described = ", ".join(
        f"{key} {_fmt(changes[key][0]) if changes[key][0] is not _MISSING else '(absent)'}"
        f" -> {_fmt(changes[key][1]) if changes[key][1] is not _MISSING else '(absent)'}"
        for key in refused)
    raise ConfigChangedError(
        f"workdir {os.path.abspath(workdir)} was trained with another config: "
        f"{described}; use a new --workdir, or continue this run with the new "
        f"values with --allow_changes={','.join(refused)}")
  return {key: tuple(None if v is _MISSING else v for v in values)
          for key, values in changes.items()}


def key_derivation(workdir: str):
  """How the run in ``workdir`` derived its keys from its seed (the trainer's
  ``KEY_DERIVATION`` when it started), or ``None`` when its record does not
  say (runs started before it was recorded: init ``key(seed)``, step
  ``key(seed + 1)``)."""
  record = _read_json(os.path.join(workdir, RECORD_FILE))
  return None if record is None else record.get("key_derivation")


def write(workdir: str, config, *, step: int, changes: dict,
          key_derivation: str | None = None, replace: bool = False) -> None:
  """Stores ``config`` as the config of ``workdir`` (atomically), with a
  history entry for ``changes`` made when resuming at ``step``.

  ``key_derivation`` is stored in a new record of a run that starts at step
  0 (the state it initialised); a resumed run keeps what its record says,
  since its keys come from the checkpoint. ``replace`` starts a new record
  in place of one whose run saved nothing."""
  path = os.path.join(workdir, RECORD_FILE)
  record = None if replace else _read_json(path)
  if record is None:
    record = {"history": []}
    if step == 0 and key_derivation is not None:
      record["key_derivation"] = key_derivation
  if changes:
    record["history"].append(
        {"step": int(step),
         "changes": {key: list(values) for key, values in changes.items()}})
    logging.warning("workdir %s continues at step %d with changed %s", workdir,
                    step, ", ".join(f"{k} {_fmt(a)} -> {_fmt(b)}"
                                    for k, (a, b) in changes.items()))
  record["config"] = json.loads(config.to_json_best_effort())
  files.write_json(path, record, indent=1)
