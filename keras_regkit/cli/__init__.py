"""The `regkit` command (also `python -m keras_regkit`).

A thin shell over the library, one module per subcommand (`train`,
`evaluate`, `compare`, `diagnose`), each with `add_parser(subparsers)` and
`run(args)`. Choices come from `keras_regkit._choices`, and Keras,
TensorFlow and the training code are imported only inside `run`, so
`regkit --help` answers without loading them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from keras_regkit import __version__
from keras_regkit._onednn import prefer_onednn
from keras_regkit.cli import compare
from keras_regkit.cli import diagnose
from keras_regkit.cli import evaluate
from keras_regkit.cli import train

COMMANDS = (train, evaluate, compare, diagnose)
# Errors that are the user's (a bad file, value or data), reported as one
# line and exit status 2 rather than a traceback.
_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError,
                FloatingPointError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `regkit` command."""
    parser = argparse.ArgumentParser(
        prog="regkit",
        description="keras_regkit: regularized Keras models against "
        "overfitting. Run `regkit COMMAND --help` for a command's flags.")
    parser.add_argument("--version", action="version",
                        version=f"regkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `regkit` console script.

    Args:
        argv: the arguments, without the program name. Defaults to `None`
            (`sys.argv[1:]`).

    Returns:
        The exit status: 0, or 2 for an error in the user's input.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    prefer_onednn()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except _USER_ERRORS as exc:
        print(f"regkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
