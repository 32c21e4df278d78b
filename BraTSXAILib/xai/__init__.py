"""Explanations: the Grad-CAM family with segmentation targets, AttUNet attention maps, faithfulness metrics.

docs/explanations.md says what each map means, how the default layer was chosen, and how to read the numbers.
Names are imported on first use (PEP 562), so that a torch-free part (`xai.modality`, which runs its passes
through whatever network it is given) does not import torch with the rest.
"""
from importlib import import_module

_HOMES = {
    "DEFAULT_LAYER": "..choices",
    "AttentionMap": ".attention", "attention_volumes": ".attention", "read_attention": ".attention",
    "METHODS": ".cam", "BaseCAM": ".cam", "CAMResult": ".cam", "GradCAM": ".cam", "GradCAMPlusPlus": ".cam",
    "HiResCAM": ".cam", "LayerCAM": ".cam", "make_cam": ".cam",
    "COLORMAP": ".display", "display_map": ".display",
    "Explanation": ".explain", "explain_attention": ".explain", "explain_gradcam": ".explain",
    "cascading_randomisation": ".faithfulness", "deletion_insertion": ".faithfulness",
    "energy_pointing_game": ".faithfulness", "rank_correlation": ".faithfulness", "triviality": ".faithfulness",
    "PRESETS": ".layers", "candidate_layers": ".layers", "resolve_layer": ".layers",
    "CLASSES": ".targets", "RegionTarget": ".targets", "make_targets": ".targets", "predicted_masks": ".targets",
    "truth_masks": ".targets",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name], __name__), name)
