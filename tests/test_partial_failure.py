"""Many sources, some bad: every good file's rows kept, every bad one listed with its reason.

A folder of 50 entries: 40 small torch LSTM checkpoints and 10 broken in different ways. Read
in this process, in a process pool (``jobs=2``), on a dask cluster, and with workers that die.
"""

from __future__ import annotations

import ctypes
import io
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import rnnscope
from rnnscope._cli import main
from rnnscope._tables import run_sources, source_rows

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")
h5py = pytest.importorskip("h5py")

N_GOOD, UNITS, INPUTS = 40, 4, 3
# name -> (status, words its reason must hold); a failed file's reason names the file (the
# readers' wording is theirs to choose), and no two failed files share a reason
BROKEN = {
    "empty.safetensors": ("failed", "empty.safetensors"),
    "truncated.safetensors": ("failed", "truncated.safetensors"),
    "wrong_magic.h5": ("failed", "wrong_magic.h5"),
    "garbage_header.safetensors": ("failed", "garbage_header.safetensors"),
    "lying_offsets.safetensors": ("failed", "lying_offsets.safetensors"),
    "bad_config.keras": ("failed", "bad_config.keras"),
    "no_members.keras": ("failed", "no_members.keras"),
    "truncated.h5": ("failed", "truncated.h5"),
    "x.h5": ("skipped", "-r"),  # a directory with a checkpoint's name
    "notes.txt": ("skipped", "not a checkpoint file name"),
}


def _state(seed: int) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    g = 4 * UNITS
    return {
        "rnn.weight_ih_l0": r.normal(size=(g, INPUTS)).astype("f4"),
        "rnn.weight_hh_l0": r.normal(size=(g, UNITS)).astype("f4"),
        "rnn.bias_ih_l0": r.normal(size=g).astype("f4"),
        "rnn.bias_hh_l0": r.normal(size=g).astype("f4"),
    }


def _broken(folder, good_blob: bytes) -> None:
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "truncated.safetensors").write_bytes(good_blob[: len(good_blob) // 2])
    (folder / "wrong_magic.h5").write_bytes(b"GIF89a" + bytes(200))
    header = b"\xff\xfe{{ not json"
    (folder / "garbage_header.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header + bytes(16)
    )
    lying = good_blob.replace(b'"data_offsets":[0,', b'"data_offsets":[9,', 1)
    assert lying != good_blob
    (folder / "lying_offsets.safetensors").write_bytes(lying)
    with zipfile.ZipFile(folder / "bad_config.keras", "w") as z:
        z.writestr("metadata.json", '{"keras_version": "3.5.0"}')
        z.writestr("config.json", '{"class_name": "Sequential", "config": {')
        z.writestr("model.weights.h5", b"")
    with zipfile.ZipFile(folder / "no_members.keras", "w") as z:
        z.writestr("hello.txt", "hi")
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("layers/lstm/cell/vars/0", data=np.ones((INPUTS, 4 * UNITS), "f4"))
    whole = buf.getvalue()
    (folder / "truncated.h5").write_bytes(whole[: len(whole) // 3])
    (folder / "x.h5").mkdir()
    (folder / "notes.txt").write_text("epoch notes\n")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    for i in range(N_GOOD):
        safetensors_np.save_file(_state(i), str(folder / f"epoch{i}.safetensors"))
    _broken(folder, (folder / "epoch0.safetensors").read_bytes())
    assert len(list(folder.iterdir())) == 50
    return folder


@pytest.fixture(scope="module")
def clean(mixed):
    good = [mixed / f"epoch{i}.safetensors" for i in range(N_GOOD)]
    return rnnscope.stats(good, strict=True)


def _error_names(cls: type) -> set[str]:
    return {cls.__name__}.union(*(_error_names(c) for c in cls.__subclasses__()))


def _check_failed(table: list[dict[str, str]], folder) -> None:
    by = {e["name"]: e for e in table}
    assert set(by) == set(BROKEN)
    for name, (status, words) in BROKEN.items():
        e = by[name]
        assert e["status"] == status, e
        assert words in e["reason"], e
        assert e["source"] == str(folder / name)
        if status == "failed":  # a reader's error, not a crash
            assert e["error"] in _error_names(rnnscope.FormatError), e
    assert [e["status"] for e in table] == sorted(e["status"] for e in table)  # failed first
    failed = [e for e in table if e["status"] == "failed"]
    assert len({e["reason"].replace(e["name"], "") for e in failed}) == len(failed) == 8


def _check_frame(df, clean) -> None:
    pd.testing.assert_frame_equal(df.reset_index(drop=True), clean.reset_index(drop=True))
    # and an oracle outside rnnscope: torch gate order i, f, g, o; rows of weight_ih
    row = df[(df.model == "epoch7.safetensors") & (df.part == "kernel") & (df.gate == "cell")]
    block = _state(7)["rnn.weight_ih_l0"][2 * UNITS : 3 * UNITS]
    assert row["l2_norm"].item() == pytest.approx(float(np.linalg.norm(block)), rel=1e-6)


def test_stats_keeps_every_good_file_and_lists_every_bad_one(mixed, clean):
    with pytest.warns(RuntimeWarning, match=r"8 of 48 sources could not be read"):
        df = rnnscope.stats(mixed)
    assert list(dict.fromkeys(df.model)) == [f"epoch{i}.safetensors" for i in range(N_GOOD)]
    _check_frame(df, clean)
    _check_failed(df.attrs["failed"], mixed)
    failed = pd.DataFrame(df.attrs["failed"])
    assert list(failed.columns) == ["name", "source", "status", "error", "reason"]
    assert pd.concat([df, df]).attrs["failed"] == df.attrs["failed"]  # plain rows survive pandas


def test_process_pool_gives_the_same_rows_and_failures(mixed, clean):
    with pytest.warns(RuntimeWarning):
        df = rnnscope.stats(mixed, jobs=2)
    _check_frame(df, clean)
    _check_failed(df.attrs["failed"], mixed)


def test_dask_executor_gives_the_same_rows_and_failures(mixed, clean):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        pytest.warns(RuntimeWarning),
    ):
        df = rnnscope.stats(mixed, executor=client.get_executor())
    _check_frame(df, clean)
    _check_failed(df.attrs["failed"], mixed)


def test_strict_raises_the_first_error_and_a_lone_file_raises_its_own(mixed):
    with pytest.raises(rnnscope.FormatError, match=r"bad_config\.keras"):
        rnnscope.stats(mixed, strict=True)
    with pytest.raises(rnnscope.FormatError, match="empty"):
        rnnscope.stats(mixed / "empty.safetensors")
    with pytest.raises(rnnscope.InputError, match="none of the 2 sources could be read"):
        rnnscope.stats([mixed / "empty.safetensors", mixed / "wrong_magic.h5"])


def test_recursive_reads_subfolders_named_by_relative_path(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "empty.h5").mkdir()
    safetensors_np.save_file(_state(1), str(tmp_path / "top.safetensors"))
    safetensors_np.save_file(_state(2), str(tmp_path / "a" / "b" / "deep.safetensors"))
    flat = rnnscope.stats(tmp_path)
    assert set(flat.model) == {"top.safetensors"}
    assert {e["name"] for e in flat.attrs["failed"]} == {"a", "empty.h5"}
    deep = rnnscope.stats(tmp_path, recursive=True)
    assert list(dict.fromkeys(deep.model)) == ["a/b/deep.safetensors", "top.safetensors"]
    assert [(e["name"], e["reason"]) for e in deep.attrs["failed"]] == [
        ("empty.h5", "an empty folder")
    ]


def test_compare_and_report_carry_on(mixed, tmp_path):
    with pytest.warns(RuntimeWarning):
        cmp = rnnscope.compare(mixed)
    assert cmp.attrs["models"] == [f"epoch{i}.safetensors" for i in range(N_GOOD)]
    _check_failed(cmp.attrs["failed"], mixed)
    with pytest.raises(rnnscope.InputError, match=r"baseline 'empty\.safetensors' could not"):
        rnnscope.compare(mixed, baseline="empty.safetensors")
    with pytest.warns(RuntimeWarning, match="Not read"):
        out = rnnscope.report(mixed, out=tmp_path / "r.html", figures=False)
    html = out.read_text()
    start = html.index('<h2 id="not-read">')
    section = html[start : html.index("<h2", start + 1)]
    for name in BROKEN:
        assert f'<td class="t">{name}</td>' in section
    assert section.count(">failed<") == 8 and section.count(">skipped<") == 2
    # every model read is a row of the index (since issue #21 only some get a full section)
    assert all(f'data-name="epoch{i}.safetensors"><td>{i + 1}</td>' in html for i in range(N_GOOD))


def test_a_failed_source_never_silently_becomes_or_shifts_the_baseline(mixed, capsys):
    # natural order of the checkpoint files: bad_config.keras, empty.safetensors, epoch0, ...
    with pytest.warns(RuntimeWarning, match=r"first source, 'bad_config\.keras', could not"):
        cmp = rnnscope.compare(mixed)
    assert cmp.attrs["baseline"] == "epoch0.safetensors"
    assert "bad_config.keras" in cmp.attrs["baseline_note"]
    with pytest.raises(rnnscope.InputError, match=r"baseline 0 \(bad_config\.keras\) could not"):
        rnnscope.compare(mixed, baseline=0)
    cmp = rnnscope.compare(mixed, baseline=3)  # an index counts every file given, read or not
    assert cmp.attrs["baseline"] == "epoch1.safetensors" and cmp.attrs["baseline_note"] == ""
    # the recurrent forget block of epoch0 against epoch1's, from the raw torch rows (i, f, g, o)
    f = slice(UNITS, 2 * UNITS)
    l2 = [np.linalg.norm(_state(i)["rnn.weight_hh_l0"][f].astype("f8")) for i in (0, 1)]
    row = cmp[
        (cmp.model == "epoch0.safetensors")
        & (cmp.part == "recurrent_kernel")
        & (cmp.gate == "forget")
    ]
    assert row["l2_norm_change"].item() == pytest.approx(l2[0] - l2[1], rel=1e-5)
    assert main(["compare", str(mixed), "--json", "-"]) == 1
    err = capsys.readouterr().err
    assert "baseline: the first source, 'bad_config.keras', could not be read" in err
    assert main(["compare", str(mixed), "--baseline", "1", "--json", "-"]) == 2
    assert "baseline 1 (empty.safetensors) could not be read" in capsys.readouterr().err


def test_cli_exit_codes_and_listing(mixed, tmp_path, capsys):
    csv = tmp_path / "s.csv"
    assert main(["stats", str(mixed), "--csv", str(csv)]) == 1
    err = capsys.readouterr().err
    for name, (status, _) in BROKEN.items():
        assert f"  {status:<8} {name}: " in err
    assert "8 source(s) could not be read" in err
    assert pd.read_csv(csv)["model"].nunique() == N_GOOD
    assert main(["stats", str(mixed), "--strict"]) == 2
    assert "rnnscope: error:" in capsys.readouterr().err
    good = str(mixed / "epoch1.safetensors")
    assert main(["stats", good]) == 0
    assert "epoch1.safetensors" in capsys.readouterr().out
    assert main(["compare", good, str(mixed / "empty.safetensors"), "--json"]) == 1
    out = capsys.readouterr()
    assert json_rows(out.out)[0]["model"] == "epoch1.safetensors"
    assert "failed   empty.safetensors" in out.err
    assert main(["report", str(mixed), "-o", str(tmp_path / "r.html"), "--no-figures"]) == 1
    assert main(["stats", str(mixed / "empty.safetensors"), str(mixed / "x.h5")]) == 2
    assert main(["summary", str(mixed)]) == 1
    assert main(["layers", str(mixed), "--strict"]) == 2


def json_rows(text: str) -> list[dict[str, object]]:
    import json

    return list(json.loads(text))


# --- workers that die -------------------------------------------------------------------


def dying_rows(source: str, name: str, tol: float) -> list[dict[str, object]]:
    """source_rows, but the worker process dies on files named like a crash."""
    if "exit3" in name:
        os._exit(3)
    if "segv" in name:
        ctypes.string_at(0)  # a read of address 0: SIGSEGV, as a crash inside a C library
    return source_rows(source, name, tol)


def test_a_dying_worker_takes_no_other_results_with_it(tmp_path):
    paths = []
    for i in range(8):
        name = {2: "exit3", 5: "segv"}.get(i, "ok")
        p = tmp_path / f"{i}_{name}.safetensors"
        safetensors_np.save_file(_state(i), str(p))
        paths.append((p.name, str(p)))
    results, failed = run_sources(dying_rows, paths, (1e-3,), None, 2, None)
    names = [rows[0]["model"] for rows in results]
    assert names == [n for n, _ in paths if "ok" in n]
    expected = [r for n, p in paths if "ok" in n for r in source_rows(p, n, 1e-3)]
    pd.testing.assert_frame_equal(
        pd.DataFrame([r for rows in results for r in rows]), pd.DataFrame(expected)
    )
    assert [(e["name"], e["error"]) for e in failed] == [
        ("2_exit3.safetensors", "WorkerDied"),
        ("5_segv.safetensors", "WorkerDied"),
    ]
    assert "exit code 3" in failed[0]["reason"] and "SIGSEGV" in failed[1]["reason"]
    with pytest.raises(rnnscope.UnsupportedError, match="worker process died"):
        run_sources(dying_rows, paths, (1e-3,), None, 2, None, strict=True)


def test_a_dask_worker_that_dies_takes_no_other_results_with_it(tmp_path):
    distributed = pytest.importorskip("distributed")
    paths = []
    for i in range(8):  # more files than workers: some wait on the worker that dies
        p = tmp_path / f"{i}_{'exit3' if i == 1 else 'ok'}.safetensors"
        safetensors_np.save_file(_state(i), str(p))
        paths.append((p.name, str(p)))
    import dask

    with (
        # no retries: a death fails every task then on that worker, the innocent ones too
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        results, failed = run_sources(dying_rows, paths, (1e-3,), client.get_executor(), None, None)
    assert [rows[0]["model"] for rows in results] == [n for n, _ in paths if "ok" in n]
    ((row),) = failed
    assert row["name"] == "1_exit3.safetensors" and row["error"] == "KilledWorker"
    assert row["reason"].startswith("the executor failed to run it: KilledWorker")


def test_a_script_without_a_main_guard_gets_told(tmp_path):
    for i in range(2):
        safetensors_np.save_file(_state(i), str(tmp_path / f"e{i}.safetensors"))
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import rnnscope
            rnnscope.stats(r"{tmp_path}", jobs=2)
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    # found by content, not position: a resource-tracker warning may be the last line
    ours = [ln for ln in out.stderr.splitlines() if ln.startswith("rnnscope._errors.Unsupported")]
    assert len(ours) == 1 and "if __name__ == '__main__':" in ours[0], out.stderr


def test_a_dangling_link_to_a_checkpoint_is_a_failure_not_a_skip(tmp_path, capsys):
    safetensors_np.save_file(_state(0), str(tmp_path / "epoch0.safetensors"))
    (tmp_path / "epoch1.safetensors").symlink_to(tmp_path / "moved" / "epoch1.safetensors")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.warns(RuntimeWarning, match="1 of 2 sources could not be read"):
        df = rnnscope.stats(tmp_path)
    rows = {e["name"]: e for e in df.attrs["failed"]}
    assert rows["epoch1.safetensors"]["status"] == "failed"
    assert rows["epoch1.safetensors"]["error"] == "FileNotFoundError"
    assert "does not exist" in rows["epoch1.safetensors"]["reason"]
    assert rows["notes.txt"]["status"] == "skipped"
    assert main(["stats", str(tmp_path), "--csv", "-"]) == 1  # done, with a failure
    assert "failed   epoch1.safetensors: a link to" in capsys.readouterr().err
