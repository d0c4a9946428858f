"""tfds builders defined by remix_jax; importing registers them with tfds.

* ``cinic10``: CINIC-10 from the manually downloaded archive.
* ``sklearn_digits``: scikit-learn's bundled 8×8 digits, prepared offline.
* ``tiny_imagenet``: Tiny-ImageNet-200 from the manually downloaded zip.
"""

from remix_jax.data.builders.cinic10 import Cinic10
from remix_jax.data.builders.sklearn_digits import SklearnDigits
from remix_jax.data.builders.tiny_imagenet import TinyImagenet

__all__ = ["Cinic10", "SklearnDigits", "TinyImagenet"]
