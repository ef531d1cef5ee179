"""The shared behaviour of the library's configuration dataclasses.

Every job's settings are a dataclass (``ModelConfig``, ``TrainConfig``, ``WorldConfig``,
``PretrainConfig``, ``PigeonConfig``...) of plain types and of other such dataclasses, so that
one config object describes a run, stores in a checkpoint that loads with
``torch.load(..., weights_only=True)`` and round-trips through a ``results.json``.
:class:`ConfigMixin` gives them one way to go to and from such a dictionary, and the
``check_*`` functions are the validators their ``__post_init__`` share (each error names the
field and the value).
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union

C = TypeVar("C", bound="ConfigMixin")


def _plain(value: Any) -> Any:
    """Dataclasses to dicts and tuples to lists, recursively (JSON has neither)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _options(hint: Any) -> tuple[Any, ...]:
    """The members of a ``Union`` / ``X | Y`` hint, or the hint itself."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _from_plain(hint: Any, value: Any) -> Any:
    """Rebuild a field's value from :func:`_plain` output, guided by its type hint."""
    for option in _options(hint):
        if isinstance(option, type) and issubclass(option, ConfigMixin) and isinstance(value, dict):
            return option.from_dict(value)
        if typing.get_origin(option) is tuple and isinstance(value, list):
            return tuple(value)
    return value


class ConfigMixin:
    """``to_dict`` / ``from_dict`` for a dataclass of plain types and nested configs.

    :meth:`to_dict` turns nested configs into dicts and tuples into lists; :meth:`from_dict`
    rebuilds them from the type hints, so that ``cls.from_dict(cfg.to_dict()) == cfg``.
    Subclasses that renamed or added fields since results were saved override
    :meth:`migrate` to turn an old dictionary into the current form.
    """

    def to_dict(self) -> dict[str, Any]:
        """The config as a dictionary of plain types."""
        return _plain(self)

    @classmethod
    def migrate(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Bring a dictionary saved by an earlier version up to date (default: unchanged)."""
        return d

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Rebuild from :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
        d = cls.migrate(dict(d))
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown} (unknown keys)")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _from_plain(hints[k], v) for k, v in d.items()})


# -- shared validators -------------------------------------------------------------------------


def _where(owner: object) -> str:
    return type(owner).__name__


def check_choice(owner: object, *names: str) -> None:
    """Each field's value is one of its ``Literal[...]`` type hint's members."""
    hints = typing.get_type_hints(type(owner))
    for name in names:
        allowed = [a for opt in _options(hints[name]) if typing.get_origin(opt) is Literal for a in typing.get_args(opt)]
        allowed += [None] if type(None) in _options(hints[name]) else []
        if getattr(owner, name) not in allowed:
            raise ValueError(f"{_where(owner)}.{name} must be one of {allowed}, got {getattr(owner, name)!r}")


def check_int(owner: object, *names: str, low: int = 1, optional: bool = False) -> None:
    """Each field is an int (not a bool) ``>= low`` (or ``None`` when ``optional``)."""
    for name in names:
        val = getattr(owner, name)
        if optional and val is None:
            continue
        if isinstance(val, bool) or not isinstance(val, int) or val < low:
            raise ValueError(f"{_where(owner)}.{name} must be an int >= {low}, got {val!r}")


def check_number(owner: object, *names: str, low: float = 0.0, high: float = math.inf,
                 low_open: bool = False, optional: bool = False) -> None:
    """Each field is a finite real number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    for name in names:
        val = getattr(owner, name)
        if optional and val is None:
            continue
        ok = isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val)
        ok = ok and (val > low if low_open else val >= low) and val <= high
        if not ok:
            bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise ValueError(f"{_where(owner)}.{name} must be a number in {bounds}, got {val!r}")


def check_probability(owner: object, *names: str) -> None:
    """Each field is a probability in [0, 1]."""
    check_number(owner, *names, low=0.0, high=1.0)


def parse_seeds(seeds: int | str | typing.Iterable[int]) -> tuple[int, ...]:
    """Seeds as the commands' ``--seeds`` take them: an int, ``"0-4"``, ``"0,2,7"`` (ranges and
    lists combine) or a sequence of ints; each seed once, none negative."""
    if isinstance(seeds, bool):
        raise ValueError(f"seeds: expected ints like 0, '0-4' or '0,2', got {seeds!r}")
    if isinstance(seeds, int):
        out = [seeds]
    elif isinstance(seeds, str):
        out = []
        for part in seeds.split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
                raise ValueError(f"seeds {seeds!r}: expected non-negative seeds like 0-4 or 0,2,7")
            out.extend(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    else:
        out = list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in out):
        raise ValueError(f"seeds: expected non-negative ints, got {seeds!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds {seeds!r} names a seed twice")
    return tuple(out)


__all__ = ["ConfigMixin", "check_choice", "check_int", "check_number", "check_probability", "parse_seeds"]
