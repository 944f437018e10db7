"""The ``rnnscope`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._errors import RnnscopeError

__all__ = ["main"]


def _layer_key(text: str | None) -> str | int | None:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnscope",
        description="See inside recurrent networks, "
        "gate by gate, from live models or checkpoint files.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="summarise and trace the bundled LSTM and bidirectional GRU")
    d.add_argument(
        "-o",
        "--out",
        default="rnnscope-demo",
        help="folder for the per-gate summaries, traces and figures (default: rnnscope-demo)",
    )
    s = sub.add_parser("summary", help="per-layer, per-gate statistics of a checkpoint")
    s.add_argument("path")
    s.add_argument("--layer", help="one layer: name, unique name part or index")
    ls = sub.add_parser("layers", help="list the layers with weights of a checkpoint")
    ls.add_argument("path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from ._demo import run_demo

            run_demo(args.out)
        elif args.command == "summary":
            from ._summary import summary

            summary(args.path, layer=_layer_key(args.layer))
        elif args.command == "layers":
            from ._api import layers

            for info in layers(args.path):
                shapes = ", ".join(f"{k} {tuple(v)}" for k, v in info.shapes.items())
                print(f"{info.name}\t{info.kind}\t{info.n_params} params\t{shapes}")
    except RnnscopeError as err:
        if args.debug:
            raise
        print(f"rnnscope: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
