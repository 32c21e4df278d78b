"""One case through every chosen model: load, preprocess, predict, write the outputs and the manifest.

Everything that can be wrong with the input (models, options, images, output folder) is checked before the
first file is written. Outputs land on the reference modality's grid; each file is written atomically, and
`manifest.json` last, so a folder with a manifest is complete. If a run fails half-way, the files it wrote are
removed again and no manifest is left behind (an older manifest is removed before the first new file is written).

A job that needs no gradients, on a CPU, with models whose OpenVINO conversion is cached, never imports torch
(1.5–2.5 s): the explanation code and the PyTorch networks are imported when a job first needs them.
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from . import __version__
from .choices import CAM_METHODS, DEFAULT_FLIPS
from .errors import InputError
from .inference import check_threshold, device_type, one_float32_pass, predict, resolve_precision
from .io import MODALITIES, Case, CaseSource, checked_case, load_case
from .labels import ET_LABELS
from .metrics import region_metrics
from .openvino_backend import (CompiledNetwork, cache_key, cached_graph, compile_network, key_of_file,
                               openvino_installed, resolve_backend)
from .plausibility import input_warnings
from .postprocess import (
    LabelRule,
    labels_from_probabilities,
    reference_probabilities,
    segment_probabilities,
)
from .preprocess import Geometry, preprocess
from .uncertainty import FLIP_AXES, Members, flip_passes, quality_warnings
from .weights import ModelInfo, ensemble_entry, load_model, model_info, registry_file, resolve_models, sha256_of
from .writer import (CHANNEL_WEIGHTS_KIND, MANIFEST, OutputWriter, explanation_name, write_segmentation,
                     write_uncertainty)

if TYPE_CHECKING:
    from torch import nn

MANIFEST_FORMAT = "brats-xai-manifest/1"
EXPLANATIONS = ("gradcam", "attention", "attention-softmax", "uncertainty", "modality")  # see docs/cli.md
HEATMAP_KINDS = ("gradcam", "attention", "uncertainty")  # drawn over the T1ce in overview.png
ENSEMBLE = "ensemble"  # the model name of the mean of several networks' probabilities
MAP_EXPLANATIONS = ("gradcam", "attention", "attention-softmax")  # per-network maps written by xai/write.py

Progress = Callable[[float, str], None]


@dataclass
class SegmentOptions:
    """How to segment; the defaults are those of `brats-xai segment`."""

    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"  # auto: OpenVINO on a CPU where it is installed, else PyTorch (Grad-CAM: PyTorch)
    threshold: float | None = None  # None: each model's calibrated per-region thresholds (registry)
    et_label: int = 4
    reference: str = "t1ce"
    explain: tuple[str, ...] = ()
    sliding_window: bool | None = None
    overview: bool = False
    flips: int = DEFAULT_FLIPS  # test-time flips per network for `uncertainty` (docs/uncertainty.md)
    layer: str | None = None  # Grad-CAM layer (a preset or module name); None: the default layer
    method: str | None = None  # gradcam, hirescam, gradcam++ or layercam; None: the per-region defaults

    def check(self) -> None:
        if self.threshold is not None:
            check_threshold(self.threshold)
        if self.et_label not in ET_LABELS:
            raise InputError(f"enhancing-tumour label {self.et_label} is not 4 or 3", "use --et-label 4 or 3")
        if self.reference not in MODALITIES:
            raise InputError(f"unknown reference modality {self.reference!r}", f"choose one of {', '.join(MODALITIES)}")
        unknown = [method for method in self.explain if method not in EXPLANATIONS]
        if unknown:
            raise InputError(f"unknown explanation {', '.join(unknown)}", f"choose from {', '.join(EXPLANATIONS)}")
        if self.method is not None and self.method not in CAM_METHODS:
            raise InputError(f"unknown Grad-CAM method {self.method!r}", f"choose from {', '.join(CAM_METHODS)}")
        if not (isinstance(self.flips, int) and 0 <= self.flips <= len(FLIP_AXES)):
            raise InputError(f"{self.flips} flips asked for", f"give 0 to {len(FLIP_AXES)} test-time flips")


@dataclass
class LoadedModel:
    info: ModelInfo
    device: str = "cpu"
    torch_network: nn.Module | None = None  # None until first needed, for a model found in OpenVINO's cache
    graph: Path | None = None  # OpenVINO's cached graph, when loading found it intact
    compiled: dict[str, CompiledNetwork] = field(default_factory=dict)  # OpenVINO, per precision, made once

    @property
    def network(self) -> nn.Module:
        """The PyTorch network (Grad-CAM, attention, the torch backend, a first conversion), loaded on first use."""
        if self.torch_network is None:
            selector = self.info.id if self.info.registry is not None else self.info.path
            self.torch_network = load_model(selector, self.device, self.info.registry)[0]
        return self.torch_network

    def openvino(self, precision: str) -> CompiledNetwork:
        """The network compiled by OpenVINO for `precision`, made on first use and kept for later cases."""
        if precision not in self.compiled:
            info = self.info
            self.compiled[precision] = compile_network(cache_key(info.sha256, info.architecture, info.width),
                                                       precision, info.width, lambda: self.network, info.header(),
                                                       self.graph)
        return self.compiled[precision]


def _from_openvino_cache(name: str, registry: str | Path | None) -> LoadedModel | None:
    """A registry model whose file matches its sha256, or a weights file given by path, whose conversion is
    cached: described by the header recorded there, its PyTorch network left unloaded (torch is not imported)."""
    found, digest = registry_file(name, registry), None
    if found is not None:
        entry, path = found
        key = cache_key(entry.sha256, entry.architecture, entry.width)
    else:
        entry, path = None, Path(name).expanduser()
        try:
            digest = sha256_of(path) if openvino_installed() and path.is_file() else None
        except OSError:  # unreadable: loading it the usual way says so in one line
            digest = None
        key = key_of_file(digest) if digest else None
    cached = cached_graph(key) if key else None
    if cached is None or (entry is None and "labels" not in cached[1]):  # a path needs its own label rule
        return None
    graph, header = cached
    return LoadedModel(model_info(entry, path, header, registry, sha256=digest), graph=graph)


def load_models(selector: str, device: str = "auto", registry: str | Path | None = None) -> list[LoadedModel]:
    """Every model `--model` names, loaded and checked, before any case is touched."""
    target = device_type(device)
    models = []
    for name in resolve_models(selector, registry):
        cached = _from_openvino_cache(name, registry) if target == "cpu" else None
        if cached is None:
            network, info = load_model(name, target, registry)
            cached = LoadedModel(info, target, network)
        models.append(cached)
    return models


def check_output_folder(folder: Path) -> None:
    """Refuse an output folder that cannot be created or written, without creating anything yet."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError("the output folder cannot be created: a file is in the way", "choose another --out", existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError("the output folder is not writable", "choose a folder you may write to with --out", existing)


def is_finished(folder: Path, models: Sequence[LoadedModel], options: SegmentOptions) -> bool:
    """Whether `folder` holds a complete result made by exactly these models (same weights) and options."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    outputs_exist = all((folder / entry["path"]).is_file() for entry in manifest.get("outputs", []))
    return (manifest.get("format") == MANIFEST_FORMAT and outputs_exist
            and manifest.get("options") == options_record(options, models))


@contextmanager
def _timed(timings: dict, name: str):
    start = time.perf_counter()
    yield
    timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 3)


def _grid(image: sitk.Image) -> dict:
    return {"size": list(image.GetSize()), "spacing": list(image.GetSpacing()), "origin": list(image.GetOrigin()),
            "direction": list(image.GetDirection())}


def _versions() -> dict:
    return {"brats_xai": __version__, "torch": metadata.version("torch"), "SimpleITK": sitk.Version_VersionString(),
            "python": platform.python_version()}


def options_record(options: SegmentOptions, models: Sequence[LoadedModel]) -> dict:
    """The options that decide what a result folder holds; a re-run with other options redoes the case."""
    return {"models": [m.info.id for m in models], "sha256": [m.info.sha256 for m in models],
            "threshold": options.threshold, "et_label": options.et_label, "precision": options.precision,
            "reference": options.reference, "explain": list(options.explain), "backend": options.backend,
            "sliding_window": options.sliding_window, "overview": options.overview,
            "flips": options.flips if "uncertainty" in options.explain else 0,
            "layer": options.layer, "method": options.method}


def ensemble_record(models: Sequence[LoadedModel], options: SegmentOptions) -> tuple[LabelRule, dict, list[str]]:
    """The registry's label rule and quality calibration for this set of networks, else 0.5 everywhere and an
    uncalibrated expected Dice (with a warning)."""
    registries = {m.info.registry for m in models}
    entry = ensemble_entry([m.info.id for m in models], registries.pop()) if len(registries) == 1 else None
    if entry is not None:
        return LabelRule.from_dict(entry.get("labels")).with_threshold(options.threshold), entry.get("quality", {}), []
    note = ("the ensemble of these models has no calibrated thresholds in the registry: "
            f"{options.threshold or 0.5} is used for every region, without post-processing")
    return LabelRule().with_threshold(options.threshold), {}, [note]


def _missing_explanations(options: SegmentOptions, entries: list[dict], models: Sequence[LoadedModel]) -> list[str]:
    """Warnings for requested explanation kinds that produced no output."""
    produced = {explanation_name(entry) for entry in entries}
    names = ", ".join(m.info.architecture for m in models)
    return [f"{method} explanations were requested but none were written (models: {names})"
            for method in options.explain if method not in produced and method != "modality"]


def _overview(writer: OutputWriter, case: Case, segmentations: dict, truth: np.ndarray | None,
              options: SegmentOptions, importance: dict) -> None:
    writer.flush()  # the overview reads the heat maps back from their files
    images = {"t1ce": sitk.GetArrayViewFromImage(case.images["t1ce"])}  # drawn over the T1ce, which every case has
    shown = ({"truth": truth} if truth is not None else {}) | segmentations
    heatmaps = {entry["path"].split(".")[0]: sitk.GetArrayFromImage(sitk.ReadImage(str(writer.folder / entry["path"])))
                for entry in writer.entries if entry["kind"] in HEATMAP_KINDS and entry.get("default", True)}
    channel_weights = {entry["model"]: json.loads((writer.folder / entry["path"]).read_text())["levels"]
                       for entry in writer.entries if entry["kind"] == CHANNEL_WEIGHTS_KIND}
    spacing = case.reference_image.GetSpacing()[::-1]
    writer.overview(images=images, spacing=spacing, segmentations=shown, heatmaps=heatmaps,
                    et_label=options.et_label, channel_weights=channel_weights, modality=importance,
                    requested=options.explain)


def segment_case(source: Case | CaseSource | Path | str, out_dir: str | Path, models: Sequence[LoadedModel],
                 options: SegmentOptions | None = None, progress: Progress | None = None) -> dict:
    """Segment one case with `models`, write outputs and `manifest.json` into `out_dir`; return the manifest.
    `source` may be a case already in memory (`io.Case`, e.g. images built in Python; checked as `load_case`
    checks files, its own `reference` kept)."""
    options = options or SegmentOptions()
    options.check()
    if options.layer and "gradcam" in options.explain:
        from .xai.layers import resolve_layer

        for loaded in models:  # an unknown layer is refused before anything is written
            resolve_layer(loaded.network, options.layer)
    out_dir = Path(out_dir).expanduser()
    check_output_folder(out_dir)
    report = progress or (lambda fraction, stage: None)
    device = device_type(options.device)
    backend = resolve_backend(options.backend, device)
    timings: dict[str, float] = {}
    report(0.0, "Loading case")
    with _timed(timings, "load"):
        case = checked_case(source) if isinstance(source, Case) else load_case(source, options.reference)
    writer = OutputWriter(out_dir)
    try:
        return _segment_loaded(case, writer, models, options, device, backend, timings, report)
    except BaseException:
        writer.discard()
        raise


def _segment_loaded(case: Case, writer: OutputWriter, models: Sequence[LoadedModel], options: SegmentOptions,
                    device: str, backend: str, timings: dict, report: Progress) -> dict:
    truth = sitk.GetArrayFromImage(case.label) if case.label is not None else None
    spacing = case.reference_image.GetSpacing()[::-1]
    prepared: dict[tuple, tuple[np.ndarray, Geometry]] = {}
    segmentations: dict[str, np.ndarray] = {}
    metrics: dict[str, dict] = {}
    warnings = list(case.warnings) + input_warnings(case)
    share = 0.9 / max(len(models), 1)
    members, importance = Members(), {}  # the networks' probabilities on the reference grid; modality shares
    maps = [kind for kind in options.explain if kind in MAP_EXPLANATIONS]
    precision = resolve_precision(options.precision, device)  # of every pass, explanations included
    if maps:
        from .xai.write import write_explanations  # torch: imported by the jobs that explain
    if "modality" in options.explain:
        from .xai.modality import modality_importance, no_evidence_warnings
    for index, loaded in enumerate(models):
        info, start = loaded.info, 0.05 + index * share
        architecture = info.architecture
        key = (info.spacing, info.normalisation)
        if key not in prepared:
            report(start, f"Preprocessing ({architecture})")
            with _timed(timings, "preprocess"):
                prepared[key] = preprocess(case, info.spacing, info.normalisation)
        array, geometry = prepared[key]
        rule = info.rule.with_threshold(options.threshold)  # labels and Grad-CAM targets alike

        def runner(loaded=loaded, start=start):
            """The network for gradient-free passes; OpenVINO's is prepared when a pass first needs it (a
            segmentation taken from the Grad-CAM pass may need none)."""
            if backend == "torch":
                return loaded.network
            if precision not in loaded.compiled:
                report(start, f"Preparing {loaded.info.architecture} for OpenVINO (converted once per weights file)")
                with _timed(timings, f"prepare {loaded.info.architecture}"):
                    loaded.openvino(precision)
            return loaded.openvino(precision)

        shared = "gradcam" in maps and one_float32_pass(
            array.shape[1:], loaded.network.width, device, options.precision, options.sliding_window)
        if shared:  # segment from the Grad-CAM pass: one forward pass instead of two
            report(start, f"Inference and explanations ({architecture})")
            with _timed(timings, f"inference and explain {architecture}"):
                found, logits = write_explanations(writer, architecture, loaded.network.to(device).eval(), array,
                                                   geometry, maps, device,
                                                   lambda stage, at=start + 0.3 * share: report(at, stage), rule,
                                                   options.layer, options.method, info.explain, precision)
            warnings += found
            if logits is None:  # no region had a faithful map to explain: no pass to share
                probabilities = predict(runner(), array, device, options.precision, sliding_window=False)
            else:
                probabilities = logits.float().sigmoid()[0].cpu().numpy()
        else:
            network, stage = runner(), f"Inference ({architecture})"
            report(start, stage)
            with _timed(timings, f"inference {architecture}"):
                probabilities = predict(network, array, device, options.precision,
                                        sliding_window=options.sliding_window, roi_size=info.patch_size,
                                        progress=lambda done: report(start + 0.7 * share * done, stage))
        report(start + 0.7 * share, f"Writing outputs ({architecture})")
        with _timed(timings, f"write {architecture}"):
            on_reference, labels = segment_probabilities(probabilities, geometry, rule, options.et_label)
            write_segmentation(writer, architecture, on_reference, labels, geometry, options.et_label,
                               len(models) == 1)
            segmentations[architecture] = labels
            members.add_network(on_reference)
            del on_reference  # 107 MB at BraTS size, not needed by the explanations
        if ("uncertainty" in options.explain and options.flips) or "modality" in options.explain:
            forward = partial(predict, runner(), device=device, precision=options.precision,
                              sliding_window=options.sliding_window, roi_size=info.patch_size)
        if "uncertainty" in options.explain and options.flips:
            report(start + 0.75 * share, f"Test-time flips ({architecture})")
            with _timed(timings, f"flips {architecture}"):
                flip_passes(forward, array, options.flips, partial(reference_probabilities, geometry=geometry),
                            members)
        if "modality" in options.explain:
            report(start + 0.8 * share, f"Modality attribution ({architecture})")
            with _timed(timings, f"modality {architecture}"):
                importance[architecture] = modality_importance(forward, array, probabilities, rule,
                                                               geometry.network.spacing[::-1])
            warnings += no_evidence_warnings(importance[architecture], architecture)
        if truth is not None:
            report(start + 0.85 * share, f"Metrics ({architecture})")
            with _timed(timings, f"metrics {architecture}"):
                metrics[architecture] = region_metrics(segmentations[architecture], truth, spacing)
        if maps and not shared:
            with _timed(timings, f"explain {architecture}"):
                warnings += write_explanations(writer, architecture, loaded.network, array, geometry, maps,
                                               device, lambda stage, at=start + 0.9 * share: report(at, stage),
                                               rule, options.layer, options.method, info.explain, precision)[0]
        if backend != "torch" and precision in loaded.compiled:
            loaded.compiled[precision].release()
    primary = ENSEMBLE if len(models) > 1 else models[0].info.architecture
    ensemble, calibration = None, models[0].info.quality
    if len(models) > 1:
        report(0.93, "Ensemble")
        with _timed(timings, "ensemble"):
            ensemble, calibration, notes = ensemble_record(models, options)
            mean = members.mean()
            labels = labels_from_probabilities(mean, ensemble, spacing, options.et_label)
            write_segmentation(writer, ENSEMBLE, mean, labels, geometry, options.et_label, primary=True)
            segmentations[ENSEMBLE], warnings = labels, warnings + notes
            if truth is not None:
                metrics[ENSEMBLE] = region_metrics(labels, truth, spacing)
    quality = None
    if "uncertainty" in options.explain:
        report(0.94, "Uncertainty")
        with _timed(timings, "uncertainty"):
            quality = write_uncertainty(writer, primary, members.belief(), segmentations[primary], geometry,
                                        calibration, members.networks + members.flips)
            warnings += quality_warnings(quality, primary)
    if options.overview:
        report(0.95, "Overview")
        with _timed(timings, "overview"):
            _overview(writer, case, segmentations, truth, options, importance)
    source = case.source
    paths = source.paths if source is not None else {}
    manifest = {
        "format": MANIFEST_FORMAT,
        "case_id": case.case_id,
        "reference": {"modality": case.reference, "path": str(Path(paths[case.reference]).resolve())
                      if case.reference in paths else None, **_grid(case.reference_image)},
        "inputs": {modality: str(Path(path).resolve()) for modality, path in paths.items()},
        "models": {m.info.architecture: m.info.manifest_entry() for m in models},
        "primary": primary,
        "backend": backend,
        **({"ensemble": {"members": [m.info.id for m in models], "labels": ensemble.to_dict()}} if ensemble else {}),
        **({"quality": quality} if quality else {}),
        **({"modality_importance": importance} if importance else {}),
        "options": options_record(options, models),
        "outputs": writer.entries,
        **({"metrics": metrics} if truth is not None else {}),
        "timings": timings,
        "warnings": warnings + _missing_explanations(options, writer.entries, models),
        "versions": _versions(),
    }
    with _timed(manifest["timings"], "finish writing"):
        writer.flush()
    writer.manifest(manifest)
    report(1.0, "Done")
    return manifest
