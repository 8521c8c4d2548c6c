"""The ``tnml`` command line. Subcommands live in :mod:`tnml.commands`, one module each."""

from __future__ import annotations

import argparse
import importlib
import sys

from tnml.commands import COMMANDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        sys.stderr.write(f"tnml: error: {message} (see `tnml --help`)\n")
        raise SystemExit(2)


def _parser() -> tuple[argparse.ArgumentParser, dict]:
    p = _Parser(prog="tnml", description="Neural networks as tensor networks: models, entanglement, experiments.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    modules = {}
    for modname in COMMANDS:
        mod = importlib.import_module(f"tnml.commands.{modname}")
        mod.add_arguments(sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP))
        modules[mod.NAME] = mod
    return p, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = _parser()
    args = parser.parse_args(argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    raise SystemExit(main())
