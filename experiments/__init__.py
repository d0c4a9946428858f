"""Experiments built on remix_jax: the paper reproductions and the studies
behind the README's results (not part of the installed library)."""
