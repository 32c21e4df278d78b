"""The extension's CMake files: template fields, and an explicit list that names every file the module needs.

A library file added without its CMake line would be missing from the installed extension; this test fails first.
"""
from __future__ import annotations

import re
import struct
import sys
import zlib

import numpy as np

import slicer_module

ROOT = slicer_module.ROOT
sys.path.insert(0, str(ROOT / "Resources" / "Icons"))
import draw_icon  # noqa: E402


def cmake_lists(path) -> dict[str, list[str]]:
    """Every `set(NAME item item ...)` of a CMakeLists.txt, with ${MODULE_NAME} expanded."""
    text = re.sub(r"(^|\s)#[^\n]*", r"\1", path.read_text())  # comments, not the "#" inside a URL
    values = {}
    for name, body in re.findall(r"\bset\(\s*(\w+)\s+(.*?)\)", text, flags=re.S):
        items = re.findall(r'"[^"]*"|\S+', body)
        values[name] = [item.replace("${MODULE_NAME}", values.get("MODULE_NAME", ["?"])[0]) for item in items]
    return values


def files_under(folder, exclude=()) -> set[str]:
    return {
        str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and p.name not in exclude
    }


def test_every_library_file_is_listed():
    listed = set(cmake_lists(ROOT / "BraTSXAI" / "CMakeLists.txt")["LIBRARY_PYTHON_SCRIPTS"])
    present = files_under("BraTSXAILib")
    assert not present - listed, f"add to BraTSXAI/CMakeLists.txt LIBRARY_PYTHON_SCRIPTS: {sorted(present - listed)}"
    assert not listed - present, f"listed but absent: {sorted(listed - present)}"


def test_every_module_file_and_resource_is_listed():
    lists = cmake_lists(ROOT / "BraTSXAI" / "CMakeLists.txt")
    module = {f"BraTSXAI/{item}" for item in lists["MODULE_PYTHON_SCRIPTS"]}
    packages = set().union(*(files_under(f"BraTSXAI/{p}") for p in ("BraTSXAIHelpers", "BraTSXAIScene", "BraTSXAIGui")))
    assert module == {"BraTSXAI/BraTSXAI.py"} | packages
    resources = set(lists["SHARED_RESOURCES"])
    assert resources == files_under("Resources", exclude={"draw_icon.py"})  # the drawing script is not shipped


def test_module_cmake_builds_the_module_and_copies_the_rest_from_the_root():
    text = (ROOT / "BraTSXAI" / "CMakeLists.txt").read_text()
    assert re.search(r"slicerMacroBuildScriptedModule\(\s*NAME \$\{MODULE_NAME\}\s*SCRIPTS \$\{MODULE_PYTHON_SCRIPTS\}",
                     text)
    copy = re.search(r"ctkMacroCompilePythonScript\((.*?)\)\n", text, flags=re.S).group(1)
    for argument in ("SCRIPTS ${LIBRARY_PYTHON_SCRIPTS}", "RESOURCES ${SHARED_RESOURCES}",
                     "SOURCE_DIR ${PROJECT_ROOT_DIR}", "DESTINATION_DIR ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}",
                     "INSTALL_DIR ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}", "NO_INSTALL_SUBDIR"):
        assert argument in copy
    assert cmake_lists(ROOT / "BraTSXAI" / "CMakeLists.txt")["PROJECT_ROOT_DIR"] == ["${CMAKE_CURRENT_SOURCE_DIR}/.."]
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text


def test_extension_cmake_follows_the_template():
    text = (ROOT / "CMakeLists.txt").read_text()
    values = cmake_lists(ROOT / "CMakeLists.txt")
    for field in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL",
                  "EXTENSION_SCREENSHOTURLS"):
        assert values[field] and values[field][0].strip('"'), field
    assert values["EXTENSION_CATEGORY"] == ['"Segmentation"']
    assert values["EXTENSION_DEPENDS"] == ['"PyTorch"']
    assert values["EXTENSION_ICONURL"][0].endswith('Resources/Icons/BraTSXAI.png"')
    for line in ("project(BraTSXAI)", "find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                 "add_subdirectory(BraTSXAI)", "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
                 "include(${Slicer_EXTENSION_CPACK})"):
        assert line in text


def png_pixels(data: bytes) -> np.ndarray:
    """Pixels of an 8-bit RGBA PNG as draw_icon writes it (one IDAT chunk, no row filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 6)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8:start - 4])[0]
    rows = np.frombuffer(zlib.decompress(data[start:start + length]), np.uint8).reshape(height, 1 + 4 * width)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(height, width, 4)


def test_icon_is_the_drawn_128_pixel_png():
    pixels = png_pixels(slicer_module.ICON_FILE.read_bytes())
    assert pixels.shape == (128, 128, 4)
    drawn = draw_icon.draw()
    # the same picture, up to one grey level of floating-point rounding on another machine
    assert np.abs(pixels.astype(int) - drawn.astype(int)).max() <= 1, "run python Resources/Icons/draw_icon.py"
    assert pixels[64, 64, 3] == 255 and pixels[0, 0, 3] == 0  # opaque brain, transparent corners
