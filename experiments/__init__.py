"""Experiments built on remix_jax: the paper reproductions and the studies
behind the published results (``results/``, ``docs/``) (not part of the installed library)."""
