"""``python -m tnml ...`` runs the ``tnml`` command line (what ``torchrun -m tnml ...`` needs)."""

from tnml.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
