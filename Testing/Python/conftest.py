"""Converted OpenVINO networks go to a folder of this test session, not the user's cache (subprocesses inherit it)."""
import os
import tempfile

os.environ.setdefault("BRATSXAI_OPENVINO_CACHE", tempfile.mkdtemp(prefix="brats-xai-openvino-"))
