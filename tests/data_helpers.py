"""Small helpers shared by the data tests."""

import io


def encode_image(pixels, fmt: str) -> bytes:
  """``uint8`` pixels encoded as ``fmt`` (``'PNG'`` or ``'JPEG'``)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format=fmt,
                               **({"quality": 95} if fmt == "JPEG" else {}))
  return buf.getvalue()
