"""`brats-xai`: the command line of BraTSXAI (also `python -m BraTSXAILib`).

Exit status: 0 on success, 2 for bad input (one line on stderr, or a JSON error line with --json-progress),
1 for anything else (an unexpected failure, with its traceback).
"""
from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .commands import demo, faithfulness, models, segment
from .commands.reporting import Reporter
from .errors import InputError
from .memory import reuse_freed_memory

COMMANDS = (segment, models, demo, faithfulness)
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brats-xai",
        description="Brain tumour segmentation of T1/T1ce/T2/FLAIR MRI with three 3D UNets, and explanations.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reuse_freed_memory()
    reporter = Reporter(json_lines=getattr(args, "json_progress", False))
    try:
        return args.run(args)
    except InputError as error:
        reporter.error(error)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an exhausted machine, not the user's input: keep the trace
        traceback.print_exc()
        reporter.error(InputError(f"unexpected failure: {type(error).__name__}: {error}",
                                  "this is not a problem with the input; please report it with the trace above"))
        return EXIT_FAILURE
