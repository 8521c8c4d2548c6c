"""Subcommands of the ``tnml`` CLI, one module each with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Errors the user can fix return :func:`fail` (exit code 2, one line on stderr)."""

from __future__ import annotations

import argparse
import sys

#: largest seed the CLI takes (numpy's legacy seeding range)
SEED_MAX = 2**32 - 1


def fail(message: str) -> int:
    sys.stderr.write(f"tnml: error: {message}\n")
    return 2


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: an integer in ``[0, 2**32 - 1]``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {SEED_MAX}], got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {SEED_MAX}], got {text}")
    return value


#: module names under tnml.commands, in the order `tnml --help` lists them
COMMANDS = ["list_cmd", "run_cmd", "sparsify_cmd", "bounds_cmd", "suitability_cmd", "rearrange_cmd", "design_cmd"]
