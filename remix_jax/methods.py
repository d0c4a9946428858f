"""Named training methods: the config fields each method of the papers sets.

A method is a small dict of overrides on top of ``configs/default.py``; the
table follows Chou et al. 2020 (Remix, Tables 1, 2 and 5) and Cao et al. 2019
(LDAM-DRW). ``R``/``D`` prefixes: re-weighting/re-sampling from the start, or
deferred to ``config.rebalance_epoch`` (the second-to-last LR decay). Keys
with a dot set nested fields (``sumix.enabled``).
"""

from __future__ import annotations

_REMIX = {"label_rule": "remix"}
_LDAM = {"loss": "ldam", "normalized_classifier": True}
_SUMIX = {"sumix.enabled": True}
_SUMIX_FOLLOW = {**_SUMIX, "sumix.rule": "follow",
                 "sumix.reduction": "per_sample"}

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
}


def apply_method(config, method: str):
  """Sets ``config.method`` and the fields of ``METHODS[method]`` in place.

  Raises a one-line ``ValueError`` naming the valid methods.
  """
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; choose one of "
                     f"{', '.join(sorted(METHODS))}")
  config.method = method
  for key, value in METHODS[method].items():
    *parents, field = key.split(".")
    target = config
    for parent in parents:
      target = getattr(target, parent)
    setattr(target, field, value)
  return config
