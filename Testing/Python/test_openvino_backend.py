"""The OpenVINO backend gives what PyTorch gives (probabilities within 1e-5 on untrained networks; on the bundled
models and a real case within 1e-4, the same labels), is converted once per weights file, never uses a damaged
conversion, and is refused in one line where it cannot run."""
import gzip
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_registry

from BraTSXAILib import openvino_backend
from BraTSXAILib.errors import InputError
from BraTSXAILib.inference import predict
from BraTSXAILib.io import load_case
from BraTSXAILib.models import build_model
from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from BraTSXAILib.postprocess import segment_probabilities
from BraTSXAILib.preprocess import preprocess

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="the [openvino] extra")
DATA = Path(os.environ.get("BRATSXAI_DATA") or Path(__file__).resolve().parents[2].parent / "shared/data")
REAL_CASE = DATA / "brats/labelled/Brats18_CBICA_APR_1"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(openvino_backend.CACHE_ENV, str(tmp_path / "openvino"))
    return tmp_path / "openvino"


@pytest.mark.parametrize("architecture", ["unet", "resunet", "attunet"])
def test_openvino_matches_torch_on_an_odd_sized_volume(architecture, cache):
    torch.manual_seed(1)
    network = build_model(architecture, 8).eval()
    array = np.random.default_rng(0).standard_normal((4, 21, 30, 19)).astype(np.float32)  # padded to 32 inside
    compiled = openvino_backend.compile_network("0" * 32, "float32", 8, lambda: network)
    expected = predict(network, array, "cpu", "float32", sliding_window=False)
    got = predict(compiled, array, "cpu", "float32", sliding_window=False)
    assert got.shape == expected.shape == (3, 21, 30, 19)
    assert np.abs(got - expected).max() <= 1e-5
    other = np.random.default_rng(1).standard_normal((4, 40, 24, 33)).astype(np.float32)  # one file, any shape
    assert np.abs(predict(compiled, other, "cpu", "float32", sliding_window=False)
                  - predict(network, other, "cpu", "float32", sliding_window=False)).max() <= 1e-5


def test_conversion_is_cached_and_a_damaged_cache_is_converted_again(cache, monkeypatch):
    network = build_model("unet", 8).eval()
    header = {"architecture": "unet", "width": 8, "spacing": None, "normalisation": "zscore", "patch_size": None}
    key = openvino_backend.cache_key("a" * 64, "unet", 8)
    openvino_backend.compile_network(key, "float32", 8, lambda: network, header)
    (folder,) = [path for path in cache.iterdir() if not path.name.startswith(".")]
    record = json.loads((folder / "record.json").read_text())
    assert set(record["files"]) == {"model.xml", "model.bin"}
    assert openvino_backend.cached_graph(key) == (folder / "model.xml", header)
    conversions = []
    real_convert = openvino_backend._convert
    monkeypatch.setattr(openvino_backend, "_convert", lambda *a: conversions.append(a) or real_convert(*a))
    openvino_backend.compile_network(key, "float32", 8, lambda: network, header)
    assert conversions == []  # the cached file was used
    weights = folder / "model.bin"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # same size, other values
    assert openvino_backend.cached_graph(key) is None  # a damaged graph describes nothing
    compiled = openvino_backend.compile_network(key, "float32", 8, lambda: network, header)
    assert len(conversions) == 1
    array = np.random.default_rng(2).standard_normal((4, 16, 16, 16)).astype(np.float32)
    assert np.abs(predict(compiled, array, "cpu", "float32") - predict(network, array, "cpu", "float32")).max() <= 1e-4
    assert [path.name for path in cache.iterdir()] == [folder.name]  # no temporary folder left


def test_backend_choice_and_its_refusals(monkeypatch):
    cpu, cuda = torch.device("cpu"), "cuda"  # a torch.device or its name
    assert openvino_backend.resolve_backend("auto", cpu) == "openvino"
    assert openvino_backend.resolve_backend("auto", cuda) == "torch"
    assert openvino_backend.resolve_backend("torch", cpu) == "torch"
    with pytest.raises(InputError, match="CPU only"):
        openvino_backend.resolve_backend("openvino", cuda)
    with pytest.raises(InputError, match="unknown backend"):
        openvino_backend.resolve_backend("tensorrt", cpu)
    monkeypatch.setattr(openvino_backend, "openvino_installed", lambda: False)
    assert openvino_backend.resolve_backend("auto", cpu) == "torch"
    with pytest.raises(InputError, match="not installed") as error:
        openvino_backend.resolve_backend("openvino", cpu)
    assert "brats-xai[openvino]" in error.value.hint


def test_segment_records_the_backend_and_its_labels_equal_torch(tmp_path, cache):
    registry = tiny_registry(tmp_path / "models", ["unet", "attunet"])
    case = write_phantom(tmp_path / "case", "Phantom", shape=(28, 32, 28), seed=2)
    models = load_models("all", "cpu", registry)
    results = {}
    for backend in ("torch", "openvino"):
        manifest = segment_case(case, tmp_path / backend, models, SegmentOptions(precision="float32",
                                                                                 backend=backend))
        assert manifest["backend"] == backend and manifest["options"]["backend"] == backend
        results[backend] = {entry["path"]: (tmp_path / backend / entry["path"]).read_bytes()
                            for entry in manifest["outputs"] if entry["kind"] == "labels"}
    assert results["torch"] == results["openvino"]  # the label files are the same, byte for byte


@pytest.mark.skipif(not REAL_CASE.is_dir(), reason="needs the real BraTS cases in ../shared/data")
def test_bundled_models_give_the_same_labels_on_a_real_case_with_either_backend(cache):
    case = load_case(REAL_CASE)
    for loaded in load_models("all", "cpu"):
        array, geometry = preprocess(case, loaded.info.spacing, loaded.info.normalisation)
        compiled = loaded.openvino("float32")
        by_torch = predict(loaded.network, array, "cpu", "float32", sliding_window=False)
        by_openvino = predict(compiled, array, "cpu", "float32", sliding_window=False)
        assert np.abs(by_torch - by_openvino).max() <= 1e-4, loaded.info.id  # measured 3e-6 to 5e-6
        _, torch_labels = segment_probabilities(by_torch, geometry, loaded.info.rule)
        _, openvino_labels = segment_probabilities(by_openvino, geometry, loaded.info.rule)
        assert np.array_equal(torch_labels, openvino_labels), loaded.info.id


def test_a_segmentation_taken_from_the_grad_cam_pass_prepares_no_openvino_network(tmp_path, cache):
    registry = tiny_registry(tmp_path / "models", ["unet"])
    case = write_phantom(tmp_path / "case", "Phantom", shape=(28, 32, 28), seed=2)
    models = load_models("all", "cpu", registry)
    shared = segment_case(case, tmp_path / "shared", models, SegmentOptions(
        precision="float32", backend="openvino", explain=("gradcam",), layer="decoder.1"))
    assert "inference and explain unet" in shared["timings"] and "prepare unet" not in shared["timings"]
    assert not models[0].compiled  # nothing was converted or compiled
    with_modality = segment_case(case, tmp_path / "modality", models, SegmentOptions(
        precision="float32", backend="openvino", explain=("gradcam", "modality"), layer="decoder.1"))
    assert "prepare unet" in with_modality["timings"] and "float32" in models[0].compiled


TORCH_FREE_JOB = """
import sys
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
models = load_models("all", "cpu", sys.argv[1])
manifest = segment_case(sys.argv[2], sys.argv[3], models, SegmentOptions(explain=("uncertainty", "modality")))
assert manifest["backend"] == "openvino", manifest["backend"]
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def test_a_job_from_cached_conversions_never_imports_torch(tmp_path, cache):
    """Segmenting on a CPU with models whose OpenVINO conversion is cached runs without torch (its 1.5–2.5 s
    import), and gives the same files as the run that converted them."""
    import subprocess
    import sys

    registry = tiny_registry(tmp_path / "models", ["unet", "attunet"])
    case = write_phantom(tmp_path / "case", "Phantom", shape=(28, 32, 28), seed=2)
    env = {**os.environ, openvino_backend.CACHE_ENV: str(cache)}
    runs = [subprocess.run([sys.executable, "-c", TORCH_FREE_JOB, str(registry), str(case), str(tmp_path / name)],
                           capture_output=True, text=True, env=env, check=True).stdout.split("\n")[-2]
            for name in ("first", "second")]
    assert runs == ["torch imported", "torch not imported"]  # the first run converts the networks
    outputs = json.loads((tmp_path / "second" / "manifest.json").read_text())["outputs"]
    assert len(outputs) == 15  # 2 networks and the ensemble: labels and 3 probabilities each; 3 uncertainty maps
    shares = json.loads((tmp_path / "second" / "manifest.json").read_text())["modality_importance"]
    assert set(shares) == {"unet", "attunet"}  # modality attribution ran without torch too
    for entry in outputs:  # the same voxels and header (gzip's own header holds the time of writing)
        first, second = (gzip.decompress((tmp_path / run / entry["path"]).read_bytes()) for run in ("first", "second"))
        assert first == second, entry["path"]


WEIGHTS_FILE_JOB = """
import sys
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
models = load_models(sys.argv[1], "cpu")
manifest = segment_case(sys.argv[2], sys.argv[3], models, SegmentOptions())
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def test_a_weights_file_given_by_path_runs_from_its_cached_conversion_with_its_own_rule(tmp_path, cache):
    """`--model file.pt` no longer imports torch once the file's conversion is cached; the file's own label rule
    (recorded with the conversion) still makes the labels."""
    import subprocess
    import sys

    import torch

    from BraTSXAILib.postprocess import LabelRule

    registry = tiny_registry(tmp_path / "models", ["unet"])
    payload = torch.load(next(registry.parent.glob("*.pt")), weights_only=True)
    rule = LabelRule(thresholds={"WT": 0.3, "TC": 0.6, "ET": 0.7})
    weights = tmp_path / "mine.pt"
    torch.save({**payload, "labels": rule.to_dict()}, weights)
    case = write_phantom(tmp_path / "case", "Phantom", shape=(28, 32, 28), seed=2)
    env = {**os.environ, openvino_backend.CACHE_ENV: str(cache)}
    runs = [subprocess.run([sys.executable, "-c", WEIGHTS_FILE_JOB, str(weights), str(case), str(tmp_path / name)],
                           capture_output=True, text=True, env=env, check=True).stdout.split("\n")[-2]
            for name in ("first", "second")]
    assert runs == ["torch imported", "torch not imported"]
    manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("first", "second")]
    assert manifests[0]["models"] == manifests[1]["models"]
    assert manifests[1]["models"]["unet"]["labels"] == rule.to_dict() and manifests[1]["backend"] == "openvino"
    for entry in manifests[1]["outputs"]:
        first, second = (gzip.decompress((tmp_path / run / entry["path"]).read_bytes()) for run in ("first", "second"))
        assert first == second, entry["path"]
