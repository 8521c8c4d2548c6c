"""tnml.training: the one training loop. A run killed right after a save and continued is bit-identical to an
uninterrupted one (history, parameters, optimizer, scheduler, generator and global RNG states, carried values);
checkpoints of other settings are refused; saving consumes no randomness; bad arguments are named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.resume_helpers import count_saves, same
from tnml.checkpoint import Checkpointer, CheckpointError
from tnml.training import EpochLoss, fit, minibatch_epoch, minibatches

EPOCHS = 5


def _run(checkpointer=None, *, lr: float = 0.05, dropout: float = 0.3):
    """A toy loop that draws from a generator (shuffling), the global RNG (dropout) and keeps a best-so-far value."""
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(3, (40,))
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(dropout), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    g = torch.Generator().manual_seed(1)
    carry = {"best": float("inf")}

    def epoch(k):
        model.train()
        loss = minibatch_epoch(model, opt, nn.functional.cross_entropy, x, y, batch_size=16, generator=g)
        carry["best"] = min(carry["best"], loss.mean)
        return {"loss": loss.mean, "lr": opt.param_groups[0]["lr"]}

    hist = fit(model, opt, epoch, epochs=EPOCHS, scheduler=sched, generators=[g], history={"loss": [], "lr": []},
               carry=carry, checkpointer=checkpointer, loop={"lr": lr, "dropout": dropout}, desc="toy")  # fmt: skip
    return hist, carry, model.state_dict()


def test_fit_without_checkpoints_logs_every_epoch_and_steps_the_scheduler():
    hist, carry, _ = _run()
    assert len(hist["loss"]) == EPOCHS and carry["best"] == min(hist["loss"])
    assert hist["lr"] == [0.05, 0.05, 0.025, 0.025, 0.0125]  # StepLR stepped once after each epoch


def test_killed_after_a_save_and_continued_equals_uninterrupted(tmp_path, monkeypatch, capsys):
    ref_hist, ref_carry, ref_state = _run()
    saves = count_saves(monkeypatch)
    on = _run(Checkpointer(tmp_path / "on.pt", every=2))
    assert saves == [2, 4, EPOCHS]  # every 2nd epoch and the last; saving draws no random numbers:
    assert on[0] == ref_hist and on[1] == ref_carry and same(on[2], ref_state)
    full = torch.load(tmp_path / "on.pt", weights_only=True)

    saves = count_saves(monkeypatch, crash_at=2)  # dies right after the save at epoch 4
    with pytest.raises(KeyboardInterrupt):
        _run(Checkpointer(tmp_path / "c.pt", every=2))
    torch.manual_seed(12345)  # the checkpoint restores the global RNG (dropout) whatever it holds now
    saves = count_saves(monkeypatch)
    hist, carry, state = _run(Checkpointer(tmp_path / "c.pt", every=2))
    assert saves == [EPOCHS]
    assert f"toy: resumed from {tmp_path / 'c.pt'} at epoch 4/{EPOCHS}" in capsys.readouterr().err
    assert hist == ref_hist and carry == ref_carry and same(state, ref_state)
    assert same(torch.load(tmp_path / "c.pt", weights_only=True)["state"], full["state"])
    # a finished checkpoint: nothing to do, the final model and history come back
    assert same(_run(Checkpointer(tmp_path / "c.pt"))[2], ref_state) and saves == [EPOCHS]


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    _run(Checkpointer(tmp_path / "c.pt"))
    with pytest.raises(CheckpointError, match="other settings"):
        _run(Checkpointer(tmp_path / "c.pt"), lr=0.1)


def test_save_unit_scales_the_interval(tmp_path, monkeypatch):
    saves = count_saves(monkeypatch)
    model = nn.Linear(2, 1)
    fit(model, None, lambda k: None, epochs=7, checkpointer=Checkpointer(tmp_path / "c.pt", every=2), loop={},
        save_unit=3)  # fmt: skip
    assert saves == [6, 7]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": -1}, "epochs must be an integer >= 0, got -1"),
        ({"epochs": 2.0}, r"epochs must be an integer >= 0, got 2.0 \(a float\)"),
        ({"epochs": 2, "save_unit": 0}, "save_unit must be an integer >= 1, got 0"),
        ({"epochs": 2, "checkpointer": "ck"}, "loop is required with a checkpointer"),
    ],
)
def test_bad_arguments_are_named(kwargs, match, tmp_path):
    if kwargs.get("checkpointer") == "ck":
        kwargs["checkpointer"] = Checkpointer(tmp_path / "c.pt")
    with pytest.raises(ValueError, match=match):
        fit(nn.Linear(2, 1), None, lambda k: None, **kwargs)


def test_minibatches_cover_every_sample_once_and_draw_only_when_shuffling():
    g = torch.Generator().manual_seed(0)
    before = g.get_state()
    assert torch.equal(torch.cat(list(minibatches(10, 4))), torch.arange(10))
    assert torch.equal(g.get_state(), before)
    batches = list(minibatches(10, 4, g))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(10))
    assert torch.equal(torch.cat(batches), torch.randperm(10, generator=torch.Generator().manual_seed(0)))


def test_minibatch_epoch_mean_is_sample_weighted_and_a_non_finite_loss_is_named():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # no change: the batch losses are known
    x, y = torch.ones(5, 1), torch.arange(5.0)[:, None]
    out = minibatch_epoch(model, opt, nn.functional.mse_loss, x, y, batch_size=2)
    assert out == EpochLoss(mean=pytest.approx((0 + 1 + 4 + 9 + 16) / 5), last=16.0)
    with pytest.raises(FloatingPointError, match="toy: loss became nan; lower the learning rate"):
        minibatch_epoch(model, opt, nn.functional.mse_loss, x, y * float("nan"), batch_size=2, desc="toy")


def test_stop_ends_before_the_epoch_and_a_finished_result_is_returned_on_resume(tmp_path, monkeypatch):
    """``STOP`` ends training after ``epoch`` epochs (the stopping epoch trains nothing); ``finish``'s result is
    saved with the final checkpoint and returned again, without training, when the run is resumed."""
    from tnml.training import STOP

    model, calls = nn.Linear(1, 1), []

    def step(k):
        calls.append(k)
        return STOP if k == 3 else None

    ck = lambda: Checkpointer(tmp_path / "c.pt", every=1)  # noqa: E731
    saves = count_saves(monkeypatch)
    out = fit(model, None, step, epochs=10, checkpointer=ck(), loop={}, finish=lambda d, s: {"done": d, "stopped": s})
    assert out == {"done": 3, "stopped": True} and calls == [0, 1, 2, 3] and saves == [1, 2, 3, 3]
    assert fit(model, None, step, epochs=10, checkpointer=ck(), loop={}, finish=lambda d, s: None) == out
    assert calls == [0, 1, 2, 3] and saves == [1, 2, 3, 3]  # nothing trained, nothing saved
