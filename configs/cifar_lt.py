r"""Long-tailed CIFAR/CINIC presets of the Remix paper (Tables 1, 2 and 5).

    python main.py --workdir runs/c10_remix_drw \
      --config configs/cifar_lt.py:dataset=cifar10,rho=100,profile=exp,method=remix_drw

Arguments after ``:`` (comma-separated ``key=value``):
  dataset   cifar10 (default; tfds downloads it) | cifar100 | cinic10 |
            cifar10_jpeg (our offline copy of CIFAR-10, prepared beforehand)
  rho       imbalance ratio (default 100)
  profile   exp | step
  method    a name from remix_jax.trainer.methods.METHODS (default erm)
  protocol  paper (200 epochs, LDAM recipe) | cpu30 (30 epochs) | remix300
  seed        the run's seed: the long-tailed subset, the initialisation, the
              mixing and the data order (seed 0 keeps LDAM's subset)
  split_seed  pins the subset to another seed's (default -1: the run's seed),
              so that only the training randomness varies
"""

from configs import args
from configs import default
from remix_jax.trainer import methods

PROTOCOLS = ("paper", "cpu30", "remix300")


def get_config(arg=None):
  """The preset of the ``key=value,...`` argument string (module docstring)."""
  return build(**args.parse_arg(
      arg, preset="cifar_lt", dataset="cifar10", rho=100.0,
      profile="exp", method="erm", protocol="paper", seed=0, split_seed=-1))


def build(dataset: str = "cifar10", rho: float = 100.0,
          profile: str = "exp", method: str = "erm", protocol: str = "paper",
          seed: int = 0, split_seed: int = -1):
  """The preset for one long-tailed benchmark cell, from keyword arguments
  (the same names and defaults as the argument string).

  ``seed`` sets ``config.seed`` (initialisation, mixing, the step's
  randomness), ``data.shuffle_seed`` (data order, augmentation) and, unless
  ``split_seed >= 0`` pins it, ``data.split_seed`` (the subset)."""
  if protocol not in PROTOCOLS:
    raise ValueError(f"unknown protocol {protocol!r}; choose one of "
                     f"{', '.join(PROTOCOLS)}")
  c = default.get_config()
  c.seed = int(seed)
  c.data.name = dataset
  c.data.rho = float(rho)
  c.data.profile = profile
  c.data.split_seed = int(seed if split_seed < 0 else split_seed)
  c.data.shuffle_seed = int(seed)
  c.model = "resnet18" if dataset == "cinic10" else "resnet32"
  if protocol == "paper":
    # Test accuracy every 5 epochs draws the late gains of the mixing methods
    # (epochs 160–200) with 9 points; checkpoints at the same cadence.
    c.eval_every_epochs = 5
    c.checkpoint_every_epochs = 5
  elif protocol == "cpu30":
    # LDAM's recipe compressed to 30 epochs: 5 warm-up stages within epoch 1,
    # ×0.01 for epochs 25–27, ×0.0001 for 28–30, DRW/DRS from epoch 25.
    c.num_epochs = 30
    c.warmup_epochs = 1.0
    c.lr_boundaries = (24.0, 27.0)
    c.rebalance_epoch = 24
    c.eval_every_epochs = 5
    c.checkpoint_every_epochs = 1
  elif protocol == "remix300":
    # The Remix paper's 300 epochs, decays at 150/225 (×0.1 each; §5.1),
    # DRW/DRS from the second decay.
    c.num_epochs = 300
    c.lr_boundaries = (150.0, 225.0)
    c.lr_scales = (0.1, 0.01)
    c.rebalance_epoch = 225
  c.method = methods.check_name(method)
  c.update(methods.published_settings(method))
  if dataset == "cifar100":
    c.unimix_tau = -0.1  # UniMix's CIFAR-100 configs
  return c
