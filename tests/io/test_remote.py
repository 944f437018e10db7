"""Checkpoints read from a real S3 API server (moto's server mode on 127.0.0.1, a free port)
through fsspec and s3fs, never mocked: every format equals its local read and its framework's
output, a single-layer safetensors read fetches only that layer's bytes (counted at the server),
and missing objects, denied reads and a stopped server are clear errors while the other files
still report."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError
from tests.conftest import ATOL

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
# one file of each format and writer (the layouts themselves are proven by test_fixture_files)
FILES = [
    FIXTURES / n
    for n in (
        "k3_func.keras",
        "k3_func.weights.h5",
        "k3_seq.h5",
        "tk_cudnn.h5",
        "pt_stack.safetensors",
        "pt_stack.pt",
    )
]
BUCKET = "ckpt"


class _Counting:
    """WSGI middleware counting the body bytes the server sends per object key (GET only)."""

    def __init__(self, app: Any) -> None:
        self.app, self.sent, self.gets, self.peers = app, {}, {}, []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        key = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        for chunk in self.app(environ, start_response):
            if method == "GET":
                with self.lock:
                    self.sent[key] = self.sent.get(key, 0) + len(chunk)
                    self.peers.append((key, str(environ.get("HTTP_USER_AGENT", ""))))
            yield chunk
        if method == "GET":
            with self.lock:
                self.gets[key] = self.gets.get(key, 0) + 1

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.gets.clear()
            self.peers.clear()


class Server:
    """A moto S3 server in a thread; ``fs`` is an s3fs filesystem on it."""

    def __init__(self) -> None:
        self.srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.srv.start()
        host, self.port = self.srv.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"
        self.counter = _Counting(self.srv._server.app)
        self.srv._server.app = self.counter  # count what the server really sends
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.srv.stop()
            self.running = False


_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-do-not-print",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3():
    from rnnscope._io import _h5proc

    server = Server()
    old = {k: os.environ.get(k) for k in [*_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(_ENV, AWS_ENDPOINT_URL=server.endpoint)
    _h5proc.stop()  # the HDF5 reader process starts again with this environment
    server.fs = s3fs.S3FileSystem(endpoint_url=server.endpoint, skip_instance_cache=True)
    server.fs.mkdir(BUCKET)
    for p in FILES:
        server.fs.put_file(str(p), f"{BUCKET}/files/{p.name}")
    try:
        yield server
    finally:
        server.stop()
        _h5proc.stop()
        s3fs.S3FileSystem.clear_instance_cache()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _onnx_file(tmp: Path) -> Path:
    pytest.importorskip("onnx")
    from tests.io import onnx_graphs

    return onnx_graphs.write(
        tmp / "gru.onnx",
        "GRU",
        onnx_graphs.weights("GRU", 3, 4, 2),
        direction="bidirectional",
        linear_before_reset=1,
    )


def _arrays(ckpt: rnnscope.Checkpoint) -> dict[str, np.ndarray]:
    out = {}
    for info in ckpt.layers():
        rec = rnnscope.weights(ckpt, info.name)
        items = rec.arrays.items() if hasattr(rec, "arrays") else rec.weights.items()
        for key, a in items:
            out[f"{info.name}/{key}"] = a
    return out


def _same_checkpoint(local: rnnscope.Checkpoint, remote: rnnscope.Checkpoint) -> None:
    assert remote.format == local.format
    assert remote.framework == local.framework
    assert remote.layers() == local.layers()
    a, b = _arrays(local), _arrays(remote)
    assert a.keys() == b.keys() and a
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_fixture_format_reads_from_a_bucket_as_locally(s3, path):
    """Same layers and bitwise the same arrays as the local read; each recurrent layer traced
    from the bucket's copy reproduces the output its framework computed (``.ref.npz``)."""
    if path.suffix == ".pt":
        pytest.importorskip("torch")
    url = f"s3://{BUCKET}/files/{path.name}"
    remote = rnnscope.load(url)
    assert remote.path == url
    _same_checkpoint(rnnscope.load(path), remote)
    meta = json.loads(path.with_name(path.name + ".ref.json").read_text())
    ref = np.load(path.with_name(path.name + ".ref.npz"), allow_pickle=False)
    for layer in meta["layers"][:1]:  # the framework's own output, from the bucket's weights
        w = rnnscope.rnn_weights(remote, layer["name"])
        if any(f"'{layer['name']}'" in n for n in remote.notes):
            continue  # settings assumed (no config in the file): test_fixture_files covers it
        x, y = ref[f"{layer['name']}/x"], ref[f"{layer['name']}/y"]
        got = rnnscope.trace(w, x).output(sequences=y.ndim == 3)
        np.testing.assert_allclose(got, y, atol=ATOL, err_msg=path.name)


def test_onnx_and_filesystem_objects_read_from_a_bucket(s3, tmp_path, monkeypatch):
    """An ONNX model, and sources given as ``(fs, path)`` and as ``fsspec.core.OpenFile``: their
    filesystem's options are used, in the HDF5 reader process too (the environment here points
    at a closed port while they are read)."""
    import fsspec

    from rnnscope._io import _h5proc

    local = _onnx_file(tmp_path)
    s3.fs.put_file(str(local), f"{BUCKET}/onnx/gru.onnx")
    _same_checkpoint(rnnscope.load(local), rnnscope.load(f"s3://{BUCKET}/onnx/gru.onnx"))
    fs = s3fs.S3FileSystem(endpoint_url=s3.endpoint, skip_instance_cache=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    _h5proc.stop()
    try:
        pair = rnnscope.load((fs, f"{BUCKET}/files/k3_func.weights.h5"))
        assert pair.path == f"s3://{BUCKET}/files/k3_func.weights.h5"
        _same_checkpoint(rnnscope.load(FIXTURES / "k3_func.weights.h5"), pair)
        opened = fsspec.core.OpenFile(fs, f"{BUCKET}/files/pt_stack.safetensors")
        _same_checkpoint(rnnscope.load(FIXTURES / "pt_stack.safetensors"), rnnscope.load(opened))
    finally:
        _h5proc.stop()  # the next reader starts with the server's address again


def test_one_safetensors_layer_of_100_mb_reads_under_5_percent(s3, tmp_path):
    """A 100 MB file: an LSTM(8) and a 100 MB embedding. Reading the LSTM fetches its own bytes
    and the header (counted by the server), and its arrays are the ones written."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    lstm = {
        "rnn.weight_ih_l0": rng.standard_normal((32, 5)).astype("f4"),
        "rnn.weight_hh_l0": rng.standard_normal((32, 8)).astype("f4"),
        "rnn.bias_ih_l0": rng.standard_normal(32).astype("f4"),
        "rnn.bias_hh_l0": rng.standard_normal(32).astype("f4"),
    }
    big = np.zeros((25_000, 1_000), "f4")  # 100 MB, written once here (not in the repository)
    path = tmp_path / "big.safetensors"
    save_file({**lstm, "embedding.weight": big}, str(path))
    del big
    size = path.stat().st_size
    assert size > 100e6
    s3.fs.put_file(str(path), f"{BUCKET}/big/big.safetensors")
    s3.counter.reset()
    w = rnnscope.rnn_weights(f"s3://{BUCKET}/big/big.safetensors", "rnn")
    sent = s3.counter.sent[f"/{BUCKET}/big/big.safetensors"]
    assert sent < 0.05 * size, (sent, size)
    own = sum(a.nbytes for a in lstm.values())
    assert own <= sent < own + 4096, (sent, own)  # its tensors, the header, the first bytes
    h = 8  # torch's row blocks i, f, g, o, read straight from what was written
    np.testing.assert_array_equal(
        w.array("kernel", "forget"), lstm["rnn.weight_ih_l0"][h : 2 * h].T
    )
    np.testing.assert_array_equal(
        w.array("recurrent_bias", "output"), lstm["rnn.bias_hh_l0"][3 * h :]
    )


def _tiny_safetensors(path: Path, seed: int) -> dict[str, np.ndarray]:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    arrays = {
        "gru.weight_ih_l0": rng.standard_normal((6, 3)).astype("f4"),
        "gru.weight_hh_l0": rng.standard_normal((6, 2)).astype("f4"),
        "gru.bias_ih_l0": rng.standard_normal(6).astype("f4"),
        "gru.bias_hh_l0": rng.standard_normal(6).astype("f4"),
    }
    save_file(arrays, str(path))
    return arrays


@pytest.fixture(scope="module")
def run_tree(s3, tmp_path_factory):
    """The same tree locally and under ``s3://ckpt/run/``: epochs 1, 2, 10, a note, a subfolder."""
    top = tmp_path_factory.mktemp("run")
    (top / "sub").mkdir()
    for name in ("epoch10.safetensors", "epoch2.safetensors", "epoch1.safetensors"):
        _tiny_safetensors(top / name, int(name[5:-12]))
    _tiny_safetensors(top / "sub" / "epoch3.safetensors", 3)
    (top / "notes.txt").write_text("not a checkpoint")
    for p in top.rglob("*"):
        if p.is_file():
            s3.fs.put_file(str(p), f"{BUCKET}/run/{p.relative_to(top).as_posix()}")
    return top


def test_import_does_not_import_fsspec_and_local_reads_never_do():
    import subprocess
    import sys

    code = (
        "import sys, rnnscope; rnnscope.load; assert 'fsspec' not in sys.modules; "
        f"rnnscope.load({str(FIXTURES / 'pt_stack.safetensors')!r}).rnn_weights(0); "
        "assert 'fsspec' not in sys.modules, 'a local read imported fsspec'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


def test_command_line_reads_a_bucket_folder(s3, run_tree, capsys):
    from rnnscope._cli import main

    assert main(["stats", f"s3://{BUCKET}/run/", "--csv"]) == 0
    remote = capsys.readouterr().out
    assert main(["stats", str(run_tree), "--csv"]) == 0
    assert remote == capsys.readouterr().out
    assert "epoch10.safetensors" in remote


def test_remote_folders_and_globs_list_as_local_folders(s3, run_tree):
    local = rnnscope.compare(run_tree)
    remote = rnnscope.compare(f"s3://{BUCKET}/run")
    assert remote.attrs["models"] == local.attrs["models"]
    assert remote.attrs["models"] == [
        "epoch1.safetensors",
        "epoch2.safetensors",
        "epoch10.safetensors",
    ]
    left = {(e["name"], e["status"]) for e in remote.attrs["failed"]}
    assert left == {(e["name"], e["status"]) for e in local.attrs["failed"]}
    deep = rnnscope.stats(f"s3://{BUCKET}/run/", recursive=True)
    assert list(dict.fromkeys(deep["model"])) == list(
        dict.fromkeys(rnnscope.stats(run_tree, recursive=True)["model"])
    )
    globbed = rnnscope.stats(f"s3://{BUCKET}/run/epoch1*.safetensors")
    assert list(dict.fromkeys(globbed["model"])) == ["epoch1.safetensors", "epoch10.safetensors"]


def test_missing_object_is_a_clear_error_and_the_others_report(s3, run_tree):
    missing = f"s3://{BUCKET}/run/epoch99.safetensors"
    with pytest.raises(
        FormatError, match=r"'s3://ckpt/run/epoch99\.safetensors': no such object"
    ) as info:
        rnnscope.load(missing)
    assert info.value.path == missing
    df = rnnscope.stats(
        [f"s3://{BUCKET}/run/epoch1.safetensors", missing, f"s3://nobucket-{s3.port}/x.keras"]
    )
    assert set(df["model"]) == {"epoch1.safetensors"}
    failed = {e["source"]: e for e in df.attrs["failed"]}
    assert "no such object" in failed[missing]["reason"]
    assert set(failed) == {missing, f"s3://nobucket-{s3.port}/x.keras"}


def test_denied_read_is_a_clear_error_without_secrets_and_the_others_report(s3, run_tree):
    """moto enforces IAM once auth is switched on: a user without a policy is denied."""
    import boto3
    import requests

    iam = boto3.client("iam", endpoint_url=s3.endpoint)
    suffix = str(s3.port)
    policy = iam.create_policy(
        PolicyName=f"read-{suffix}",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    keys = {}
    for user in ("reader", "nobody"):
        iam.create_user(UserName=f"{user}-{suffix}")
        keys[user] = iam.create_access_key(UserName=f"{user}-{suffix}")["AccessKey"]
    iam.attach_user_policy(UserName=f"reader-{suffix}", PolicyArn=policy["Policy"]["Arn"])

    def fs_of(user: str) -> Any:
        k = keys[user]
        return s3fs.S3FileSystem(
            key=k["AccessKeyId"],
            secret=k["SecretAccessKey"],
            endpoint_url=s3.endpoint,
            skip_instance_cache=True,
        )

    good, denied = fs_of("reader"), fs_of("nobody")
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        with pytest.raises(
            FormatError, match=r"'s3://ckpt/run/epoch2\.safetensors': access denied"
        ) as info:
            rnnscope.load((denied, f"{BUCKET}/run/epoch2.safetensors"))
        assert keys["nobody"]["SecretAccessKey"] not in str(info.value)
        df = rnnscope.stats(
            [
                (good, f"{BUCKET}/run/epoch1.safetensors"),
                (denied, f"{BUCKET}/run/epoch2.safetensors"),
            ]
        )
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
    assert set(df["model"]) == {"epoch1.safetensors"}
    (row,) = df.attrs["failed"]
    assert row["source"] == f"s3://{BUCKET}/run/epoch2.safetensors"
    assert "access denied" in row["reason"]
    assert all(k["SecretAccessKey"] not in json.dumps(df.attrs["failed"]) for k in keys.values())


def test_server_stopped_mid_run_fails_the_rest_clearly_and_keeps_what_was_read(tmp_path):
    """Three checkpoints on a server of their own, which stops after the first is read: that
    one reports, the other two are failed rows naming their URLs (after s3fs's retries)."""
    server = Server()
    try:
        fs = s3fs.S3FileSystem(
            endpoint_url=server.endpoint,
            key="k",
            secret="s",
            skip_instance_cache=True,
            config_kwargs={"retries": {"max_attempts": 1}},  # the backend's retries, kept short
        )
        fs.retries = 2
        fs.mkdir("live")
        for k in (1, 2, 3):
            _tiny_safetensors(tmp_path / f"e{k}.safetensors", k)
            fs.put_file(str(tmp_path / f"e{k}.safetensors"), f"live/e{k}.safetensors")

        def stop_after_first(done: int, total: int, name: str) -> None:
            if done == 1:
                server.stop()
                server.srv._server.server_close()  # refuse connections from now on

        df = rnnscope.stats(
            [(fs, f"live/e{k}.safetensors") for k in (1, 2, 3)], progress=stop_after_first
        )
    finally:
        server.stop()
    assert set(df["model"]) == {"e1.safetensors"}
    failed = {e["source"]: e for e in df.attrs["failed"]}
    assert set(failed) == {"s3://live/e2.safetensors", "s3://live/e3.safetensors"}
    for url, row in failed.items():
        assert row["reason"].startswith(f"'{url}': cannot read the remote file"), row


def test_dask_workers_read_remote_urls_themselves(s3, run_tree):
    """On a dask cluster the workers get URLs and fetch the bytes: every object read the server
    answers carries the workers' user agent (botocore appends ``AWS_SDK_UA_APP_ID``, set for the
    worker processes only); the client only lists the folder."""
    distributed = pytest.importorskip("distributed")
    url = f"s3://{BUCKET}/run"
    local = rnnscope.stats(run_tree)
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"AWS_SDK_UA_APP_ID": "rnnscope-worker"},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        s3.counter.reset()
        on_dask = rnnscope.stats(url, executor=client.get_executor())
        peers = list(s3.counter.peers)
    reads = [(key, agent) for key, agent in peers if key.endswith(".safetensors")]
    assert {key for key, _ in reads} == {f"/{BUCKET}/run/epoch{k}.safetensors" for k in (1, 2, 10)}
    assert all("app/rnnscope-worker" in agent for _, agent in reads), reads
    listing = [agent for key, agent in peers if key == f"/{BUCKET}"]
    assert listing and not any("rnnscope-worker" in a for a in listing)  # the client's own
    cols = ["model", "layer", "part", "gate", "mean", "std", "max"]
    np.testing.assert_array_equal(on_dask[cols].to_numpy(), local[cols].to_numpy())


def test_report_of_a_bucket_folder_and_a_missing_object(s3, run_tree, tmp_path):
    """The HTML report reads a remote folder like a local one and lists a missing object, by its
    URL, among the files not read."""
    missing = f"s3://{BUCKET}/run/epoch99.safetensors"
    with pytest.warns(RuntimeWarning, match="1 of 4 sources could not be read"):
        out = rnnscope.report(
            [f"s3://{BUCKET}/run", missing], out=tmp_path / "r.html", figures=False
        )
    html = out.read_text(encoding="utf-8")
    for k in (1, 2, 10):
        assert f"epoch{k}.safetensors" in html
    assert missing in html and "no such object" in html


def test_cache_reads_only_new_or_rewritten_objects(s3, tmp_path):
    """The results cache keys a remote object by its URL and ETag: a rerun fetches no object
    body, and one new object plus one rewritten under the same name are the only ones fetched
    again (GETs counted at the server), the rewritten one with its new values."""
    db = tmp_path / "results.sqlite"
    local = tmp_path / "local"
    local.mkdir()
    for i in (1, 2):
        _tiny_safetensors(local / f"epoch{i}.safetensors", i)
        s3.fs.put_file(
            str(local / f"epoch{i}.safetensors"), f"{BUCKET}/cached/epoch{i}.safetensors"
        )
    url = f"s3://{BUCKET}/cached/"

    def fetched() -> set[str]:
        return {k.rsplit("/", 1)[-1] for k in s3.counter.gets if "/cached/" in k}

    s3.counter.reset()
    first = rnnscope.stats(url, cache=db)
    assert fetched() == {"epoch1.safetensors", "epoch2.safetensors"}
    s3.counter.reset()
    again = rnnscope.stats(url, cache=db)
    assert fetched() == set(), "a rerun over unchanged objects fetched their bytes"
    assert again.attrs["cache"]["hits"] == 2
    pd_testing = pytest.importorskip("pandas").testing
    pd_testing.assert_frame_equal(again.reset_index(drop=True), first.reset_index(drop=True))

    _tiny_safetensors(local / "epoch1.safetensors", 7)  # new values, same name and size
    s3.fs.put_file(str(local / "epoch1.safetensors"), f"{BUCKET}/cached/epoch1.safetensors")
    _tiny_safetensors(local / "epoch3.safetensors", 3)
    s3.fs.put_file(str(local / "epoch3.safetensors"), f"{BUCKET}/cached/epoch3.safetensors")
    s3.fs.invalidate_cache()
    s3.counter.reset()
    third = rnnscope.stats(url, cache=db)
    assert fetched() == {"epoch1.safetensors", "epoch3.safetensors"}
    fresh = rnnscope.stats(local / "epoch1.safetensors", cache=False)
    got = third[third["model"] == "epoch1.safetensors"].drop(columns="model")
    pd_testing.assert_frame_equal(
        got.reset_index(drop=True), fresh.drop(columns="model").reset_index(drop=True)
    )
