"""One registry mechanism (`pixel_keras.registry.Registry`) behind archs, heads and the fast
sampler's incremental rules: the same register / get / names / unregister / replace= semantics
and the same errors for each, through each one's public functions."""

import dataclasses

import keras
import pytest

import pixel_keras as pk
from pixel_keras import incremental
from pixel_keras.registry import Registry


class _Layer(keras.layers.Layer):
    pass


def _arch(name="user_arch"):
    return pk.Arch(name=name, build_block=lambda x, index, spec: x, description="d", cpu_size=(1, 2),
                   cpu_minutes=1.0, conditioning=None)


def _head(name="user_head"):
    return pk.Head(name=name, description="d", features_per_channel=lambda levels, mixtures: levels,
                   build_output=lambda *args: None, observed_view=lambda model: None, in_model=lambda model: False)


def _named(entry, name):
    """An Arch or Head entry under `name` (registered under its own name); anything else as it is."""
    return dataclasses.replace(entry, name=name) if dataclasses.is_dataclass(entry) else entry


class _Rules:
    """The incremental rules through their public functions, keyed by a layer class."""

    @staticmethod
    def register(key, entry, replace=False):
        return incremental.register_rule(key, replace=replace)(entry)

    @staticmethod
    def get(key):
        return incremental.RULES.get(key)


# (registry's public functions, a user key, a user entry, a second entry, a built-in key, the entry type)
KINDS = {
    "arch": (dict(register=lambda key, entry, replace=False: pk.register_arch(_named(entry, key), replace=replace),
                  get=pk.get_arch, names=pk.arch_names, unregister=pk.unregister_arch),
             "user_arch", _arch(), dataclasses.replace(_arch(), description="e"), "pixelsnail", "Arch"),
    "head": (dict(register=lambda key, entry, replace=False: pk.register_head(_named(entry, key), replace=replace),
                  get=pk.get_head, names=pk.head_names, unregister=pk.unregister_head),
             "user_head", _head(), dataclasses.replace(_head(), description="e"), "logistic_mixture", "Head"),
    "incremental rule": (dict(register=_Rules.register, get=_Rules.get, names=incremental.RULES.names,
                              unregister=incremental.unregister_rule),
                         _Layer, incremental.PointwiseRule, incremental.LayerStepRule, keras.layers.ReLU, None),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_registry_has_the_same_semantics_and_errors(kind):
    api, key, entry, other, builtin, _ = KINDS[kind]
    shown = key.__name__ if isinstance(key, type) else repr(key)
    assert key not in api["names"]()
    with pytest.raises(ValueError, match=f"^Expected {kind} to be one of .*Received {kind}="):
        api["get"](key)
    api["register"](key, entry)
    try:
        assert api["get"](key) == entry and api["names"]()[-1] == key
        with pytest.raises(ValueError, match=f"^{kind.capitalize()} {shown} is registered already; pass replace=True"):
            api["register"](key, other)
        api["register"](key, other, replace=True)
        assert api["get"](key) == other
    finally:
        api["unregister"](key)
    assert key not in api["names"]()
    with pytest.raises(ValueError, match=f"^Expected {kind} to be one of"):
        api["unregister"](key)
    builtin_shown = builtin.__name__ if isinstance(builtin, type) else repr(builtin)
    with pytest.raises(ValueError, match=f"^{kind.capitalize()} {builtin_shown} is a built-in {kind}; it cannot be "
                                         "unregistered"):
        api["unregister"](builtin)
    with pytest.raises(ValueError, match=f"^{kind.capitalize()} {builtin_shown} is a built-in {kind}; choose another"):
        api["register"](builtin, entry, replace=True)
    assert builtin in api["names"]()


@pytest.mark.parametrize("kind", ["arch", "head"])
def test_a_wrong_entry_is_a_type_error_naming_the_type(kind):
    api, _, _, _, _, expected = KINDS[kind]
    with pytest.raises(TypeError, match=f"^Expected a pixel_keras.{expected} to register. Received str.$"):
        api["register"]("x", "not an entry")


def test_arch_names_and_the_deprecated_archs_agree():
    """`pk.ARCHS` (deprecated) is every built-in: the six `arch_names()` gives with no user arch."""
    with pytest.warns(DeprecationWarning, match="pixel_keras.ARCHS is deprecated"):
        assert pk.ARCHS == pk.arch_names() == pk.archs.BUILTIN_NAMES


def test_resolve_imports_a_module_then_looks_the_name_up():
    registry = Registry("colour")
    assert registry.resolve.__doc__
    with pytest.raises(ValueError, match=r"^cannot import 'no_such_module_here' for colour 'no_such_module_here:red'"):
        registry.resolve("no_such_module_here:red")
    with pytest.raises(ValueError, match=r"^'json' registers no colour 'red'; registered: \(\)"):
        registry.resolve("json:red")
    registry.register("red", 1)
    assert registry.resolve("red") == registry.resolve("json:red") == "red"
    with pytest.raises(ValueError, match=r"^Expected colour package.module:name. Received ':red'"):
        registry.resolve(":red")
