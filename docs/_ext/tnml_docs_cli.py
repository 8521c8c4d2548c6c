"""The ``tnml`` argument parser for sphinx-argparse (the CLI reference is generated from argparse)."""

from __future__ import annotations

import argparse


def parser() -> argparse.ArgumentParser:
    """Build the parser ``tnml`` uses, with every subcommand.

    Returns
    -------
    argparse.ArgumentParser
        The same parser :func:`tnml.cli.main` parses with.
    """
    from tnml.cli import _parser

    return _parser()[0]
