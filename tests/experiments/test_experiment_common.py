"""The experiments' shared helpers: the one-thread section restores the thread count; pyplot is headless."""

from __future__ import annotations

import contextlib

import pytest
import torch

from tnml.experiments._common import one_thread, pyplot


@pytest.mark.parametrize("fail", [False, True])
def test_one_thread_restores_the_thread_count(fail):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyError) if fail else contextlib.nullcontext():
            with one_thread():
                assert torch.get_num_threads() == 1
                if fail:
                    raise KeyError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_pyplot_is_on_the_agg_backend(tmp_path):
    import matplotlib

    plt = pyplot()
    assert matplotlib.get_backend().lower() == "agg"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    assert (tmp_path / "f.png").stat().st_size > 0
