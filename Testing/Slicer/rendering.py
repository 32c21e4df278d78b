"""Offscreen views on the test scene (trame-slicer's SliceView and ThreeDView) and their pixels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import slicer
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
    """Fit the view to its volume layers, as Slicer's "fit to window" does, then move to one slice offset.

    The layers must be set first: FitSliceToAll keeps the default 250 mm field of view when the view shows none.
    """
    logic = view._logic
    logic.ResizeSliceNode(*SIZE)
    logic.FitSliceToAll(*SIZE)
    logic.SetSliceOffset(offset_mm)


def labels_under_pixels(view, labelNode) -> np.ndarray:
    """The label map's value under every pixel of a slice view (rows top first, like `capture`), 0 outside."""
    sliceNode = view._logic.GetSliceNode()
    width, height = SIZE
    x, y = np.meshgrid(np.arange(width, dtype=float), np.arange(height, dtype=float)[::-1])
    xy = np.stack([x.ravel(), y.ravel(), np.zeros(x.size), np.ones(x.size)])
    rasToIjk = vtk.vtkMatrix4x4()
    labelNode.GetRASToIJKMatrix(rasToIjk)
    xyToIjk = slicer.util.arrayFromVTKMatrix(rasToIjk) @ slicer.util.arrayFromVTKMatrix(sliceNode.GetXYToRAS())
    i, j, k = np.rint(xyToIjk @ xy)[:3].astype(int)
    labels = slicer.util.arrayFromVolume(labelNode)
    inside = (i >= 0) & (i < labels.shape[2]) & (j >= 0) & (j < labels.shape[1]) & (k >= 0) & (k < labels.shape[0])
    values = np.zeros(x.size, dtype=labels.dtype)
    values[inside] = labels[k[inside], j[inside], i[inside]]
    return values.reshape(height, width)


def threed_view(core, name: str = "1"):
    from trame_slicer.views import ThreeDView

    view = ThreeDView(core.scene, core.app_logic, name)
    view.render_window().SetSize(*SIZE)
    view.render()
    return view


def colour_mask(pixels: np.ndarray, colour, tolerance: int = 60) -> np.ndarray:
    return (np.abs(pixels.astype(int) - np.asarray(colour)).max(axis=-1) <= tolerance)
