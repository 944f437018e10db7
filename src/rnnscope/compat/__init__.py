"""Compatibility layers for code written against other tools' APIs.

``rnnscope.compat.see_rnn``: See RNN's public functions (loaded on first use).
"""

_MODULES = ("see_rnn",)


def __getattr__(name: str) -> object:
    if name in _MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'rnnscope.compat' has no attribute {name!r}")
