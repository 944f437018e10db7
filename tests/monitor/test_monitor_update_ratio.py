"""The update ratio of every block of a bidirectional layer lands on its own row: each
(part, gate, direction) against torch's own tensors, sliced by torch's documented GRU layout."""

from __future__ import annotations

import sqlite3

import pytest

torch = pytest.importorskip("torch")
from rnnscope.torch import Monitor  # noqa: E402

H = 4
# torch's GRU rows: reset, update, new; the suffix _reverse is the backward direction
ROWS = {"reset": slice(0, H), "update": slice(H, 2 * H), "new": slice(2 * H, 3 * H)}
TENSORS = {"kernel": "weight_ih_l0", "recurrent_kernel": "weight_hh_l0"}
DIRECTIONS = {"forward": "", "backward": "_reverse"}


def test_each_block_of_a_bidirectional_layer_gets_its_own_update_ratio(tmp_path):
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, H, batch_first=True, bidirectional=True)
    opt = torch.optim.SGD(gru.parameters(), lr=0.3)
    x, y = torch.randn(8, 5, 3), torch.randn(8, 5, 2 * H)
    db = tmp_path / "run.db"
    seen = []
    mon = Monitor(gru, db, every=1)
    for _ in range(3):
        torch.nn.functional.mse_loss(gru(x)[0], y).backward()
        mon.step()
        seen.append({k: v.detach().clone() for k, v in gru.named_parameters()})
        opt.step()
        opt.zero_grad()
    seen.append({k: v.detach().clone() for k, v in gru.named_parameters()})
    mon.close()
    con = sqlite3.connect(db)
    try:
        got = {
            key[:4]: key[4]
            for key in con.execute(
                "SELECT step, part, gate, direction, update_ratio FROM stats "
                "WHERE part IN ('kernel', 'recurrent_kernel')"
            )
        }
    finally:
        con.close()
    expected = {}
    for step in range(2):  # the last recorded step has no next update
        for part, tensor in TENSORS.items():
            for direction, suffix in DIRECTIONS.items():
                for gate, rows in ROWS.items():
                    w = seen[step][tensor + suffix][rows]
                    after = seen[step + 1][tensor + suffix][rows]
                    expected[(step, part, gate, direction)] = float((after - w).norm() / w.norm())
    assert len(set(round(v, 6) for v in expected.values())) == len(expected)  # all tell apart
    for key, ratio in expected.items():
        assert got[key] == pytest.approx(ratio, rel=1e-4), key
    assert all(v is None for k, v in got.items() if k[0] == 2)
