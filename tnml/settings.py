"""Library-wide limits, adjustable at run time (``tnml.settings.max_dense_bytes = 8 * 2**30``).

Every limit here is checked *before* the work or allocation it guards, from the arguments alone (O(1) in the
size of the request), and a refusal (:class:`MemoryLimitError`) names the size needed, the setting, and the fix.
"""

from __future__ import annotations

import os


def _physical_memory_bytes() -> int | None:
    """Installed RAM in bytes where the OS tells (POSIX ``sysconf``), else None."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - Windows, exotic systems
        return None


def _address_space_limit_bytes() -> int | None:
    """The smaller of the process's soft ``RLIMIT_AS`` and ``RLIMIT_DATA`` (``ulimit -v`` / ``-d``), or None where
    neither is set (or the platform has no ``resource`` module)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    limits = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            soft, _ = resource.getrlimit(which)
        except (OSError, ValueError):  # pragma: no cover
            continue
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(int(soft))
    return min(limits) if limits else None


def _default_param_bytes() -> int:
    """Half of what this process may use: the installed RAM, capped by its address-space / data rlimit."""
    avail = [v for v in (_physical_memory_bytes(), _address_space_limit_bytes()) if v is not None]
    return (min(avail) if avail else 2**34) // 2


#: largest allocation (in bytes) that a guarded routine makes before refusing with :class:`MemoryLimitError`:
#: dense coefficient tensors (``TNModel.to_dense``), the doubled-network contractions of the Gram spectrum route
#: (``tnml.entanglement.schmidt_values`` and friends on loopy networks or non-edge cuts), the M x M Gram matrices
#: of one batch of ``tnml.entanglement.data_entanglement`` (and ``side_gram``'s feature chunks), the matrices of
#: ``separation_rank``, the N x N feature statistics of ``surrogate_entanglement`` and ``FeatureRearrangement``,
#: and the data of an IDX file (``tnml.datasets.idx_io.load_idx``). Each refusal gives the size needed and how to
#: proceed (smaller batch / case, or raise this value).
max_dense_bytes: int = 2**30

#: largest parameter memory (bytes) a model constructor (``MPS``, ``PEPS``, ``CP``, ``TTN``, the factorizations,
#: ``TNModel.from_quimb``, ...) allocates; estimated from the hyperparameters before anything is built. Default:
#: half the machine's RAM, or half the process's address-space / data rlimit (``ulimit -v``) where that is smaller
#: (8 GiB where the OS says neither). Raise it to build larger models on purpose.
max_param_bytes: int = _default_param_bytes()

#: most tensors a model constructor builds: each costs Python-level work (tens of microseconds; a 10^6-site MPS
#: took 54 s), so networks beyond this would not finish in reasonable time. Raise it on purpose if needed.
max_tensors: int = 10**6


#: largest walk count (in bits) that ``tnml.entanglement.walk_index`` / ``walk_counts`` compute exactly: the
#: count of walks of length k grows like (max degree + 1)^k, and exact big-integer propagation costs ~ k^2 in time,
#: so a depth whose counts could exceed this many bits is refused up front (4096 bits: numbers of ~1233 digits).
max_walk_bits: int = 4096


#: largest input file (bytes) the text and archive readers accept (edge lists, CSV, npz, JSON permutations),
#: judged from the file's size before reading it; parsed text takes several times its size in memory.
max_input_bytes: int = 2**30

#: most (partition, tensor) pairs ``tnml.entanglement.entanglement_report`` (and ``tnml bounds``) works through:
#: each partition's exact spectrum contracts the network once (~0.1-0.5 ms per tensor), so the default 10⁵ is
#: about a minute at most (a 200-site MPS, canonical partitions: 8·10⁴; 1000 sites: 2·10⁶, refused up front).
max_report_work: int = 10**5

#: most candidate updates (re-evaluations of an edge's score) that (L−1)-WIS with ``L >= 3`` starts
#: (``tnml.preprocessing.walk_index_sparsification``): estimated before any work as ``|E| + n_remove · Σ deg² / |E|``;
#: each costs ~10-30 µs, so the default (2·10⁶) is under a minute or so. Hubs are what make it large: removing half
#: of a 20 000-edge star needs ~2·10⁸.
max_wis_work: int = 2 * 10**6


class MemoryLimitError(MemoryError, ValueError):
    """Raised before allocating something larger than a documented limit; the message says how to proceed."""
