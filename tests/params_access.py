"""A params dict that records the dotted key paths code reads, to check a stage's `params:` list against."""
from __future__ import annotations

from collections.abc import Mapping


class ReadRecorder(dict):
    """A dict (nested dicts wrapped alike) whose reads land in a shared set of dotted keys.

    `p["train"]["lr"]`, `p.get("fast")` and looking up a missing key all count as reads of that key; iterating
    keys is a read of the mapping's key set, recorded as the mapping itself; `items()`/`values()` read every
    entry. Writes are not reads: a stage's own overrides (`params[key] = value`) are not recorded, and neither
    are later reads of an overridden key in that mapping (or its copies): the value is the stage's, not the file's.
    """

    def __init__(self, data: Mapping, reads: set[str] | None = None, prefix: str = ""):
        self.reads: set[str] = set() if reads is None else reads
        self._prefix = prefix
        self._written: set = set()
        super().__init__({k: self._wrap(k, v) for k, v in data.items()})

    def _key(self, key) -> str:
        return f"{self._prefix}.{key}" if self._prefix else str(key)

    def _wrap(self, key, value):
        if isinstance(value, Mapping) and not isinstance(value, ReadRecorder):
            return ReadRecorder(value, self.reads, self._key(key))
        return value

    def _record(self, key) -> None:
        if key not in self._written:
            self.reads.add(self._key(key))

    def __getitem__(self, key):
        self._record(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._record(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self._record(key)
        return super().__contains__(key)

    def __setitem__(self, key, value) -> None:
        self._written.add(key)  # a value the stage sets is kept as given (a recorder copy still records)
        super().__setitem__(key, value)

    def __iter__(self):  # also takes `{**p}` and `dict(p)` off CPython's fast path, so they read via __getitem__
        if self._prefix:
            self.reads.add(self._prefix)
        return super().__iter__()

    def keys(self):
        if self._prefix:
            self.reads.add(self._prefix)
        return super().keys()

    def items(self):
        for key in super().keys():
            self._record(key)
        return super().items()

    def values(self):
        for key in super().keys():
            self._record(key)
        return super().values()

    def copy(self) -> "ReadRecorder":
        """A shallow copy that reads nothing: entries are shared, and reads still land in the same set."""
        clone = ReadRecorder({}, self.reads, self._prefix)
        dict.update(clone, dict.items(self))
        clone._written = set(self._written)
        return clone
