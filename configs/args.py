"""Typed ``key=value,...`` arguments of the config presets
(``--config configs/cifar_lt.py:method=remix,rho=10``), as big_vision's
``parse_arg``."""

from __future__ import annotations

_BOOLS = {"true": True, "false": False}


def parse_arg(arg, *, preset: str, **spec) -> dict:
  """Parses ``'a=1,b=x'`` against ``spec`` (name → default).

  Each value takes the type of its default: ``bool`` (``true``/``false``),
  ``int``, ``float`` or ``str``; missing names keep their default.

  Args:
    arg: the string after ``:`` in ``--config``, or ``None``.
    preset: the preset's name, for the error messages.
    **spec: every argument the preset accepts, with its default.

  Returns:
    ``{name: typed value}`` for every name of ``spec``.

  Raises:
    ValueError: one line for an item that is not ``key=value``, an unknown
      name (the known ones are listed) or a value of the wrong type.
  """
  out = dict(spec)
  for item in filter(None, (arg or "").split(",")):
    if "=" not in item:
      raise ValueError(f"config argument {item!r} must be key=value")
    key, value = (s.strip() for s in item.split("=", 1))
    if key not in spec:
      raise ValueError(f"unknown {preset} argument(s) {[key]}; choose from "
                       f"{sorted(spec)}")
    kind = type(spec[key])
    if kind is bool:
      if value.lower() not in _BOOLS:
        raise ValueError(f"{key}={value!r} must be true or false")
      out[key] = _BOOLS[value.lower()]
      continue
    try:
      out[key] = kind(value)
    except ValueError:
      raise ValueError(f"{key}={value!r} must be {kind.__name__}") from None
  return out
