"""rnnscope.torch.Monitor: every recorded number against torch's own tensors, a database
readable during training, TensorBoard files read back by TensorBoard, and the faults: a writer
that cannot write, a connection that breaks mid-run, a crash, an injected NaN, and DDP."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import rnnscope

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
from rnnscope.torch import Monitor  # noqa: E402

H = 5


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(3, H, batch_first=True)
        self.head = torch.nn.Linear(H, 1)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


def _setup(seed=0):
    torch.manual_seed(seed)
    net = Net()
    return net, torch.optim.SGD(net.parameters(), lr=0.5), torch.randn(8, 6, 3), torch.randn(8, 1)


def _rows(db, step, part, gate):
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT weight_norm, grad_norm, update_ratio, mean, abs_max FROM stats "
            "WHERE step=? AND layer='lstm.l0' AND part=? AND gate=?",
            (step, part, gate),
        ).fetchone()
    finally:
        con.close()


def test_recorded_numbers_are_torchs_own(tmp_path):
    net, opt, x, y = _setup()
    db = tmp_path / "run.db"
    seen = {}
    mon = Monitor(net, db, every=2)
    for step in range(5):
        torch.nn.functional.mse_loss(net(x), y).backward()
        mon.step()
        w = net.lstm.weight_hh_l0.detach().clone()
        seen[step] = (w, net.lstm.weight_hh_l0.grad.detach().clone())
        opt.step()
        opt.zero_grad()
    mon.close()
    h = rnnscope.history(db)
    assert sorted(set(h["step"])) == [0, 2, 4]
    for step in (0, 2):
        w, g = seen[step]
        forget = slice(H, 2 * H)  # torch rows: input, forget, cell (g), output
        wn, gn, ratio, mean, amax = _rows(db, step, "recurrent_kernel", "forget")
        assert wn == pytest.approx(float(w[forget].norm()), rel=1e-6)
        assert gn == pytest.approx(float(g[forget].norm()), rel=1e-5)
        assert mean == pytest.approx(float(w[forget].mean()), rel=1e-5, abs=1e-7)
        assert amax == pytest.approx(float(w[forget].abs().max()), rel=1e-6)
        after = seen[step + 1][0]  # the weights after one update
        expected = float((after[forget] - w[forget]).norm() / w[forget].norm())
        assert ratio == pytest.approx(expected, rel=1e-4)
        cell = slice(2 * H, 3 * H)  # the candidate ("cell") block of torch's layout
        assert _rows(db, step, "recurrent_kernel", "cell")[0] == pytest.approx(
            float(w[cell].norm()), rel=1e-6
        )
    assert h[h.step == 4]["update_ratio"].isna().all()  # no update after the last step
    assert set(h["layer"]) == {"lstm.l0", "head"}


def _committed_steps(db, want: int) -> int:
    """Steps committed so far, read while training runs; the writer thread writes a queued step
    soon after it is queued, so wait (up to 10 s) for ``want`` of them."""
    deadline, n = time.monotonic() + 10, -1
    while time.monotonic() < deadline:
        if db.exists():
            reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                n = reader.execute("SELECT COUNT(DISTINCT step) FROM stats").fetchone()[0]
            except sqlite3.OperationalError:  # the schema is not there yet
                n = -1
            finally:
                reader.close()
        if n >= want:
            return n
        time.sleep(0.02)
    return n


def test_readable_while_training(tmp_path):
    net, opt, x, y = _setup()
    db = tmp_path / "run.db"
    with Monitor(net, db, every=1) as mon:
        counts = []
        for _ in range(4):
            torch.nn.functional.mse_loss(net(x), y).backward()
            mon.step()
            opt.step()
            opt.zero_grad()
            counts.append(_committed_steps(db, len(counts)))
        assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] != "wal"
        assert not db.with_name("run.db-shm").exists()  # nothing memory-mapped to fault on
    assert counts == [0, 1, 2, 3]  # a step is committed once the next gives its update ratio
    assert len(set(rnnscope.history(db)["step"])) == 4


def test_injected_nan_is_flagged_at_the_first_step(tmp_path):
    net, opt, x, y = _setup()
    db = tmp_path / "run.db"
    with warnings.catch_warnings(record=True) as caught, Monitor(net, db, every=10) as mon:
        warnings.simplefilter("always")
        for step in range(9):
            torch.nn.functional.mse_loss(net(x), y).backward()
            mon.step()
            opt.step()
            opt.zero_grad()
            if step == 5:  # after step 5's update: step 6 is the first to see it
                with torch.no_grad():
                    net.lstm.weight_hh_l0[H + 1, 2] = float("nan")
    events = rnnscope.history(db, "events")
    first = events[events.kind == "nonfinite_weights"].iloc[0]
    assert first["step"] == 6 and first["where_"] == "lstm.l0/recurrent_kernel/forget/forward"
    h = rnnscope.history(db)
    assert sorted(set(h["step"])) == [0, 6, 8]  # step 6, though every=10; 8, the last
    row = h[(h.step == 6) & (h.part == "recurrent_kernel") & (h.gate == "forget")].iloc[0]
    assert row["nan"] == 1
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert sum("first non-finite weights at step 6" in m for m in messages) == 1


def test_unwritable_path_warns_once_and_training_goes_on(tmp_path):
    net, opt, x, y = _setup()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot open") as caught:
        mon = Monitor(net, blocker / "run.db", every=1)
        for _ in range(3):
            torch.nn.functional.mse_loss(net(x), y).backward()
            mon.step()
            opt.step()
            opt.zero_grad()
        mon.close()
    assert len([w for w in caught if "rnnscope monitor" in str(w.message)]) == 1


def test_a_database_deleted_mid_run_warns_once_and_recording_goes_on(tmp_path):
    net, opt, x, y = _setup()
    db = tmp_path / "run.db"
    mon = Monitor(net, db, every=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(6):
            torch.nn.functional.mse_loss(net(x), y).backward()
            mon.step()
            opt.step()
            opt.zero_grad()
            if step == 2:
                _committed_steps(db, 2)
                db.unlink()  # the database goes away under the monitor
        mon.close()
    fresh = tmp_path / "run.recovered-1.db"
    lost = [str(w.message) for w in caught if "lost" in str(w.message)]
    assert len(lost) == 1 and str(fresh) in lost[0]
    assert sorted(set(rnnscope.history(fresh)["step"])) == [2, 3, 4, 5]  # nothing after is lost


CRASH = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    from monitor.test_torch_monitor import _setup
    from rnnscope.torch import Monitor
    net, opt, x, y = _setup()
    mon = Monitor(net, {db!r}, every=1)
    for step in range(100):
        torch.nn.functional.mse_loss(net(x), y).backward()
        mon.step()
        opt.step(); opt.zero_grad()
        if step == 7:
            # wait (up to 60 s) until the writer thread reports commits, then die at once; on
            # a loaded machine the writer may lag, so the committed count is printed, not assumed
            import time
            store = mon.recorder.db
            deadline = time.monotonic() + 60
            while store.written < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            print("committed", store.written, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
""")


def test_a_crash_loses_no_committed_row(tmp_path):
    db = tmp_path / "run.db"
    tests = os.path.dirname(os.path.dirname(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", CRASH.format(tests=tests, db=str(db))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    committed = int(proc.stdout.split()[-1])
    assert committed >= 5, proc.stdout
    h = rnnscope.history(db)
    steps = sorted(set(h["step"]))
    # steps 0..6 were handed to the writer thread (7 was pending); every batch it reported
    # committed (one per step) survives the kill, and a batch still queued is absent, never
    # half-written: the file holds a complete prefix
    assert steps == list(range(len(steps))) and len(steps) >= committed, (steps, committed)
    assert (h.groupby("step").size() == 18).all()  # every step complete: 16 gate blocks + head


def test_tensorboard_files_read_back_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    net, opt, x, y = _setup()
    db, logdir = tmp_path / "run.db", tmp_path / "tb"
    with Monitor(net, db, every=2, tensorboard=logdir) as mon:
        for _ in range(5):
            torch.nn.functional.mse_loss(net(x), y).backward()
            mon.step()
            opt.step()
            opt.zero_grad()
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tag = "lstm.l0/recurrent_kernel/forget/forward/weight_norm"
    assert tag in acc.Tags()["scalars"]
    events = acc.Scalars(tag)
    h = rnnscope.history(db)
    expected = h[(h.part == "recurrent_kernel") & (h.gate == "forget")].set_index("step")
    assert [e.step for e in events] == [0, 2, 4]
    for e in events:
        assert e.value == pytest.approx(expected.loc[e.step, "weight_norm"], rel=1e-6)
    assert "lstm.l0/recurrent_kernel/forget/forward/weights" in acc.Tags()["histograms"]
    histo = acc.Histograms("lstm.l0/recurrent_kernel/forget/forward/weights")[0]
    assert histo.histogram_value.num == H * H
    grads = acc.Histograms("lstm.l0/recurrent_kernel/forget/forward/gradients")
    assert [g.step for g in grads] == [0, 2, 4] and grads[0].histogram_value.num == H * H


def test_held_batch_gives_per_timestep_gradient_norms(tmp_path):
    net, opt, x, y = _setup()
    db = tmp_path / "run.db"
    loss = torch.nn.MSELoss()
    with Monitor(net, db, every=2, held=(x, y), loss=loss, timestep_layers="lstm") as mon:
        for _ in range(3):
            loss(net(x), y).backward()
            mon.step()
            opt.step()
            opt.zero_grad()
    ts = rnnscope.history(db, "timestep_grads")
    assert sorted(set(ts["step"])) == [0, 2] and len(ts) == 2 * 6
    # the last timestep's output feeds the head directly; earlier ones only through it
    at0 = ts[ts.step == 0].set_index("timestep")["grad_norm"]
    assert at0[5] > 0 and (at0[:5] == 0).all()  # only [:, -1] reaches the loss
    with pytest.raises(rnnscope.InputError, match="timestep_layers needs held"):
        Monitor(net, db, timestep_layers="lstm")


DDP = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    sys.path.insert(0, {tests!r})
    from monitor.test_torch_monitor import Net
    from rnnscope.torch import Monitor
    rank = int(sys.argv[1])
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(Net())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(rank)
    x, y = torch.randn(4, 6, 3), torch.randn(4, 1)
    mon = Monitor(model.module, {db!r}, every=1)
    for _ in range(3):
        torch.nn.functional.mse_loss(model(x), y).backward()
        mon.step()
        opt.step(); opt.zero_grad()
    mon.close()
    print("enabled", mon.enabled)
    dist.destroy_process_group()
""")


def test_only_rank_0_writes_under_ddp(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "run.db"
    tests = os.path.dirname(os.path.dirname(__file__))
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    code = DDP.format(tests=tests, db=str(db))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(r)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for r in (0, 1)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "enabled True" in outs[0][0] and "enabled False" in outs[1][0]
    runs = rnnscope.history(db, "runs")
    assert len(runs) == 1 and '"rank": 0' in runs.iloc[0]["meta"]
    assert sorted(set(rnnscope.history(db)["step"])) == [0, 1, 2]
