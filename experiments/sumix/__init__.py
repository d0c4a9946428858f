"""The SUMix studies behind ``docs/sumix.md``: which image λ̃ sides
with in training (``direction``), CutMix against both λ̃ rules on balanced
CIFAR-10 (``balanced``) and a short long-tailed comparison (``compare``)."""
