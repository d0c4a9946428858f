"""The trainer: everything that reads a training config.

``train.train_and_evaluate(config, workdir)`` turns an ``ml_collections``
config (``configs/default.py`` lists every field) into the library's parts
(data, model, objective, optimizer, step) and runs them with checkpoints,
metrics and a run record in one workdir. The rest of :mod:`remix_jax` takes
plain typed arguments and never sees a config.
"""
