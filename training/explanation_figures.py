"""`python -m training.explanation_figures RESULT_DIR --out DIR [--truth SEG] [--mri]`: the study's Figs. 9–11
re-drawn from the product's own outputs.

RESULT_DIR is what `brats-xai segment CASE --model all --explain gradcam,attention` wrote (its manifest.json
lists every file). Fig. 9 and Fig. 10 are the enhancing tumour's Grad-CAM map of the Residual UNet and of the
Attention UNet (`figure9_resunet_et.png`, `figure10_attunet_et.png`), in axial, coronal and sagittal slices
through the enhancing tumour, beside the network's labels; where the network has no faithful ET map (the
manifest says so) the figure says that instead of drawing one. Fig. 11 shows the Attention UNet's four attention
gates in the same axial slice (`figure11_attunet_gates.png`). Outlines: the true ET with `--truth` (the case's
_seg file), else the network's own ET. The MRI (the reference sequence) is drawn only with `--mri`; by default a
grey silhouette of its non-zero voxels stands in, so that figures for the docs carry no image data of a case.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from BraTSXAILib import overview_draw as draw  # noqa: E402
from BraTSXAILib.errors import InputError  # noqa: E402
from BraTSXAILib.io import read_image  # noqa: E402
from BraTSXAILib.labels import REGIONS, labels_to_regions  # noqa: E402
from BraTSXAILib.overview import NO_MAP, crossing_point  # noqa: E402

from .command import run_command  # noqa: E402
from .figures import save  # noqa: E402

ET_FIGURES = {"resunet": "figure9_resunet_et.png", "attunet": "figure10_attunet_et.png"}
GATES_FIGURE = "figure11_attunet_gates.png"
PLANES = ("axial", "coronal", "sagittal")


def _array(folder: Path, entry: dict) -> np.ndarray:
    return sitk.GetArrayFromImage(read_image(folder / entry["path"], entry["kind"]))


def _entry(manifest: dict, **fields) -> dict | None:
    return next((e for e in manifest["outputs"] if all(e.get(k) == v for k, v in fields.items())), None)


class Scene:
    """What every figure shares: the background, its window, the ET outline, the slices' crossing point."""

    def __init__(self, folder: Path, manifest: dict, truth: Path | None, mri: bool):
        reference = read_image(manifest["reference"]["path"], "reference image")
        volume = sitk.GetArrayFromImage(reference).astype(np.float32)
        self.background = volume if mri else (volume != 0).astype(np.float32) * 0.35
        self.window = draw.intensity_window(volume) if mri else (0.0, 1.0)
        labels = _array(folder, _entry(manifest, kind="labels", model=manifest["primary"]))
        outlined = sitk.GetArrayFromImage(read_image(truth, "truth")) if truth else labels
        self.et = labels_to_regions(outlined)[REGIONS.index("ET")]
        self.point = crossing_point(self.et.astype(np.uint8), volume.shape)
        self.box = draw.content_box(volume)
        self.views = draw.views(reference.GetSpacing()[::-1], self.box)
        self.label_map = draw.label_colormap(4)
        self.backgrounds, self.outlines = self.cut(self.background), self.cut(self.et)

    def cut(self, volume: np.ndarray) -> list[np.ndarray]:
        """The axial, coronal and sagittal slices of `volume` that every figure shows."""
        return draw.plane_slices(volume, self.point, self.box)

    def heat_cell(self, axis, plane: int, heat: np.ndarray) -> None:
        """One plane's slice `heat` of a map over the background, with the ET outline."""
        draw.cell(axis, self.views[plane], self.backgrounds[plane], self.window, heat=heat, heat_kind="gradcam",
                  outline=self.outlines[plane])


def et_figure(scene: Scene, folder: Path, manifest: dict, model: str, path: Path) -> Path:
    labels = _array(folder, _entry(manifest, kind="labels", model=model))
    entry = _entry(manifest, kind="gradcam", model=model, **{"class": "ET"})
    label_slices = scene.cut(labels)
    heat_slices = scene.cut(_array(folder, entry)) if entry else None
    figure, axes = plt.subplots(3, 2, figsize=(5.2, 7.0), facecolor="black")
    for plane, row in enumerate(axes):
        view, background = scene.views[plane], scene.backgrounds[plane]
        draw.cell(row[0], view, background, scene.window, labels=label_slices[plane], label_map=scene.label_map)
        if heat_slices is None:
            draw.note(row[1], view, NO_MAP, background.shape)
        else:
            scene.heat_cell(row[1], plane, heat_slices[plane])
        row[0].set_ylabel(PLANES[plane], color=draw.TEXT)
    axes[0][0].set_title(f"{model} labels", color=draw.TEXT, fontsize=9)
    axes[0][1].set_title(f"ET {entry['method']} at {entry['layer']}" if entry else "ET Grad-CAM", color=draw.TEXT,
                         fontsize=9)
    return _save(figure, path)


def gates_figure(scene: Scene, folder: Path, manifest: dict, path: Path) -> Path:
    gates = sorted((e for e in manifest["outputs"] if e["kind"] == "attention" and e.get("map") == "gate"
                    and e.get("view") == "sigmoid"), key=lambda e: e["level"])
    if not gates:
        raise InputError("the result has no attention gate maps", "segment with --model all --explain attention",
                         folder)
    figure, axes = plt.subplots(1, len(gates), figsize=(2.3 * len(gates), 2.8), facecolor="black", squeeze=False)
    for axis, entry in zip(axes[0], gates):
        scene.heat_cell(axis, 0, scene.cut(_array(folder, entry))[0])
        axis.set_title(f"attunet gate{entry['level']}", color=draw.TEXT, fontsize=9)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    return save(figure, path, dpi=90, bbox_inches=None, facecolor="black")


def run(args: argparse.Namespace) -> list[Path]:
    manifest_path = args.result / "manifest.json"
    if not manifest_path.is_file():
        raise InputError("no manifest.json in the result folder", "give a folder that brats-xai segment wrote",
                         args.result)
    manifest = json.loads(manifest_path.read_text())
    scene = Scene(args.result, manifest, args.truth, args.mri)
    args.out.mkdir(parents=True, exist_ok=True)
    written = [et_figure(scene, args.result, manifest, model, args.out / name)
               for model, name in ET_FIGURES.items() if model in manifest["models"]]
    if "attunet" in manifest["models"]:
        written.append(gates_figure(scene, args.result, manifest, args.out / GATES_FIGURE))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.explanation_figures",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path, help="a folder that brats-xai segment wrote")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--truth", type=Path, help="the case's _seg file, for the true ET outline")
    parser.add_argument("--mri", action="store_true", help="draw the reference MRI (default: its silhouette)")
    args = parser.parse_args(argv)

    def finish(written: list[Path]) -> int:
        print("\n".join(str(path) for path in written))
        return 0

    return run_command(args, run, finish)


if __name__ == "__main__":
    sys.exit(main())
