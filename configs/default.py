"""Every field the trainer reads, with LDAM-DRW's CIFAR-LT recipe as defaults.

Presets (``cifar_lt.py``, ``quickstart.py``) import this and override a few
fields. Select one with ``python main.py --config configs/FILE.py[:ARGS]`` and
override any field with ``--config.FIELD=VALUE``.
"""

import dataclasses

import ml_collections

from remix_jax import data


def _method_field(kind):
  """A field of the method: ``None`` (typed) until the trainer fills it."""
  return ml_collections.config_dict.placeholder(kind)


def get_config(arg=None):
  del arg
  c = ml_collections.ConfigDict()
  c.seed = 0  # model init, mixing and the step rng

  # Data: the fields of remix_jax.data.DataOptions (name, data_dir, rho,
  # profile, split_seed, ...) with its defaults; data_dir is None, str-typed.
  fields = dataclasses.asdict(data.DataOptions())
  fields["data_dir"] = ml_collections.config_dict.placeholder(str)
  c.data = ml_collections.ConfigDict(fields)

  # Model.
  c.model = "resnet32"  # remix_jax.models.MODELS: resnet32, resnet18, ...
  c.normalized_classifier = _method_field(bool)  # cosine classifier (LDAM)
  c.dtype = "float32"  # compute dtype: float32 | bfloat16 (params stay f32)
  # Batch chunks of each conv's kernel gradient (same gradient; faster on
  # XLA:CPU): -1 = auto (per-device batch / 16, at most 8, on CPU; 1 on
  # GPU/TPU), 1 = plain conv.
  c.weight_grad_chunks = -1
  # Convolutions and training-mode BatchNorm (+ ReLU, + the residual add):
  # auto = oneDNN's on CPU (native extension; XLA's if it is missing, with a
  # warning), XLA's on GPU/TPU | xla | onednn (CPU only).
  # weight_grad_chunks applies to XLA's convolutions.
  c.conv_impl = "auto"

  # Method: a name from remix_jax.trainer.methods.METHODS. The method's fields
  # (those built with _method_field) stay None here; the trainer fills them
  # from the method when it starts, and a value set explicitly must agree
  # with it.
  c.method = "erm"  # erm | mixup | remix | remix_drw | cutmix_sumix | ...
  c.mixer = _method_field(str)  # none | mixup | cutmix | saliencymix | fmix | resizemix | manifold_mixup | balanced_mixup | unimix
  c.mix_alpha = 1.0  # Beta(α, α); Remix uses 1.0 on CIFAR/CINIC, 0.4 on iNat
  c.mix_per_sample = False  # one λ per sample instead of one per batch
  c.mix_prob = 1.0  # probability that a batch is mixed (CMO: 0.5)
  # Epochs left unmixed at the start and at the end of the run (CMO: 4, 3)
  c.mix_skip_epochs = (0, 0)
  # Where each sample's partner comes from: permutation (of the batch) |
  # prior (rows of the global batch drawn ∝ n_y^unimix_tau, UniMix) |
  # sampler (a second batch, class probability ∝ n_c^(1 − data.partner_power);
  # CMO, Balanced-MixUp)
  c.partners = _method_field(str)
  c.unimix_tau = -0.5  # τ of UniMix's pairing (-0.5 CIFAR-10, -0.1 CIFAR-100)
  c.label_rule = _method_field(str)  # plain | remix
  c.remix_kappa = 3.0  # κ: majority ratio
  c.remix_tau = 0.5  # τ: dominance threshold
  c.label_smoothing = 0.0  # applied before mixing

  # SUMix (Qin et al. 2024; remix_jax/sumix.py): a second, clean forward pass,
  # the mix ratio recomputed from the predictions, an uncertainty regularizer.
  c.sumix = ml_collections.ConfigDict()
  c.sumix.enabled = _method_field(bool)  # clean + mixed pass, SUMix loss
  c.sumix.gamma = 0.5  # weight of the uncertainty regularizer (1.0 Tiny-ImageNet)
  c.sumix.scale = 0.0  # s; 0 = the per-device batch size, as released
  c.sumix.learn_scale = False  # extension: learn log s (trained through R only)
  c.sumix.is_norm = True  # uncertainty head W_u (False: u = logits, ImageNet)
  c.sumix.reduction = _method_field(str)  # official (batch-mean λ̃) | per_sample
  # λ̃ rule: official (as released) | follow (ours: towards the image the mixed
  # prediction is closer to, logit shift at most 1/temperature)
  c.sumix.rule = _method_field(str)
  c.sumix.temperature = 0.5  # T of the follow rule

  # Loss and re-balancing.
  c.loss = _method_field(str)  # ce | ldam | focal | logit_adjusted
  c.ldam_max_margin = 0.5  # LDAM: largest class margin (0.3 on iNat)
  c.ldam_scale = 30.0  # LDAM: logit scale s
  c.focal_gamma = 1.0  # γ of the focal loss
  c.la_tau = 1.0  # τ of the logit-adjusted loss, CE(z + τ log π); 1 = Balanced Softmax
  c.reweight = _method_field(str)  # none | rw (class-balanced weights) | drw (deferred)
  c.resample = _method_field(str)  # none | rs (class-balanced sampling) | drs (deferred)
  c.rebalance_epoch = 160  # epoch (from 0) where DRW/DRS switch on
  c.cb_beta = 0.9999  # effective-number β for RW/DRW/RS/DRS
  # The re-sampling β is the same value: setting either name sets both.
  c.data.resample_beta = c.get_ref("cb_beta")

  # Optimisation: SGD with momentum, LDAM's schedule.
  c.batch_size = 128  # global batch, split over all devices and processes
  c.eval_batch_size = 500  # global; the last batch is padded and masked
  c.learning_rate = 0.1  # base lr, reached at the end of the warm-up
  c.momentum = 0.9  # SGD momentum (0 = plain SGD)
  c.nesterov = False  # Nesterov momentum
  c.weight_decay = 2e-4  # L2 added to the gradient, as torch.optim.SGD
  c.schedule = "step"  # step | cosine
  c.num_epochs = 200  # training length
  c.warmup_epochs = 5.0  # stepwise linear warm-up over this many epochs
  c.warmup_stages = 5  # ... in this many equal stages
  c.lr_boundaries = (160.0, 180.0)  # epochs (from 0) where the lr changes
  c.lr_scales = (0.01, 0.0001)  # lr = learning_rate * scale from each boundary

  # Evaluation, checkpoints, logging.
  c.eval_every_epochs = 10  # test-set evaluation cadence (and at the end)
  c.checkpoint_every_epochs = 10  # checkpoint cadence (and at the end)
  c.keep_checkpoints = 2  # the newest N checkpoints are kept
  c.log_every_steps = 50  # TensorBoard scalars and the loss check, every N
  c.progress_bar = True  # epoch, loss, img/s and ETA on the console
  # Scalars: tensorboard (event files through clu; imports TensorFlow) |
  # jsonl (metrics.jsonl in the workdir; no TensorFlow).
  c.metric_writer = "tensorboard"

  # Devices and processes.
  c.num_devices = 0  # devices per process to use; 0 = all
  c.distributed = ml_collections.ConfigDict()
  c.distributed.coordinator_address = ""  # e.g. "10.0.0.1:1234"; "" = single process
  c.distributed.num_processes = 1  # processes (hosts) in the run
  c.distributed.process_id = 0  # this process; 0 is the coordinator
  return c
