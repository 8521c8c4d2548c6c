"""The ``tnml`` command line. Subcommands live in :mod:`tnml.commands`, one module each.

Every failure the user can cause ends in one line on stderr and exit code 2; Ctrl-C ends in one line and exit code
130, SIGTERM in one line and 143 (the run lock of an experiment folder is released and its file removed on the
way out; a run interrupted either way continues with ``--resume``).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from tnml.commands import COMMANDS

#: seeds are accepted in this range (numpy's legacy global generator, seeded by the experiments, takes 32 bits)


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


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks (run locks, temporary files) run."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    parser, modules = _parser()
    args = parser.parse_args(argv)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # not the main thread (embedded use): leave signals alone
        previous = None
    try:
        return modules[args.command].run(args)
    except KeyboardInterrupt:
        sys.stderr.write("tnml: interrupted (Ctrl-C); an interrupted `tnml run` continues with --resume\n")
        return 130
    except _Terminated:
        sys.stderr.write("tnml: terminated (SIGTERM); run locks released; an interrupted `tnml run` continues with "
                         "--resume\n")
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
