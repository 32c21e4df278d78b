"""Slicer-free parts of the BraTSXAI module: everything it computes without Slicer, tested on a plain Python.

`BraTSXAI.py` only moves data between MRML nodes and these helpers: input naming, the command line and its
progress lines, the background process, the manifest's node descriptions, geometry and model agreement.
"""
