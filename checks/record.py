"""Small data classes for the check path, without ``@dataclass``'s import cost.

``@dataclass`` compiles an ``__init__``, ``__repr__`` and ``__eq__`` (frozen: also
``__setattr__``, ``__delattr__`` and ``__hash__``) for every class it decorates:
~0.3 ms a class, ~10 ms for the ~30 classes ``kvmprep check`` imports. A record
writes its ``__init__`` and inherits the rest, which work on the fields: the
instance's attributes, in the order ``__init__`` sets them.
"""

from __future__ import annotations


class Record:
    """Field-wise ``==`` and a ``Name(field=value, ...)`` repr, as with ``@dataclass``."""

    __hash__ = None  # compared by value and mutable: unhashable, as with @dataclass

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__qualname__}({fields})"


class FrozenRecord(Record):
    """Also immutable and hashable, as with ``@dataclass(frozen=True)``:
    ``__init__`` sets the fields once, with ``_fields(name=value, ...)``."""

    def _fields(self, **values: object) -> None:
        vars(self).update(values)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of {type(self).__qualname__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of {type(self).__qualname__}")

    def __hash__(self) -> int:
        return hash(tuple(vars(self).values()))
