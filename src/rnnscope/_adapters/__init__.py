"""The old home of :class:`LayerRef`, kept while the file readers and the monitor still import it
from here. ``LayerRef`` lives in ``rnnscope._refs``; live models are read through the framework
objects of ``rnnscope._frameworks``.
"""

from __future__ import annotations

from .._refs import LayerRef, ValueFn

__all__ = ["LayerRef", "ValueFn"]
