"""Deprecated (CHANGELOG.md): the views moved to where their concepts live. `parameter_view` is the
logistic mixture head's (`pixel_keras.heads`), `observed_view` the head registry's dispatch
(`pixel_keras.head_registry`), `all_layers` inspection's (`pixel_keras.inspection`)."""

from pixel_keras import head_registry, heads, inspection
from pixel_keras.deprecation import moved, no_attribute

_MOVED = {"parameter_view": heads, "observed_view": head_registry, "all_layers": inspection}


def __getattr__(name):
    if name in _MOVED:
        return moved(__name__, name, _MOVED[name])
    raise no_attribute(__name__, name)
