"""A corpus of hostile and damaged checkpoint files, one per class of attack the readers must stop.

Each case is a file (plus, for some, a secret file it points at) and what reading it must give:
a FormatError whose message matches ``refuse``, or, for legitimate files written in unusual ways,
the arrays in ``values`` (written here with h5py/torch directly: the expected side never passes
through rnnscope). ``largest`` is the largest legitimate tensor, in bytes, for the memory bound.

    python tests/io/hostile.py OUT_DIR   # writes the corpus and prints its cases
"""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SECRET = b"TOP-SECRET-7f3a9c: root:x:0:0:rnnscope-must-never-show-this\n" * 16

NAMES = {  # every case, and the package that writes it
    "vds-self": "h5py",
    "vds-self-keras": "h5py",
    "vds-secret": "h5py",
    "vds-secret-keras": "h5py",
    "external-storage-secret": "h5py",
    "external-keras": "h5py",
    "external-dev-zero": "h5py",
    "external-link": "h5py",
    "external-link-group": "h5py",
    "declared-huge-chunked": "h5py",
    "gzip-sparse": "h5py",
    "declared-huge-contiguous": "h5py",
    "gzip-legit": "h5py",
    "gzip-zeros-over-ratio": "h5py",
    "deep-groups": "h5py",
    "truncated-hdf5": "h5py",
    "keras-deflate-bomb": "h5py",
    "fifo": "h5py",
    "safetensors-legit": "safetensors",
    "safetensors-zero-size-claims": "safetensors",
    "pt-legit": "torch",
    "pt-deflated": "torch",
    "pt-truncated-record": "torch",
    "pt-zero-stride": "torch",
    "pt-deflate-bomb": "torch",
    "onnx-legit": "onnx",
    "onnx-external-secret": "onnx",
    "onnx-external-symlink": "onnx",
    "onnx-declared-huge": "onnx",
}


@dataclass
class Case:
    name: str
    path: Path
    refuse: str = ""  # a regex the FormatError must match; empty: the file reads
    values: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    largest: int = 0
    needs: str = "h5py"


def secret_files(folder: Path) -> tuple[Path, Path]:
    """A plain secret file and an HDF5 file holding the same bytes as a dataset."""
    import h5py

    plain = folder / "secret.txt"
    plain.write_bytes(SECRET)
    h5 = folder / "secret.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.frombuffer(SECRET[: 4 * 4 * 48], dtype="<f4").reshape(4, 48)
        f["layers/dense/vars/0"] = np.frombuffer(SECRET[: 4 * 4 * 48], dtype="<f4").reshape(4, 48)
    return plain, h5


def _v3_dense(f, build: Callable[[object, str], None]) -> None:
    """A Keras 3 tree with one Dense layer whose kernel ``vars/0`` is made by ``build``."""
    v = f.create_group("layers/dense/vars")
    v.attrs["name"] = "dense"
    build(v, "0")
    v["1"] = np.zeros(48, dtype="f4")


def _keras_zip(folder: Path, name: str, h5: Path, units: int = 48) -> Path:
    cfg = {
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [{"class_name": "Dense", "config": {"name": "dense", "units": units}}],
        },
    }
    p = folder / name
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(cfg))
        z.write(h5, "model.weights.h5")
    return p


def _h5(folder: Path, name: str, build: Callable[[object, str], None]) -> Path:
    import h5py

    p = folder / name
    with h5py.File(p, "w") as f:
        _v3_dense(f, build)
    return p


def hdf5_cases(folder: Path) -> list[Case]:
    import h5py

    plain, secret_h5 = secret_files(folder)
    rng = np.random.default_rng(5)
    cases = []

    def vds_self(v, k):
        layout = h5py.VirtualLayout(shape=(4, 48), dtype="f4")
        layout[:] = h5py.VirtualSource(".", v.name + "/" + k, shape=(4, 48))
        v.create_virtual_dataset(k, layout)

    p = _h5(folder, "vds_self.weights.h5", vds_self)
    cases.append(Case("vds-self", p, "virtual dataset"))
    cases.append(Case("vds-self-keras", _keras_zip(folder, "vds_self.keras", p), "virtual"))

    def vds_secret(v, k):
        layout = h5py.VirtualLayout(shape=(4, 48), dtype="f4")
        layout[:] = h5py.VirtualSource(str(secret_h5), "x", shape=(4, 48))
        v.create_virtual_dataset(k, layout)

    p = _h5(folder, "vds_secret.weights.h5", vds_secret)
    cases.append(Case("vds-secret", p, "virtual dataset"))
    cases.append(Case("vds-secret-keras", _keras_zip(folder, "vds_secret.keras", p), "virtual"))

    def ext_secret(v, k):
        v.create_dataset(k, (4, 12), dtype="u1", external=[(str(plain), 0, 48)])

    p = _h5(folder, "external_secret.weights.h5", ext_secret)
    cases.append(Case("external-storage-secret", p, "external files"))
    cases.append(Case("external-keras", _keras_zip(folder, "ext.keras", p), "external files"))

    def ext_zero(v, k):
        v.create_dataset(k, (50_000, 32_768), dtype="f4", external=[("/dev/zero", 0, 2**33)])

    cases.append(Case("external-dev-zero", _h5(folder, "devzero.weights.h5", ext_zero), "external"))

    p = _h5(folder, "extlink.weights.h5", lambda v, k: v.create_dataset(k, data=np.ones((4, 48))))
    with h5py.File(p, "a") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink(str(secret_h5), "/x")
    cases.append(Case("external-link", p, "external link"))
    p = _h5(folder, "extlink_group.weights.h5", lambda v, k: v.create_dataset(k, data=np.ones(3)))
    with h5py.File(p, "a") as f:
        f["layers/other"] = h5py.ExternalLink(str(secret_h5), "/layers/dense")
    cases.append(Case("external-link-group", p, "external link"))

    def huge_chunked(v, k):
        v.create_dataset(k, (40_000, 40_000), dtype="f4", chunks=(1000, 1000))

    p = _h5(folder, "huge_chunked.weights.h5", huge_chunked)
    cases.append(Case("declared-huge-chunked", p, "declares 6400000000 bytes"))

    def gzip_sparse(v, k):
        ds = v.create_dataset(
            k,
            (12_000, 32_768),
            dtype="f4",
            chunks=(256, 32_768),
            compression="gzip",
            compression_opts=9,
        )
        ds[:256] = 0.0

    p = _h5(folder, "gzip_sparse.weights.h5", gzip_sparse)
    cases.append(Case("gzip-sparse", p, "stores only"))

    def huge_contiguous(v, k):
        v.create_dataset(k, (40_000, 40_000), dtype="f4")  # never written: fill values

    p = _h5(folder, "huge_contiguous.weights.h5", huge_contiguous)
    cases.append(Case("declared-huge-contiguous", p, "declares 6400000000 bytes"))

    kernel = rng.standard_normal((256, 2048)).astype("f4")
    bias = np.zeros(2048, dtype="f4")
    p = folder / "gzip_real.weights.h5"
    with h5py.File(p, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.attrs["name"] = "dense"
        v.create_dataset("0", data=kernel, chunks=(64, 2048), compression="gzip")
        v.create_dataset("1", data=bias, compression="gzip", shuffle=True)
    cases.append(
        Case(
            "gzip-legit",
            p,
            values={"dense": {"kernel": kernel, "bias": bias}},
            largest=kernel.nbytes,
        )
    )
    zeros = np.zeros((2048, 8192), dtype="f4")  # 64 MiB of zeros: over the allowance
    p = folder / "gzip_zeros.weights.h5"
    with h5py.File(p, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.attrs["name"] = "dense"
        v.create_dataset("0", data=zeros, chunks=(256, 8192), compression="gzip")
        v["1"] = np.ones(8192, dtype="f4")
    cases.append(Case("gzip-zeros-over-ratio", p, "stores only"))

    p = folder / "deep.weights.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"
        g["0"] = np.ones((2, 2), dtype="f4")
        f.create_group("/".join(["d"] * 200))
    cases.append(Case("deep-groups", p, "deeper than"))

    p = folder / "truncated.weights.h5"
    with h5py.File(p, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.attrs["name"] = "dense"
        v["0"] = rng.standard_normal((512, 512)).astype("f4")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    cases.append(Case("truncated-hdf5", p, "truncated|cannot|damaged|crashed"))
    p = folder / "zeros_contiguous.weights.h5"
    with h5py.File(p, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.attrs["name"] = "dense"
        v["0"] = np.zeros((2048, 12_800), "f4")  # 100 MiB stored in full: deflates ~1000x
        v["1"] = np.zeros(12_800, "f4")
    bomb = folder / "deflate_bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        z.write(p, "model.weights.h5")
    p.unlink()
    cases.append(Case("keras-deflate-bomb", bomb, "zip member 'model.weights.h5'.*stores only"))
    fifo = folder / "pipe.weights.h5"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    cases.append(Case("fifo", fifo, "FIFO"))
    return cases


def safetensors_cases(folder: Path) -> list[Case]:
    from safetensors.numpy import save_file

    w = np.random.default_rng(9).standard_normal((64, 48)).astype("f4")
    b = np.arange(64, dtype="f4")
    p = folder / "legit.safetensors"
    save_file({"fc.weight": w, "fc.bias": b}, str(p))
    cases = [
        Case(
            "safetensors-legit",
            p,
            values={"fc": {"weight": w, "bias": b}},
            largest=w.nbytes,
            needs="safetensors",
        )
    ]
    header = {"fc.weight": {"dtype": "F32", "shape": [40_000, 40_000], "data_offsets": [0, 8]}}
    raw = json.dumps(header).encode()
    p = folder / "claims.safetensors"
    p.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(8))
    cases.append(Case("safetensors-zero-size-claims", p, "data_offsets", needs="safetensors"))
    return cases


def _rezip(src: bytes, keep: Callable[[zipfile.ZipInfo, bytes], tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data, method = keep(info, zin.read(info))
            zout.writestr(info.filename, data, compress_type=method)
    return out.getvalue()


def torch_cases(folder: Path) -> list[Case]:
    import torch

    g = torch.Generator().manual_seed(3)
    w = torch.randn(64, 48, generator=g)
    b = torch.randn(64, generator=g)
    buf = io.BytesIO()
    torch.save({"fc.weight": w, "fc.bias": b}, buf)
    raw = buf.getvalue()
    want = {"fc": {"weight": w.numpy().copy(), "bias": b.numpy().copy()}}
    cases = []
    p = folder / "plain.pt"
    p.write_bytes(raw)
    cases.append(Case("pt-legit", p, values=want, largest=w.numel() * 4, needs="torch"))
    p = folder / "deflated.pt"
    p.write_bytes(_rezip(raw, lambda i, d: (d, zipfile.ZIP_DEFLATED)))
    cases.append(Case("pt-deflated", p, values=want, largest=w.numel() * 4, needs="torch"))

    def cut(info: zipfile.ZipInfo, d: bytes) -> tuple[bytes, int]:
        return (d[: len(d) // 2] if "/data/" in info.filename else d), zipfile.ZIP_STORED

    p = folder / "truncated_record.pt"
    p.write_bytes(_rezip(raw, cut))
    cases.append(Case("pt-truncated-record", p, "storage record|truncated|size", needs="torch"))
    buf = io.BytesIO()
    torch.save({"fc.weight": torch.ones(1).expand(40_000, 40_000), "fc.bias": b}, buf)
    p = folder / "zero_stride.pt"
    p.write_bytes(buf.getvalue())
    cases.append(Case("pt-zero-stride", p, "declares 6400000000 bytes", needs="torch"))

    buf = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(6400, 4096), "fc.bias": b}, buf)
    p = folder / "deflated_zeros.pt"
    p.write_bytes(_rezip(buf.getvalue(), lambda i, d: (d, zipfile.ZIP_DEFLATED)))
    cases.append(Case("pt-deflate-bomb", p, "stores only", needs="torch"))
    return cases


def _onnx_gemm(path: Path, w: np.ndarray, b: np.ndarray, edit: Callable[[object], None]) -> Path:
    """A model of one Gemm node ``fc`` (weights ``B`` and ``C``), changed by ``edit``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[0]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph)
    edit(model.graph.initializer[0])
    onnx.save(model, str(path))
    return path


def _onnx_external(location: str) -> Callable[[object], None]:
    def edit(t) -> None:
        t.ClearField("raw_data")
        t.data_location = 1  # EXTERNAL
        for k, v in {"location": location, "offset": "0", "length": "768"}.items():
            e = t.external_data.add()
            e.key, e.value = k, v

    return edit


def onnx_cases(folder: Path) -> list[Case]:
    w = np.random.default_rng(11).standard_normal((64, 48)).astype("f4")
    b = np.arange(64, dtype="f4")
    sub = folder / "onnx"
    sub.mkdir(exist_ok=True)
    (folder / "onnx_secret.txt").write_bytes(SECRET)
    os.symlink(folder / "onnx_secret.txt", sub / "inside.bin")

    def keep(t) -> None:
        return None

    def huge(t) -> None:
        t.dims[:] = [40_000, 40_000]

    return [
        Case(
            "onnx-legit",
            _onnx_gemm(sub / "legit.onnx", w, b, keep),
            values={"fc": {"B": w, "C": b}},
            largest=w.nbytes,
            needs="onnx",
        ),
        Case(
            "onnx-external-secret",
            _onnx_gemm(sub / "secret.onnx", w[:4], b[:4], _onnx_external("../onnx_secret.txt")),
            "not inside the model's folder",
            needs="onnx",
        ),
        Case(
            "onnx-external-symlink",
            _onnx_gemm(sub / "symlink.onnx", w[:4], b[:4], _onnx_external("inside.bin")),
            "not inside the model's folder",
            needs="onnx",
        ),
        Case(
            "onnx-declared-huge",
            _onnx_gemm(sub / "huge.onnx", w, b, huge),
            r"declares shape \(40000, 40000\)",
            needs="onnx",
        ),
    ]


def build(folder: Path) -> list[Case]:
    """Every case whose writer library is installed."""
    import importlib.util

    folder.mkdir(parents=True, exist_ok=True)
    cases = hdf5_cases(folder)
    if importlib.util.find_spec("safetensors") is not None:
        cases += safetensors_cases(folder)
    if importlib.util.find_spec("torch") is not None:
        cases += torch_cases(folder)
    if importlib.util.find_spec("onnx") is not None:
        cases += onnx_cases(folder)
    return cases


if __name__ == "__main__":
    for c in build(Path(sys.argv[1])):
        print(c.name, c.path, c.refuse or "reads")
