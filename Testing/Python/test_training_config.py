"""Training configs and the train/validation/test split."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from BraTSXAILib.errors import InputError
from training.config import TrainConfig, load_config
from training.split import make_split, read_split, write_split

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def test_defaults_are_the_settings_docs_training_md_lists():
    config = TrainConfig()
    assert (config.lr, config.betas, config.eps, config.weight_decay) == (5e-4, (0.9, 0.99), 1e-8, 0.0)
    assert (config.plateau_patience, config.accumulation, config.batch_size) == (2, 4, 1)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_is_named_after_its_file(path):
    config = load_config(path)
    assert config.name == path.stem
    assert config.architecture in path.stem


@pytest.mark.parametrize("architecture", ["unet", "resunet", "attunet"])
def test_cpu_small_configs_are_what_a_two_core_cpu_can_train(architecture):
    config = load_config(CONFIGS / f"cpu_small_{architecture}.json")
    assert (config.width, config.spacing, config.patch_size) == (16, (2.0, 2.0, 2.0), (64, 64, 64))
    assert (config.sampling, config.precision, config.flip, config.intensity) == ("tumour", "auto", True, True)
    assert config.selection == "dice"  # a collapsed "no tumour" epoch can have the lowest loss (training.md)
    optimiser = ("lr", "betas", "eps", "weight_decay", "batch_size")
    assert [getattr(config, key) for key in optimiser] == [getattr(TrainConfig(), key) for key in optimiser]


@pytest.mark.parametrize("architecture, epochs", [("unet", 200), ("resunet", 200), ("attunet", 100)])
def test_paper_configs_are_the_studys_settings(architecture, epochs):
    """Each value as docs/fidelity.md states it: the study's crop, its exact min–max over the crop (`minmax-crop`),
    width 24, 1 mm, no augmentation; where text and notebook disagree, the notebook (batch 1 with accumulation 4,
    Adam's default betas, no early stop)."""
    paper = load_config(CONFIGS / f"paper_{architecture}.json")
    assert (paper.width, paper.spacing, paper.normalisation) == (24, None, "minmax-crop")
    assert (paper.sampling, paper.patch_size, paper.patches_per_case) == ("study", (100, 170, 170), 1)
    assert (paper.flip, paper.intensity, paper.precision) == (False, False, "float32")
    assert (paper.batch_size, paper.accumulation, paper.lr, paper.betas, paper.eps, paper.weight_decay) == (
        1, 4, 5e-4, (0.9, 0.999), 1e-8, 0.0)
    assert (paper.plateau_patience, paper.plateau_factor, paper.selection) == (2, 0.1, "loss")
    assert paper.epochs == epochs and paper.early_stopping_patience >= paper.epochs  # runs to the maximum
    assert (paper.seed, paper.split) == (55, (0.7, 0.2, 0.1))


@pytest.mark.parametrize("change, key", [
    ({"architecture": "vnet"}, "architecture"), ({"width": 12}, "width"), ({"width": "16"}, "width"),
    ({"spacing": [2, 2]}, "spacing"), ({"patch_size": [64, 64, 0]}, "patch_size"), ({"sampling": "edge"}, "sampling"),
    ({"lr": -1}, "lr"), ({"split": [0.5, 0.2, 0.2]}, "split"), ({"precision": "fp8"}, "precision"),
    ({"epochs": 2.5}, "epochs"), ({"learning_rate": 1e-3}, "learning_rate"), ({"selection": "f1"}, "selection"),
    ({"rotation_degrees": -5}, "rotation_degrees"), ({"scaling": 1.5}, "scaling"),
])
def test_a_bad_config_is_refused_with_the_key_named(tmp_path, change, key):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(change))
    with pytest.raises(InputError, match=key) as caught:
        load_config(path)
    assert caught.value.path == str(path)


def test_config_file_that_is_not_json_is_an_input_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ width: 16")
    with pytest.raises(InputError, match="not readable JSON"):
        load_config(path)


def test_split_is_seeded_disjoint_complete_and_70_20_10():
    ids = [f"case{i:02d}" for i in range(16)]
    split = make_split(ids, seed=7)
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (11, 3, 2)
    assert sorted(split["train"] + split["validation"] + split["test"]) == ids
    assert make_split(list(reversed(ids)), seed=7) == split  # the order of discovery does not matter
    assert make_split(ids, seed=8) != split


def test_three_cases_still_give_one_per_split_and_two_cannot_be_split():
    split = make_split(["a", "b", "c"])
    assert [len(split[name]) for name in ("train", "validation", "test")] == [1, 1, 1]
    with pytest.raises(InputError, match="cannot be split"):
        make_split(["a", "b"])


def test_split_file_round_trip_and_unknown_cases_refused(tmp_path):
    split = make_split([f"c{i}" for i in range(10)])
    path = write_split(split, tmp_path / "split.json")
    assert read_split(path, [f"c{i}" for i in range(10)]) == split
    with pytest.raises(InputError, match="not found in the data"):
        read_split(path, [f"c{i}" for i in range(9)])


@pytest.mark.parametrize("architecture", ["unet", "resunet", "attunet"])
def test_bundle_configs_are_the_recipe_docs_fidelity_md_states(architecture):
    config = load_config(CONFIGS / f"bundle_{architecture}.json")
    assert (config.width, config.spacing, config.normalisation, config.patch_size) == (
        16, (2.0, 2.0, 2.0), "zscore", (64, 64, 64))
    assert (config.sampling, config.tumour_probability, config.patches_per_case) == ("tumour", 0.33, 4)
    assert (config.flip, config.intensity, config.precision, config.selection) == (True, True, "auto", "dice")
    assert (config.accumulation, config.lr, config.plateau_patience, config.early_stopping_patience,
            config.epochs) == (2, 2e-4, 3, 8, 60)
