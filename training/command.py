"""What every training command does around its work: torch threads as asked, and bad input as one line."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from BraTSXAILib.errors import InputError

Result = TypeVar("Result")
BAD_INPUT = 2


def run_command(args: argparse.Namespace, work: Callable[[argparse.Namespace], Result],
                finish: Callable[[Result], int]) -> int:
    """`finish(work(args))` on `args.threads` torch threads (when the command has them); an InputError is printed
    as its one line on stderr and gives exit status 2."""
    threads = getattr(args, "threads", None)
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        result = work(args)
    except InputError as error:
        print(error.one_line(), file=sys.stderr)
        return BAD_INPUT
    return finish(result)
