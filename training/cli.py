"""Command-line plumbing shared by the entry points: now `pixel_keras.cli` (re-exported here)."""

from pixel_keras.cli import RunError, run_cli

__all__ = ["RunError", "run_cli"]
