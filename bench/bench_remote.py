"""Remote reads against local ones: bytes fetched and time, per format.

A moto S3 server runs in this process on 127.0.0.1 (a free port) with a counter of the body bytes
it sends; each format's file (a two-layer LSTM(512), written by torch or Keras 3) is uploaded
and read both ways. For each: bytes to list the file (``load``), bytes to read one layer after
that, the file's size, the GET and HEAD (metadata) requests of both, and the median time of a
single-layer read (``load`` then the layer), remote and local, side by side.

    python bench/bench_remote.py [--dir /tmp/rnnscope-bench-remote] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
)


class Counting:
    """WSGI middleware: body bytes sent for GET requests, GET and HEAD (metadata) requests."""

    def __init__(self, app: Any) -> None:
        self.app, self.sent, self.requests, self.heads = app, 0, 0, 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ.get("REQUEST_METHOD")
        for chunk in self.app(environ, start_response):
            if method == "GET":
                with self.lock:
                    self.sent += len(chunk)
            yield chunk
        with self.lock:
            if method == "GET":
                self.requests += 1
            elif method == "HEAD":
                self.heads += 1

    def take(self) -> tuple[int, int]:
        """Bytes and GET requests since the last take (HEADs: :meth:`take_heads`)."""
        with self.lock:
            out, self.sent, self.requests = (self.sent, self.requests), 0, 0
        return out

    def take_heads(self) -> int:
        with self.lock:
            out, self.heads = self.heads, 0
        return out


def write_files(folder: Path) -> dict[str, Path]:
    """A two-layer LSTM(512) on 512 inputs in every format."""
    import keras
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    lstm = torch.nn.LSTM(512, 512, num_layers=2)
    state = {f"rnn.{k}": v.contiguous() for k, v in lstm.state_dict().items()}
    save_file(state, str(folder / "m.safetensors"))
    torch.save(state, folder / "m.pt")
    model = keras.Sequential(
        [
            keras.Input((10, 512)),
            keras.layers.LSTM(512, return_sequences=True),
            keras.layers.LSTM(512),
        ]
    )
    model.save(folder / "m.keras")
    model.save_weights(folder / "m.weights.h5")
    model.save(folder / "m.h5")
    return {p.name: p for p in sorted(folder.glob("m.*"))}


def one_layer(source: Any, layer: Any) -> None:
    import rnnscope

    rnnscope.rnn_weights(rnnscope.load(source), layer)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/rnnscope-bench-remote")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--block-sizes", default="", help="HDF5 block sizes to sweep, e.g. 262144,1048576"
    )
    args = ap.parse_args()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    counter = Counting(server._server.app)
    server._server.app = counter
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import s3fs

    import rnnscope

    files = write_files(Path(args.dir))
    fs = s3fs.S3FileSystem()
    fs.mkdir("bench")
    for name, p in files.items():
        fs.put_file(str(p), f"bench/{name}")
    print(
        f"{'file':<14} {'size':>10} {'list':>10} {'one layer':>10} {'share':>7} "
        f"{'GETs':>5} {'HEADs':>5} {'remote ms':>10} {'local ms':>9} {'ratio':>6}"
    )
    for name, p in files.items():
        url = f"s3://bench/{name}"
        layer = 0
        counter.take()
        counter.take_heads()
        ckpt = rnnscope.load(url)
        listed, n_list = counter.take()
        rnnscope.rnn_weights(ckpt, layer)
        read, n_read = counter.take()
        heads = counter.take_heads()
        remote, local = [], []
        for _ in range(args.repeat):  # alternated, against drifts in machine load
            t = time.perf_counter()
            one_layer(url, layer)
            remote.append(time.perf_counter() - t)
            t = time.perf_counter()
            one_layer(p, layer)
            local.append(time.perf_counter() - t)
        size = p.stat().st_size
        r, lo = statistics.median(remote) * 1e3, statistics.median(local) * 1e3
        print(
            f"{name:<14} {size:>10,} {listed:>10,} {read:>10,} {(listed + read) / size:>7.1%} "
            f"{n_list + n_read:>5} {heads:>5} {r:>10.1f} {lo:>9.1f} {r / lo:>6.2f}"
        )
    if args.block_sizes:
        sweep(files, counter, [int(b) for b in args.block_sizes.split(",")])
    server.stop()
    sys.exit(0)


def sweep(files: dict[str, Path], counter: Counting, sizes: list[int]) -> None:
    """Bytes and requests of listing and of one layer, per HDF5 block size."""
    import rnnscope
    from rnnscope._io import _h5proc

    print(
        f"\n{'file':<14} {'block':>9} {'list bytes':>11} {'req':>4} {'layer bytes':>12} {'req':>4}"
    )
    for block in sizes:
        os.environ["RNNSCOPE_REMOTE_BLOCK_SIZE"] = str(block)
        _h5proc.stop()  # the reader process reads the setting when it starts
        for name in ("m.weights.h5", "m.keras"):
            url = f"s3://bench/{name}"
            rnnscope.load(url)  # start the reader
            counter.take()
            ckpt = rnnscope.load(url)
            listed, n1 = counter.take()
            rnnscope.rnn_weights(ckpt, 0)
            read, n2 = counter.take()
            print(f"{name:<14} {block:>9,} {listed:>11,} {n1:>4} {read:>12,} {n2:>4}")


if __name__ == "__main__":
    main()
