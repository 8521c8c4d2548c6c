"""Exact Schmidt spectra of any network across any cut, from Gram matrices over the bonds of a minimum cut.

Split the tensors along a minimum cut C between the legs of side A and side B (:func:`mincut_on_graph`). Then
``[[T]]_A = M_A @ M_B^T`` where ``M_S`` is side S's tensors contracted into (its open legs) x (the cut indices).
Contracting each side against its own complex conjugate gives the Gram matrix ``G_S = M_S^H M_S`` of size
``prod dim(C)`` squared, and the Schmidt values are those of ``F_A @ F_B^T`` with ``F_S^H F_S = G_S`` (from an
eigendecomposition), i.e. the square roots of the eigenvalues of ``G_A^{1/2} G_B G_A^{1/2}``; nothing of size
``prod(phys dims)`` is ever formed. The contraction of each doubled side is planned by cotengra first and refused
with :class:`tnml.MemoryLimitError` when its largest intermediate exceeds ``tnml.settings.max_dense_bytes``.

Precision: a Gram matrix squares the condition number, so Schmidt values below about ``sqrt(eps)`` times the
largest are not resolved (the default rank tolerance accounts for it, and :func:`tnml.entanglement.cut_rank` warns
when values fall inside that band). :mod:`tnml.entanglement.spectra_factor` (QR of each side instead of its Gram
matrix) resolves them to ``eps``; ``method="auto"`` prefers it and falls back here only when it does not fit in
memory.
"""

from __future__ import annotations

import math

import cotengra as ctg
import torch

from tnml import settings
from tnml.entanglement.mincut import mincut_on_graph, mincut_on_tree
from tnml.rooting import is_tree
from tnml.spectrum import default_rtol, gram_factor
from tnml.structure import TNStructure

__all__ = ["cut_split", "gram_spectrum"]


def _prime(ind: str) -> str:
    return ind + "\u2032conj"


#: doubled networks with at most this many tensors get cotengra's "auto" contraction order search (fast and
#: near-optimal there); larger ones use the greedy order, whose size is also the estimate checked before any work
GRAM_AUTO_MAX_INPUTS = 32


def _side_gram(structure: TNStructure, cores, members: list[int], own_open: set[str], cut: list[str], scale):
    """Gram matrix of the tensors ``members`` over the cut indices, shape (prod dims, prod dims)."""
    sd = structure.size_dict
    inputs, arrays = [], []
    carried: set[str] = set()
    for k in members:
        spec = structure.tensors[k]
        x = cores[spec.name] / scale[k]
        inputs.append(tuple(spec.inds))
        arrays.append(x)
        inputs.append(tuple(i if i in own_open else _prime(i) for i in spec.inds))
        arrays.append(x.conj() if x.is_complex() else x)
        carried.update(spec.inds)
    ref = next(iter(cores.values()))
    for c in cut:
        if c not in carried:
            inputs.append((c, _prime(c)))
            arrays.append(torch.eye(sd[c], dtype=ref.dtype, device=ref.device))
    output = tuple(cut) + tuple(_prime(c) for c in cut)
    sizes = dict(sd)
    sizes.update({_prime(i): s for i, s in sd.items()})
    item = ref.element_size()
    out_bytes = float(math.prod(sizes[i] for i in output)) * item
    # cost before work: the output alone (O(1)), then a greedy order (milliseconds); cotengra's "auto" search
    # (a parallel hyper-optimization beyond ~30 inputs: minutes on a loaded machine) only for small networks
    tree = None if out_bytes > settings.max_dense_bytes else ctg.array_contract_tree(
        inputs, output, sizes, optimize="greedy"
    )
    if tree is not None and len(inputs) <= GRAM_AUTO_MAX_INPUTS:
        better = ctg.array_contract_tree(inputs, output, sizes, optimize="auto")
        tree = better if better.max_size() <= tree.max_size() else tree
    need = max(float(tree.max_size()) * item if tree is not None else 0.0, out_bytes)
    if need > settings.max_dense_bytes:
        raise settings.MemoryLimitError(
            f"the exact spectrum needs the Gram matrix of one side of the cut (cut indices {cut[:6]}, rank bound "
            f"{math.prod(sd[c] for c in cut)}), whose doubled contraction has an intermediate of "
            f"{need / 2**20:.1f} MiB, over tnml.settings.max_dense_bytes = {settings.max_dense_bytes / 2**20:.1f} MiB; "
            "raise tnml.settings.max_dense_bytes, or study a smaller network (fewer sites or a smaller bond dim)"
        )
    assert tree is not None, "no tree only when the output alone is over the limit, refused above"
    g = tree.contract(arrays, backend="torch")
    chi = math.prod(sd[c] for c in cut)
    return g.reshape(chi, chi)


def cut_split(structure: TNStructure, side_a, side_b, *, tree: bool) -> tuple[list[int], list[int], list[str]]:
    """The tensors on each side of a minimum cut between the open legs ``side_a`` and ``side_b``, and the cut.

    The minimum cut comes from :func:`mincut_on_tree` (a dynamic program) when ``tree``, from ``networkx``
    max-flow otherwise. The cut indices are the bonds between the two tensor sets and the open legs of one side
    held by a tensor of the other.

    Returns
    -------
    mem_a, mem_b : list of int
        Positions in ``structure.tensors`` of side A's and side B's tensors.
    cut : list of str
        The cut indices (their product of dims is the min-cut bound).
    """
    if tree:
        res = mincut_on_tree(structure, side_a, side_b)
    else:
        res = mincut_on_graph(structure.graph(), {f"input:{i}" for i in side_a}, {f"input:{i}" for i in side_b})
    names = structure.tensor_names
    on_a = [names[k] in res.side_a for k in range(len(names))]
    open_side = {i: True for i in side_a} | {i: False for i in side_b}
    cut = []
    for ind in structure.size_dict:
        owners = structure.tensors_of(ind)
        sides = {on_a[k] for k in owners}
        if ind in open_side:
            sides.add(open_side[ind])
        if len(sides) == 2:
            cut.append(ind)
    mem_a = [k for k in range(len(names)) if on_a[k]]
    mem_b = [k for k in range(len(names)) if not on_a[k]]
    return mem_a, mem_b, cut


def gram_spectrum(structure: TNStructure, cores: dict[str, torch.Tensor], side_a, side_b, *, tree: bool | None = None,
                  split: tuple[list[int], list[int], list[str]] | None = None):
    """Schmidt values across (side_a, side_b) open indices of a network without output index.

    The minimum cut comes from :func:`mincut_on_tree` (a dynamic program) when the network is a tree (e.g. an
    interleaved partition of a TTN, which no single edge realizes), from ``networkx`` max-flow otherwise.
    ``tree`` says which, when the caller already knows (default: :func:`tnml.plans.tree.is_tree`); ``split``, the
    result of :func:`cut_split`, when the caller already has it.

    Returns
    -------
    values : Tensor, shape (prod cut dims,)
        Unit 2-norm, descending.
    log_norm : Tensor, scalar float64
        ``ln`` of the 2-norm of the true Schmidt values (= the network's Frobenius norm).
    rtol : float
        Default relative rank tolerance for these values.
    cut : list of str
        The cut indices used.
    """
    if split is None:
        if tree is None:
            tree = is_tree(structure)
        split = cut_split(structure, side_a, side_b, tree=tree)
    mem_a, mem_b, cut = split
    names = structure.tensor_names
    norms = [torch.linalg.norm(cores[n].detach()) for n in names]
    has_zero_tensor = any(not bool(x > 0) for x in norms)  # then the network is zero: a zero Gram matrix is right
    scale = [x if x > 0 else torch.ones_like(x) for x in norms]
    log_scale = sum(torch.log(x).to(torch.float64) for x in scale)
    grams = [_side_gram(structure, cores, mem, set(own), cut, scale)
             for mem, own in ((mem_a, side_a), (mem_b, side_b))]
    for g in grams:
        tr = g.detach().diagonal().abs().sum()
        if not bool(torch.isfinite(tr)) or (tr == 0 and not has_zero_tensor):
            raise FloatingPointError(
                f"the Gram route over/underflowed: a side's Gram matrix is {'not finite' if tr != 0 else 'zero'} "
                f"after scaling each of the {len(names)} tensors to unit norm (the squared norm of a long chain or "
                "big network leaves float range); use method='factor', which carries a log-scale at every step"
            )
    fa, fb = gram_factor(grams[0]), gram_factor(grams[1])  # F^H F = conj(G) (the doubled net's Gram)
    s = torch.linalg.svdvals(fa @ fb.transpose(0, 1))
    nrm = torch.linalg.norm(s)
    if nrm > 0:
        s = s / nrm
        log_norm = log_scale + torch.log(nrm).to(torch.float64)
    else:
        log_norm = torch.full((), -math.inf, dtype=torch.float64)
    return s, log_norm, default_rtol(s.shape[0], s.dtype, "gram"), cut
