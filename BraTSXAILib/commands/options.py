"""Options that `segment` and `demo` share, parsed the same way in both."""
from __future__ import annotations

import argparse

from ..inference import DEVICES, PRECISIONS
from ..labels import ET_LABELS

MODEL_HELP = ("unet, resunet, attunet or all (the registry's default weights), a registry id "
              "(see `brats-xai models`), or a path to a .pt weights file")


def explanation_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="all", help=f"{MODEL_HELP} (default: all)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA when available, else CPU")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: CUDA mixed precision; bf16 on CPUs that compute it natively; else float32")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability above which a region is kept")
    parser.add_argument("--et-label", type=int, choices=ET_LABELS, default=4,
                        help="label value of enhancing tumour: 4 (BraTS 2018-21) or 3 (BraTS 2023+)")
    parser.add_argument("--explain", type=explanation_list, default=(), metavar="gradcam,attention",
                        help="explanation maps to write as well, comma-separated: gradcam (WT/TC/ET per model), "
                             "attention (Attention UNet gates and CBAM maps), attention-softmax (the a/max a view)")
    parser.add_argument("--window", action="store_true",
                        help="always use the sliding window (default: only when the volume does not fit in memory)")
    parser.add_argument("--json-progress", action="store_true",
                        help="progress, result and errors as JSON lines on stdout (for Slicer)")
