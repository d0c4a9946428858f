"""main.py's default: Remix on long-tailed 8×8 digits, offline, a few minutes
on 2 CPU cores.

    python main.py --workdir runs/quickstart

The dataset is scikit-learn's bundled handwritten digits (1,797 real 8×8
images) exposed as a tfds builder, made long-tailed with ρ = 10; the model is
a tiny ResNet. Prints a per-class result table at the end.
"""

from configs import default


def get_config(arg=None):
  del arg
  c = default.get_config()
  c.data.name = "sklearn_digits"
  c.data.rho = 10.0
  c.model = "tiny_resnet"
  c.method = "remix"
  c.batch_size = 64
  c.eval_batch_size = 128
  c.num_epochs = 40
  c.learning_rate = 0.05
  c.weight_decay = 5e-4
  c.schedule = "cosine"
  c.warmup_epochs = 2.0
  c.eval_every_epochs = 10
  c.checkpoint_every_epochs = 10
  c.log_every_steps = 10
  return c
