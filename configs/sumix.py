r"""Presets of the SUMix tables (Qin et al., ECCV 2024; the released configs).

    python main.py --workdir runs/c100_cutmix_sumix \
      --config configs/sumix.py:dataset=cifar100,mixer=cutmix
    python main.py --workdir runs/c100_cutmix \
      --config configs/sumix.py:dataset=cifar100,mixer=cutmix,sumix=false

Arguments after ``:`` (comma-separated ``key=value``):
  dataset   cifar100 (ResNet-18, 800 epochs) | tiny_imagenet (ResNet-18,
            400 epochs, γ = 1) | imagenet2012 (ResNet-18, 100 epochs, Mixup,
            no uncertainty head)
  mixer     cutmix | saliencymix | fmix | resizemix | mixup (default: the
            dataset's released mixer)
  sumix     true (default) | false: the base mixer alone, same recipe
  seed      model/mixing seed (default 0)

Recipes (the configs released with Qin et al., "SUMix: Mixup with Semantic
and Uncertain Information", ECCV 2024, arXiv:2407.07805): SGD momentum 0.9,
cosine to 0, no warm-up; CIFAR-100 batch 100, lr 0.1, wd 1e-4, α 0.2
(ResizeMix α 1: τ ~ U(0.1, 0.8)), γ 0.5; Tiny-ImageNet lr 0.2, γ 1.0;
ImageNet 4×64 = 256, lr 0.1, wd 1e-4, Mixup α 1, ``is_norm=False``. SUMix's
scale s is the per-device batch size.
"""

from configs import args
from configs import default
from remix_jax.trainer import methods

_ALPHA = {"cutmix": 0.2, "saliencymix": 0.2, "fmix": 0.2, "resizemix": 1.0,
          "mixup": 1.0}

_RECIPES = {
    "cifar100": dict(model="resnet18", num_epochs=800, batch_size=100,
                     learning_rate=0.1, weight_decay=1e-4, gamma=0.5,
                     mixer="cutmix", is_norm=True),
    "tiny_imagenet": dict(model="resnet18", num_epochs=400, batch_size=100,
                          learning_rate=0.2, weight_decay=1e-4, gamma=1.0,
                          mixer="cutmix", is_norm=True),
    "imagenet2012": dict(model="resnet18_imagenet", num_epochs=100,
                         batch_size=256, learning_rate=0.1, weight_decay=1e-4,
                         gamma=0.5, mixer="mixup", is_norm=False),
}


def get_config(arg=None):
  parsed = args.parse_arg(arg, preset="sumix", dataset="cifar100", mixer="",
                          sumix=True, seed=0)
  dataset = parsed["dataset"]
  if dataset not in _RECIPES:
    raise ValueError(f"unknown dataset {dataset!r}; choose one of "
                     f"{', '.join(_RECIPES)}")
  recipe = _RECIPES[dataset]
  mixer = parsed["mixer"] or recipe["mixer"]
  if mixer not in _ALPHA:
    raise ValueError(f"unknown mixer {mixer!r}; choose one of "
                     f"{', '.join(_ALPHA)}")

  c = default.get_config()
  c.seed = parsed["seed"]
  c.data.name = dataset
  c.data.rho = 1.0  # balanced: every training image
  c.method = methods.check_name(
      f"{mixer}_sumix" if parsed["sumix"] else mixer)
  c.model = recipe["model"]
  c.mix_alpha = _ALPHA[mixer]
  c.sumix.gamma = recipe["gamma"]
  c.sumix.is_norm = recipe["is_norm"]
  c.batch_size = recipe["batch_size"]
  c.eval_batch_size = 500
  c.learning_rate = recipe["learning_rate"]
  c.weight_decay = recipe["weight_decay"]
  c.num_epochs = recipe["num_epochs"]
  c.schedule = "cosine"
  c.warmup_epochs = 0.0
  c.eval_every_epochs = 10
  c.checkpoint_every_epochs = 10
  return c
