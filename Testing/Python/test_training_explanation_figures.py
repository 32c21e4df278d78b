"""The study's Figs. 9–11 re-drawn from a result folder: ET maps per network beside its labels, attention gates."""
from __future__ import annotations

import pytest
from tiny_models import tiny_registry

from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from training import explanation_figures


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    registry = tiny_registry(tmp_path_factory.mktemp("models"), ["resunet", "attunet"])
    case = write_phantom(tmp_path_factory.mktemp("case"), "Phantom", shape=(26, 30, 26), seed=5)
    out = tmp_path_factory.mktemp("result")
    segment_case(case, out, load_models("all", "cpu", registry),
                 SegmentOptions(explain=("gradcam", "attention"), precision="float32", layer="decoder.1"))
    return out, case


def _pixels(path):
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]


def test_the_figures_draw_each_networks_et_map_and_the_four_gates(result, tmp_path):
    out, case = result
    assert explanation_figures.main([str(out), "--out", str(tmp_path), "--truth",
                                     str(case / "Phantom_seg.nii.gz")]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["figure10_attunet_et.png", "figure11_attunet_gates.png", "figure9_resunet_et.png"]
    for name in names:
        pixels = _pixels(tmp_path / name)
        if "_et" in name:  # the map column, not the labels beside it
            pixels = pixels[:, pixels.shape[1] // 2:]
        hot = (pixels[..., 0] > 0.5) & (pixels[..., 2] < 0.5)  # Inferno's orange and yellow: a map is drawn
        assert hot.sum() > 50, name


def test_a_network_without_a_faithful_et_map_is_drawn_as_a_note_not_a_map(result, tmp_path):
    out, _ = result
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    kept = [e for e in manifest["outputs"] if not (e["kind"] == "gradcam" and e["model"] == "resunet")]
    folder = tmp_path / "edited"
    folder.mkdir()
    for entry in kept:
        (folder / entry["path"]).write_bytes((out / entry["path"]).read_bytes())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "outputs": kept}))
    explanation_figures.main([str(folder), "--out", str(tmp_path / "figures")])
    pixels = _pixels(tmp_path / "figures" / "figure9_resunet_et.png")
    right = pixels[:, pixels.shape[1] // 2:]
    assert not ((right[..., 0] > 0.5) & (right[..., 2] < 0.5)).any()  # no heat where the map would be


def test_a_folder_without_a_manifest_is_one_line(tmp_path, capsys):
    assert explanation_figures.main([str(tmp_path), "--out", str(tmp_path / "figures")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()
