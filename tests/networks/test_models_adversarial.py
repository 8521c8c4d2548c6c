"""Adversarial review of the architectures, feature maps, TNModel interop and the file loaders, by references.

Every model here is compared with a naive float64 contraction written independently of the plans: the cores are
randomized, the inputs embedded by the feature maps' documented formulas (not by the maps themselves), and the network
contracted by one ``numpy.einsum`` over the index names, or by an architecture-specific formula (matrix products
along a chain, a trace around a ring, the CP sum, a grid built from the documented index order). The edge cases are
the ones the registry tests (one default configuration per architecture) do not reach: odd and prime site counts,
phys_dim 3/5, bond 1, out_dim 1/3, batch 0/1, non-square grids, arity-3 trees, outputs at the chain's ends.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tnml import TNModel, settings
from tnml.datasets.tabular_io import load_csv
from tnml.feature_maps import IdentityMap, LinearMap, OneHotMap, PolynomialMap, TrigMap
from tnml.networks import CP, MPS, PEPS, TTN, PeriodicMPS

F64 = torch.float64


# ----------------------------------------------------------------------------------------------- references
def phi_ref(x: np.ndarray, kind: str, d: int, theta: float = 0.5) -> np.ndarray:
    """The documented feature maps, (batch, n) -> (batch, n, d), in float64 / complex128."""
    if kind == "trig":
        a = math.pi * theta * x
        return np.stack((np.cos(a), np.sin(a)), -1)
    if kind == "polynomial":
        return np.stack([x**k for k in range(d)], -1)
    if kind == "onehot":
        return np.eye(d)[x.astype(np.int64)]
    raise AssertionError(kind)


def raw_inputs(kind: str, batch: int, n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    if kind == "onehot":
        return torch.randint(0, d, (batch, n), generator=gen).to(F64)
    return torch.rand(batch, n, generator=gen, dtype=F64) * 2 - 0.5  # beyond [0, 1] on purpose


def randomize(m: TNModel, gen: torch.Generator, std: float = 0.7) -> None:
    with torch.no_grad():
        for name in m.structure.tensor_names:
            c = m.core(name)
            v = torch.randn(c.shape, generator=gen, dtype=F64) * std
            if c.is_complex():
                v = torch.complex(v, torch.randn(c.shape, generator=gen, dtype=F64) * std)
            c.copy_(v.to(c.dtype))


def cores_np(m: TNModel) -> dict[str, np.ndarray]:
    return {
        k: v.detach().cpu().numpy().astype(np.complex128 if v.is_complex() else np.float64)
        for k, v in m.core_dict().items()
    }


def einsum_ref(m: TNModel, phi: np.ndarray | None) -> np.ndarray:
    """Contract the structure's tensors by index name with one einsum; ``phi`` None: the dense coefficient tensor
    with axes ``(x0, ..., x{n-1}[, y])``."""
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY")
    sym: dict[str, str] = {}

    def s(ind: str) -> str:
        if ind not in sym:
            sym[ind] = next(letters)
        return sym[ind]

    cores = cores_np(m)
    ops, subs = [], []
    for t in m.structure.tensors:
        ops.append(cores[t.name])
        subs.append("".join(s(i) for i in t.inds))
    xs = list(m.structure.input_inds)
    out = "".join(s(i) for i in xs) if phi is None else "Z"
    if phi is not None:
        for k, ind in enumerate(xs):
            ops.append(phi[:, k, :])
            subs.append("Z" + s(ind))
    if m.structure.output_ind is not None:
        out += s(m.structure.output_ind)
    return np.einsum(",".join(subs) + "->" + out, *ops, optimize="greedy")


def mps_ref(m: MPS, phi: np.ndarray) -> np.ndarray:
    """Left-to-right matrix products, each core read as (left, phys, right[, y]) with size-1 boundary bonds."""
    n, o = m.n_sites, m.output_site
    cores = cores_np(m)
    out = []
    for b in range(phi.shape[0]):
        v = np.ones((1, 1))  # (left bond, y)
        for i in range(n):
            a = cores[f"site{i}"]
            if i == 0:
                a = a[None]
            if i == n - 1:
                a = a[:, :, None]
            a = np.tensordot(a, phi[b, i], axes=([1], [0]))  # (l, r[, y])
            if i == o and m.out_dim is not None:
                v = np.einsum("lk,lry->ry", v, a) if v.shape[1] == 1 else np.einsum("ly,lry->ry", v, a)
            else:
                v = np.einsum("ly,lr->ry", v, a)
        out.append(v[0] if m.out_dim is not None else v[0, 0])
    return np.array(out)


def ring_ref(m: PeriodicMPS, phi: np.ndarray) -> np.ndarray:
    """Trace of the product of the transfer matrices around the ring."""
    cores = cores_np(m)
    res = []
    for b in range(phi.shape[0]):
        mats = [np.tensordot(cores[f"site{i}"], phi[b, i], axes=([1], [0])) for i in range(m.n_sites)]
        if m.out_dim is None:
            res.append(np.trace(np.linalg.multi_dot(mats) if len(mats) > 1 else mats[0]))
            continue
        o = m.output_site
        ys = []
        for y in range(m.out_dim):
            ms = [mm if i != o else mm[..., y] for i, mm in enumerate(mats)]
            ys.append(np.trace(np.linalg.multi_dot(ms)))
        res.append(ys)
    return np.array(res)


def cp_ref(m: CP, phi: np.ndarray) -> np.ndarray:
    cores = cores_np(m)
    prod = np.ones((phi.shape[0], m.rank))
    for i in range(m.n_sites):
        prod = prod * (phi[:, i, :] @ cores[f"site{i}"])
    return prod @ cores["head"] if m.out_dim is not None else prod.sum(1)


def peps_ref(m: PEPS, phi: np.ndarray) -> np.ndarray:
    """The grid from the documented index order ``(x, [up], [left], [right], [down][, y])``, with my own bond
    labels per grid edge."""
    h, w = m.shape
    cores = cores_np(m)
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX")
    bond: dict[tuple, str] = {}

    def e(p, q):
        key = (min(p, q), max(p, q))
        if key not in bond:
            bond[key] = next(letters)
        return bond[key]

    ops, subs = [], []
    for r in range(h):
        for c in range(w):
            k = r * w + c
            xl = next(letters)
            sub = xl
            if r > 0:
                sub += e((r - 1, c), (r, c))
            if c > 0:
                sub += e((r, c - 1), (r, c))
            if c < w - 1:
                sub += e((r, c), (r, c + 1))
            if r < h - 1:
                sub += e((r, c), (r + 1, c))
            if m.out_dim is not None and k == m.output_site:
                sub += "Y"
            ops += [cores[f"site{k}"], phi[:, k, :]]
            subs += [sub, "Z" + xl]
    out = "Z" + ("Y" if m.out_dim is not None else "")
    return np.einsum(",".join(subs) + "->" + out, *ops, optimize="greedy")


CASES = [
    # (id, constructor, feature map kind, phys_dim, architecture-specific reference)
    (
        "mps_prime_d3_out3_end",
        lambda fm, d: MPS(7, d, 3, out_dim=3, output_site=6, feature_map=fm, dtype=F64),
        "polynomial",
        3,
        mps_ref,
    ),
    (
        "mps_site0_bond1_out1",
        lambda fm, d: MPS(5, d, 1, out_dim=1, output_site=0, feature_map=fm, dtype=F64),
        "onehot",
        5,
        mps_ref,
    ),
    ("mps_one_site", lambda fm, d: MPS(1, d, 2, feature_map=fm, dtype=F64), "trig", 2, mps_ref),
    ("mps_two_sites_scalar", lambda fm, d: MPS(2, d, 4, feature_map=fm, dtype=F64), "trig", 2, mps_ref),
    ("ring_two_sites", lambda fm, d: PeriodicMPS(2, d, 3, feature_map=fm, dtype=F64), "trig", 2, ring_ref),
    (
        "ring_prime_out3",
        lambda fm, d: PeriodicMPS(5, d, 2, out_dim=3, output_site=4, feature_map=fm, dtype=F64),
        "polynomial",
        3,
        ring_ref,
    ),
    ("ring_bond1", lambda fm, d: PeriodicMPS(3, d, 1, out_dim=1, feature_map=fm, dtype=F64), "onehot", 3, ring_ref),
    ("cp_prime_scalar", lambda fm, d: CP(7, d, 3, feature_map=fm, dtype=F64), "onehot", 5, cp_ref),
    ("cp_out3_rank1", lambda fm, d: CP(3, d, 1, out_dim=3, feature_map=fm, dtype=F64), "polynomial", 3, cp_ref),
    (
        "peps_2x3",
        lambda fm, d: PEPS((2, 3), d, 2, out_dim=3, output_site=(1, 2), feature_map=fm, dtype=F64),
        "trig",
        2,
        peps_ref,
    ),
    ("peps_3x2_scalar", lambda fm, d: PEPS((3, 2), d, 2, feature_map=fm, dtype=F64), "polynomial", 3, peps_ref),
    ("peps_1x5_chain", lambda fm, d: PEPS((1, 5), d, 3, out_dim=1, feature_map=fm, dtype=F64), "onehot", 3, peps_ref),
    (
        "peps_bond1",
        lambda fm, d: PEPS((2, 2), d, 1, out_dim=3, output_site=0, feature_map=fm, dtype=F64),
        "trig",
        2,
        peps_ref,
    ),
    (
        "ttn_arity3_7sites",
        lambda fm, d: TTN(7, d, 2, out_dim=3, arity=3, feature_map=fm, dtype=F64),
        "polynomial",
        3,
        None,
    ),
    ("ttn_5sites_scalar", lambda fm, d: TTN(5, d, [3, 2], feature_map=fm, dtype=F64), "onehot", 5, None),
    (
        "ttn_grid_2x6",
        lambda fm, d: TTN(shape=(2, 6), phys_dim=d, bond_dim=2, out_dim=1, feature_map=fm, dtype=F64),
        "trig",
        2,
        None,
    ),
    (
        "ttn_grid_3x5_arity3",
        lambda fm, d: TTN(shape=(3, 5), phys_dim=d, bond_dim=1, arity=3, out_dim=3, feature_map=fm, dtype=F64),
        "trig",
        2,
        None,
    ),
    (
        "ttn_custom_tree",
        lambda fm, d: TTN(
            tree=((4, 0), (2, (1, 3, 5))),
            phys_dim=d,
            bond_dim={(0, 4): 2, (1, 3, 5): 3, (1, 2, 3, 5): 2},
            out_dim=3,
            feature_map=fm,
            dtype=F64,
        ),
        "trig",
        2,
        None,
    ),
]


def build_case(case_id: str, seed: int = 0):
    _, ctor, fm, d, ref = next(c for c in CASES if c[0] == case_id)
    m = ctor(fm, d)
    gen = torch.Generator().manual_seed(seed)
    randomize(m, gen)
    return m, fm, d, ref, gen


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_forward_equals_naive_contraction(case_id):
    m, fm, d, ref, gen = build_case(case_id)
    for batch in (1, 4):
        x = raw_inputs(fm, batch, m.n_sites, d, gen)
        phi = phi_ref(x.numpy(), fm, d)
        y = m(x).detach().numpy()
        want = einsum_ref(m, phi)
        expect_shape = (batch,) if m.out_dim is None else (batch, m.out_dim)
        assert y.shape == expect_shape == want.shape
        np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max()))
        if ref is not None:  # the architecture's own formula, independent of the structure's index names
            np.testing.assert_allclose(want, ref(m, phi), rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max()))
        # pre-embedded input takes the same values
        np.testing.assert_allclose(
            m(torch.as_tensor(phi)).detach().numpy(), want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max())
        )


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_log_forward_and_dense_and_empty_batch(case_id):
    m, fm, d, _, gen = build_case(case_id, seed=1)
    x = raw_inputs(fm, 3, m.n_sites, d, gen)
    y = m(x)
    la, sg = m.log_forward(x)
    assert la.shape == sg.shape == y.shape
    torch.testing.assert_close(sg, torch.sign(y))
    nz = y != 0
    torch.testing.assert_close(la[nz], torch.log(y.abs())[nz], rtol=1e-10, atol=1e-10)
    dense = m.to_dense().detach().numpy()
    want = einsum_ref(m, None)
    assert dense.shape == want.shape == (d,) * m.n_sites + ((m.out_dim,) if m.out_dim is not None else ())
    np.testing.assert_allclose(dense, want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max()))
    out0 = m(x[:0])
    assert out0.shape == ((0,) if m.out_dim is None else (0, m.out_dim))


@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_quimb_round_trip_and_state_dict(case_id):
    pytest.importorskip("quimb")
    m, fm, d, _, gen = build_case(case_id, seed=2)
    x = raw_inputs(fm, 3, m.n_sites, d, gen)
    tn = m.to_quimb()
    back = TNModel.from_quimb(tn, list(m.structure.input_inds), m.structure.output_ind, m.feature_map)
    torch.testing.assert_close(back(x), m(x), rtol=1e-10, atol=1e-12)
    # quimb's own contraction with the embedded inputs attached gives the same values
    import quimb.tensor as qtn

    phi = phi_ref(x.numpy(), fm, d)
    for b in range(x.shape[0]):
        vecs = [qtn.Tensor(phi[b, k], inds=(ind,)) for k, ind in enumerate(m.structure.input_inds)]
        val = (tn & qtn.TensorNetwork(vecs)).contract(
            all, output_inds=[m.structure.output_ind] if m.out_dim is not None else []
        )
        val = np.asarray(val.data if hasattr(val, "data") else val)
        np.testing.assert_allclose(val, m(x[b : b + 1]).detach().numpy()[0], rtol=1e-10, atol=1e-12)
    # state_dict into a fresh model of the same spec, built with other seeds
    _, _, _, _, _ = build_case(case_id, seed=3)
    fresh = build_case(case_id, seed=4)[0]
    assert not torch.allclose(fresh(x), m(x))
    fresh.load_state_dict(m.state_dict())
    torch.testing.assert_close(fresh(x), m(x), rtol=0, atol=0)


def test_mismatched_state_dict_is_refused_naming_the_parameter():
    a = MPS(5, 2, 3, out_dim=2, dtype=F64)
    for other in (MPS(5, 2, 4, out_dim=2, dtype=F64), MPS(6, 2, 3, out_dim=2, dtype=F64), CP(5, 2, 3, dtype=F64)):
        with pytest.raises(RuntimeError, match=r"(size mismatch|Missing key|Unexpected key)") as e:
            other.load_state_dict(a.state_dict())
        assert "cores" in str(e.value)
    b = MPS(5, 2, 3, out_dim=2, dtype=F64, stack_cores=False)
    with pytest.raises(RuntimeError, match="cores"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("dtype", [torch.complex128, torch.float32])
def test_other_dtypes_match_the_float64_reference(dtype):
    gen = torch.Generator().manual_seed(5)
    m = MPS(5, 3, 2, out_dim=3, output_site=4, feature_map="polynomial", dtype=dtype)
    randomize(m, gen, std=0.5)
    x = raw_inputs("polynomial", 4, 5, 3, gen)
    xin = x.to(dtype)
    if dtype.is_complex:
        xin = torch.complex(x, torch.rand(x.shape, generator=gen, dtype=F64))
    phi = phi_ref(xin.numpy().astype(np.complex128 if dtype.is_complex else np.float64), "polynomial", 3)
    want = einsum_ref(m, phi)
    got = m(xin).detach().numpy()
    assert got.dtype == (np.complex128 if dtype.is_complex else np.float32)
    tol = 1e-10 if dtype.is_complex else 1e-4
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    la, sg = m.log_forward(xin)
    np.testing.assert_allclose(la.detach().numpy(), np.log(np.abs(want)), rtol=tol, atol=tol)
    np.testing.assert_allclose(sg.detach().numpy(), want / np.abs(want), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------------------------- feature maps
def test_feature_maps_follow_their_formulas():
    gen = torch.Generator().manual_seed(6)
    x = torch.rand(3, 4, generator=gen, dtype=F64) * 3 - 1
    for theta in (0.5, 0.085, -1.3):
        np.testing.assert_allclose(
            TrigMap(theta)(x).numpy(), phi_ref(x.numpy(), "trig", 2, theta), rtol=1e-14, atol=1e-15
        )
    # float32 route (the interleaved complex fast path) against float64 cos/sin
    np.testing.assert_allclose(TrigMap(0.5)(x.float()).numpy(), phi_ref(x.numpy(), "trig", 2), atol=1e-6)
    for deg in (1, 4):
        np.testing.assert_allclose(PolynomialMap(deg)(x).numpy(), phi_ref(x.numpy(), "polynomial", deg + 1), rtol=1e-14)
    xc = torch.complex(x, x.flip(0))
    np.testing.assert_allclose(PolynomialMap(3)(xc).numpy(), phi_ref(xc.numpy(), "polynomial", 4), rtol=1e-13)
    xi = torch.randint(0, 5, (2, 3, 4), generator=gen)  # extra batch dims pass through
    np.testing.assert_array_equal(OneHotMap(5)(xi).numpy(), np.eye(5)[xi.numpy()])
    lin = LinearMap(3, dtype=F64)
    W, b = lin.linear.weight.detach().numpy(), lin.linear.bias.detach().numpy()
    np.testing.assert_allclose(lin(x).detach().numpy(), x.numpy()[..., None] * W[:, 0] + b, rtol=1e-14)
    lin2 = LinearMap(3, in_features=2, dtype=F64)
    x2 = torch.rand(3, 4, 2, generator=gen, dtype=F64)
    W, b = lin2.linear.weight.detach().numpy(), lin2.linear.bias.detach().numpy()
    np.testing.assert_allclose(lin2(x2).detach().numpy(), x2.numpy() @ W.T + b, rtol=1e-14)


@pytest.mark.parametrize("bad", [[[0, 3]], [[-1, 0]], [[0.5, 1.0]], [[float("nan"), 0.0]]])
def test_onehot_refuses_out_of_range_and_fractional_values(bad):
    with pytest.raises(ValueError, match=r"onehot\(k=3\) needs integer values in \[0, 2\]"):
        OneHotMap(3)(torch.tensor(bad))
    for m in (MPS(2, 3, 2, feature_map="onehot", dtype=F64), CP(2, 3, 2, feature_map="onehot", dtype=F64)):
        with pytest.raises(ValueError, match=r"(onehot\(k=3\)|NaN)"):
            m(torch.tensor(bad, dtype=F64))


@pytest.mark.parametrize("fm", ["trig", "polynomial", "linear"])
def test_models_refuse_nan_and_inf_inputs(fm):
    m = MPS(4, 2, 2, out_dim=2, feature_map=LinearMap(2, dtype=F64) if fm == "linear" else fm, dtype=F64)
    for v in (float("nan"), float("inf"), -float("inf")):
        x = torch.rand(3, 4, dtype=F64)
        x[1, 2] = v
        with pytest.raises(ValueError, match=r"x contains NaN or inf \(first at index \[1, 2\]\)"):
            m(x)


def test_linear_map_by_name_follows_the_model_dtype():
    m = MPS(4, 3, 2, out_dim=2, feature_map="linear", dtype=F64)
    assert m.feature_map.linear.weight.dtype == F64
    m(torch.rand(5, 4, dtype=F64))


def test_linear_map_model_trains_its_map_and_matches_reference():
    gen = torch.Generator().manual_seed(7)
    m = MPS(4, 3, 2, out_dim=2, feature_map=LinearMap(3, dtype=F64), dtype=F64)
    randomize(m, gen)
    x = torch.rand(5, 4, generator=gen, dtype=F64)
    lin = m.feature_map.linear
    phi = x.numpy()[..., None] * lin.weight.detach().numpy()[:, 0] + lin.bias.detach().numpy()
    np.testing.assert_allclose(m(x).detach().numpy(), einsum_ref(m, phi), rtol=1e-10)
    m(x).sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert "feature_map.linear.weight" in m.state_dict()


def test_wrong_input_shapes_are_refused_with_the_expected_shape():
    m = PEPS((2, 3), 2, 2, out_dim=2, dtype=F64)
    for x in (torch.rand(4, 2, 3), torch.rand(4, 5), torch.rand(6), torch.rand(2, 6, 3)):
        with pytest.raises(ValueError, match=r"expects \(batch, 6\) raw or \(batch, 6, 2\) embedded"):
            m(x.double())


# ----------------------------------------------------------------------------------------------- loaders
def test_csv_with_bom_crlf_quotes_and_trailing_blank_lines(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes('\ufeff"a","b, c",label\r\n"1.5", 2 ,x\r\n3,"-4e0",y\r\n\r\n\r\n'.encode())
    X, y, names = load_csv(p, label="label")
    assert names == ["a", "b, c"]
    np.testing.assert_array_equal(X, [[1.5, 2.0], [3.0, -4.0]])
    assert y.tolist() == ["x", "y"]


def test_csv_quoted_newline_keeps_line_numbers_in_errors(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('a,b\n"1\n",2\n3,oops\n')  # the quoted newline makes row 2 span lines 2-3
    with pytest.raises(ValueError, match=r"d\.csv:4: column 'b' holds the non-numeric value 'oops'"):
        load_csv(p)


def test_csv_beyond_max_input_bytes_is_refused_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "big.csv"
    with open(p, "wb") as f:  # a sparse file: large by stat, cheap to make
        f.write(b"a,b\n1,2\n")
        f.truncate(4096)
    monkeypatch.setattr(settings, "max_input_bytes", 1024)
    opened = []
    real_open = open

    def spy(path, *a, **k):
        opened.append(str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(settings.MemoryLimitError, match=r"max_input_bytes"):
        load_csv(p)
    assert str(p) not in opened


def test_npz_graph_ignores_extra_members(tmp_path):
    from tnml.datasets.graph_io import load_npz_graph

    p = tmp_path / "g.npz"
    ei = np.array([[0, 1, 2], [1, 2, 3]])
    np.savez(p, edge_index=ei, x=np.eye(4), y=np.array([0, 1, 0, 1]), extra=np.arange(5), notes=np.array(["hi"]))
    g = load_npz_graph(p)
    assert set(g) == {"edge_index", "n_vertices", "x", "y"}
    assert g["n_vertices"] == 4
    np.testing.assert_array_equal(g["x"], np.eye(4))
    np.testing.assert_array_equal(g["y"], [0, 1, 0, 1])
    assert {tuple(sorted(e)) for e in g["edge_index"].T.tolist()} == {(0, 1), (1, 2), (2, 3)}


def test_idx_wrong_magic_and_truncated_data(tmp_path):
    from tnml.datasets.idx_io import load_idx, write_idx

    p = write_idx(tmp_path / "a.idx", np.arange(12, dtype=np.uint8).reshape(3, 4))
    np.testing.assert_array_equal(load_idx(p), np.arange(12).reshape(3, 4))
    raw = p.read_bytes()
    (tmp_path / "m.idx").write_bytes(b"\x01" + raw[1:])
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(tmp_path / "m.idx")
    (tmp_path / "t.idx").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match=r"t\.idx"):
        load_idx(tmp_path / "t.idx")


# ----------------------------------------------------------------------------------------------- more references
@pytest.mark.parametrize("case_id", ["peps_2x3", "ttn_grid_3x5_arity3", "ring_prime_out3", "cp_prime_scalar"])
def test_generic_plan_and_integer_inputs_agree(case_id):
    m, fm, d, _, gen = build_case(case_id, seed=8)
    g = TNModel(m.structure, m.feature_map, plan="generic", dtype=F64)
    g.load_state_dict(m.state_dict())
    assert g.plan().kind == "generic"
    x = raw_inputs(fm, 3, m.n_sites, d, gen)
    want = einsum_ref(m, phi_ref(x.numpy(), fm, d))
    np.testing.assert_allclose(g(x).detach().numpy(), want, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(want).max()))
    if fm == "onehot":  # integer categories (the gather route of a CP's star plan) give the same values
        np.testing.assert_allclose(m(x.long()).detach().numpy(), want, rtol=1e-10, atol=1e-12)


def test_log_forward_stays_finite_where_forward_overflows():
    # bond 1: f(x) = prod_i a_i (1 + x_i) exactly, so ln|f| = sum_i ln|a_i (1 + x_i)|
    gen = torch.Generator().manual_seed(9)
    m = MPS(400, 2, 1, feature_map="polynomial", dtype=F64)
    a = torch.empty(400, dtype=F64).uniform_(20.0, 80.0, generator=gen) * torch.where(
        torch.rand(400, generator=gen) < 0.5, -1.0, 1.0
    ).to(F64)
    with torch.no_grad():
        for i in range(400):
            m.core(f"site{i}").copy_(a[i].expand_as(m.core(f"site{i}")))
    x = torch.rand(3, 400, generator=gen, dtype=F64)
    want_log = torch.log((a * (1 + x)).abs()).sum(1)
    want_sign = torch.sign(a).prod().expand(3)
    la, sg = m.log_forward(x)
    assert bool((want_log > 1000).all())  # far beyond float64's ~709
    torch.testing.assert_close(la, want_log, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(sg, want_sign)
    from tnml.model import OutputScaleWarning

    with pytest.warns(OutputScaleWarning, match="log_forward"):
        y = m(x)
    assert bool(torch.isinf(y).all())


def test_from_quimb_reads_sites_in_the_given_order_and_foreign_networks():
    qtn = pytest.importorskip("quimb.tensor")
    gen = torch.Generator().manual_seed(10)
    m = MPS(4, 2, 3, out_dim=2, dtype=F64)
    randomize(m, gen)
    x = torch.rand(3, 4, generator=gen, dtype=F64)
    r = TNModel.from_quimb(m.to_quimb(), ["x3", "x2", "x1", "x0"], "y", "trig")
    torch.testing.assert_close(r(x), m(x.flip(1)), rtol=1e-12, atol=1e-14)
    p = qtn.MPS_rand_state(5, 3, phys_dim=3, dtype="float64", seed=10)
    q = TNModel.from_quimb(p, [p.site_ind(i) for i in range(5)], None, ("polynomial", {"degree": 2}))
    x = torch.rand(2, 5, generator=gen, dtype=F64)
    phi = phi_ref(x.numpy(), "polynomial", 3)
    want = [
        (p & qtn.TensorNetwork([qtn.Tensor(phi[b, i], inds=(p.site_ind(i),)) for i in range(5)])).contract(all)
        for b in range(2)
    ]
    np.testing.assert_allclose(q(x).detach().numpy(), want, rtol=1e-10)


def test_to_dense_refuses_beyond_max_bytes():
    m = MPS(4, 2, 2, dtype=F64)
    with pytest.raises(settings.MemoryLimitError, match=r"needs 128 B .* limit is 100 B"):
        m.to_dense(max_bytes=100)
    assert m.to_dense(max_bytes=128).shape == (2, 2, 2, 2)


# ----------------------------------------------------------------------------------------------- known defects
def test_feature_map_instance_follows_or_names_the_model_dtype():
    m = MPS(4, 3, 2, out_dim=2, feature_map=LinearMap(3), dtype=F64)
    try:
        m(torch.rand(5, 4, dtype=F64))
    except RuntimeError as e:  # torch's own dtype error from F.linear: does not name feature_map
        pytest.fail(f"unclear error: {e}")


@pytest.mark.parametrize("dim", [-1, 0, 2.7])
def test_identity_map_validates_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        IdentityMap(dim)


def test_trig_map_names_theta_for_non_numbers():
    with pytest.raises((TypeError, ValueError), match="theta"):
        TrigMap("0.5")


def test_peps_output_site_pair_takes_numpy_ints():
    m = PEPS((2, 3), 2, 2, out_dim=2, output_site=(np.int64(1), np.int64(2)))
    assert m.output_site == 5


def test_peps_output_site_pair_refuses_bools():
    with pytest.raises(ValueError, match="output_site"):
        PEPS((2, 3), 2, 2, out_dim=2, output_site=(True, False))


def einsum_torch(m: TNModel, cores: dict[str, torch.Tensor], phi: torch.Tensor) -> torch.Tensor:
    """:func:`einsum_ref` in torch (differentiable), from the given cores."""
    names = {ind: chr(ord("a") + k) for k, ind in enumerate(sorted({i for t in m.structure.tensors for i in t.inds}))}
    ops, subs = [], []
    for t in m.structure.tensors:
        ops.append(cores[t.name])
        subs.append("".join(names[i] for i in t.inds))
    for k, ind in enumerate(m.structure.input_inds):
        ops.append(phi[:, k, :])
        subs.append("Z" + names[ind])
    out = "Z" + (names[m.structure.output_ind] if m.structure.output_ind is not None else "")
    return torch.einsum(",".join(subs) + "->" + out, *ops)


@pytest.mark.parametrize("case_id", ["ring_two_sites", "ttn_custom_tree", "peps_1x5_chain", "mps_prime_d3_out3_end"])
@pytest.mark.parametrize("stack", [True, False])
def test_gradients_equal_the_naive_contraction(case_id, stack):
    m, fm, d, _, gen = build_case(case_id, seed=11)
    if not stack:  # the same cores in per-tensor storage
        p = TNModel(m.structure, m.feature_map, stack_cores=False, dtype=F64)
        with torch.no_grad():
            for name in m.structure.tensor_names:
                p.core(name).copy_(m.core(name))
        m = p
    x = raw_inputs(fm, 3, m.n_sites, d, gen)
    w = torch.randn((3,) if m.out_dim is None else (3, m.out_dim), generator=gen, dtype=F64)
    (m(x) * w).sum().backward()
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in m.core_dict().items()}
    ref = einsum_torch(m, leaves, torch.as_tensor(phi_ref(x.numpy(), fm, d)))
    (ref * w).sum().backward()
    for name, leaf in leaves.items():
        torch.testing.assert_close(m.core_grad(name), leaf.grad, rtol=1e-10, atol=1e-12)


def test_csv_line_numbers_with_cr_only_and_mixed_line_endings(tmp_path):
    (tmp_path / "cr.csv").write_bytes(b"a,b\r1,2\r3,x\r")
    with pytest.raises(ValueError, match=r"cr\.csv:3: column 'b' holds the non-numeric value 'x'"):
        load_csv(tmp_path / "cr.csv")
    (tmp_path / "mixed.csv").write_bytes(b"a,b\r\n1,2\n3,4\r5,y\n")
    with pytest.raises(ValueError, match=r"mixed\.csv:4: column 'b' holds the non-numeric value 'y'"):
        load_csv(tmp_path / "mixed.csv")
    (tmp_path / "ok.csv").write_bytes(b"a,b\r1,2\r\n3,4\n\r\n")
    X, _, _ = load_csv(tmp_path / "ok.csv")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])


def _call_on_fifo(fn, tmp_path, name: str):
    """Call ``fn(fifo)`` in a thread; returns (blocked, exception). A blocked reader is released by opening the
    pipe for writing and closing it (the reader then sees end of file), as often as it reopens the pipe."""
    import os
    import threading

    fifo = tmp_path / name
    os.mkfifo(fifo)
    box: dict = {}

    def run():
        try:
            fn(fifo)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            box["exc"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(2.0)
    blocked = t.is_alive()
    for _ in range(20):  # a reader may open the pipe more than once
        if not t.is_alive():
            break
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader at this instant
            pass
        t.join(0.2)
    return blocked, box.get("exc")


POSIX = pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="POSIX special files")


@POSIX
def test_csv_and_npz_readers_refuse_a_fifo_without_blocking(tmp_path):
    from tnml.datasets.graph_io import load_npz_graph

    for fn, name in ((load_csv, "d.csv"), (load_npz_graph, "g.npz")):
        blocked, exc = _call_on_fifo(fn, tmp_path, name)
        assert not blocked
        assert isinstance(exc, ValueError) and "not a regular file" in str(exc) and name in str(exc)


@POSIX
def test_idx_reader_refuses_a_fifo_without_blocking(tmp_path):
    from tnml.datasets.idx_io import load_idx

    blocked, exc = _call_on_fifo(load_idx, tmp_path, "x.idx")
    assert not blocked and isinstance(exc, ValueError) and "x.idx" in str(exc)


@POSIX
def test_ttn_spec_reader_refuses_a_fifo_without_blocking(tmp_path):
    blocked, exc = _call_on_fifo(TTN.from_spec, tmp_path, "spec.json")
    assert not blocked and isinstance(exc, ValueError) and "spec.json" in str(exc)


def test_ttn_spec_file_beyond_max_input_bytes_is_refused(tmp_path, monkeypatch):
    import json

    p = tmp_path / "spec.json"
    p.write_text(json.dumps(TTN(n_sites=4, bond_dim=2).to_spec()) + " " * 4096)  # valid JSON, 4 kB
    monkeypatch.setattr(settings, "max_input_bytes", 1024)
    with pytest.raises(settings.MemoryLimitError, match="max_input_bytes"):
        TTN.from_spec(p)


def test_ttn_spec_round_trip_rebuilds_the_same_function(tmp_path):
    import json

    m, fm, d, _, gen = build_case("ttn_custom_tree", seed=12)
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(m.to_spec()))
    r = TTN.from_spec(p, dtype=F64)
    assert r.edge_widths == m.edge_widths and r.tree == m.tree
    r.load_state_dict(m.state_dict())
    x = raw_inputs(fm, 3, m.n_sites, d, gen)
    torch.testing.assert_close(r(x), m(x), rtol=0, atol=0)
    g = TTN(shape=(2, 6), phys_dim=3, bond_dim=2, out_dim=2, feature_map="polynomial", dtype=F64)
    r = TTN.from_spec(g.to_spec(), dtype=F64)
    assert r.shape == (2, 6) and r.feature_map.config() == {"degree": 2}
    r.load_state_dict(g.state_dict())
    x = torch.rand(2, 12, generator=gen, dtype=F64)
    torch.testing.assert_close(r(x), g(x), rtol=0, atol=0)


@pytest.mark.parametrize("case_id", ["peps_1x5_chain", "ring_prime_out3", "ttn_custom_tree"])
def test_normalized_logits_equal_tau_times_the_unit_output(case_id):
    from tnml.networks import NormalizedLogits

    m, fm, d, _, gen = build_case(case_id, seed=13)
    head = NormalizedLogits(m, tau=2.5)
    x = raw_inputs(fm, 4, m.n_sites, d, gen)
    want = einsum_ref(m, phi_ref(x.numpy(), fm, d))
    want = 2.5 * want / np.linalg.norm(want, axis=-1, keepdims=True)
    np.testing.assert_allclose(head(x).detach().numpy(), want, rtol=1e-10)
    if m.out_dim == 1:  # one class: the logit is +-tau, the sign of f
        np.testing.assert_allclose(np.abs(head(x).detach().numpy()), 2.5, rtol=1e-12)


def test_feature_maps_keep_batch_shapes_and_empty_batches():
    for fmap, x in (
        (TrigMap(0.3), torch.rand(0, 4, dtype=F64)),
        (PolynomialMap(2), torch.rand(2, 0, dtype=F64)),
        (OneHotMap(4), torch.zeros(0, 3, dtype=torch.long)),
        (LinearMap(3, in_features=2, dtype=F64), torch.rand(0, 4, 2, dtype=F64)),
        (TrigMap(0.3), torch.rand(2, 3, 4, dtype=F64)),
    ):
        d = fmap.dim
        out = fmap(x)
        lead = x.shape[:-1] if isinstance(fmap, LinearMap) else x.shape
        assert out.shape == (*lead, d)
    m = MPS(4, 3, 2, out_dim=2, feature_map=LinearMap(3, in_features=2, dtype=F64), dtype=F64)
    gen = torch.Generator().manual_seed(14)
    x = torch.rand(3, 4, 2, generator=gen, dtype=F64)
    lin = m.feature_map.linear
    phi = x.numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    np.testing.assert_allclose(m(x).detach().numpy(), einsum_ref(m, phi), rtol=1e-10)
    assert m(x[:0]).shape == (0, 2)


@pytest.mark.parametrize("n", [2, 5])
def test_mps_to_quimb_is_a_working_quimb_mps(n):
    pytest.importorskip("quimb")
    gen = torch.Generator().manual_seed(15)
    m = MPS(n, 3, 2, feature_map="polynomial", dtype=F64)
    randomize(m, gen)
    p = m.to_quimb()
    assert type(p).__name__ == "MatrixProductState" and p.L == n
    dense = m.to_dense().detach().numpy()
    np.testing.assert_allclose(p.H @ p, (dense**2).sum(), rtol=1e-12)
    for op in ("left_canonize", "right_canonize"):
        q = p.copy()
        getattr(q, op)()  # quimb's own gauge moves read the index layout it was given
        np.testing.assert_allclose(q.to_dense().ravel(), dense.ravel(), rtol=1e-10, atol=1e-12 * np.abs(dense).max())


@pytest.fixture
def alarm():
    """Turn a hang into a ``TimeoutError`` after ``seconds`` (SIGALRM interrupts a pure-Python loop)."""
    import signal

    if not hasattr(signal, "setitimer"):
        pytest.skip("needs SIGALRM")

    def handler(*_):
        raise TimeoutError("hung: still running when the alarm fired")

    old = signal.signal(signal.SIGALRM, handler)
    yield lambda seconds: signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("fm", ["onehot"])  # "linear" and "identity" hang the same way
def test_mps_with_phys_dim_1_builds_and_matches_reference(fm, alarm):
    alarm(5.0)
    m = MPS(4, 1, 2, out_dim=2, feature_map=fm, dtype=F64)  # hangs while compiling the chain plan
    alarm(0)
    x = torch.zeros(3, 4, dtype=F64) if fm == "onehot" else torch.rand(3, 4, dtype=F64)
    phi = m.feature_map(x).detach().numpy()
    np.testing.assert_allclose(m(x).detach().numpy(), einsum_ref(m, phi), rtol=1e-10)


def test_other_architectures_take_phys_dim_1(alarm):
    alarm(20.0)
    for m in (
        PeriodicMPS(4, 1, 2, feature_map="onehot", dtype=F64),
        CP(4, 1, 2, feature_map="onehot", dtype=F64),
        TTN(4, 1, 2, feature_map="onehot", dtype=F64),
        PEPS((2, 2), 1, 2, feature_map="onehot", dtype=F64),
        MPS(2, 1, 2, feature_map="onehot", dtype=F64),
    ):
        x = torch.zeros(2, m.n_sites, dtype=F64)
        np.testing.assert_allclose(m(x).detach().numpy(), einsum_ref(m, phi_ref(x.numpy(), "onehot", 1)), rtol=1e-10)


def test_ttn_size_guard_does_not_refuse_a_model_that_fits(monkeypatch):
    m = TTN(16, 2, 2, arity=16, dtype=F64)  # one root over 16 leaves: 2**16 numbers, 512 kB
    real = sum(p.numel() for p in m.parameters()) * 8
    assert real == 2**16 * 8
    monkeypatch.setattr(settings, "max_param_bytes", 4 * real)  # the guard estimated 2**21 numbers (16 MB)
    TTN(16, 2, 2, arity=16, dtype=F64)


def test_ttn_size_guard_refuses_a_2d_tree_beyond_the_limit():
    # 16x16 grid, 4x4 windows: the root has 16 children of bond 8, 8**16 numbers (1 PB in float32); the guard
    # counts bond**(arity + 1) per node and lets torch's allocator fail instead
    with pytest.raises(settings.MemoryLimitError, match="max_param_bytes"):
        TTN(shape=(16, 16), arity=4, bond_dim=8)
