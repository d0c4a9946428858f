"""The Remix paper's tables (Chou et al. 2020) reproduced with remix_jax:
``tables`` (the paper's numbers and our cells), ``status`` (what the run
workdirs hold), ``runner`` (training, with deferred methods branched from
their base), ``report`` and ``plots``; ``reproduce.py`` is the command line.
"""
