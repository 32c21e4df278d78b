"""From `manifest.json` (docs/INTERFACES.md) to descriptions of the nodes the module creates.

Everything a node needs is decided here, without Slicer: its name, the file to read, the colour map, the window,
the threshold under which values are hidden, the overlay opacity, and for the label map each segment's name,
colour and standard terminology. `BraTSXAI.py` only turns these descriptions into MRML nodes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_FORMAT = "brats-xai-manifest/1"
REGIONS = ("WT", "TC", "ET")  # = BraTSXAILib.labels.REGIONS
MODEL_LABELS = {"unet": "UNet", "resunet": "Residual UNet", "attunet": "Attention UNet",  # = models.DISPLAY_NAMES
                "ensemble": "Ensemble"}
OVERLAY_KINDS = ("probability", "gradcam", "attention", "uncertainty")
EXPLANATION_KINDS = ("gradcam", "attention")
KIND_LABELS = {"probability": "probability", "gradcam": "Grad-CAM", "attention": "attention", "uncertainty": "uncertainty"}
DEFAULT_COLORMAP = "Inferno"
OVERLAY_OPACITY = 0.4
HIDDEN_FRACTION = 0.2  # values in the lowest 20 % of the window are transparent, so the MRI shows through

# Slicer terminology entry: context~category~type~type modifier~anatomic context~region~region modifier,
# each code "scheme^value^meaning" (the format SlicerMONAIAuto3DSeg writes with vtkSegment.SetTag).
_TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
_ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"
_ALTERED_STRUCTURE = "SCT^49755003^Morphologically Altered Structure"
_BRAIN = "SCT^12738006^Brain"
_TYPE_BY_LABEL = {1: "SCT^6574001^Necrosis", 2: "SCT^79654002^Edema", 3: "SCT^108369006^Neoplasm",
                  4: "SCT^108369006^Neoplasm"}


def terminology_entry(label_value: int) -> str:
    """Standard (SNOMED CT) terminology of a BraTS label: 1 necrosis, 2 edema, 3/4 (enhancing) neoplasm."""
    return "~".join((_TERMINOLOGY_CONTEXT, _ALTERED_STRUCTURE, _TYPE_BY_LABEL[label_value], "^^",
                     _ANATOMY_CONTEXT, _BRAIN, "^^"))


class ManifestError(ValueError):
    """The manifest is not what docs/INTERFACES.md promises; the message says what is wrong."""


@dataclass(frozen=True)
class SegmentSpec:
    value: int
    name: str
    color: tuple[float, float, float]
    terminology: str


@dataclass(frozen=True)
class SegmentationSpec:
    path: Path
    model: str
    name: str
    segments: tuple[SegmentSpec, ...]
    primary: bool = False  # the result to show first: the ensemble when several networks ran


@dataclass(frozen=True)
class OverlaySpec:
    """A scalar volume shown as a heat map over the MRI."""

    path: Path
    model: str
    kind: str  # probability, gradcam, attention, uncertainty
    target: str  # WT/TC/ET, or the attention map and level
    name: str
    colormap: str
    window: tuple[float, float]
    threshold: float  # lowest visible value
    blank: bool = False  # the library found nothing to show (e.g. Grad-CAM of an empty region)
    opacity: float = OVERLAY_OPACITY

    @property
    def is_explanation(self) -> bool:
        return self.kind in EXPLANATION_KINDS


@dataclass(frozen=True)
class NodePlan:
    case_id: str
    reference_modality: str
    segmentations: tuple[SegmentationSpec, ...]
    overlays: tuple[OverlaySpec, ...]
    metrics: dict
    warnings: tuple[str, ...]
    skipped: tuple[str, ...]  # outputs the module does not show (e.g. overview.png)
    quality: dict = field(default_factory=dict)  # region -> {"expected_dice": ..., "soft_dice": ...}
    modality: dict = field(default_factory=dict)  # model -> region -> sequence -> share of evidence


def trust_rows(plan: NodePlan) -> list[tuple[str, tuple[float, float, float]]]:
    """Rows of the trust table: the primary result's expected Dice, then each network's share per sequence,
    one value per region (WT, TC, ET)."""
    rows = []
    if plan.quality:
        primary = next((spec.model for spec in plan.segmentations if spec.primary), "")
        rows.append((f"expected Dice ({model_label(primary)})",
                     tuple(float(plan.quality[r]["expected_dice"]) for r in REGIONS)))
    for model, shares in plan.modality.items():
        for sequence in next(iter(shares.values()), {}):
            rows.append((f"{model_label(model)}: {sequence} share", tuple(float(shares[r][sequence]) for r in REGIONS)))
    return rows


def quality_text(plan: NodePlan) -> str:
    """`Expected Dice WT 0.91, TC 0.84, ET 0.77` for the status line, or "" when it was not asked for."""
    if not plan.quality:
        return ""
    return "Expected Dice " + ", ".join(f"{r} {plan.quality[r]['expected_dice']:.2f}" for r in REGIONS)


def model_label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def _target(output: dict) -> str:
    if output.get("class"):
        return str(output["class"])
    if "level" in output:
        view = " softmax" if output.get("view") == "softmax" else ""  # beside the sigmoid map of the same gate
        return f"{output.get('map', 'gate')} {output['level']}{view}"
    return ""


def _window(output: dict, where: str) -> tuple[float, float]:
    value = output.get("range", [0.0, 1.0])
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: range {value!r} is not two numbers") from None
    if not high > low:
        raise ManifestError(f"{where}: range {value!r} is empty")
    return low, high


def _overlay(output: dict, folder: Path, case_id: str, where: str) -> OverlaySpec:
    kind, model, target = output["kind"], str(output.get("model", "")), _target(output)
    low, high = _window(output, where)
    words = [case_id, model_label(model), KIND_LABELS[kind], target]
    return OverlaySpec(
        path=folder / output["path"], model=model, kind=kind, target=target,
        name=" ".join(w for w in words if w), colormap=str(output.get("colormap") or DEFAULT_COLORMAP),
        window=(low, high), threshold=low + HIDDEN_FRACTION * (high - low), blank=bool(output.get("empty", False)),
    )


def _segmentation(output: dict, folder: Path, case_id: str, where: str) -> SegmentationSpec:
    labels = output.get("labels")
    if not labels:
        raise ManifestError(f"{where}: a labels output must list its labels")
    segments = []
    for label in labels:
        value = int(label["value"])
        if value not in _TYPE_BY_LABEL:
            raise ManifestError(f"{where}: label value {value} is not a BraTS label (1, 2, 3 or 4)")
        color = tuple(float(c) for c in label["color"])
        if len(color) != 3 or not all(0.0 <= c <= 1.0 for c in color):
            raise ManifestError(f"{where}: colour {label['color']!r} is not three numbers in 0..1")
        segments.append(SegmentSpec(value, str(label["name"]), color, terminology_entry(value)))
    model = str(output.get("model", ""))
    return SegmentationSpec(folder / output["path"], model, f"{case_id} {model_label(model)} segmentation",
                            tuple(segments), bool(output.get("primary", False)))


def plan_nodes(manifest_path: str | Path) -> NodePlan:
    """Read a manifest and describe every node to create; ManifestError if it breaks the contract."""
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"cannot read {manifest_path}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{manifest_path} is not a {MANIFEST_FORMAT} manifest")
    folder = manifest_path.parent
    case_id = str(manifest.get("case_id") or "case")
    reference = manifest.get("reference") or {}
    segmentations, overlays, skipped = [], [], []
    for index, output in enumerate(manifest.get("outputs") or []):
        where = f"{manifest_path.name} output {index} ({output.get('path', '?')})"
        if "path" not in output or "kind" not in output:
            raise ManifestError(f"{where}: every output needs a path and a kind")
        if output["kind"] == "labels":
            segmentations.append(_segmentation(output, folder, case_id, where))
        elif output["kind"] in OVERLAY_KINDS:
            overlays.append(_overlay(output, folder, case_id, where))
        else:
            skipped.append(str(output["path"]))
    return NodePlan(
        case_id=case_id,
        reference_modality=str(reference.get("modality", "t1ce")),
        segmentations=tuple(sorted(segmentations, key=lambda spec: not spec.primary)),  # primary first
        overlays=tuple(sorted(overlays, key=lambda spec: spec.model != "ensemble")),
        metrics=dict(manifest.get("metrics") or {}),
        warnings=tuple(str(w) for w in manifest.get("warnings") or ()),
        skipped=tuple(skipped),
        quality=dict(manifest.get("quality") or {}),
        modality=dict(manifest.get("modality_importance") or {}),
    )
