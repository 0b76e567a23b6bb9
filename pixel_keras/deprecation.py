"""Names that moved keep working for one release: a module's `__getattr__` hands them out with a
`DeprecationWarning` naming the new home (each listed in CHANGELOG.md under "Deprecated")."""

import warnings


def moved(old_module, name, new_module):
    """`name` from `new_module` (a module object), warning that `old_module.name` is deprecated."""
    warnings.warn(f"{old_module}.{name} is deprecated: use {new_module.__name__}.{name} (the old name goes in "
                  "the next release)", DeprecationWarning, stacklevel=3)
    return getattr(new_module, name)


def no_attribute(module, name):
    return AttributeError(f"module {module!r} has no attribute {name!r}")
