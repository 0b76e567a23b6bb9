"""`Registry`: the one mechanism behind every extension point of pixel_keras (archs, heads, the fast
sampler's incremental rules), so that each has the same `register` / `get` / `names` /
`unregister` / `replace=` semantics and the same errors.

Keras-free, and so are the registries built on it: the apps list `--arch` and `--head` without
importing TensorFlow.
"""

import importlib


class Registry:
    """Named entries of one kind, the built-ins first, then in registration order.

    Args:
        kind: what an entry is, in messages ("arch", "head", "incremental rule").
        key_type: the type every key must have (`str` for names, `type` for layer classes).
        entry_type: the type every entry must have (None: anything).

    Errors, the same for every registry: a key or entry of the wrong type is a TypeError; a key
    registered already (without `replace=True`), a built-in replaced or unregistered, or an unknown
    key is a one-line ValueError naming the key (and for an unknown one, the registered keys).

    Example:

    >>> colours = Registry("colour", str)
    >>> colours.register("red", (255, 0, 0), builtin=True)
    (255, 0, 0)
    >>> colours.names()
    ('red',)
    """

    def __init__(self, kind, key_type=str, entry_type=None):
        self.kind, self.key_type, self.entry_type = kind, key_type, entry_type
        self._entries, self._builtin = {}, set()

    def register(self, key, entry, *, replace=False, builtin=False):
        """Add `entry` under `key`; returns the entry.

        Args:
            key: the name (or class) it is found by.
            entry: what `get(key)` returns.
            replace: replace an entry registered under `key` (never a built-in one).
            builtin: mark the entry as one of the package's own, which cannot be replaced or removed.

        Raises:
            TypeError: for a key or entry of the wrong type.
            ValueError: for a key registered already (without `replace=True`) or a built-in one.
        """
        if self.entry_type is not None and not isinstance(entry, self.entry_type):
            raise TypeError(f"Expected a pixel_keras.{self.entry_type.__name__} to register. "
                            f"Received {type(entry).__name__}.")
        if not isinstance(key, self.key_type):
            raise TypeError(f"Expected a {self.kind} key of type {self.key_type.__name__}. Received {key!r}.")
        if key in self._builtin:
            raise ValueError(f"{self.kind.capitalize()} {self._shown(key)} is a built-in {self.kind}; "
                             "choose another name.")
        if key in self._entries and not replace:
            raise ValueError(f"{self.kind.capitalize()} {self._shown(key)} is registered already; "
                             "pass replace=True to replace it.")
        self._entries[key] = entry
        if builtin:
            self._builtin.add(key)
        return entry

    def unregister(self, key):
        """Remove a registered entry (a user's: the built-ins stay).

        Raises:
            ValueError: for a built-in or unknown key.
        """
        if key in self._builtin:
            raise ValueError(f"{self.kind.capitalize()} {self._shown(key)} is a built-in {self.kind}; "
                             "it cannot be unregistered.")
        self.get(key)
        del self._entries[key]

    def get(self, key):
        """The entry registered under `key`.

        Raises:
            ValueError: for an unknown key, naming the registered ones.
        """
        try:
            return self._entries[key]
        except (KeyError, TypeError):  # TypeError: an unhashable key
            raise ValueError(f"Expected {self.kind} to be one of {self._shown_names()}. "
                             f"Received {self.kind}={key!r}.") from None

    def names(self):
        """The registered keys: the built-ins first, then in registration order."""
        return tuple(self._entries)

    def __contains__(self, key):
        try:
            return key in self._entries
        except TypeError:
            return False

    def values(self):
        return tuple(self._entries.values())

    def resolve(self, reference):
        """The registered key that `reference` names: a registered name, or "package.module:name",
        whose module is imported first (registering its entries on import), then looked up.

        Raises:
            ValueError: one line, for a module that cannot be imported or a name not registered.
        """
        if not isinstance(reference, str):
            raise ValueError(f"Expected {self.kind} to be a name or package.module:name. "
                             f"Received {self.kind}={reference!r}.")
        module_name, colon, name = reference.rpartition(":")
        if colon:
            if not module_name or not name:
                raise ValueError(f"Expected {self.kind} package.module:name. Received {reference!r}.")
            try:
                importlib.import_module(module_name)
            except ImportError as error:
                raise ValueError(f"cannot import {module_name!r} for {self.kind} {reference!r}: {error}") from None
            if name not in self:
                raise ValueError(f"{module_name!r} registers no {self.kind} {name!r}; registered: "
                                 f"{self._shown_names()}")
        self.get(name)
        return name

    def _shown(self, key):
        return key.__name__ if isinstance(key, type) else repr(key)

    def _shown_names(self):
        return tuple(key.__name__ if isinstance(key, type) else key for key in self._entries)
