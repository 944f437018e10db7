"""Training metrics beside checkpoints: read them, match them to checkpoints by epoch or step.

Sources: a Keras ``CSVLogger`` CSV (or any CSV with an ``epoch`` or ``step`` column), a JSON
``History`` dump (``json.dump(history.history, f)``, or a list of records), a TensorBoard log
folder (read with TensorBoard's own ``EventAccumulator``), an rnnscope monitor database, a
DataFrame, or a ``History`` object. Every source becomes one table: ``epoch`` and ``step``
(nullable integers: a row is keyed by either or both), optionally ``model``, then one float
column per metric.

Matching rule: Keras numbers epochs from 0 in its logs (``CSVLogger``, ``History``,
TensorBoard's ``epoch_*`` scalars, the monitor) and from 1 in ``ModelCheckpoint`` file names
(``{epoch}`` is the count of epochs done), so a checkpoint named epoch E gets the metrics of
epoch E - 1 (``metrics_offset`` changes the -1). A checkpoint named by step gets the row of the
same step (offset 0). A table with a ``model`` column is matched by checkpoint name instead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import FormatError, InputError, require
from ._runs import Mode, read_steps

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EPOCH_OFFSET",
    "checkpoint_table",
    "match_metrics",
    "read_metrics",
    "records",
]

EPOCH_OFFSET = -1  # a file's epoch E (ModelCheckpoint, from 1) is the logs' epoch E - 1 (from 0)
MAX_TEXT_BYTES = 64 * 1024**2  # a CSV or JSON metrics file larger than this is refused unread
_KEYS = ("epoch", "step")
_MODEL_KEYS = ("model", "name", "file", "checkpoint")
_COUNTS = ("step", "errors", "warnings", "notes", "rank")


def read_metrics(source: Any) -> pd.DataFrame:
    """Training metrics as one table: ``epoch``, ``step`` (nullable), then one column per metric.

    Args:
        source: a CSV file (Keras ``CSVLogger``: ``epoch`` from 0), a JSON file (a ``History``
            dump ``{"loss": [...], ...}``, epochs from 0, or a list of records), a TensorBoard
            log folder (``epoch_loss`` under ``train/`` is ``loss``, under ``validation/``
            ``val_loss``; per-batch scalars are keyed by step), an rnnscope monitor database
            (per recorded step: global ``weight_norm`` and ``grad_norm``, the largest
            ``update_ratio``, and the count of ``nonfinite`` values; its step counts the
            updates done: the database's step + 1 for Keras, which records after a batch's
            update, the step itself for torch, recorded before ``opt.step()``), a DataFrame,
            or a Keras ``History``.

    Returns:
        The table; ``df.attrs["source"]`` says what was read, ``df.attrs["notes"]`` what was
        left out.

    Example:
        >>> m = rnnscope.read_metrics({"loss": [0.9, 0.7], "val_loss": [1.0, 0.8]})
        >>> m[["epoch", "val_loss"]].values.tolist()
        [[0, 1.0], [1, 0.8]]
        >>> list(rnnscope.read_metrics("run.db").columns)  # a monitor database
        ['epoch', 'step', 'weight_norm', 'grad_norm', 'update_ratio_max', 'nonfinite']
    """
    require("pandas", "report", "rnnscope.read_metrics")
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return _finish(source.copy(), "a DataFrame", [])
    if isinstance(getattr(source, "history", None), Mapping):  # a keras History object
        return _finish(_from_mapping(source.history, "History"), "a Keras History", [])
    if isinstance(source, Mapping):
        return _finish(_from_mapping(source, "metrics"), "a dict of metric lists", [])
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            "metrics: expected a file or folder path, a DataFrame, a dict of lists or a Keras "
            f"History; got {type(source).__name__}",
            argument="metrics",
        )
    path = Path(source)
    if not path.exists():
        raise InputError(f"metrics '{path}' does not exist", path=str(path), argument="metrics")
    if path.is_dir():
        return _read_tensorboard(path)
    if not path.is_file():
        raise _fail(path, "not a regular file (a FIFO or device); give a file or a folder")
    from ._monitor._history import is_database

    if is_database(path):
        return _read_monitor(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).lstrip()
            size = os.fstat(fh.fileno()).st_size
    except OSError as err:
        raise _fail(path, f"cannot read it: {err.strerror or err}") from err
    if path.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        raise _fail(path, "not an SQLite database (rnnscope's monitor writes SQLite files)")
    if size > MAX_TEXT_BYTES:
        raise _fail(
            path,
            f"{_size(size)}, larger than a metrics file read as text ({_size(MAX_TEXT_BYTES)}); "
            "read the rows you need with pandas and pass a DataFrame",
        )
    if path.suffix.lower() == ".json" or head[:1] in (b"{", b"["):
        return _read_json(path)
    return _read_csv(path)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _fail(path: Path, what: str) -> FormatError:
    err = FormatError(f"metrics '{path}': {what}")
    err.path, err.argument = str(path), "metrics"
    return err


def _from_mapping(data: Mapping[str, Any], where: str) -> pd.DataFrame:
    """``{"loss": [..], "val_loss": [..]}``: row i is epoch i (or ``data["epoch"]``)."""
    import pandas as pd

    lists = {str(k): v for k, v in data.items()}
    lengths = {k: len(v) for k, v in lists.items() if isinstance(v, list)}
    if not lengths or len(lengths) != len(lists):
        bad = [k for k in lists if k not in lengths]
        raise InputError(
            f"{where}: expected a list of values per metric (History.history); "
            + (
                f"{', '.join(bad[:3])} {'is' if len(bad) == 1 else 'are'} not lists"
                if bad
                else "it is empty"
            ),
            argument="metrics",
        )
    if len(set(lengths.values())) > 1:
        raise InputError(
            f"{where}: the metric lists differ in length ({lengths}); History.history's are equal",
            argument="metrics",
        )
    df = pd.DataFrame(lists)
    if "epoch" not in df.columns and "step" not in df.columns:
        df.insert(0, "epoch", range(len(df)))
    return df


def _read_json(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError as err:  # [[[[...: deeper than the parser goes
        raise _fail(path, "not readable JSON (nested deeper than Python's parser goes)") from err
    except (OSError, ValueError) as err:  # JSONDecodeError, UnicodeDecodeError, int digits
        raise _fail(path, f"not readable JSON ({str(err)[:200]})") from err
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        data = data["history"]  # {"history": {...}, "epoch": [...]}, a fuller dump
    if isinstance(data, dict):
        try:
            return _finish(_from_mapping(data, f"metrics '{path}'"), f"JSON file {path.name}", [])
        except InputError as err:
            raise _fail(path, str(err).split(": ", 1)[-1]) from err
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        df = pd.DataFrame(data)
        if "epoch" not in df.columns and "step" not in df.columns:
            df.insert(0, "epoch", range(len(df)))
        return _finish(df, f"JSON file {path.name}", [])
    raise _fail(
        path,
        'expected a History dump ({"loss": [...], ...}) or a list of records '
        f'([{{"epoch": 0, "loss": ...}}, ...]); got {type(data).__name__}',
    )


def _read_csv(path: Path) -> pd.DataFrame:
    import csv

    import pandas as pd

    try:  # a field over the csv module's limit (128 KiB) is a csv.Error
        df = pd.read_csv(path, sep=None, engine="python")
    except (OSError, ValueError, csv.Error, pd.errors.ParserError) as err:
        raise _fail(path, f"not a readable CSV file ({str(err)[:200]})") from err
    cols = {str(c).strip().lower(): c for c in df.columns}
    if not any(k in cols for k in (*_KEYS, *_MODEL_KEYS)):
        raise _fail(
            path,
            "expected a column 'epoch' (Keras CSVLogger writes it) or 'step' or 'model'; found "
            + ", ".join(map(str, df.columns[:8])),
        )
    keys = {v: k for k, v in cols.items() if k in (*_KEYS, *_MODEL_KEYS)}  # "Epoch" -> "epoch"
    return _finish(df.rename(columns=keys), f"CSV file {path.name}", [])


def _finish(df: pd.DataFrame, source: str, notes: list[str]) -> pd.DataFrame:
    """Key columns first (nullable integers), metric columns as floats, duplicates noted."""
    import pandas as pd

    keys = [k for k in _KEYS if k in df.columns]
    model = next((k for k in _MODEL_KEYS if k in df.columns), None)
    if not keys and model is None:
        raise InputError(
            f"metrics ({source}): expected a column 'epoch', 'step' or 'model'; found "
            + ", ".join(map(str, df.columns[:8])),
            argument="metrics",
        )
    out = pd.DataFrame(index=df.index)
    for k in _KEYS:
        values = pd.to_numeric(df[k], errors="coerce") if k in df else pd.Series(pd.NA, df.index)
        if (values.dropna() % 1 != 0).any():
            raise InputError(
                f"metrics ({source}): column '{k}' holds numbers that are not whole: "
                + ", ".join(map(str, values[values % 1 != 0].head(3))),
                argument="metrics",
            )
        out[k] = values.astype("Int64")
    if model is not None:
        out["model"] = df[model].astype(str)
    dropped = []
    for c in df.columns:
        if c in (*_KEYS, model):
            continue
        values = pd.to_numeric(df[c], errors="coerce")
        if values.notna().any() or df[c].isna().all():
            out[str(c)] = values.astype(float)
        else:
            dropped.append(str(c))
    if dropped:
        notes = [*notes, f"columns without numbers left out: {', '.join(dropped)}"]
    key = [k for k in (*keys, "model") if k in out.columns and (k != "model" or model)]
    dup = out.duplicated(key, keep="last") if key else None
    if dup is not None and dup.any():
        notes = [*notes, f"{int(dup.sum())} repeated rows (a resumed run?): the last one kept"]
        out = out[~dup]
    out = out.reset_index(drop=True)
    out.attrs.update(source=source, notes=notes)
    return out


def _read_tensorboard(path: Path) -> pd.DataFrame:
    """Scalars of every run folder under ``path``, read with TensorBoard's EventAccumulator."""
    require("tensorboard", "monitor", "reading TensorBoard metrics")
    import pandas as pd
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    runs = sorted({p.parent for p in path.rglob("*tfevents*") if p.is_file()})
    if not runs:
        raise _fail(path, "a folder without TensorBoard event files (events.out.tfevents.*)")
    by_epoch: dict[tuple[int, str], float] = {}
    by_step: dict[tuple[int, str], float] = {}
    notes: list[str] = []
    guidance = {ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 1, ea.IMAGES: 1, ea.AUDIO: 1}
    for run_dir in runs:
        run = run_dir.relative_to(path).as_posix()
        acc = ea.EventAccumulator(str(run_dir), size_guidance=guidance)
        try:
            acc.Reload()
        except Exception as err:  # the reader raises its own (and protobuf) errors
            raise _fail(path, f"TensorBoard cannot read '{run}': {err}") from err
        notes += [f"{run}/{d}" for d in _damaged(run_dir)]
        tags = acc.Tags()
        events: list[tuple[str, int, float]] = []
        for tag in tags.get("scalars", []):
            events += [(tag, e.step, float(e.value)) for e in acc.Scalars(tag)]
        for tag in tags.get("tensors", []):
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue
            for e in acc.Tensors(tag):
                value = tensor_util.make_ndarray(e.tensor_proto)
                if value.size == 1 and value.dtype.kind in "fiu":
                    events.append((tag, e.step, float(value.reshape(()))))
        for tag, step, value in events:
            if tag.startswith("epoch_"):
                base = tag.removeprefix("epoch_")
                name = f"val_{base}" if run == "validation" else base
                if run not in (".", "train", "validation"):
                    name = f"{run}/{base}"
                by_epoch[(step, name)] = value
            else:
                name = tag if run in (".", "train") else f"{run}/{tag}"
                by_step[(step, name)] = value
    frames = []
    for key, table in (("epoch", by_epoch), ("step", by_step)):
        if table:
            s = pd.Series(table)
            frames.append(s.unstack().rename_axis(key).reset_index())
    if not frames and notes:
        raise _fail(path, "no scalar could be read; " + "; ".join(notes))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"epoch": []})
    return _finish(df, f"TensorBoard logs {path.name}/ ({len(runs)} run folders)", notes)


def _damaged(run_dir: Path) -> list[str]:
    """Event files of ``run_dir`` whose record framing breaks (TensorBoard's reader stops there
    without a word): ``"NAME damaged at byte N of M: the records after it are not read"``.

    An event file is a sequence of records: an 8-byte length, the masked CRC-32C of those 8
    bytes, the data, the data's masked CRC-32C; a length whose CRC does not match, or a record
    running past the end, is damage. Only the lengths' CRCs are checked (cheap, whatever the
    file's size)."""
    import struct

    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    out = []
    for event in sorted(p for p in run_dir.glob("*tfevents*") if p.is_file()):
        size, at = event.stat().st_size, 0
        with open(event, "rb") as fh:
            while at < size:
                head = fh.read(12)
                ok = len(head) == 12
                if ok:
                    (length,) = struct.unpack("<Q", head[:8])
                    ok = struct.unpack("<I", head[8:])[0] == masked_crc32c(head[:8])
                    ok = ok and at + 16 + length <= size
                if not ok:
                    out.append(
                        f"{event.name} damaged at byte {at} of {size}: the records after it "
                        "are not read"
                    )
                    break
                at += 16 + length
                fh.seek(at)
    return out


def _read_monitor(path: Path) -> pd.DataFrame:
    """Per recorded step of the latest run: global norms, the largest update ratio, NaN/Inf."""
    import numpy as np
    import pandas as pd

    from ._monitor._history import history

    try:
        h = history(path)
    except (FormatError, InputError) as err:  # SQLite, but another schema
        raise _fail(path, f"not an rnnscope monitor database ({str(err)[:300]})") from err
    if h.empty:
        raise _fail(path, "the monitor database holds no recorded step")
    g = h.groupby("step", sort=True)
    df = pd.DataFrame(
        {
            "epoch": g["epoch"].max(),
            "weight_norm": np.sqrt(g["weight_norm"].apply(lambda v: (v.astype(float) ** 2).sum())),
            "grad_norm": np.sqrt(
                g["grad_norm"].apply(lambda v: (v.astype(float) ** 2).sum(min_count=1))
            ),
            "update_ratio_max": g["update_ratio"].max(),
            "nonfinite": g[["nan", "inf", "grad_nan", "grad_inf"]].sum(min_count=1).sum(axis=1),
        }
    ).reset_index()
    run = int(h["run_id"].iloc[-1])
    runs = history(path, "runs")
    framework = str(runs.loc[runs["run_id"] == run, "framework"].iloc[-1] or "")
    # Keras records a batch's row after its update (s + 1 done); torch's step() comes before
    # opt.step(), so its row s holds the weights after s updates
    df["step"] = df["step"] + (0 if framework.startswith("torch") else 1)
    return _finish(df, f"monitor database {path.name} (run {run}, {framework})", [])


def match_metrics(
    models: list[str], mode: Mode, metrics: pd.DataFrame, offset: int | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The metrics of each model: a table indexed by model (``step`` and one column per
    metric, NaN where nothing matched) and notes saying how they were matched.

    A ``model`` column matches by name (the file name, or its stem); otherwise a checkpoint's
    epoch E matches the metrics' epoch ``E + offset`` (default -1, see the module docstring)
    and its step S the metrics' step ``S + offset`` (default 0); for an epoch-keyed table a
    ``ckpt-N`` or bare number counts as an epoch, for a step-keyed one as a step. Where a table
    has several rows of one epoch (a monitor database), the last one counts.
    """
    import pandas as pd

    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int)):
        raise InputError(
            f"metrics_offset must be a whole number; got {offset!r}", argument="metrics_offset"
        )
    names = [c for c in metrics.columns if c not in (*_KEYS, "model")]
    out = pd.DataFrame(index=pd.Index(models, name="model"))
    out["step"] = pd.array([mode.steps.get(m) for m in models], dtype="Int64")
    for c in names:
        out[c] = math.nan
    if "model" in metrics.columns:
        return _match_names(out, models, metrics, names)
    has = {k: bool(metrics[k].notna().any()) for k in _KEYS}
    tables = {  # the last row of each epoch or step, whole (never values of different rows)
        k: metrics[metrics[k].notna()].drop_duplicates(k, keep="last").set_index(k)[names]
        for k in _KEYS
        if has[k]
    }
    used: dict[str, str] = {}
    missing = []
    for m in models:
        nums = read_steps(m).numbers
        key = _pick(nums, has)
        if key is None:
            missing.append(f"{m} (no {' or '.join(k for k in _KEYS if has[k])} number in its name)")
            continue
        kind, n = key
        off = offset if offset is not None else (EPOCH_OFFSET if kind == "epoch" else 0)
        want = n + off
        used[kind] = f"{kind} {n} -> metrics {kind} {n}{off:+d}" if off else f"{kind} -> {kind}"
        if want in tables[kind].index:
            row = tables[kind].loc[want]
            for c in names:
                out.at[m, c] = row[c]
        else:
            missing.append(f"{m} (no {kind} {want} in the metrics)")
    shown = [c for c in names if out[c].notna().any()] or names  # all, when none matched
    notes = [f"metrics from {metrics.attrs.get('source', 'a table')}"]
    for kind, rule in used.items():
        if kind == "epoch":
            notes.append(
                "matched by epoch: a file's epoch E is the logs' epoch "
                f"E{offset if offset is not None else EPOCH_OFFSET:+d} (ModelCheckpoint counts "
                "epochs from 1, CSVLogger, History and TensorBoard from 0; metrics_offset= / "
                "--metrics-offset changes it)"
            )
        else:
            notes.append(f"matched by step ({rule}; metrics_offset= / --metrics-offset shifts it)")
    if missing:
        notes.append(
            f"{len(missing)} of {len(models)} checkpoints have no metrics (NaN): "
            + "; ".join(missing[:4])
            + (" ..." if len(missing) > 4 else "")
        )
    hidden = [c for c in names if c not in shown]
    if hidden:
        notes.append(
            f"not matched to any checkpoint: {', '.join(hidden[:6])}"
            + (" ..." if len(hidden) > 6 else "")
        )
    notes += list(metrics.attrs.get("notes", []))
    return out[["step", *shown]], notes


def _pick(nums: Mapping[str, int], has: Mapping[str, bool]) -> tuple[str, int] | None:
    if "epoch" in nums and has["epoch"]:
        return "epoch", nums["epoch"]
    if "step" in nums and has["step"]:
        return "step", nums["step"]
    for k in ("checkpoint", "number"):
        if k in nums:
            return (
                ("epoch", nums[k]) if has["epoch"] else ("step", nums[k]) if has["step"] else None
            )
    return None


def _match_names(
    out: pd.DataFrame, models: list[str], metrics: pd.DataFrame, names: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    rows = metrics.drop_duplicates("model", keep="last").set_index("model")[names]
    missing = []
    for m in models:
        stem = Path(m).name.split(".")[0]
        hit = m if m in rows.index else stem if stem in rows.index else None
        if hit is None:
            missing.append(m)
            continue
        for c in names:
            out.at[m, c] = rows.at[hit, c]
    notes = [f"metrics from {metrics.attrs.get('source', 'a table')}, matched by model name"]
    if missing:
        notes.append(
            f"{len(missing)} of {len(models)} checkpoints have no metrics row (NaN): "
            + ", ".join(missing[:4])
        )
    return out[["step", *names]], notes + list(metrics.attrs.get("notes", []))


def checkpoint_table(
    stats: pd.DataFrame,
    cmp: pd.DataFrame | None,
    mode: Mode,
    metrics: Any = None,
    *,
    offset: int | None = None,
    rank_by: str | None = None,
    thresholds: Any = None,
    flags: list[Any] | None = None,
) -> tuple[pd.DataFrame, str, list[str]]:
    """One row per model: ``step``, the metrics matched to it, and its health (``errors``,
    ``warnings``, ``notes``: flag counts, with "changing fast" only in a run), ranked by
    ``rank_by`` when given (a ``rank`` column, 1 = keep).

    ``flags``, when given, are the models' own flags (:func:`~rnnscope._flags.flags_for`),
    computed by the caller: they are counted as they are, not computed again, and the run's
    "changing fast" flags are appended to that list (so the caller has every flag once).

    Returns the table (indexed by model, in the models' order, or in rank order when ranked),
    the "which to keep" line ("" without ``rank_by``) and the notes on how metrics matched.
    """
    import pandas as pd

    from ._flags import Thresholds, change_flags, flags_for
    from ._runs import RUN, rank

    models = list(mode.order)
    if metrics is not None:
        table, notes = match_metrics(models, mode, read_metrics(metrics), offset)
    else:
        table = pd.DataFrame(index=pd.Index(models, name="model"))
        table["step"] = pd.array([mode.steps.get(m) for m in models], dtype="Int64")
        notes = []
    t = thresholds or Thresholds()
    if flags is None:
        flags = []
        stats = stats.copy(deep=False)
        stats.attrs = {}  # pandas deep-copies attrs for every group otherwise
        for _, rows in stats.groupby("model", sort=False):
            flags += flags_for(rows.to_dict("records"), t)
    if cmp is not None and mode.mode == RUN:
        flags += change_flags(cmp.to_dict("records"), t, mode.steps)  # no step column yet
    for sev, col in (("error", "errors"), ("warning", "warnings"), ("note", "notes")):
        counts = pd.Series([f.model for f in flags if f.severity == sev], dtype=object)
        table[col] = counts.value_counts().reindex(models, fill_value=0).astype(int).to_numpy()
    if rank_by is None:
        return table, "", notes
    if metrics is None:
        raise InputError(
            f"rank_by {rank_by!r} needs metrics (metrics=, --metrics PATH)", argument="rank_by"
        )
    ranked, keep = rank(table, rank_by)
    return ranked, keep, notes


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's rows as plain dicts (``model`` first; None where a value is missing):
    JSON-ready, safe in ``DataFrame.attrs``."""
    import pandas as pd

    out = []
    for model, row in table.iterrows():
        rec: dict[str, Any] = {"model": str(model)}
        for c, v in row.items():
            if pd.isna(v):
                rec[str(c)] = None
            else:
                rec[str(c)] = int(v) if c in _COUNTS else float(v)
        out.append(rec)
    return out
