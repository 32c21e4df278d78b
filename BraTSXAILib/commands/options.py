"""Options that `segment` and `demo` share, parsed the same way in both."""
from __future__ import annotations

import argparse

from ..choices import BACKENDS, DEFAULT_FLIPS, DEVICES, ET_LABELS, PRECISIONS

MODEL_HELP = ("unet, resunet, attunet or all (the registry's default weights), a registry id "
              "(see `brats-xai models`), or a path to a .pt weights file")


def explanation_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="all", help=f"{MODEL_HELP} (default: all)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: CUDA when available, else CPU")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: CUDA mixed precision; bf16 on CPUs that compute it natively; else float32")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: OpenVINO on a CPU where it is installed (the [openvino] extra), else PyTorch; "
                             "Grad-CAM always runs on PyTorch")
    parser.add_argument("--threshold", type=float,
                        help="one probability threshold for every region (default: each model's per-region "
                             "thresholds and post-processing, calibrated on validation cases; see the registry)")
    parser.add_argument("--et-label", type=int, choices=ET_LABELS, default=4,
                        help="label value of enhancing tumour: 4 (BraTS 2018-21) or 3 (BraTS 2023+)")
    parser.add_argument("--explain", type=explanation_list, default=(), metavar="gradcam,attention",
                        help="explanations to add, comma-separated: gradcam (WT/TC/ET per model), attention "
                             "(Attention UNet gates and CBAM maps), attention-softmax (the a/max a view), uncertainty "
                             "(maps + expected Dice of the primary result), modality (share of each sequence)")
    parser.add_argument("--layer", help="Grad-CAM layer: bottleneck, decoder.3 … decoder.1, decoder.0.conv, decoder.0, "
                                         "final, or a module name (default: each network's measured default per "
                                         "region; docs/explanations.md)")
    parser.add_argument("--method", help="Grad-CAM variant: gradcam, hirescam, gradcam++ or layercam (default: "
                                          "each network's measured default per region)")
    parser.add_argument("--flips", type=int, default=DEFAULT_FLIPS,
                        help=f"test-time flips per network for the uncertainty (default {DEFAULT_FLIPS}; "
                             "each costs one forward pass)")
    parser.add_argument("--window", action="store_true",
                        help="always use the sliding window (default: only when the volume does not fit in memory)")
    parser.add_argument("--json-progress", action="store_true",
                        help="progress, result and errors as JSON lines on stdout (for Slicer)")
