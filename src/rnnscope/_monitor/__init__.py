"""The training monitor: per-gate statistics recorded while a model trains.

Laid out from the bottom up (each module imports only those above it in this list):

- ``_schema``: the database's tables and columns, in one place.
- ``_history``: ``rnnscope.history``, reading a database back (even while it is written).
- ``_layers``: which layers a monitor watches (layer selection).
- ``_rows``: one row per (step, layer, part, gate, direction) and its statistics.
- ``_store``: the SQLite writer, a background thread training never waits for.
- ``_tensorboard``: the optional TensorBoard writer.
- ``_recorder``: rows in, update ratios one step later, writers out; non-finite flags.
- front ends, the only modules that import a framework: ``_torch`` (``rnnscope.torch``);
  ``_keras_tap``, ``_keras_logic`` and ``_penalties``, shared by ``_keras``
  (``rnnscope.keras``) and ``_tf_keras`` (``rnnscope.tf_keras``). Each front end converts
  tensors to numpy in one function, ``to_numpy``.

Nothing is imported here, so reading a database (``rnnscope.history``) loads only
``_schema`` and ``_history``.
"""
