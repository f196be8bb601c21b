"""The base of every config section: a frozen dataclass parsed from one params.yaml mapping.

A section's fields carry their value check (`field(metadata={"check": ...})`); `parse` rejects unknown and
missing keys and checks every value, naming the dotted key. A section can also record which keys the code
reads (`recording`): the stage-dependency check compares those reads with dvc.yaml's `params:` lists.
Values the pipeline sets itself (`derive`, e.g. a run's own seed) are not reads of params.yaml.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from fgnet_core.config.checks import Check, ConfigError

S = TypeVar("S", bound="Section")
MISSING_NOTE = " (the key is missing)"


def entry(check: Check, *, default: Any = dataclasses.MISSING, doc: str = "") -> Any:
    """A section field: its value check, and a default only where params.yaml may omit the key."""
    return dataclasses.field(default=default, metadata={"check": check, "doc": doc})


class Section:
    """Mixin of the config dataclasses (declare them `@dataclass(frozen=True)`)."""

    def __getattribute__(self, name: str):
        if name[0] != "_":
            state = object.__getattribute__(self, "__dict__")
            reads = state.get("_reads")
            if reads is not None and name in type(self).__dataclass_fields__ \
                    and name not in state.get("_written", ()):
                reads.add(state.get("_prefix", "") + name)
        return object.__getattribute__(self, name)

    # ------------------------------------------------------------------------------------------- parsing
    @classmethod
    def parse(cls: type[S], value: Any, key: str = "") -> S:
        """A params.yaml mapping -> the section; `key` is its dotted name ('' for the file itself)."""
        where = key or "params.yaml"
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping with keys {', '.join(names)}, got {value!r}")
        unknown = [k for k in value if k not in names]
        if unknown:
            bad = unknown[0]
            raise ConfigError(f"unknown field {_dotted(key, bad)}: {value[bad]!r}; "
                              f"{where} takes {', '.join(names)}")
        values = {}
        for f in dataclasses.fields(cls):
            dotted = _dotted(key, f.name)
            if f.name not in value and f.default is not dataclasses.MISSING:
                continue
            try:
                values[f.name] = f.metadata["check"](dotted, value.get(f.name))
            except ConfigError as exc:
                raise ConfigError(str(exc) + (MISSING_NOTE if f.name not in value else "")) from None
        return cls(**values)

    # ------------------------------------------------------------------------------------------ recording
    def recording(self: S, reads: set[str], prefix: str = "") -> S:
        """A copy whose field reads (and its sub-sections') are added to `reads` as dotted keys."""
        clone = copy.copy(self)
        object.__setattr__(clone, "_reads", reads)
        object.__setattr__(clone, "_prefix", prefix)
        for f in dataclasses.fields(clone):
            value = object.__getattribute__(clone, f.name)
            if isinstance(value, Section):
                object.__setattr__(clone, f.name, value.recording(reads, f"{prefix}{f.name}."))
        return clone

    def derive(self: S, **changes) -> S:
        """A copy with some fields set by the pipeline (not read from params.yaml: never recorded as reads).

        Values are taken as given: derive only from values a config already holds."""
        clone = copy.copy(self)
        for name, value in changes.items():
            if name not in type(self).__dataclass_fields__:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            object.__setattr__(clone, name, value)
        written = object.__getattribute__(self, "__dict__").get("_written", frozenset())
        object.__setattr__(clone, "_written", frozenset(written) | set(changes))
        return clone


def _dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def section(cls: type[Section]) -> Check:
    """The check of a field that holds a sub-section."""
    return lambda key, value: cls.parse(value, key)
