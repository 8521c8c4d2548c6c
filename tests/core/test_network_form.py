"""One network check: tnml.network_form.as_network reads a model, a structure or a quimb network once, and the
analysis (spectra, min-cut bounds, reports) and the sliced contraction take what it returns."""

from __future__ import annotations

import numpy as np
import pytest
import quimb.tensor as qtn
import torch

import tnml.entanglement as ent
import tnml.network_form as nf
from tnml.network_form import NetworkForm, as_network, network_kind
from tnml.networks import MPS, PEPS, TTN
from tnml.plans.sliced import contract_sliced


def _mps(**kw):
    torch.manual_seed(0)
    return MPS(n_sites=5, phys_dim=2, bond_dim=3, dtype=torch.float64, **kw)


def test_a_model_is_read_into_its_structure_and_cores():
    m = _mps(out_dim=2)
    form = as_network(m)
    assert form.kind == "model" and form.source is m and form.structure is m.structure
    cores = m.core_dict()
    assert [t.name for t in form.structure.tensors] == list(form.cores())
    for name, c in form.cores().items():
        assert torch.equal(c, cores[name])
    assert as_network(m, values=False).arrays is None


def test_a_structure_has_geometry_only():
    s = _mps().structure
    form = as_network(s)
    assert form.kind == "structure" and form.structure is s and form.arrays is None
    with pytest.raises(ValueError, match="without values"):
        form.cores()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_quimb_network_keeps_its_arrays_and_outer_order(backend):
    tn = qtn.MPS_rand_state(5, 3, seed=1)
    if backend == "torch":
        tn.apply_to_arrays(torch.from_numpy)
    form = as_network(tn)
    assert form.kind == "quimb" and form.from_quimb
    assert form.structure.input_inds == tuple(tn.outer_inds()) and form.structure.output_ind is None
    for a, t in zip(form.arrays, tn.tensors):
        assert a is t.data  # the network's own arrays, not copies
    assert all(isinstance(c, torch.Tensor) for c in form.cores().values())


def test_a_form_passes_through_and_is_reread_for_values():
    m = _mps()
    geometry = as_network(m, values=False)
    assert as_network(geometry, values=False) is geometry
    full = as_network(geometry)
    assert full.arrays is not None and full.source is m


def test_network_kind_and_the_error_names_parameter_kinds_and_type():
    assert network_kind(_mps()) == "model" and network_kind(_mps().structure) == "structure"
    assert network_kind(qtn.MPS_rand_state(3, 2, seed=0)) == "quimb" and network_kind(np.zeros(3)) is None
    assert network_kind(torch.nn.Linear(2, 2)) is None  # a module without a structure is not a model
    with pytest.raises(TypeError, match=r"^model must be a tnml.TNModel, got TNStructure$"):
        as_network(_mps().structure, accept=("model",), name="model")
    with pytest.raises(TypeError, match=r"^obj must be a numpy array, tnml.TNModel or quimb TensorNetwork, got list$"):
        as_network([1], accept=("model", "quimb"), also=("numpy array",))


def _count_reads(monkeypatch):
    """Count the quimb reads and graph builds the analysis does (the work `as_network` does once per call)."""
    calls = {"quimb": 0, "graph": 0}
    real_read = nf.structure_from_quimb

    def read(*a, **k):
        calls["quimb"] += 1
        return real_read(*a, **k)

    monkeypatch.setattr(nf, "structure_from_quimb", read)
    real_graph = nf.TNStructure.graph

    def graph(self):
        calls["graph"] += 1
        return real_graph(self)

    monkeypatch.setattr(nf.TNStructure, "graph", graph)
    return calls


def test_mincut_bounds_read_a_quimb_loop_network_once_for_all_parts(monkeypatch):
    """A network with loops takes the max-flow route: one read and one graph for all parts (was one per part)."""
    peps = PEPS(shape=(2, 3), phys_dim=2, bond_dim=2, dtype=torch.float64)
    tn = peps.to_quimb()
    names = list(tn.outer_inds())
    parts = [names[:k] for k in range(1, len(names))]
    expected = [r.rank_bound for r in ent.mincut_bounds(peps, [list(range(k)) for k in range(1, len(names))])]
    calls = _count_reads(monkeypatch)
    got = ent.mincut_bounds(tn, parts)
    assert calls == {"quimb": 1, "graph": 1}
    assert [r.rank_bound for r in got] == expected


def test_spectra_read_a_quimb_network_once_and_match_the_model():
    m = TTN(n_sites=8, phys_dim=2, bond_dim=3, dtype=torch.float64)
    tn = m.to_quimb()
    parts = ent.canonical_partitions(8)
    named = [[m.structure.input_inds[s] for s in p] for p in parts]
    from_model = [float(e.detach()) for e in ent.entanglement_entropies(m, parts)]
    assert np.allclose(ent.entanglement_entropies(tn, named), from_model, atol=1e-10)


def test_spectra_read_once_per_call(monkeypatch):
    tn = _mps().to_quimb()
    names = list(tn.outer_inds())
    calls = _count_reads(monkeypatch)
    ent.schmidt_spectra(tn, [names[:k] for k in range(1, 5)])
    assert calls["quimb"] == 1


def test_a_torch_backed_quimb_network_gives_the_numpy_networks_spectrum():
    tn = qtn.MPS_rand_state(6, 3, seed=2)
    tt = tn.copy()
    tt.apply_to_arrays(torch.from_numpy)
    part = list(tn.outer_inds())[:3]
    assert np.allclose(ent.schmidt_values(tt, part), ent.schmidt_values(tn, part), atol=1e-12)


def test_the_report_reads_the_model_once(monkeypatch):
    m = TTN(n_sites=8, phys_dim=2, bond_dim=2, out_dim=2, dtype=torch.float64)
    reads = []
    real = nf.as_network

    def counting(obj, **kw):
        if not isinstance(obj, NetworkForm):
            reads.append(type(obj).__name__)
        return real(obj, **kw)

    for mod in ("tnml.entanglement.report", "tnml.entanglement.mincut", "tnml.entanglement._inputs"):
        monkeypatch.setattr(f"{mod}.as_network", counting)
    rep = ent.entanglement_report(m)
    assert reads == ["TTN"] and len(rep) == 13


def test_sliced_contraction_takes_the_form_without_the_model_module():
    m = _mps(out_dim=2)
    x = torch.rand(4, 5, dtype=torch.float64)
    assert torch.allclose(contract_sliced(m, x, target_slices=2), m(x))
    tn = qtn.MPS_rand_state(4, 2, seed=3)
    dense = tn.contract(all).transpose(*sorted(tn.outer_inds())).data
    assert np.allclose(contract_sliced(tn, target_slices=2), dense)
