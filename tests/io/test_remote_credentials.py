"""Credentials written into a URL (``http://user:password@host/...``) are used for the reads and
shown nowhere: not in an error, the command's output, the HTML report, nor the results cache
on disk. Tested against the range-capable HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import rnnscope
from rnnscope._cli import main
from rnnscope._errors import redact

from .http_server import Served

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")
safetensors_np = pytest.importorskip("safetensors.numpy")

SECRET = "hunter2-s3cret"


@pytest.fixture
def http():
    server = Served()
    r = np.random.default_rng(0)
    state = {
        "rnn.weight_ih_l0": r.normal(size=(8, 3)).astype("f4"),
        "rnn.weight_hh_l0": r.normal(size=(8, 2)).astype("f4"),
        "rnn.bias_ih_l0": r.normal(size=8).astype("f4"),
        "rnn.bias_hh_l0": np.zeros(8, "f4"),
    }
    server.objects["/run/e1.safetensors"] = safetensors_np.save(state)
    try:
        yield server
    finally:
        server.close()


def _with_secret(url: str) -> str:
    assert url.startswith("http://")
    return url.replace("http://", f"http://alice:{SECRET}@", 1)


def test_credentials_in_a_url_are_never_shown_or_stored(http, tmp_path, capsys):
    good = _with_secret(http.url("/run/e1.safetensors"))
    missing = _with_secret(http.url("/run/e9.safetensors"))
    html, db = tmp_path / "r.html", tmp_path / "c.sqlite"
    code = main(["report", good, missing, "-o", str(html), "--cache", str(db), "--no-figures"])
    out = capsys.readouterr()
    assert code == 1 and http.count("/run/e1.safetensors", "GET") >= 1  # read with them
    assert "e9.safetensors" in out.err and "http://***@127.0.0.1" in out.err
    page = html.read_text()
    assert "e1.safetensors" in page and "http://***@127.0.0.1" in page
    con = sqlite3.connect(db)
    (shown,) = con.execute("SELECT DISTINCT file FROM results").fetchone()
    con.close()
    assert shown == redact(good) and shown.startswith("http://***@")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite*"))
    for text in (out.out, out.err, page):
        assert SECRET not in text
    assert SECRET.encode() not in stored
    with pytest.raises(rnnscope.FormatError) as info:
        rnnscope.load(missing)
    assert SECRET not in str(info.value) and SECRET not in str(info.value.path)
    with pytest.raises(rnnscope.LayerError) as layer:
        rnnscope.rnn_weights(good, "nope")
    assert SECRET not in str(layer.value) and "http://***@" in str(layer.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'s3://KEY:SEC%2FRET@b/m.h5': denied", "'s3://***@b/m.h5': denied"),
        ("see https://tok@h/x and s3://a:b@c/d", "see https://***@h/x and s3://***@c/d"),
        ("'/local/a@b.h5' and mail@example.org", "'/local/a@b.h5' and mail@example.org"),
    ],
)
def test_redact_masks_the_userinfo_of_urls_only(text, expected):
    assert redact(text) == expected
