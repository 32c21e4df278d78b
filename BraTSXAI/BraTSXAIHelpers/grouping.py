"""The Results panel's order: heat maps grouped by model, then kind, then region, the primary model first.

With three networks and the ensemble a run gives about 30 maps; a tree of model -> kind -> region keeps them
findable where one flat list of checkboxes does not.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from .manifest import KIND_LABELS, OVERLAY_KINDS, model_label

MODEL_ORDER = ("ensemble", "unet", "resunet", "attunet")
REGION_ORDER = ("WT", "TC", "ET")


def _rank(value: str, order: Sequence[str]) -> int:
    return order.index(value) if value in order else len(order)


def group_overlays(specs: Iterable, primary: str = "") -> list[tuple[str, list[tuple[str, list]]]]:
    """[(model label, [(kind label, [spec, ...]), ...]), ...]: `primary` first, then ensemble, UNet, ...

    Within a kind, WT, TC, ET come first in that order, then other targets (attention levels) by name.
    """
    specs = list(specs)
    models = sorted({s.model for s in specs}, key=lambda m: (m != primary, _rank(m, MODEL_ORDER), m))
    groups = []
    for model in models:
        mine = [s for s in specs if s.model == model]
        kinds = sorted({s.kind for s in mine}, key=lambda k: _rank(k, OVERLAY_KINDS))
        groups.append((model_label(model), [
            (KIND_LABELS.get(kind, kind),
             sorted((s for s in mine if s.kind == kind), key=lambda s: (_rank(s.target, REGION_ORDER), s.target)))
            for kind in kinds]))
    return groups


def first_explanation(groups) -> object | None:
    """The map shown as soon as results arrive: the first Grad-CAM in panel order (the ensemble has none, so
    the first network's), else the first map."""
    flat = [spec for _, kinds in groups for _, specs in kinds for spec in specs]
    return next((s for s in flat if s.kind == "gradcam"), flat[0] if flat else None)
