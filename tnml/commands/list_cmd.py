"""``tnml list``: the registered experiments."""

from __future__ import annotations

import argparse

NAME = "list"
HELP = "list the registered experiments"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tnml list`` takes no options."""


def run(args: argparse.Namespace) -> int:
    from tnml.experiments import EXPERIMENTS

    width = max(len(n) for n in EXPERIMENTS)
    for name in sorted(EXPERIMENTS):
        print(f"{name:<{width}}  {EXPERIMENTS[name].description}")
    return 0
