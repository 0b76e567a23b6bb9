"""Model sizes and training minutes that suit a 2-core CPU: the training app's defaults, which the
benchmarks measure too (so they live in the library, not in one app). Each arch registers its own
(`pixel_keras.archs`: the built-ins' figures and why); these read the registry."""

import collections.abc

from pixel_keras.archs import arch_names, get_arch


class _RegistryField(collections.abc.Mapping):
    """A read-only {arch: value} view of one `Arch` field over every registered arch, live."""

    def __init__(self, field):
        self._field = field

    def __getitem__(self, name):
        if name not in arch_names():
            raise KeyError(name)
        return getattr(get_arch(name), self._field)

    def __iter__(self):
        return iter(arch_names())

    def __len__(self):
        return len(arch_names())

    def __repr__(self):  # as the dicts these were: the --help texts show them
        return repr(dict(self))


# (layers, hidden) per arch; the paper's sizes, 12 layers of h = 128, are `--layers 12 --hidden 128`.
CPU_SIZES = _RegistryField("cpu_size")
# Default training minutes per arch: a whole default run ends within 30 minutes on a 2-core CPU.
CPU_MINUTES = _RegistryField("cpu_minutes")
