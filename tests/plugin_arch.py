"""A user's arch in a module of its own, registered when the module is imported: what
`python -m training.run --arch tests.plugin_arch:plugin_two_path` names (tests/test_user_arch_cli.py).

The block is test_arch_registry's two-path block (importing that module registers nothing), under a
name of its own, so that this registration never meets that module's `two_path` fixture in one
registry. Only the apps' subprocesses import this module.
"""

import dataclasses

import pixel_keras as pk
from tests.test_arch_registry import TWO_PATH

NAME = "plugin_two_path"
PLUGIN_TWO_PATH = pk.register_arch(dataclasses.replace(TWO_PATH, name=NAME))
