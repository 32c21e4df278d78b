"""Draws Resources/Icons/BraTSXAI.png (128×128): an axial brain slice with a heat-map blob over a tumour.

Pure numpy and zlib, so the picture is the same on every computer; run `python Resources/Icons/draw_icon.py`
after changing it (a test checks that the committed PNG is what this script draws).
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIZE = 128
SUPERSAMPLE = 4
ICON = Path(__file__).with_name("BraTSXAI.png")
# Inferno-like heat colours from cool to hot (RGB 0..1).
HEAT = np.array([[0.26, 0.04, 0.41], [0.58, 0.15, 0.40], [0.87, 0.32, 0.23], [0.99, 0.65, 0.04], [0.99, 0.99, 0.75]])


def _ellipse(x, y, cx, cy, rx, ry):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2


def _heat(value: np.ndarray) -> np.ndarray:
    position = np.clip(value, 0, 1) * (len(HEAT) - 1)
    low = np.floor(position).astype(int).clip(0, len(HEAT) - 2)
    t = (position - low)[..., None]
    return HEAT[low] * (1 - t) + HEAT[low + 1] * t


def draw() -> np.ndarray:
    """RGBA image, uint8, SIZE×SIZE."""
    n = SIZE * SUPERSAMPLE
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n * 2 - 1  # -1..1, y downwards
    brain = _ellipse(x, y, 0, 0.0, 0.80, 0.94)
    inside = brain < 1
    angle = np.arctan2(y, x)
    folds = np.sin(13 * angle + 3 * np.sin(5 * angle)) + 0.6 * np.sin(9 * np.sqrt(brain) * np.pi)
    grey = np.where(brain < 0.55, 0.86, 0.62)  # white matter inside, grey-matter ribbon outside
    grey = np.where((brain > 0.45) & (folds > 0.9), 0.30, grey)  # sulci reaching into the ribbon
    fissure = (np.abs(x + 0.02 * np.sin(6 * y)) < 0.022) & inside
    tilted = (np.abs(x) - 0.14) * np.cos(0.3) + y * np.sin(0.3)  # mirror-symmetric, tops leaning outwards
    ventricles = _ellipse(tilted, y, 0.0, -0.02, 0.05, 0.22) < 1
    grey = np.where(fissure | ventricles, 0.18, grey)
    rgb = grey[..., None] * np.array([0.92, 0.94, 1.0])
    heat = np.exp(-1.6 * _ellipse(x, y, 0.40, -0.28, 0.30, 0.26)) * inside
    opacity = np.where(heat > 0.15, 0.25 + 0.7 * heat, 0.0)[..., None]
    rgb = rgb * (1 - opacity) + _heat((heat - 0.15) / 0.85) * opacity
    rgb[(brain > 0.93) & inside] = [0.12, 0.12, 0.16]  # outline
    image = np.concatenate([rgb, inside[..., None].astype(float)], axis=-1)
    image = image.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 4)
    weight = image[..., 3:4]  # average colour over the covered subsamples only, so the edge stays clean
    summed = (image[..., :3] * weight).sum(axis=(1, 3))
    coverage = weight.sum(axis=(1, 3))
    rgb_small = np.divide(summed, coverage, out=np.zeros_like(summed), where=coverage > 0)
    return np.round(np.concatenate([rgb_small, coverage / SUPERSAMPLE**2], axis=-1) * 255).astype(np.uint8)


def png_bytes(rgba: np.ndarray) -> bytes:
    """A minimal valid PNG (8-bit RGBA, no filtering) of an (h, w, 4) uint8 array."""
    height, width, _ = rgba.shape
    raw = b"".join(b"\x00" + rgba[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    ICON.write_bytes(png_bytes(draw()))
    print(f"wrote {ICON}")
