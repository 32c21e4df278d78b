"""Offscreen views on the test scene (trame-slicer's SliceView and ThreeDView) and their pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import vtk
from vtk.util.numpy_support import vtk_to_numpy

SIZE = (360, 360)


def capture(view, path: Path) -> np.ndarray:
    """Render, write a PNG and return the pixels as (rows, columns, RGB), top row first."""
    view.render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(view.render_window())
    grab.ReadFrontBufferOff()
    grab.Update()
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    image = grab.GetOutput()
    width, height, _ = image.GetDimensions()
    pixels = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)[..., :3]
    return pixels[::-1]


def slice_view(core, name: str = "Screenshot"):
    """A slice view of its own: the core's Red/Yellow/Green nodes belong to logics without a render window."""
    from trame_slicer.views import SliceView

    view = SliceView(core.scene, core.app_logic, name)
    view.render_window().SetSize(*SIZE)
    view.render()
    return view


def fit_slice(view, offset_mm: float) -> None:
    """Fit the background volume into the window (whose size the slice node is told first), at one offset."""
    logic = view._logic
    logic.ResizeSliceNode(*SIZE)
    logic.FitSliceToBackground()
    logic.SetSliceOffset(offset_mm)


def threed_view(core, name: str = "1"):
    from trame_slicer.views import ThreeDView

    view = ThreeDView(core.scene, core.app_logic, name)
    view.render_window().SetSize(*SIZE)
    view.render()
    return view


def colour_mask(pixels: np.ndarray, colour, tolerance: int = 60) -> np.ndarray:
    return (np.abs(pixels.astype(int) - np.asarray(colour)).max(axis=-1) <= tolerance)
