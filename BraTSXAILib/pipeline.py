"""One case through every chosen model: load, preprocess, predict, write the outputs and the manifest.

Everything that can be wrong with the input (models, options, images, output folder) is checked before the
first file is written. Outputs land on the reference modality's grid; each file is written atomically, and
`manifest.json` last, so a folder with a manifest is complete. If a run fails half-way, the files it wrote are
removed again and no manifest is left behind (an older manifest is removed before the first new file is written).
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from . import __version__
from .errors import InputError
from .inference import check_threshold, one_float32_pass, predict, probabilities_to_labels, resolve_device
from .io import MODALITIES, Case, CaseSource, load_case
from .labels import ET_LABELS, REGIONS, label_classes
from .metrics import region_metrics
from .outputs import write_image, write_json
from .overview import write_overview
from .plausibility import input_warnings
from .preprocess import Geometry, preprocess
from .weights import ModelInfo, load_model, resolve_models
from .xai.write import CHANNEL_WEIGHTS_KIND, explanation_name, write_explanations

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "brats-xai-manifest/1"
OVERVIEW = "overview.png"
EXPLANATIONS = ("gradcam", "attention", "attention-softmax")  # xai/write.py names what each writes
HEATMAP_KINDS = ("gradcam", "attention")
PROBABILITY_COLORMAP = "Inferno"

Progress = Callable[[float, str], None]


@dataclass
class SegmentOptions:
    """How to segment; the defaults are those of `brats-xai segment`."""

    device: str = "auto"
    precision: str = "auto"
    threshold: float = 0.5
    et_label: int = 4
    reference: str = "t1ce"
    explain: tuple[str, ...] = ()
    sliding_window: bool | None = None
    overview: bool = False

    def check(self) -> None:
        check_threshold(self.threshold)
        if self.et_label not in ET_LABELS:
            raise InputError(f"enhancing-tumour label {self.et_label} is not 4 or 3", "use --et-label 4 or 3")
        if self.reference not in MODALITIES:
            raise InputError(f"unknown reference modality {self.reference!r}", f"choose one of {', '.join(MODALITIES)}")
        unknown = [method for method in self.explain if method not in EXPLANATIONS]
        if unknown:
            raise InputError(f"unknown explanation {', '.join(unknown)}", f"choose from {', '.join(EXPLANATIONS)}")


@dataclass
class LoadedModel:
    network: nn.Module
    info: ModelInfo


def load_models(selector: str, device: str = "auto", registry: str | Path | None = None) -> list[LoadedModel]:
    """Every model `--model` names, loaded and checked, before any case is touched."""
    target = resolve_device(device)
    return [LoadedModel(*load_model(name, target, registry)) for name in resolve_models(selector, registry)]


def check_output_folder(folder: Path) -> None:
    """Refuse an output folder that cannot be created or written, without creating anything yet."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError("the output folder cannot be created: a file is in the way", "choose another --out", existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError("the output folder is not writable", "choose a folder you may write to with --out", existing)


def is_finished(folder: Path, models: Sequence[LoadedModel]) -> bool:
    """Whether `folder` holds a complete result of exactly these models (same ids and weights)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    wanted = {m.info.architecture: m.info.manifest_entry() for m in models}
    outputs_exist = all((folder / entry["path"]).is_file() for entry in manifest.get("outputs", []))
    return manifest.get("format") == MANIFEST_FORMAT and manifest.get("models") == wanted and outputs_exist


class OutputWriter:
    """Writes outputs into one folder, keeps their manifest entries, and can take them all back."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.entries: list[dict] = []
        self.written: list[Path] = []
        self.started = False

    def _start(self) -> None:
        if not self.started:
            (self.folder / MANIFEST).unlink(missing_ok=True)
            self.started = True

    @contextmanager
    def _writing(self, path: Path):
        self._start()
        try:
            yield
        except OSError as error:
            raise InputError(f"cannot write an output ({error.strerror or error})", "choose another --out",
                             path) from None
        self.written.append(path)

    def image(self, name: str, image: sitk.Image, fields: dict) -> None:
        path = self.folder / name
        with self._writing(path):
            write_image(image, path)
        self.entries.append({"path": name, **fields})

    def json(self, name: str, data: dict, fields: dict) -> None:
        path = self.folder / name
        with self._writing(path):
            write_json(data, path)
        self.entries.append({"path": name, **fields})

    def overview(self, **figure) -> None:
        path = self.folder / OVERVIEW
        with self._writing(path):
            write_overview(path, **figure)
        self.entries.append({"path": OVERVIEW, "kind": "overview"})

    def manifest(self, manifest: dict) -> Path:
        path = self.folder / MANIFEST
        with self._writing(path):
            write_json(manifest, path)
        return path

    def discard(self) -> None:
        for path in self.written:
            path.unlink(missing_ok=True)


@contextmanager
def _timed(timings: dict, name: str):
    start = time.perf_counter()
    yield
    timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 3)


def _grid(image: sitk.Image) -> dict:
    return {"size": list(image.GetSize()), "spacing": list(image.GetSpacing()), "origin": list(image.GetOrigin()),
            "direction": list(image.GetDirection())}


def _versions() -> dict:
    return {"brats_xai": __version__, "torch": torch.__version__, "SimpleITK": sitk.Version_VersionString(),
            "python": platform.python_version()}


def write_segmentation(writer: OutputWriter, architecture: str, probabilities: np.ndarray, geometry: Geometry,
                       options: SegmentOptions) -> np.ndarray:
    """Probability maps and the label map on the reference grid; returns the label array (z, y, x)."""
    images = [geometry.to_reference(channel.astype(np.float32), "linear") for channel in probabilities]
    on_reference = np.stack([sitk.GetArrayViewFromImage(image) for image in images])
    labels = probabilities_to_labels(on_reference, options.threshold, options.et_label)
    writer.image(f"{architecture}_labels.nii.gz", geometry.reference.image(labels),
                 {"kind": "labels", "model": architecture, "labels": label_classes(options.et_label)})
    for region, image in zip(REGIONS, images):
        writer.image(f"{architecture}_probability_{region}.nii.gz", image,
                     {"kind": "probability", "model": architecture, "class": region, "range": [0, 1],
                      "colormap": PROBABILITY_COLORMAP})
    return labels


def _missing_explanations(options: SegmentOptions, entries: list[dict], models: Sequence[LoadedModel]) -> list[str]:
    """Warnings for requested explanation kinds that produced no output."""
    produced = {explanation_name(entry) for entry in entries}
    names = ", ".join(m.info.architecture for m in models)
    return [f"{method} explanations were requested but none were written (models: {names})"
            for method in options.explain if method not in produced]


def _overview(writer: OutputWriter, case: Case, segmentations: dict, truth: np.ndarray | None,
              options: SegmentOptions) -> None:
    images = {m: sitk.GetArrayFromImage(case.images[m]) for m in ("flair", "t1ce")}
    shown = ({"truth": truth} if truth is not None else {}) | segmentations
    heatmaps = {entry["path"].split(".")[0]: sitk.GetArrayFromImage(sitk.ReadImage(str(writer.folder / entry["path"])))
                for entry in writer.entries if entry["kind"] in HEATMAP_KINDS and entry.get("default", True)}
    channel_weights = {entry["model"]: json.loads((writer.folder / entry["path"]).read_text())["levels"]
                       for entry in writer.entries if entry["kind"] == CHANNEL_WEIGHTS_KIND}
    spacing = case.reference_image.GetSpacing()[::-1]
    writer.overview(images=images, spacing=spacing, segmentations=shown, heatmaps=heatmaps,
                    et_label=options.et_label, channel_weights=channel_weights)


def segment_case(source: CaseSource | Path | str, out_dir: str | Path, models: Sequence[LoadedModel],
                 options: SegmentOptions | None = None, progress: Progress | None = None) -> dict:
    """Segment one case with `models`, write outputs and `manifest.json` into `out_dir`; return the manifest."""
    options = options or SegmentOptions()
    options.check()
    out_dir = Path(out_dir).expanduser()
    check_output_folder(out_dir)
    report = progress or (lambda fraction, stage: None)
    device = resolve_device(options.device)
    timings: dict[str, float] = {}
    report(0.0, "Loading case")
    with _timed(timings, "load"):
        case = load_case(source, options.reference)
    writer = OutputWriter(out_dir)
    try:
        return _segment_loaded(case, writer, models, options, device, timings, report)
    except BaseException:
        writer.discard()
        raise


def _segment_loaded(case: Case, writer: OutputWriter, models: Sequence[LoadedModel], options: SegmentOptions,
                    device: torch.device, timings: dict, report: Progress) -> dict:
    truth = sitk.GetArrayFromImage(case.label) if case.label is not None else None
    spacing = case.reference_image.GetSpacing()[::-1]
    prepared: dict[tuple, tuple[np.ndarray, Geometry]] = {}
    segmentations: dict[str, np.ndarray] = {}
    metrics: dict[str, dict] = {}
    warnings = list(case.warnings) + input_warnings(case)
    share = 0.9 / max(len(models), 1)
    for index, loaded in enumerate(models):
        info, start = loaded.info, 0.05 + index * share
        architecture = info.architecture
        key = (info.spacing, info.normalisation)
        if key not in prepared:
            report(start, f"Preprocessing ({architecture})")
            with _timed(timings, "preprocess"):
                prepared[key] = preprocess(case, info.spacing, info.normalisation)
        array, geometry = prepared[key]
        shared = "gradcam" in options.explain and one_float32_pass(
            array.shape[1:], loaded.network.width, device, options.precision, options.sliding_window)
        if shared:  # segment from the Grad-CAM pass: one forward pass instead of two
            report(start, f"Inference and explanations ({architecture})")
            with _timed(timings, f"inference and explain {architecture}"):
                found, logits = write_explanations(writer, architecture, loaded.network.to(device).eval(), array,
                                                   geometry, options.explain, device,
                                                   lambda stage, at=start + 0.3 * share: report(at, stage))
            warnings += found
            probabilities = torch.sigmoid(logits.float())[0].cpu().numpy()
        else:
            stage = f"Inference ({architecture})"
            report(start, stage)
            with _timed(timings, f"inference {architecture}"):
                probabilities = predict(loaded.network, array, device, options.precision,
                                        sliding_window=options.sliding_window, roi_size=info.patch_size,
                                        progress=lambda done: report(start + 0.7 * share * done, stage))
        report(start + 0.7 * share, f"Writing outputs ({architecture})")
        with _timed(timings, f"write {architecture}"):
            segmentations[architecture] = write_segmentation(writer, architecture, probabilities, geometry, options)
        if truth is not None:
            report(start + 0.85 * share, f"Metrics ({architecture})")
            with _timed(timings, f"metrics {architecture}"):
                metrics[architecture] = region_metrics(segmentations[architecture], truth, spacing)
        if options.explain and not shared:
            with _timed(timings, f"explain {architecture}"):
                warnings += write_explanations(writer, architecture, loaded.network, array, geometry, options.explain,
                                               device, lambda stage, at=start + 0.9 * share: report(at, stage))[0]
    if options.overview:
        report(0.95, "Overview")
        with _timed(timings, "overview"):
            _overview(writer, case, segmentations, truth, options)
    source = case.source
    paths = source.paths if source is not None else {}
    manifest = {
        "format": MANIFEST_FORMAT,
        "case_id": case.case_id,
        "reference": {"modality": case.reference, "path": str(Path(paths[case.reference]).resolve())
                      if case.reference in paths else None, **_grid(case.reference_image)},
        "inputs": {modality: str(Path(path).resolve()) for modality, path in paths.items()},
        "models": {m.info.architecture: m.info.manifest_entry() for m in models},
        "outputs": writer.entries,
        **({"metrics": metrics} if truth is not None else {}),
        "timings": timings,
        "warnings": warnings + _missing_explanations(options, writer.entries, models),
        "versions": _versions(),
    }
    writer.manifest(manifest)
    report(1.0, "Done")
    return manifest
