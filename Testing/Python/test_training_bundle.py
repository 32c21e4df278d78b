"""`training.bundle` end to end on tiny phantoms: trains two networks, calibrates, publishes into an empty
registry, evaluates, writes the model card; a broken case is reported and left out; a resumed bundle retrains
nothing."""
from __future__ import annotations

import csv
import json
import shutil

import pytest

from BraTSXAILib.phantom import write_phantom
from BraTSXAILib.pipeline import SegmentOptions, load_models, segment_case
from BraTSXAILib.weights import load_registry, sha256_of
from training import bundle, quality_stress
from training.model_card import BEGIN, END

TINY = {"width": 8, "spacing": [3.0, 3.0, 3.0], "normalisation": "zscore", "patch_size": [16, 16, 16],
        "sampling": "tumour", "patches_per_case": 2, "epochs": 1, "seed": 3, "selection": "dice"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bundle")
    for seed in range(4):
        write_phantom(root / "data", f"Phantom{seed}", seed=seed, shape=(40, 40, 40), spacing=(1.5, 1.5, 1.5))
    for name in ("Missing", "Truncated"):
        shutil.copytree(root / "data" / "Phantom0", root / "data" / name)
        for path in (root / "data" / name).iterdir():
            path.rename(path.with_name(path.name.replace("Phantom0", name)))
    (root / "data" / "Missing" / "Missing_t2.nii.gz").unlink()
    truncated = root / "data" / "Truncated" / "Truncated_flair.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[:200])
    split = {"train": ["Phantom0", "Phantom1", "Missing", "Truncated"], "validation": ["Phantom2", "Phantom3"],
             "test": []}
    (root / "split.json").write_text(json.dumps(split))
    configs = []
    for architecture in ("unet", "attunet"):
        configs.append(root / f"tiny_{architecture}.json")
        configs[-1].write_text(json.dumps({**TINY, "architecture": architecture}))
    models = root / "models"
    models.mkdir()
    (models / "MODEL_CARD.md").write_text(f"# Card\n\nprose before\n\n{BEGIN}\nold\n{END}\n\nprose after\n"
                                          "<!-- training:begin -->\n<!-- training:end -->\n")
    argv = ["--data", str(root / "data"), "--out", str(root / "runs"), "--configs", *map(str, configs),
            "--split", str(root / "split.json"), "--models-dir", str(models), "--tag", "tiny", "--device", "cpu",
            "--docs", str(root / "docs")]
    assert bundle.main(argv) == 0
    return {"root": root, "models": models, "argv": argv}


def test_bundle_publishes_checked_weights_rules_and_an_ensemble(built, monkeypatch):
    models = built["models"]
    monkeypatch.setenv("BRATSXAI_REGISTRY", str(models / "registry.json"))
    entries = {entry.id: entry for entry in load_registry(models / "registry.json")}
    assert sorted(entries) == ["attunet-tiny-3mm-w8", "unet-tiny-3mm-w8"]
    for entry in entries.values():
        assert entry.sha256 == sha256_of(models / entry.file)
        assert set(entry.rule.thresholds) == {"WT", "TC", "ET"} and "dice_WT" in entry.validation
    registry = json.loads((models / "registry.json").read_text())
    assert registry["models"][0]["training"]["command"].startswith("python -m training.bundle")
    assert registry["models"][0]["training"]["init"] is None
    [ensemble] = registry["ensembles"]
    assert sorted(ensemble["members"]) == sorted(entries) and "dice_ET" in ensemble["validation"]
    assert set(ensemble["quality"]) == {"WT", "TC", "ET"} and all(len(v) == 2 for v in ensemble["quality"].values())
    assert not list(models.glob("*.tmp*"))


def test_bundle_chooses_explanation_defaults_per_network_and_region(built):
    registry = json.loads((built["models"] / "registry.json").read_text())
    for entry in registry["models"]:
        assert set(entry["explain"]) == {"WT", "TC", "ET"}
        assert all(("layer" in c and "method" in c) or "none" in c for c in entry["explain"].values())
    text = (built["root"] / "docs" / "explanations.md").read_text()
    assert "Made by `python -m training.bundle" in text and "| `unet-tiny-3mm-w8` | WT | bottleneck |" in text


def test_bundle_measures_the_uncertainty_and_writes_its_docs_section(built):
    text = (built["root"] / "docs" / "uncertainty.md").read_text()
    summary = json.loads((built["root"] / "runs" / "uncertainty" / "uncertainty.json").read_text())
    assert summary["cases"] == ["Phantom2", "Phantom3"] and "Made by `python -m training.bundle" in text
    auroc = summary["flips"]["0"]["auroc"]["WT"]
    assert "| 0 | " in text and (f"{auroc:.3f}" in text or auroc != auroc)
    stress = json.loads((built["root"] / "runs" / "stress" / "quality_stress.json").read_text())
    assert stress["cases"] == ["Phantom2", "Phantom3"] and stress["pairs"] == 2 * len(quality_stress.CONDITIONS)
    section = text[text.index("<!-- stress:begin -->"):text.index("<!-- stress:end -->")]
    assert "Made by `python -m training.bundle" in section and "| T1 as T1ce: " in section


def test_model_card_tables_come_from_the_evaluation_and_keep_the_prose(built):
    card = (built["models"] / "MODEL_CARD.md").read_text()
    assert card.startswith("# Card\n\nprose before") and "prose after" in card and "old" not in card
    assert "| `unet-tiny-3mm-w8` | 1 of at most 1 | 1 (dice) | maximum epochs |" in card
    with open(built["root"] / "runs" / "evaluation" / "ensemble_validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["case"] for row in rows] == ["Phantom2", "Phantom3"]
    first = rows[0]
    dice = "/".join(f"{float(first[f'dice_{r}']):.2f}" for r in ("WT", "TC", "ET"))
    assert f"| Phantom2 | {first['true_volume_ET']} |" in card and f"{dice} ({first['volume_ET']})" in card


def test_broken_cases_are_reported_in_one_line_each_and_left_out(built):
    log = (built["root"] / "runs" / "tiny_unet.log").read_text()
    [missing] = [line for line in log.splitlines() if "case Missing" in line]
    [truncated] = [line for line in log.splitlines() if "case Truncated" in line]
    assert "left out" in missing and "t2" in missing
    assert "left out" in truncated and "Truncated_flair" in truncated
    assert "Traceback" not in log
    split = json.loads((built["root"] / "runs" / "tiny_unet" / "split.json").read_text())
    assert "Missing" in split["train"]  # the split as given is recorded; its unreadable cases are skipped


def test_segment_uses_the_published_rules_and_makes_the_ensemble_primary(built, tmp_path, monkeypatch):
    monkeypatch.setenv("BRATSXAI_REGISTRY", str(built["models"] / "registry.json"))
    manifest = segment_case(built["root"] / "data" / "Phantom2", tmp_path, load_models("all", "cpu"),
                            SegmentOptions(device="cpu"))
    primary = [entry for entry in manifest["outputs"] if entry.get("primary")]
    assert {entry["model"] for entry in primary} == {"ensemble"} and manifest["primary"] == "ensemble"
    assert {entry["kind"] for entry in primary} == {"labels", "probability"}
    registry = json.loads((built["models"] / "registry.json").read_text())
    assert manifest["ensemble"]["labels"] == registry["ensembles"][0]["labels"]
    assert not [w for w in manifest["warnings"] if "no calibrated thresholds" in w]


def test_a_second_bundle_resumes_finished_runs_without_training_again(built):
    logs = {path: path.read_text() for path in (built["root"] / "runs").glob("*.log")}
    assert bundle.main(built["argv"]) == 0
    for path, before in logs.items():
        added = path.read_text()[len(before):]
        assert "epoch 1:" not in added
