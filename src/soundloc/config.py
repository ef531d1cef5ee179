"""The shared behaviour of the library's configuration dataclasses.

Every job's settings are a dataclass (``ModelConfig``, ``TrainConfig``, ``WorldConfig``,
``PigeonConfig``) of plain types, so that it can be stored in a checkpoint that loads with
``torch.load(..., weights_only=True)`` and in a ``results.json``. :class:`ConfigMixin` gives
them one way to go to and from such a dictionary.
"""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound="ConfigMixin")


class ConfigMixin:
    """``to_dict`` / ``from_dict`` for a dataclass of plain types.

    Tuples become lists in :meth:`to_dict` (JSON has no tuples) and are turned back into
    tuples by :meth:`from_dict` for fields whose default is a tuple, so that
    ``cls.from_dict(cfg.to_dict()) == cfg``.
    """

    def to_dict(self) -> dict[str, Any]:
        """The config as a dictionary of plain types."""
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Rebuild from :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown} (unknown keys)")
        values = {}
        for key, value in d.items():
            default = fields[key].default
            values[key] = tuple(value) if isinstance(value, list) and isinstance(default, tuple) else value
        return cls(**values)
