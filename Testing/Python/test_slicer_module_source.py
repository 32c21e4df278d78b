"""The Slicer module without Slicer: it compiles for Python 3.9, every widget it names is in the .ui file, the
parameter node and the .ui bind the same names, and the library and helpers never import Slicer."""
from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET

import pytest

import slicer_module

SCENE_DIR = slicer_module.MODULE_DIR / "BraTSXAIScene"  # Slicer and VTK, no Qt
GUI_DIR = slicer_module.MODULE_DIR / "BraTSXAIGui"  # Qt
SLICER_ONLY = {"slicer", "qt", "ctk", "vtk", "SampleData", "PyTorchUtils"}
QT_WIDGETS = {"QWidget", "QLabel", "QPushButton", "QCheckBox", "QComboBox", "QProgressBar", "QPlainTextEdit"}


def ui_tree() -> ET.Element:
    return ET.parse(slicer_module.UI_FILE).getroot()


def ui_widgets() -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in ui_tree().iter("widget")}


def module_source() -> str:
    return slicer_module.MODULE_FILE.read_text(encoding="utf-8")


def python_files():
    files = [slicer_module.MODULE_FILE, *sorted(slicer_module.HELPERS_DIR.glob("*.py"))]
    return files + sorted((slicer_module.ROOT / "BraTSXAILib").rglob("*.py"))


MODULE_FILES = [slicer_module.MODULE_FILE, *sorted(slicer_module.HELPERS_DIR.glob("*.py")),
                *sorted(SCENE_DIR.glob("*.py")), *sorted(GUI_DIR.glob("*.py"))]
QT_ONLY = {"qt", "ctk", "SampleData", "PyTorchUtils", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper",
           "BraTSXAIGui", "BraTSXAI"}


def imported_names(path) -> set[str]:
    """Every module an import statement names (top level and dotted), wherever it stands in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names |= {".".join(parts[:i + 1]) for i in range(len(parts))}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            names |= {".".join(parts[:i + 1]) for i in range(len(parts))}
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(slicer_module.MODULE_DIR)))
def test_module_files_stay_small(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400


@pytest.mark.parametrize("path", sorted(SCENE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_scene_code_and_logic_import_no_qt(path):
    names = imported_names(path)
    assert not names & QT_ONLY, f"{path.name} imports {sorted(names & QT_ONLY)}"
    allowed = {"slicer", "vtk", "numpy", "BraTSXAIHelpers", "BraTSXAILib", "SimpleITK", "__future__"}
    top = {n.split(".")[0] for n in names}
    stdlib = set(__import__("sys").stdlib_module_names)
    assert top <= allowed | stdlib, f"{path.name} imports {sorted(top - allowed - stdlib)}"


def test_the_static_check_sees_a_qt_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic\n")
    assert "slicer.ScriptedLoadableModule" in imported_names(sample)


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(slicer_module.MODULE_DIR)))
def test_compiles_for_slicer_python_39(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path), feature_version=(3, 9))  # no match statements, no 3.10+ syntax
    compile(tree, str(path), "exec")
    annotated = any(isinstance(n, ast.AnnAssign) or (isinstance(n, ast.FunctionDef) and n.returns is not None)
                    for n in ast.walk(tree))
    future = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    has_future = any(alias.name == "annotations" for n in future for alias in n.names)
    assert has_future or not annotated, "X | Y annotations need `from __future__ import annotations` on 3.9"


def test_module_has_the_four_slicer_classes_and_a_parameter_node():
    body = ast.parse(module_source()).body
    classes = {n.name for n in body if isinstance(n, ast.ClassDef)}
    imported = {a.asname or a.name for n in body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"BraTSXAI", "BraTSXAIWidget", "BraTSXAILogic", "BraTSXAIParameterNode"} <= classes
    assert "BraTSXAITest" in imported  # Slicer looks the test class up in the module's namespace


def test_every_widget_the_code_uses_is_in_the_ui_file():
    used = set(re.findall(r"self\.ui\.(\w+)", module_source()))
    assert used, "the module should reach its widgets through self.ui"
    missing = used - set(ui_widgets())
    assert not missing, f"BraTSXAI.py uses widgets that BraTSXAI.ui lacks: {sorted(missing)}"


def test_parameter_node_fields_and_ui_bindings_match():
    tree = ast.parse(module_source())
    [node_class] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BraTSXAIParameterNode"]
    fields = {n.target.id for n in node_class.body if isinstance(n, ast.AnnAssign)}
    bound = {}
    for widget in ui_tree().iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget.get("name")
    assert set(bound) == fields, "every parameter is shown by exactly one widget, and every binding is a parameter"
    assert len(set(bound.values())) == len(bound)


def test_ui_file_is_complete():
    root = ui_tree()
    widgets = ui_widgets()
    assert root.findtext("class") == "BraTSXAI" and widgets["BraTSXAI"] == "qMRMLWidget"
    custom = {c.findtext("class") for c in root.iter("customwidget")}
    assert set(widgets.values()) <= custom | QT_WIDGETS | {"QWidget"}, "undeclared widget class"
    connections = root.find("connections")
    receivers = {c.findtext("receiver") for c in connections}
    mrml_widgets = {name for name, cls in widgets.items() if cls in ("qMRMLNodeComboBox", "qMRMLTableView")}
    assert receivers == mrml_widgets, "every MRML widget must get the scene from the module widget"
    assert all(c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)" for c in connections)
    for name in ("t1Selector", "t1ceSelector", "t2Selector", "flairSelector"):
        assert widgets[name] == "qMRMLNodeComboBox"


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(slicer_module.ROOT)))
def test_library_and_helpers_never_import_slicer(path):
    if path == slicer_module.MODULE_FILE:
        pytest.skip("the module itself is the Slicer side")
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & SLICER_ONLY
