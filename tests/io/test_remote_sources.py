"""Remote sources besides S3, served on this machine without mocks: ``http://127.0.0.1`` (fsspec's
HTTP filesystem against a range-capable server started here, which counts requests and bytes),
``file://``, ``memory://`` and fsspec filesystem objects. Every format equals its local read;
a safetensors layer is fetched by its byte ranges; 404, 403 and a refused connection name the
URL; ``gs://``/``az://`` without their backend name the package; each object is looked up once
per run; the results cache is keyed by URL and ETag, and hostile or missing tags never serve a
wrong result."""

from __future__ import annotations

import io
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError, MissingDependencyError
from rnnscope._io import _remote
from tests.io.http_server import Served

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")
pd_testing = pytest.importorskip("pandas").testing

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
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


@pytest.fixture(scope="module")
def http():
    server = Served()
    for p in FILES:
        server.objects[f"/files/{p.name}"] = p.read_bytes()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def memfs():
    """A real fsspec memory filesystem (its store is this process's: a folder of our own)."""
    fs = fsspec.filesystem("memory")
    root = "/rnnscope-test-sources"
    for p in FILES:
        fs.pipe_file(f"{root}/{p.name}", p.read_bytes())
    try:
        yield fs, root
    finally:
        fs.rm(root, recursive=True)


def _arrays(ckpt: rnnscope.Checkpoint) -> dict[str, np.ndarray]:
    out = {}
    for info in ckpt.layers():
        rec = rnnscope.weights(ckpt, info.name)
        items = rec.arrays.items() if hasattr(rec, "arrays") else rec.weights.items()
        for key, a in items:
            out[f"{info.name}/{key}"] = a
    return out


def _same_checkpoint(local: rnnscope.Checkpoint, remote: rnnscope.Checkpoint) -> None:
    assert (remote.format, remote.framework) == (local.format, local.framework)
    assert remote.layers() == local.layers()
    a, b = _arrays(local), _arrays(remote)
    assert a.keys() == b.keys() and a
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


# every format over HTTP; each other kind of source with a different format (HDF5 among them)
CASES = [(p.name, "http") for p in FILES] + [
    ("k3_func.keras", "memory"),
    ("k3_func.weights.h5", "(memory fs, path)"),
    ("pt_stack.safetensors", "memory"),
    ("k3_seq.h5", "file"),
    ("pt_stack.pt", "OpenFile(local fs)"),
]


@pytest.mark.parametrize("name, how", CASES, ids=[f"{n}-{h}" for n, h in CASES])
def test_every_format_reads_over_http_file_memory_and_fs_objects_as_locally(http, memfs, name, how):
    """Same layers, bitwise the same arrays as the local read (whose layouts
    test_fixture_files proves against each framework's output). A ``memory://`` HDF5 file is
    read by the HDF5 reader process too, which cannot see this process's memory."""
    if name.endswith(".pt"):
        pytest.importorskip("torch")
    from fsspec.implementations.local import LocalFileSystem

    fs, root = memfs
    path = FIXTURES / name
    source = {
        "http": lambda: http.url(f"/files/{name}"),
        "file": lambda: path.resolve().as_uri(),
        "memory": lambda: f"memory://{root}/{name}",
        "(memory fs, path)": lambda: (fs, f"{root}/{name}"),
        "OpenFile(local fs)": lambda: fsspec.core.OpenFile(LocalFileSystem(), str(path.resolve())),
    }[how]()
    remote = rnnscope.load(source)
    assert remote.path == _remote.remote_url(source)
    _same_checkpoint(rnnscope.load(path), remote)


def _lstm_state(seed: int, inputs: int = 5, units: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "rnn.weight_ih_l0": rng.standard_normal((4 * units, inputs)).astype("f4"),
        "rnn.weight_hh_l0": rng.standard_normal((4 * units, units)).astype("f4"),
        "rnn.bias_ih_l0": rng.standard_normal(4 * units).astype("f4"),
        "rnn.bias_hh_l0": rng.standard_normal(4 * units).astype("f4"),
    }


def _safetensors_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return bytes(save(arrays))


def test_one_safetensors_layer_over_http_fetches_its_ranges_only(http):
    """Beside a 4 MB embedding, an LSTM(8) read fetches its own tensors, the header and the
    detection bytes (counted by the server), one request each, and no object is looked up twice."""
    lstm = _lstm_state(0)
    data = _safetensors_bytes({**lstm, "embedding.weight": np.ones((1000, 1000), "f4")})
    http.objects["/big/m.safetensors"] = data
    http.reset()
    w = rnnscope.rnn_weights(http.url("/big/m.safetensors"), "rnn")
    sent = http.sent["/big/m.safetensors"]
    own = sum(a.nbytes for a in lstm.values())
    assert own <= sent < own + 4096, (sent, own, len(data))
    # detection's first bytes, the length, the header, one per tensor; one lookup (its size)
    assert http.count("/big/m.safetensors", "GET") == 3 + len(lstm)
    assert http.count("/big/m.safetensors", "HEAD") == 1
    h = 8  # torch's row blocks i, f, g, o, read straight from what was written
    np.testing.assert_array_equal(
        w.array("kernel", "cell"), lstm["rnn.weight_ih_l0"][2 * h : 3 * h].T
    )
    np.testing.assert_array_equal(w.array("bias", "input"), lstm["rnn.bias_ih_l0"][:h])


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/run/m.safetensors"  # nothing listens there now


@pytest.mark.parametrize(
    "where, expected",
    [
        ("/files/none.safetensors", "no such object (looking it up)"),
        ("/denied/m.keras", "access denied while looking it up: 403"),
        (None, "cannot read the remote file while looking it up: ClientConnectorError"),
    ],
    ids=["404", "403", "refused"],
)
def test_http_failures_name_the_url_and_the_others_still_report(http, where, expected):
    url = http.url(where) if where else _refused_url()
    with pytest.raises(FormatError) as info:
        rnnscope.load(url)
    assert str(info.value).startswith(f"'{url}': {expected}"), str(info.value)
    assert info.value.path == url
    good = http.url("/files/pt_stack.safetensors")
    with pytest.warns(RuntimeWarning, match="1 of 2 sources could not be read"):
        df = rnnscope.stats([good, url], cache=False)
    assert set(df["model"]) == {"pt_stack.safetensors"}
    (row,) = df.attrs["failed"]
    assert row["source"] == url and row["reason"].startswith(f"'{url}': {expected}")


@pytest.mark.parametrize(
    "url, package",
    [
        ("gs://bucket/run/m.keras", "gcsfs"),
        ("az://box/run/m.safetensors", "adlfs"),
        ("abfs://box/m.weights.h5", "adlfs"),
    ],
)
def test_gs_and_az_without_their_backend_name_the_url_and_the_package(
    monkeypatch, http, url, package
):
    """Whatever this machine has installed, the backend's import fails here (as when it is not
    installed): the error names the URL and what to install, and other files still report."""
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(MissingDependencyError) as info:
        rnnscope.load(url)
    assert info.value.path == url
    text = str(info.value)
    assert text.startswith(f"'{url}': reading {url.split(':')[0]}:// URLs needs {package}")
    assert f"pip install {package}" in text
    with pytest.warns(RuntimeWarning, match="1 of 2 sources could not be read"):
        df = rnnscope.stats([http.url("/files/pt_stack.safetensors"), url], cache=False)
    assert set(df["model"]) == {"pt_stack.safetensors"}
    assert [r["source"] for r in df.attrs["failed"]] == [url]


def _put(http: Served, path: str, arrays: dict[str, np.ndarray]) -> str:
    http.objects[path] = _safetensors_bytes(arrays)
    return http.url(path)


def _fresh(tmp: Path, arrays: dict[str, np.ndarray], name: str) -> Any:
    """The statistics of these arrays computed from a local file, no cache."""
    from safetensors.numpy import save_file

    tmp.mkdir(exist_ok=True)
    save_file(arrays, str(tmp / name))
    return rnnscope.stats(tmp / name, cache=False).reset_index(drop=True)


def test_a_cached_run_looks_each_object_up_once_and_a_rerun_fetches_nothing(http, tmp_path):
    """Requests counted at the server: the first run one lookup per object (shared by the cache
    and the reader) and its reads; the rerun one lookup each and not one byte of a body."""
    urls = [_put(http, f"/trips/e{k}.safetensors", _lstm_state(k)) for k in (1, 2, 3)]
    db = tmp_path / "results.sqlite"
    http.reset()
    first = rnnscope.stats(urls, cache=db)
    for k in (1, 2, 3):
        assert http.count(f"/trips/e{k}.safetensors", "HEAD") == 1
        assert http.count(f"/trips/e{k}.safetensors", "GET") == 3 + 4
    http.reset()
    again = rnnscope.stats(urls, cache=db)
    assert again.attrs["cache"]["hits"] == 3
    for k in (1, 2, 3):
        assert http.count(f"/trips/e{k}.safetensors", "HEAD") == 1
        assert http.count(f"/trips/e{k}.safetensors", "GET") == 0
    pd_testing.assert_frame_equal(again.reset_index(drop=True), first.reset_index(drop=True))


def test_an_object_without_a_tag_is_never_served_from_the_cache(http, tmp_path):
    url = _put(http, "/untagged/e1.safetensors", _lstm_state(1))
    http.etags["/untagged/e1.safetensors"] = None
    assert _remote.stamp(url) == (len(http.objects["/untagged/e1.safetensors"]), None)
    db = tmp_path / "results.sqlite"
    rnnscope.stats(url, cache=db)
    http.reset()
    again = rnnscope.stats(url, cache=db)
    assert again.attrs["cache"]["hits"] == 0
    assert http.count("/untagged/e1.safetensors", "GET") > 0


def test_remote_cache_key_against_rewrites_and_crafted_tags(http, tmp_path):
    """An object rewritten with the same size gets new values; a tag made of quotes, SQL and
    markup is only data; two URLs with the same size and tag keep their own results."""
    db = tmp_path / "results.sqlite"
    url = _put(http, "/hostile/e.safetensors", _lstm_state(1))
    rnnscope.stats(url, cache=db)
    size = len(http.objects["/hostile/e.safetensors"])
    url = _put(http, "/hostile/e.safetensors", _lstm_state(2))  # same shapes: same size
    assert len(http.objects["/hostile/e.safetensors"]) == size
    got = rnnscope.stats(url, cache=db)
    assert got.attrs["cache"]["hits"] == 0
    expected = _fresh(tmp_path / "fresh", _lstm_state(2), "e.safetensors")
    pd_testing.assert_frame_equal(got.reset_index(drop=True), expected)

    crafted = '"x\'); DROP TABLE results; -- <b>\\n\xe9"'  # HTTP headers carry Latin-1
    a = _put(http, "/hostile/a.safetensors", _lstm_state(3))
    b = _put(http, "/hostile/b.safetensors", _lstm_state(4))
    http.etags["/hostile/a.safetensors"] = crafted
    http.etags["/hostile/b.safetensors"] = crafted
    first = rnnscope.stats([a, b], cache=db)
    again = rnnscope.stats([a, b], cache=db)
    assert again.attrs["cache"]["hits"] == 2
    for name, seed, df in (("a", 3, first), ("b", 4, again)):
        mine = df[df["model"] == f"{name}.safetensors"].reset_index(drop=True)
        want = _fresh(tmp_path / "fresh", _lstm_state(seed), f"{name}.safetensors")
        pd_testing.assert_frame_equal(mine, want)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM results").fetchone()[0] >= 3


def test_stamp_has_no_tag_as_none_not_the_text_none(memfs, http):
    _, root = memfs
    _, tag = _remote.stamp(f"memory://{root}/pt_stack.safetensors")
    assert tag is not None and tag != "None"  # the memory store's creation time
    http.etags["/files/k3_seq.h5"] = None
    try:
        assert _remote.stamp(http.url("/files/k3_seq.h5"))[1] is None
    finally:
        del http.etags["/files/k3_seq.h5"]


def test_a_remote_memory_hdf5_is_copied_once_per_version(memfs):
    """The HDF5 reader process gets a private copy of a ``memory://`` object; a rewrite under
    the same name is a new copy, so the new values are read."""
    import h5py

    fs, root = memfs
    local = FIXTURES / "k3_seq.h5"
    url = f"memory://{root}/copy.h5"
    fs.pipe_file(f"{root}/copy.h5", local.read_bytes())
    _same_checkpoint(rnnscope.load(local), rnnscope.load(url))
    buf = io.BytesIO(local.read_bytes())
    with h5py.File(buf, "r+") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        ds = f[names[0]]
        ds[...] = np.asarray(ds[()]) + 1
    fs.pipe_file(f"{root}/copy.h5", buf.getvalue())
    before, after = _arrays(rnnscope.load(local)), _arrays(rnnscope.load(url))
    assert any(not np.array_equal(before[k], after[k]) for k in before)


@pytest.fixture
def small_blocks(monkeypatch):
    """Remote HDF5 reads in 16 KiB blocks, in this process and a fresh HDF5 reader process."""
    from rnnscope._io import _h5proc

    monkeypatch.setenv("RNNSCOPE_REMOTE_BLOCK_SIZE", str(16 << 10))
    _h5proc.stop()
    try:
        yield 16 << 10
    finally:
        monkeypatch.undo()
        _h5proc.stop()


def _member_start(data: bytes, member: str) -> tuple[int, int]:
    """Where a stored zip member's bytes start in the archive, and how many there are."""
    import struct
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    name_len, extra_len = struct.unpack(
        "<2H", data[info.header_offset + 26 : info.header_offset + 30]
    )
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_remote_keras_member_with_a_flipped_byte_fails_its_crc(http, small_blocks):
    """A byte flipped inside ``model.weights.h5`` of a remote ``.keras`` is refused by its CRC-32,
    naming the URL (the intact copy reads)."""
    data = (FIXTURES / "k3_deep.keras").read_bytes()
    start, n = _member_start(data, "model.weights.h5")
    bad = bytearray(data)
    bad[start + n // 2] ^= 0x01
    http.objects["/crc/bad.keras"] = bytes(bad)
    http.objects["/crc/good.keras"] = data
    url = http.url("/crc/bad.keras")
    with pytest.raises(FormatError, match="fails its CRC-32 check") as info:
        rnnscope.load(url)
    assert info.value.path == url and str(info.value).startswith(f"'{url}'")
    _same_checkpoint(
        rnnscope.load(FIXTURES / "k3_deep.keras"), rnnscope.load(http.url("/crc/good.keras"))
    )


def _two_layer_files(tmp: Path) -> dict[str, Path]:
    """A Keras 3 model whose first LSTM(4) is 1 % of its weights (an LSTM(256) follows)."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((2, 3)),
            keras.layers.LSTM(4, return_sequences=True, name="small"),
            keras.layers.LSTM(256, name="big"),
        ]
    )
    files = {"weights.h5": tmp / "m.weights.h5", "h5": tmp / "m.h5", "keras": tmp / "m.keras"}
    model.save_weights(files["weights.h5"])
    model.save(files["h5"])
    model.save(files["keras"])
    return {**files, "model": model}  # type: ignore[dict-item]


def test_one_small_layer_of_remote_hdf5_and_keras_fetches_a_fraction(http, small_blocks, tmp_path):
    """Bytes counted at the server, in 16 KiB blocks: ``load`` fetches a bounded number of blocks
    (for ``.keras`` plus the member once, for its CRC-32), and then one small layer a few more:
    the big layer's 1 MB is not fetched again. The arrays are the model's own."""
    files = _two_layer_files(tmp_path)
    model = files.pop("model")
    kernel, recurrent, bias = (np.asarray(v) for v in model.get_layer("small").get_weights())
    blocks = 16 * small_blocks
    for kind, path in files.items():
        data = path.read_bytes()
        name = f"/bounds/{path.name}"
        http.objects[name] = data
        http.reset()
        ckpt = rnnscope.load(http.url(name))
        listed = http.sent[name]
        http.reset()
        w = rnnscope.rnn_weights(ckpt, "small")
        read = http.sent[name]
        assert read < blocks < len(data) / 4, (kind, read, len(data))
        if kind == "keras":
            _, n = _member_start(data, "model.weights.h5")
            assert n <= listed < n + blocks, (kind, listed, len(data))
        else:
            assert listed < blocks, (kind, listed, len(data))
        units = 4  # Keras' column blocks i, f, c, o
        np.testing.assert_array_equal(w.array("kernel", "forget"), kernel[:, units : 2 * units])
        np.testing.assert_array_equal(
            w.array("recurrent_kernel", "cell"), recurrent[:, 2 * units : 3 * units]
        )
        np.testing.assert_array_equal(w.array("bias", "output"), bias[3 * units :])


@pytest.mark.parametrize("name", ["pt_stack.safetensors", "k3_seq.weights.h5"])
def test_a_given_filesystem_serves_its_url_only_while_its_checkpoint_lives(http, name):
    """Objects only a filesystem with the right header may read: while the checkpoint loaded
    through it lives, the plain URL reads with it (in the HDF5 reader process too); once it is
    gone the plain URL is denied again, not served with remembered credentials."""
    import gc

    from fsspec.implementations.http import HTTPFileSystem

    from tests.io.http_server import TOKEN

    http.objects[f"/private/{name}"] = (FIXTURES / name).read_bytes()
    url = http.url(f"/private/{name}")
    fs = HTTPFileSystem(headers={"Authorization": TOKEN}, skip_instance_cache=True)
    with pytest.raises(FormatError, match="access denied"):
        rnnscope.load(url)
    ckpt = rnnscope.load((fs, url))
    assert ckpt.path == url and ckpt.given is not None
    local = rnnscope.load(FIXTURES / name)
    plain = rnnscope.load(url)
    assert plain.layers() == local.layers()
    got, want = plain.rnn_weights(0).arrays, local.rnn_weights(0).arrays
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    # its layers, read after the checkpoint itself is gone (as stats and rnn_weights do)
    layer = ckpt.layer_refs()[0]
    del ckpt, plain
    gc.collect()
    assert layer.extract().arrays.keys() == got.keys()
    del layer
    gc.collect()
    with pytest.raises(FormatError, match="access denied"):
        rnnscope.load(url)
    w = rnnscope.rnn_weights((fs, url), 0)  # a pair straight to a function: loaded and read
    assert w.arrays.keys() == got.keys()


def test_a_run_over_many_remote_files_holds_no_file_open_between_them(http):
    """Block caches (up to 32 blocks each) are shared within one file's read only: between the
    files of a run no handle is held, while each object's lookup is still made once."""
    names = ["k3_func.weights.h5", "k3_seq.h5", "tk_cudnn.h5"]
    urls = [http.url(f"/files/{n}") for n in names]
    between: list[Any] = []
    http.reset()
    df = rnnscope.stats(
        urls, cache=False, progress=lambda done, total, name: between.append(_remote._handles.get())
    )
    assert set(df["model"]) == set(names)
    assert len(between) == 3 and between == [None] * 3
    assert [http.count(f"/files/{n}", "HEAD") for n in names] == [1, 1, 1]
