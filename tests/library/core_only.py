"""Uses the library as a researcher with the core install has it.

    python tests/library/core_only.py            # checks the packages are absent
    python tests/library/core_only.py --block    # makes them unimportable first

Imports the mixers, label rules, Remix, SUMix, losses, class balance, the
models and the light part of ``remix_jax.data``, runs a jitted CutMix with
the Remix label rule, the mixed-label loss and SUMix's loss, traces a tiny
model's creation and forward pass, then prints ``core-only ok``. Without ``--block`` it first asserts
that the trainer's packages are not installed (the fresh environment of
``tests/library/test_core_install.py``). The script runs with the
installed ``remix_jax``, never this checkout's, unless ``PYTHONPATH`` says
otherwise.
"""

import importlib.abc
import importlib.util
import sys

#: Packages that only the `trainer` extra installs. orbax is not among them:
#: flax itself depends on orbax-checkpoint.
TRAINER_ONLY = ("tensorflow", "tensorflow_datasets", "clu", "ml_collections",
                "sklearn", "matplotlib", "tensorboard", "torch")


class _Block(importlib.abc.MetaPathFinder):
  """Makes the :data:`TRAINER_ONLY` packages unimportable."""

  def find_spec(self, name, path=None, target=None):
    del path, target
    if name.split(".")[0] in TRAINER_ONLY:
      raise ModuleNotFoundError(f"No module named {name!r} (blocked)",
                                name=name)
    return None


def _use_the_library():
  """The library's core, end to end on a tiny batch."""
  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx

  import remix_jax
  from remix_jax import class_balance, data, label_rules, losses, mixers
  from remix_jax import models, remix, sumix
  # pylint: enable=g-import-not-at-top
  del remix, class_balance  # imported to show they import
  counts = np.array([50, 20, 5])
  rule = label_rules.make_label_rule("remix", counts)
  images = jax.random.normal(jax.random.key(0), (4, 8, 8, 3))
  labels = jnp.array([0, 1, 2, 0], jnp.int32)

  @jax.jit
  def step(rng, images, labels):
    mixed, info = mixers.cutmix(rng, images, labels)
    labels_b = labels[info.partner]
    lam_y = rule(info.lam, labels, labels_b)
    logits = mixed.mean(axis=(1, 2))
    loss = losses.soft_cross_entropy(logits, labels, labels_b, lam_y).mean()
    extra = sumix.sumix_loss(logits, logits, logits, logits, labels,
                             info.partner, info.lam, scale=4, gamma=1.0)
    return mixed, loss + extra

  mixed, loss = step(jax.random.key(1), images, labels)
  assert mixed.shape == images.shape and bool(jnp.isfinite(loss))
  def forward(x):  # traced only: compiling a model is slow on a busy CPU
    model = models.create_model("tiny_resnet", num_classes=3,
                                rngs=nnx.Rngs(0))
    return model(x).logits

  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  assert jax.eval_shape(forward, x).shape == (2, 3)
  assert data.longtail_counts is not None and remix_jax.__version__
  loaded = sorted(m for m in sys.modules if m.split(".")[0] in TRAINER_ONLY)
  assert not loaded, f"the library imported {loaded}"


def main(argv) -> int:
  if "--block" in argv:
    sys.meta_path.insert(0, _Block())
  else:
    present = [m for m in TRAINER_ONLY if importlib.util.find_spec(m)]
    assert not present, f"installed without the trainer extra: {present}"
  _use_the_library()
  print("core-only ok")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
