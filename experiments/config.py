"""Typed presets and ``--set key=value`` overrides for experiment configs.

Each experiment declares one frozen dataclass and a mapping of named presets
(``"smoke"``, ``"quick"``, ``"full"``) to zero-argument factories. The command line
only ever picks a preset and overrides declared fields::

    cfg = resolve_config(PRESETS, "quick", ["num_seeds=5", "n_grid=10,100,1000"])

Override values are coerced by the field's annotation (resolved with
``typing.get_type_hints``, so ``from __future__ import annotations`` is fine):

========================  ==============================================
annotation                accepted text
========================  ==============================================
``int``                   ``"3"``, ``"-2"``, ``"1_000"``
``float``                 ``"0.1"``, ``"1e-3"``, ``"inf"``
``bool``                  ``true/false/1/0`` (case-insensitive)
``str``                   anything
``tuple[int, ...]``       comma-separated, ``"1,2,3"``; ``""`` is ``()``
``tuple[float, ...]``     comma-separated, ``"0.1,0.2"``
``X | None``              ``none``/``null`` or a value for ``X``
``Literal[...]``          one of the literal values
========================  ==============================================

Unknown presets, unknown keys and unparsable values raise ``ValueError`` naming the
offender; the dataclass's own ``__post_init__`` validation then runs through
``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["config_keys", "parse_override", "resolve_config"]

T = TypeVar("T")

_TRUE = ("true", "1")
_FALSE = ("false", "0")
_NONE = ("none", "null")


def config_keys(cfg: Any) -> tuple[str, ...]:
    """Names of the fields of dataclass ``cfg`` that ``--set`` may override (init fields)."""
    if not dataclasses.is_dataclass(cfg):
        raise ValueError(f"cfg must be a dataclass, got {type(cfg).__name__}")
    return tuple(f.name for f in dataclasses.fields(cfg) if f.init)


def parse_override(text: str) -> tuple[str, str]:
    """Split ``"key=value"`` into ``(key, value)``; the value may itself contain ``=``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"override must look like key=value, got {text!r}")
    return key, value.strip()


def _coerce(annotation: Any, key: str, text: str) -> Any:
    """Convert override text to a value of type ``annotation``; ``ValueError`` otherwise."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    bad = ValueError(f"bad value for {key!r}: {text!r} is not a valid {_type_name(annotation)}")
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if type(None) in args and text.lower() in _NONE:
            return None
        for member in members:
            try:
                return _coerce(member, key, text)
            except ValueError:
                continue
        raise bad
    if origin is typing.Literal:
        for option in args:
            try:
                if _coerce(type(option), key, text) == option:
                    return option
            except ValueError:
                continue
        raise ValueError(f"bad value for {key!r}: {text!r} is not one of {list(args)}")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            element_types = None
            element = args[0]
        else:
            element_types = args
            element = None
        parts = [p.strip() for p in text.split(",")] if text.strip() else []
        if element_types is not None and len(parts) != len(element_types):
            raise bad
        try:
            if element_types is None:
                return tuple(_coerce(element, key, p) for p in parts)
            return tuple(_coerce(t, key, p) for t, p in zip(element_types, parts, strict=True))
        except ValueError:
            raise bad from None
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            raise bad from None
    if annotation is str:
        return text
    raise ValueError(f"field {key!r} has type {_type_name(annotation)}, which --set cannot parse")


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def resolve_config(
    presets: Mapping[str, Callable[[], T]], preset: str, overrides: Sequence[str] = ()
) -> T:
    """Build the config of preset ``preset`` with ``key=value`` overrides applied.

    Args:
      presets: preset name -> zero-argument factory returning a frozen dataclass.
      preset: the preset to start from.
      overrides: ``"key=value"`` strings; later ones win for the same key.

    Returns:
      ``dataclasses.replace(presets[preset](), **coerced_overrides)``.

    Raises:
      ValueError: unknown preset, unknown key, malformed override or unparsable value
        (the message names it), or whatever the dataclass's ``__post_init__`` rejects.
    """
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(sorted(presets))}")
    base = presets[preset]()
    keys = config_keys(base)
    if not overrides:
        return base
    hints = typing.get_type_hints(type(base))
    coerced: dict[str, Any] = {}
    for text in overrides:
        key, value = parse_override(text)
        if key not in keys:
            raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(keys)}")
        coerced[key] = _coerce(hints[key], key, value)
    return dataclasses.replace(base, **coerced)
