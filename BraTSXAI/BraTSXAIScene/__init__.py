"""The module's Slicer side without Qt: volumes to files, a run in the background, a manifest to MRML nodes.

Everything here imports only slicer, vtk, numpy and BraTSXAIHelpers (Testing/Python/test_slicer_module_source.py
checks it), so it runs on Slicer's core libraries alone (the slicer-core wheel); Testing/Slicer runs it there.
The widget in BraTSXAI.py owns every dialog and widget; it hands this code callables where a question is needed.
"""
