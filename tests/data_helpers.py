"""Small helpers shared by the data tests."""

import io

from remix_jax import data


def data_config(**overrides):
  """``config.data`` defaults with ``overrides`` applied."""
  c = data.default_data_config()
  c.update(overrides)
  return c


def encode_image(pixels, fmt: str) -> bytes:
  """``uint8`` pixels encoded as ``fmt`` (``'PNG'`` or ``'JPEG'``)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format=fmt,
                               **({"quality": 95} if fmt == "JPEG" else {}))
  return buf.getvalue()
