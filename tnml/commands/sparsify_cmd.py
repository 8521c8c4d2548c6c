"""``tnml sparsify EDGES --remove FRACTION [--depth L] [--method M] [--seed S] --out FILE``.

Removes ``floor(FRACTION · |E|)`` edges from a graph file and writes what is left, atomically, as an edge list.

- EDGES: an edge-list text file (``u v`` per line, ``#`` comments; see :func:`tnml.datasets.graph_io.load_edge_list`)
  or a Planetoid-style ``.npz`` with ``edge_index`` (see :func:`tnml.datasets.graph_io.load_npz_graph`). As graph
  libraries write them, an edge may appear in both directions or more than once: repeats are merged into the
  first occurrence and self-loops dropped, and one stderr line (``tnml: note: ...``) gives the counts.
- FILE: a header of ``#`` comment lines (method, counts, and every removed edge in removal order as
  ``# removed u v``), then the kept edges ``u v`` in input order. ``tnml.datasets.graph_io.load_edge_list(FILE)``
  reads the kept edges back (except after ``--remove 1``: a file with no edge line, which it refuses as empty).
- Methods: ``wis`` ((L−1)-WIS with ``--depth L``, default 3, i.e. 2-WIS), ``1-wis``, ``random`` and ``spectral``
  (seeded by ``--seed``), ``degree``. ``--depth`` is used by ``wis`` only; ``--tie-break`` by ``wis`` and
  ``1-wis`` (``vertex``, ``first``, ``last``, ``authors``; see :func:`tnml.preprocessing.walk_index_sparsification`).
- Disconnected graphs are allowed (walk indices are defined per component); a warning line on stderr says so
  once the run succeeds (a failing run prints its one error line only).
- Any problem with the input or options: one line on stderr, exit code 2, no output file written.
- FILE is never the input (same file, also through a hard or symbolic link); an existing FILE that tnml did not
  write (no ``# tnml sparsify`` header) is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from tnml.commands import fail

NAME = "sparsify"
HELP = "remove edges from a graph by walk-index sparsification (WIS) or a baseline"
METHODS = ("wis", "1-wis", "random", "spectral", "degree")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tnml.commands import seed_arg

    parser.add_argument("edges", help="edge-list text file ('u v' per line, '#' comments) or .npz with edge_index")
    parser.add_argument("--remove", type=float, required=True, help="fraction of the edges to remove, in [0, 1]")
    parser.add_argument("--depth", type=int, default=3, help="GNN depth L for --method wis (default 3: 2-WIS)")
    parser.add_argument("--method", choices=METHODS, default="wis", help="sparsification method (default wis)")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed for random and spectral, in [0, 2**32 - 1] (default 0)")
    parser.add_argument("--tie-break", choices=("vertex", "first", "last", "authors"), default="vertex",
                        help="wis / 1-wis: which tied edge goes first: vertex order (default), first or last in the "
                             "file, or as P4's released code ('authors')")
    parser.add_argument("--out", required=True, help="output edge list: kept edges, removed ones as # comments")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out that tnml did not write (never the input file)")


def run(args: argparse.Namespace) -> int:
    import networkx as nx

    from tnml.datasets.graph_io import clean_edges, read_edge_list, read_npz_graph, write_edge_list
    from tnml.io import OutputPathError, check_output_file, starts_with
    from tnml.preprocessing import (
        degree_sparsification,
        one_wis,
        random_sparsification,
        spectral_sparsification,
        walk_index_sparsification,
    )

    if not (0.0 <= args.remove <= 1.0) or math.isnan(args.remove):
        return fail(f"--remove must be a fraction in [0, 1], got {args.remove}; e.g. --remove 0.5 removes half")
    if args.method == "wis" and args.depth < 2:
        return fail(f"--depth must be >= 2 for --method wis (L = 2 is 1-WIS, 3 is 2-WIS), got {args.depth}")
    out = Path(args.out)
    if out.is_dir():
        return fail(f"--out {str(out)!r} is a folder; give a file name")
    src = Path(args.edges)
    if not src.is_file():
        return fail(f"EDGES {str(src)!r} is not a file")
    try:  # never the input (same inode, links included); a foreign file only with --force
        check_output_file(out, inputs={"EDGES": src}, force=args.force, ours=starts_with(b"# tnml sparsify"))
    except OutputPathError as e:
        return fail(str(e))
    try:
        if src.suffix == ".npz":
            edges, cleanup, _ = clean_edges(read_npz_graph(src)["edge_index"].T)
            if not len(edges):
                raise ValueError(f"{src}: edge_index holds only self-loops ({cleanup.self_loops}); no edges are left")
        else:
            edges, cleanup = read_edge_list(src)
    except ValueError as e:
        return fail(str(e))
    pairs = [tuple(e) for e in edges.tolist()]
    n_edges = len(pairs)
    n_remove = math.floor(args.remove * n_edges + 1e-9)
    g = nx.Graph(pairs)
    n_comp = nx.number_connected_components(g)
    methods = {
        "wis": lambda: walk_index_sparsification(pairs, n_remove, args.depth, tie_break=args.tie_break),
        "1-wis": lambda: one_wis(pairs, n_remove, tie_break=args.tie_break),
        "random": lambda: random_sparsification(g, n_remove, seed=args.seed),
        "spectral": lambda: spectral_sparsification(g, n_remove, seed=args.seed),
        "degree": lambda: degree_sparsification(g, n_remove),
    }
    try:
        removed = methods[args.method]()
    except ValueError as e:  # e.g. a depth whose walk counts overflow
        msg = str(e).replace("use a smaller depth", "use a smaller --depth")
        hint = "; use a smaller --depth" if args.method == "wis" and "depth" in msg and "--depth" not in msg else ""
        return fail(f"{src}: {msg}{hint}")
    gone = {(min(u, v), max(u, v)) for u, v in removed}
    kept = [(u, v) for u, v in pairs if (min(u, v), max(u, v)) not in gone]
    label = f"wis depth {args.depth}" if args.method == "wis" else args.method
    header = [
        f"tnml sparsify {src.name}: method {label}, seed {args.seed}",
        f"{n_edges} edges, removed {len(removed)}, kept {len(kept)}; removed edges below in removal order",
        *(f"removed {u} {v}" for u, v in removed),
    ]
    try:
        write_edge_list(out, kept, header)
    except OSError as e:
        return fail(f"cannot write --out {str(out)!r}: {e.strerror or e}")
    if cleanup:  # like the warning below, only once the run succeeded: a failing run prints its one error line alone
        sys.stderr.write(f"tnml: note: {src.name}: {cleanup.describe()}\n")
    if n_comp > 1:
        sys.stderr.write(
            f"tnml: warning: the graph has {n_comp} connected components; sparsifying it as a whole "
            "(walk indices are per component)\n"
        )
    print(f"removed {len(removed)} of {n_edges} edges ({label}); wrote {out}")
    return 0
