"""The quickstart notebook and its generator (``make_quickstart``)."""
