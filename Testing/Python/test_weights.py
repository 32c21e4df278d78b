"""Weights registry: model selection, file lookup, sha256 check, weights_only loading and its error messages."""
import json
import shutil

import pytest
import torch
from tiny_models import WIDTH, tiny_entry, tiny_registry, write_registry

from BraTSXAILib.errors import InputError
from BraTSXAILib.models import build_model
from BraTSXAILib.postprocess import LabelRule
from BraTSXAILib.weights import (
    BUNDLED_DIR,
    CACHE_ENV,
    INSTALLED_MODELS,
    REGISTRY_ENV,
    bundled_models_dir,
    load_model,
    load_registry,
    read_weights,
    resolve_models,
    save_weights,
    sha256_of,
)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    path = tiny_registry(tmp_path / "models", ["unet", "attunet"], spacing=[1.0, 1.0, 1.0])
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return path


def test_bundled_registry_is_valid():
    entries = load_registry(BUNDLED_DIR / "registry.json")
    for entry in entries:
        assert entry.sha256 and (entry.file or entry.url)


def test_bundled_models_are_found_in_the_checkout_or_where_a_wheel_installed_them(tmp_path):
    source, environment, user = tmp_path / "Resources" / "Models", tmp_path / "venv", tmp_path / "home" / ".local"
    prefixes = (environment, user)
    assert bundled_models_dir(source, prefixes) == source  # nowhere: name the checkout's folder
    (user / INSTALLED_MODELS).mkdir(parents=True)
    (user / INSTALLED_MODELS / "registry.json").write_text("{}")
    assert bundled_models_dir(source, prefixes) == user / INSTALLED_MODELS
    (environment / INSTALLED_MODELS).mkdir(parents=True)
    (environment / INSTALLED_MODELS / "registry.json").write_text("{}")
    assert bundled_models_dir(source, prefixes) == environment / INSTALLED_MODELS
    source.mkdir(parents=True)
    (source / "registry.json").write_text("{}")
    assert bundled_models_dir(source, prefixes) == source


def test_selectors_pick_registry_defaults(registry):
    assert resolve_models("unet") == ["unet-tiny-w8"]
    assert resolve_models("all") == ["unet-tiny-w8", "attunet-tiny-w8"]
    assert resolve_models("attunet-tiny-w8") == ["attunet-tiny-w8"]
    with pytest.raises(InputError, match="no trained weights are installed for resunet"):
        resolve_models("resunet")
    with pytest.raises(InputError, match="unknown model 'vnet'"):
        resolve_models("vnet")


def test_default_flag_wins_over_order(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    first = tiny_entry(folder, "unet", name="unet-a") | {"default": False}
    second = tiny_entry(folder, "unet", seed=1, name="unet-b")
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(folder, [first, second])))
    assert resolve_models("unet") == ["unet-b"]


def test_empty_registry_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(tmp_path, [])))
    with pytest.raises(InputError, match="no trained weights are installed for unet") as error:
        resolve_models("unet")
    assert "--model path/to/weights.pt" in error.value.hint
    with pytest.raises(InputError, match="no trained weights are installed"):
        resolve_models("all")


def test_load_round_trips_the_weights(registry):
    model, info = load_model("unet-tiny-w8")
    torch.manual_seed(0)
    original = build_model("unet", WIDTH)
    for name, tensor in original.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert not model.training
    assert (info.architecture, info.width, info.spacing, info.patch_size) == ("unet", WIDTH, (1.0, 1.0, 1.0), (32, 32, 32))
    assert info.sha256 == sha256_of(registry.parent / "unet-tiny-w8.pt")
    assert info.manifest_entry() == {"id": "unet-tiny-w8", "sha256": info.sha256, "architecture": "unet", "width": 8,
                                     "labels": LabelRule().to_dict()}


def test_file_is_found_in_the_user_cache(registry, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.move(registry.parent / "unet-tiny-w8.pt", cache / "unet-tiny-w8.pt")
    _, info = load_model("unet-tiny-w8")
    assert info.path == cache / "unet-tiny-w8.pt"


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    entry = tiny_entry(folder, "resunet")
    (folder / entry.pop("file")).unlink()
    entry["url"] = "https://example.org/weights/resunet-tiny-w8.pt"
    monkeypatch.setenv(REGISTRY_ENV, str(write_registry(folder, [entry])))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(InputError, match="not on this computer") as error:
        load_model("resunet-tiny-w8")
    assert entry["url"] in error.value.hint and str(tmp_path / "cache" / "resunet-tiny-w8.pt") in error.value.hint


def test_sha256_mismatch_is_refused(registry):
    path = registry.parent / "attunet-tiny-w8.pt"
    save_weights(build_model("attunet", WIDTH), path, "attunet")  # another initialisation, another hash
    with pytest.raises(InputError, match="damaged or a different version") as error:
        load_model("attunet-tiny-w8")
    assert error.value.path == str(path)


def test_registry_and_file_must_agree(registry):
    data = json.loads(registry.read_text())
    data["models"][0]["width"] = 16
    registry.write_text(json.dumps(data))
    with pytest.raises(InputError, match="width 8, the registry says unet of width 16"):
        load_model("unet-tiny-w8")


@pytest.mark.parametrize("normalisation", ["zscore", "minmax", "minmax-crop"])
def test_registry_and_file_must_agree_on_every_normalisation(tmp_path, normalisation):
    """Each named normalisation loads as itself, and a registry naming another one is refused."""
    name = f"unet-{normalisation}"
    sha = save_weights(build_model("unet", WIDTH), tmp_path / f"{name}.pt", "unet", normalisation=normalisation)
    entry = {"id": name, "architecture": "unet", "width": WIDTH, "file": f"{name}.pt", "sha256": sha}
    registry = write_registry(tmp_path, [{**entry, "normalisation": normalisation}])
    assert load_model(name, registry=registry)[1].normalisation == normalisation
    other = "zscore" if normalisation != "zscore" else "minmax-crop"
    registry = write_registry(tmp_path, [{**entry, "normalisation": other}])
    with pytest.raises(InputError, match=f"expects {normalisation} normalisation, the registry says {other}"):
        load_model(name, registry=registry)


def test_explicit_path_needs_no_registry(tmp_path):
    path = tmp_path / "mine.pt"
    sha = save_weights(build_model("resunet", WIDTH), path, "resunet", spacing=(2.0, 2.0, 2.0))
    assert resolve_models(str(path)) == [str(path)]
    model, info = load_model(path)
    assert (info.id, info.architecture, info.spacing, info.sha256) == ("mine", "resunet", (2.0, 2.0, 2.0), sha)


class Payload:
    """Anything that is not a tensor or plain container: weights_only=True must refuse to unpickle it."""


def test_files_with_code_or_garbage_are_refused(tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save({"state_dict": {}, "architecture": "unet", "width": 8, "extra": Payload()}, pickled)
    with pytest.raises(InputError, match="cannot open the weights file"):
        read_weights(pickled)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot open the weights file"):
        load_model(garbage)
    plain = tmp_path / "plain.pt"
    torch.save(build_model("unet", WIDTH).state_dict(), plain)
    with pytest.raises(InputError, match="not a BraTSXAI weights dict"):
        load_model(plain)
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "absent.pt")


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "swapped.pt"
    torch.save({"state_dict": build_model("unet", WIDTH).state_dict(), "architecture": "attunet", "width": WIDTH}, path)
    with pytest.raises(InputError, match=r"do not fit architecture attunet \(width 8\)"):
        load_model(path)


def test_malformed_registry(tmp_path, monkeypatch):
    path = tmp_path / "registry.json"
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    path.write_text("{not json")
    with pytest.raises(InputError, match="not readable JSON"):
        resolve_models("unet")
    path.write_text(json.dumps({"format": "brats-xai-registry/1", "models": [{"id": "x", "architecture": "unet"}]}))
    with pytest.raises(InputError, match="lacks width, sha256"):
        load_registry()
