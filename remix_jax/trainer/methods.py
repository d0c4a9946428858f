"""Named training methods: the config fields each method of the papers sets.

A method is a small dict of overrides on top of ``configs/default.py``; the
table follows Chou et al. 2020 (Remix, Tables 1, 2 and 5) and Cao et al. 2019
(LDAM-DRW). ``R``/``D`` prefixes: re-weighting/re-sampling from the start, or
deferred to ``config.rebalance_epoch`` (the second-to-last LR decay). Keys
with a dot set nested fields (``sumix.enabled``).

Every method sets all of :data:`METHOD_FIELDS` (those it does not name keep
their :data:`BASELINE` value). In a config those fields are ``None`` until
:func:`resolve` fills them from ``config.method``, once, when the trainer
starts; a field set explicitly must agree with the method.
"""

from __future__ import annotations

#: The method fields of plain ERM; a method overrides some of them.
BASELINE: dict = {
    "mixer": "none", "label_rule": "plain", "loss": "ce",
    "normalized_classifier": False, "reweight": "none", "resample": "none",
    "sumix.enabled": False, "sumix.rule": "official",
    "sumix.reduction": "official", "partners": "permutation",
}

_REMIX = {"label_rule": "remix"}
_LDAM = {"loss": "ldam", "normalized_classifier": True}
_SUMIX = {"sumix.enabled": True}
_SUMIX_FOLLOW = {**_SUMIX, "sumix.rule": "follow",
                 "sumix.reduction": "per_sample"}
_LA = {"loss": "logit_adjusted"}
_CMO = {"mixer": "cutmix", "partners": "sampler"}
_BALANCED_MIXUP = {"mixer": "balanced_mixup", "partners": "sampler"}
_UNIMIX = {"mixer": "unimix", "partners": "prior", **_LA}

#: Every method by name: the fields it sets that differ from :data:`BASELINE`
#: (the table of the docs' training guide is generated from it).
METHODS: dict[str, dict] = {
    "erm": {},
    "mixup": {"mixer": "mixup"},
    "remix": {"mixer": "mixup", **_REMIX},
    "manifold_mixup": {"mixer": "manifold_mixup"},
    "remix_mm": {"mixer": "manifold_mixup", **_REMIX},
    "cutmix": {"mixer": "cutmix"},
    "remix_cm": {"mixer": "cutmix", **_REMIX},
    "saliencymix": {"mixer": "saliencymix"},
    "fmix": {"mixer": "fmix"},
    "resizemix": {"mixer": "resizemix"},
    "rw": {"reweight": "rw"},
    "rs": {"resample": "rs"},
    "drw": {"reweight": "drw"},
    "drs": {"resample": "drs"},
    "focal": {"loss": "focal"},
    "ldam": dict(_LDAM),
    "ldam_drw": {**_LDAM, "reweight": "drw"},
    "ldam_drs": {**_LDAM, "resample": "drs"},
    "mixup_drw": {"mixer": "mixup", "reweight": "drw"},
    "mixup_drs": {"mixer": "mixup", "resample": "drs"},
    "remix_rw": {"mixer": "mixup", **_REMIX, "reweight": "rw"},
    "remix_rs": {"mixer": "mixup", **_REMIX, "resample": "rs"},
    "remix_drw": {"mixer": "mixup", **_REMIX, "reweight": "drw"},
    "remix_drs": {"mixer": "mixup", **_REMIX, "resample": "drs"},
    "remix_ldam": {"mixer": "mixup", **_REMIX, **_LDAM},
    "remix_ldam_drw": {"mixer": "mixup", **_REMIX, **_LDAM, "reweight": "drw"},
    "remix_ldam_drs": {"mixer": "mixup", **_REMIX, **_LDAM, "resample": "drs"},
    # SUMix (Qin et al. 2024) on each base mixer; "sumix" is CutMix + SUMix.
    "sumix": {"mixer": "cutmix", **_SUMIX},
    "cutmix_sumix": {"mixer": "cutmix", **_SUMIX},
    "saliencymix_sumix": {"mixer": "saliencymix", **_SUMIX},
    "fmix_sumix": {"mixer": "fmix", **_SUMIX},
    "resizemix_sumix": {"mixer": "resizemix", **_SUMIX},
    "mixup_sumix": {"mixer": "mixup", **_SUMIX},
    # Remix × SUMix: the Remix rule applied to each sample's λ̃ (so the
    # per-sample reduction, which keeps the rule's 0/1 label weights).
    "sumix_remix": {"mixer": "cutmix", **_SUMIX, **_REMIX,
                    "sumix.reduction": "per_sample"},
    # Our λ̃ rule (remix_jax.sumix.follow_ratio), per sample, on each base
    # mixer and with the Remix rule.
    "cutmix_sumix_follow": {"mixer": "cutmix", **_SUMIX_FOLLOW},
    "saliencymix_sumix_follow": {"mixer": "saliencymix", **_SUMIX_FOLLOW},
    "fmix_sumix_follow": {"mixer": "fmix", **_SUMIX_FOLLOW},
    "resizemix_sumix_follow": {"mixer": "resizemix", **_SUMIX_FOLLOW},
    "sumix_follow_remix": {"mixer": "cutmix", **_SUMIX_FOLLOW, **_REMIX},
    # Remix's successors, each also with the Remix rule. Logit adjustment
    # (Menon et al. 2021) at config.la_tau; Balanced Softmax (Ren et al.
    # 2020) is the same loss at τ = 1.
    "logit_adjustment": dict(_LA),
    "balanced_softmax": dict(_LA),
    "mixup_la": {"mixer": "mixup", **_LA},
    "remix_la": {"mixer": "mixup", **_REMIX, **_LA},
    # CMO (Park et al. 2022): CutMix pasting a minority-sampled batch.
    "cmo": dict(_CMO),
    "cmo_drw": {**_CMO, "reweight": "drw"},
    "cmo_la": {**_CMO, **_LA},
    "remix_cmo": {**_CMO, **_REMIX},
    # Balanced-MixUp (Galdran et al. 2021): Mixup with a class-balanced batch.
    "balanced_mixup": dict(_BALANCED_MIXUP),
    "remix_balanced_mixup": {**_BALANCED_MIXUP, **_REMIX},
    # UniMix + Bayias (Xu et al. 2021): its factor and pairing, the
    # logit-adjusted loss.
    "unimix": dict(_UNIMIX),
    "remix_unimix": {**_UNIMIX, **_REMIX},
}

#: The paper (and released code) behind each method that is not a
#: combination of the others' parts (the docs' methods table).
REFERENCES: dict[str, str] = {
    "mixup": "Zhang et al., ICLR 2018",
    "remix": "Chou et al., ECCV-W 2020",
    "manifold_mixup": "Verma et al., ICML 2019",
    "cutmix": "Yun et al., ICCV 2019",
    "saliencymix": "Uddin et al., ICLR 2021",
    "fmix": "Harris et al., arXiv 2020",
    "resizemix": "Qin et al., arXiv 2020",
    "rw": "Cui et al., CVPR 2019",
    "rs": "Cui et al., CVPR 2019",
    "drw": "Cao et al., NeurIPS 2019",
    "drs": "Cao et al., NeurIPS 2019",
    "focal": "Lin et al., ICCV 2017",
    "ldam": "Cao et al., NeurIPS 2019",
    "sumix": "Qin et al., ECCV 2024",
    "logit_adjustment": "Menon et al., ICLR 2021 (google-research/logit_adjustment)",
    "balanced_softmax": "Ren et al., NeurIPS 2020 (BalancedMetaSoftmax)",
    "cmo": "Park et al., CVPR 2022 (naver-ai/cmo)",
    "balanced_mixup": "Galdran et al., MICCAI 2021 (agaldran/balanced_mixup)",
    "unimix": "Xu et al., NeurIPS 2021 (XuZhengzhuo/Prior-LT)",
}

#: The published settings outside the method fields, by the method fields
#: they go with (``configs/cifar_lt.py`` applies them): CMO mixes a batch
#: with probability 0.5 (``--mixup_prob``) from epoch 4 to the fourth-last
#: (``start_data_aug < epoch < epochs − end_data_aug``, both 3), Balanced-MixUp draws Beta(0.2, 1)
#: (α ∈ {0.1, 0.2, 0.3} in its experiments), UniMix Beta(0.8, 0.8).
PUBLISHED_SETTINGS = (
    ({"mixer": "cutmix", "partners": "sampler"},
     {"mix_prob": 0.5, "mix_skip_epochs": (4, 3)}),
    ({"mixer": "balanced_mixup"}, {"mix_alpha": 0.2}),
    ({"mixer": "unimix"}, {"mix_alpha": 0.8}),
)


def published_settings(method: str) -> dict:
  """The :data:`PUBLISHED_SETTINGS` that go with ``method``'s fields
  (``{}`` for the methods without any)."""
  fields = method_fields(method)
  out = {}
  for when, settings in PUBLISHED_SETTINGS:
    if all(fields[k] == v for k, v in when.items()):
      out.update(settings)
  return out


#: The fields a method determines.
METHOD_FIELDS = tuple(BASELINE)


def method_fields(method: str) -> dict:
  """``{field: value}`` of :data:`METHOD_FIELDS` that ``method`` sets.

  Raises a one-line ``ValueError`` naming the valid methods.
  """
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; choose one of "
                     f"{', '.join(sorted(METHODS))}")
  return {**BASELINE, **METHODS[method]}


#: The fields a deferred method switches on at ``config.rebalance_epoch``,
#: with their value before the switch.
DEFERRED_FIELDS = {"reweight": ("drw", "none"), "resample": ("drs", "none")}


def deferred_base(method: str):
  """The method that ``method`` trains as until ``config.rebalance_epoch``.

  A deferred method (DRW, DRS and their combinations; Cao et al. 2019) sets
  :data:`DEFERRED_FIELDS`; before the switch it is step for step the method
  without them (``remix_drw`` → ``remix``, ``drw`` → ``erm``), so a run of it
  can branch from a checkpoint of its base at the switch epoch.

  Returns:
    The base's name, or ``None`` when ``method`` defers nothing (or no named
    method has the base's fields). Raises a one-line ``ValueError`` for an
    unknown method.
  """
  fields = method_fields(method)
  base = dict(fields)
  for key, (deferred, before) in DEFERRED_FIELDS.items():
    if fields[key] == deferred:
      base[key] = before
  if base == fields:
    return None
  return next((name for name in METHODS if method_fields(name) == base), None)


def check_name(method: str) -> str:
  """``method`` when it is one of :data:`METHODS`; a one-line
  ``ValueError`` naming the valid methods otherwise."""
  method_fields(method)
  return method


def _get(config, key: str):
  for part in key.split("."):
    config = getattr(config, part)
  return config


def _set(config, key: str, value) -> None:
  *parents, field = key.split(".")
  for parent in parents:
    config = getattr(config, parent)
  setattr(config, field, value)


def _named_by(fields: dict):
  """The method whose fields are ``fields`` (``None`` if none is)."""
  return next((name for name in METHODS if method_fields(name) == fields),
              None)


def resolve(config):
  """``config.method``'s preset applied to a copy of ``config``: each field
  of :data:`METHOD_FIELDS` left ``None`` takes the method's value
  (:func:`method_fields`); fields set explicitly are kept, and
  :func:`check_method` refuses those that contradict the method.

  This is the one place a method is applied: the trainer resolves its config
  once (:func:`remix_jax.trainer.config_lib.validate_config`), and the run
  record holds the resolved fields. Resolving a resolved config changes
  nothing.

  Args:
    config: a ``ConfigDict`` with ``method`` and the method fields.

  Returns:
    The resolved copy (references resolved).

  Raises:
    ValueError: one line for an unknown method.
  """
  wanted = method_fields(config.method)
  out = config.copy_and_resolve_references()
  for key, value in wanted.items():
    if _get(out, key) is None:
      _set(out, key, value)
  return out


def check_method(config) -> None:
  """Raises a one-line ``ValueError`` when fields of a resolved ``config``
  are not those of ``config.method``, naming the method they make up."""
  wanted = method_fields(config.method)
  wrong = [key for key, value in wanted.items() if _get(config, key) != value]
  if not wrong:
    return
  have = ", ".join(f"config.{key}={_get(config, key)!r}" for key in wrong)
  sets = ", ".join(f"{key}={wanted[key]!r}" for key in wrong)
  other = _named_by({key: _get(config, key) for key in wanted})
  hint = (f"select --config.method={other}" if other
          else "no method has these fields")
  raise ValueError(
      f"config.method={config.method!r} contradicts {have} (method "
      f"{config.method} sets {sets}); {hint}, or leave the method's fields "
      "unset")
