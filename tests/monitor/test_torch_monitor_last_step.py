"""rnnscope.torch.Monitor records the first and the last step however the run falls against
``every``: by close() (the weights training ended with, the last step's gradients kept by
reference) or, with ``total_steps=``, by step() itself. Expected values are torch's own tensors,
cut into gates by torch's documented row order (input, forget, cell, output)."""

from __future__ import annotations

import warnings

import pytest

import rnnscope

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
from rnnscope.torch import Monitor  # noqa: E402

H = 5
FORGET = slice(H, 2 * H)


def _train(db, steps: int, every: int, set_to_none: bool = True, **kw):
    """Trains an LSTM(3, H); returns per step (weights at step(), its gradient) and the final
    weights, all of lstm.weight_hh_l0."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, H, batch_first=True)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.5)
    x, y = torch.randn(8, 6, 3), torch.randn(8, H)
    seen = {}
    with Monitor(lstm, db, every=every, **kw) as mon:
        for s in range(steps):
            torch.nn.functional.mse_loss(lstm(x)[0][:, -1], y).backward()
            mon.step()
            w = lstm.weight_hh_l0
            seen[s] = (w.detach().clone(), w.grad.detach().clone())
            opt.step()
            opt.zero_grad(set_to_none=set_to_none)
    return seen, lstm.weight_hh_l0.detach().clone()


def _forget(db, step):
    h = rnnscope.history(db)
    row = h[(h.step == step) & (h.part == "recurrent_kernel") & (h.gate == "forget")]
    return row["weight_norm"].item(), row["grad_norm"].item(), row["update_ratio"].item()


@pytest.mark.parametrize(("steps", "every", "recorded"), [(5, 50, [0, 4]), (8, 3, [0, 3, 6, 7])])
def test_close_records_the_last_step(tmp_path, steps, every, recorded):
    db = tmp_path / "run.db"
    seen, final = _train(db, steps, every)
    assert sorted(set(rnnscope.history(db)["step"])) == recorded
    wn, gn, ratio = _forget(db, steps - 1)
    assert wn == pytest.approx(float(final[FORGET].norm()), rel=1e-6)  # as training ended
    assert gn == pytest.approx(float(seen[steps - 1][1][FORGET].norm()), rel=1e-5)
    assert pd.isna(ratio)  # no later step to measure an update against
    # the step before it, recorded on `every`, still has its own numbers
    if steps - 2 in recorded:
        assert _forget(db, steps - 2)[1] == pytest.approx(
            float(seen[steps - 2][1][FORGET].norm()), rel=1e-5
        )


def test_total_steps_records_the_last_step_in_step(tmp_path):
    db = tmp_path / "run.db"
    seen, _ = _train(db, 5, 50, total_steps=5)
    assert sorted(set(rnnscope.history(db)["step"])) == [0, 4]
    w, g = seen[4]
    wn, gn, _ = _forget(db, 4)
    assert wn == pytest.approx(float(w[FORGET].norm()), rel=1e-6)  # the weights at step()
    assert gn == pytest.approx(float(g[FORGET].norm()), rel=1e-5)


def test_gradients_zeroed_in_place_are_not_recorded_as_the_last_steps(tmp_path):
    db = tmp_path / "run.db"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _train(db, 5, 50, set_to_none=False)
    _, gn, _ = _forget(db, 4)
    assert pd.isna(gn)  # not the zeros zero_grad left behind
    said = [str(w.message) for w in caught if "last step (4)" in str(w.message)]
    assert len(said) == 1 and "without gradients" in said[0]


def test_total_steps_is_checked():
    lstm = torch.nn.LSTM(3, H)
    with pytest.raises(rnnscope.InputError, match="total_steps"):
        Monitor(lstm, ":memory:", total_steps=0)
