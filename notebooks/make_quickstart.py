"""Writes notebooks/quickstart.ipynb (outputs stripped) from the cells below.

    python notebooks/make_quickstart.py

Edit the cells here, not in the .ipynb, and commit both.
"""

from __future__ import annotations

import os

import nbformat
from nbformat import v4

TITLE = """\
# remix_jax quickstart: Remix on long-tailed digits

Runs offline on scikit-learn's bundled 8×8 digits (no download), on CPU or
GPU, in a few minutes. It builds a long-tailed split, shows every input mixer
with the label the Remix rule gives each pair, trains a small Flax NNX model
with your own train step, then trains ERM and Remix with the library's
trainer and compares their per-class accuracy.

On Colab: set `REPO_URL` in the install cell to the GitHub URL of remix_jax
(or your fork), then *Runtime → Run all*."""

PARAMETERS = """\
# Parameters: the notebook's speed settings; each can also be set through the
# environment variable named next to it.
import os
import tempfile

EPOCHS = int(os.environ.get("QUICKSTART_EPOCHS", "40"))  # epochs of each trainer run
CUSTOM_STEPS = int(os.environ.get("QUICKSTART_CUSTOM_STEPS", "300"))  # steps of the custom loop
WORKDIR = os.environ.get("QUICKSTART_WORKDIR") or tempfile.mkdtemp(prefix="remix_quickstart_")
os.makedirs(WORKDIR, exist_ok=True)"""

INSTALL = """\
# Install: on Colab clone the repository and install it; elsewhere use the
# checkout this notebook lives in.
import subprocess
import sys

REPO_URL = os.environ.get("REMIX_JAX_REPO_URL", "")  # on Colab: the GitHub URL of remix_jax or your fork

if "google.colab" in sys.modules:
  if not REPO_URL:
    raise SystemExit("set REPO_URL in this cell to the GitHub URL of remix_jax")
  REPO = "/content/remix_jax"
  if not os.path.isdir(REPO):
    subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO], check=True)
  # The trainer extra: the notebook also runs the data pipeline and the trainer.
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", REPO + "[trainer]"], check=True)
else:
  REPO = os.path.abspath(os.getcwd())
  while not os.path.isfile(os.path.join(REPO, "remix_jax", "__init__.py")):
    if os.path.dirname(REPO) == REPO:
      raise SystemExit("run this notebook from inside the remix_jax checkout")
    REPO = os.path.dirname(REPO)
sys.path.insert(0, REPO)  # remix_jax and configs/ without restarting the kernel
os.chdir(REPO)"""

IMPORTS = """\
from remix_jax.trainer import process_setup
process_setup.configure_process()  # first: the trainer's XLA:CPU kernels, set before JAX computes anything
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import tensorflow as tf
from flax import nnx
from IPython.display import Image, display

tf.config.set_visible_devices([], "GPU")  # tf.data only: the GPU memory stays JAX's
from configs import quickstart
from remix_jax import data, losses, mixers, plots, remix
from remix_jax.trainer import config_lib, train

print("jax", jax.__version__, "on", jax.default_backend(), jax.devices())"""

SPLIT_MD = """\
## A long-tailed split

The quickstart config keeps `n_c = int(n_max·(1/ρ)^(c/(C−1)))` training
images of class `c` (ρ = 10): class 0 is the head, class 9 the tail."""

SPLIT = """\
config = quickstart.get_config()
# The library takes DataOptions; config_lib builds them from config.data.
options = config_lib.data_options(config.data)
train_data = data.create_train_data(options, global_batch_size=config.batch_size)
counts = train_data.class_counts
names = train_data.class_names
print(f"{train_data.num_examples} training images, counts per class: {counts.tolist()}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(names, counts)
ax.set(xlabel="class", ylabel="training images",
       title=f"long-tailed digits, rho = {config.data.rho:g}")
display(fig)
plt.close(fig)"""

GRID_MD = """\
## Every mixer, with the Remix label

Each row mixes a batch with one input mixer (one λ per batch). Under each
image: the two classes and their shares, then the Remix label (κ = 3,
τ = 0.5): "same" keeps the mixed label, a class name means the whole label
goes to that minority class."""

GRID = """\
batch = next(iter(train_data.iterate(0)))
images = batch["image"]
shown = (images - images.min()) / (images.max() - images.min())  # undo the normalization for display
grid_png = os.path.join(WORKDIR, "mixed_examples.png")
plots.mixed_examples_grid(grid_png, shown, batch["label"], counts, names)
display(Image(grid_png))"""

CUSTOM_MD = """\
## Your own train step

The library-import use: a small Flax NNX model, an optax optimizer, and a
train step that calls `mixers.cutmix` and `remix.remix_lambda` directly
(Remix-CM)."""

CUSTOM = """\
class SmallNet(nnx.Module):
  def __init__(self, num_classes: int, rngs: nnx.Rngs):
    self.conv = nnx.Conv(1, 32, (3, 3), rngs=rngs)
    self.fc = nnx.Linear(32 * 8 * 8, num_classes, rngs=rngs)

  def __call__(self, x):
    return self.fc(nnx.relu(self.conv(x)).reshape(x.shape[0], -1))

model = SmallNet(train_data.num_classes, nnx.Rngs(0))
optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
class_counts = jnp.asarray(counts)

@nnx.jit
def train_step(model, optimizer, rng, images, labels):
  def loss_fn(model):
    mixed, info = mixers.cutmix(rng, images, labels, alpha=1.0)
    labels_b = labels[info.partner]
    lam_y = remix.remix_lambda(info.lam, class_counts[labels],
                               class_counts[labels_b], kappa=3.0, tau=0.5)
    return losses.soft_cross_entropy(model(mixed), labels, labels_b, lam_y).mean()
  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return loss

step_losses, rng = [], jax.random.key(0)
while len(step_losses) < CUSTOM_STEPS:
  for batch in train_data.iterate(len(step_losses) // train_data.steps_per_epoch):
    rng, step_rng = jax.random.split(rng)
    step_losses.append(float(train_step(model, optimizer, step_rng,
                                        batch["image"], batch["label"])))
    if len(step_losses) == CUSTOM_STEPS:
      break
k = max(1, CUSTOM_STEPS // 10)
print(f"custom step: mean loss of the first {k} steps {np.mean(step_losses[:k]):.4f}, "
      f"of the last {k} steps {np.mean(step_losses[-k:]):.4f}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(step_losses, lw=0.8)
ax.set(xlabel="step", ylabel="Remix-CM loss", title="custom train step")
display(fig)
plt.close(fig)"""

TRAINER_MD = """\
## The trainer: ERM against Remix

`train.train_and_evaluate` on the quickstart config (a tiny ResNet, Mixup
α = 1 with the Remix rule), once as ERM and once as Remix, with the progress
bar. Each run writes checkpoints, TensorBoard scalars and `results.md` in its
own directory under `WORKDIR`."""

TRAINER = """\
def quickstart_config(method: str):
  c = quickstart.get_config()
  c.method = method  # the quickstart's own method is Remix
  c.num_epochs = EPOCHS
  c.eval_every_epochs = c.checkpoint_every_epochs = EPOCHS
  return c

results = {}
for method, label in (("erm", "ERM"), ("remix", "Remix")):
  results[label] = train.train_and_evaluate(quickstart_config(method),
                                            os.path.join(WORKDIR, method))
for label, r in results.items():
  print(f"{label}: top-1 {r['top1']:.2f}%  head {r['head']:.2f}%  tail {r['tail']:.2f}%")"""

PER_CLASS = """\
per_class_png = os.path.join(WORKDIR, "per_class.png")
plots.per_class_vs_size(per_class_png, results, counts,
                        title=f"long-tailed digits, {EPOCHS} epochs")
display(Image(per_class_png))"""

NEXT_MD = """\
## Where to go next

- **CIFAR-10-LT** (tfds downloads CIFAR-10 on first use; to prepare it for
  an offline machine, see `docs/datasets.md`):
  ```bash
  python main.py --workdir runs/c10_remix_drw \\
    --config configs/cifar_lt.py:dataset=cifar10,rho=100,profile=exp,method=remix_drw
  ```
  `protocol=remix300` for the Remix paper's 300 epochs; on a GPU add
  `--config.dtype=bfloat16`.
- **TensorBoard**: `tensorboard --logdir WORKDIR` (in Colab: `%load_ext
  tensorboard` then `%tensorboard --logdir {WORKDIR}`): loss, accuracy,
  learning rate, the mix ratio and the label weight per step.
- **SUMix**: `method=cutmix_sumix` (CutMix + SUMix) or `method=sumix_remix`
  (the Remix rule on SUMix's ratio) in `configs/cifar_lt.py`, or
  `remix_jax.sumix.sumix_loss` in your own step."""


def build() -> nbformat.NotebookNode:
  """The quickstart notebook, without outputs."""
  nb = v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                               "language": "python"}
  nb.metadata["language_info"] = {"name": "python"}
  nb.metadata["colab"] = {"provenance": []}
  params = v4.new_code_cell(PARAMETERS)
  params.metadata["tags"] = ["parameters"]
  nb.cells = [
      v4.new_markdown_cell(TITLE), params, v4.new_code_cell(INSTALL),
      v4.new_code_cell(IMPORTS), v4.new_markdown_cell(SPLIT_MD),
      v4.new_code_cell(SPLIT), v4.new_markdown_cell(GRID_MD),
      v4.new_code_cell(GRID), v4.new_markdown_cell(CUSTOM_MD),
      v4.new_code_cell(CUSTOM), v4.new_markdown_cell(TRAINER_MD),
      v4.new_code_cell(TRAINER), v4.new_code_cell(PER_CLASS),
      v4.new_markdown_cell(NEXT_MD),
  ]
  for i, cell in enumerate(nb.cells):
    cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
  return nb


if __name__ == "__main__":
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "quickstart.ipynb")
  nbformat.write(build(), path)
  print("wrote", path)
