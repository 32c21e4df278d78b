"""Explanations: the Grad-CAM family with segmentation targets, AttUNet attention maps, faithfulness metrics.

docs/explanations.md says what each map means, how the default layer was chosen, and how to read the numbers.
"""
from ..choices import DEFAULT_LAYER
from .attention import AttentionMap, attention_volumes, read_attention
from .cam import METHODS, BaseCAM, CAMResult, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, make_cam
from .display import COLORMAP, display_map
from .explain import Explanation, explain_attention, explain_gradcam
from .faithfulness import (cascading_randomisation, deletion_insertion, energy_pointing_game, rank_correlation,
                           triviality)
from .layers import PRESETS, candidate_layers, resolve_layer
from .targets import CLASSES, RegionTarget, make_targets, predicted_masks, truth_masks

__all__ = [
    "AttentionMap", "BaseCAM", "CAMResult", "CLASSES", "COLORMAP", "DEFAULT_LAYER", "Explanation", "GradCAM",
    "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "METHODS", "PRESETS", "RegionTarget", "attention_volumes",
    "candidate_layers", "cascading_randomisation", "deletion_insertion", "display_map", "energy_pointing_game",
    "explain_attention", "explain_gradcam", "make_cam", "make_targets", "predicted_masks", "rank_correlation",
    "read_attention", "resolve_layer", "triviality", "truth_masks",
]
