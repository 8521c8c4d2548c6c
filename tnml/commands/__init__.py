"""Subcommands of the ``tnml`` CLI, one module each with ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Errors the user can fix return :func:`fail` (exit code 2, one line on stderr)."""

from __future__ import annotations

import sys


def fail(message: str) -> int:
    sys.stderr.write(f"tnml: error: {message}\n")
    return 2


#: module names under tnml.commands, in the order `tnml --help` lists them
COMMANDS = ["list_cmd", "run_cmd", "sparsify_cmd", "bounds_cmd", "suitability_cmd", "rearrange_cmd", "design_cmd"]
