"""Training configs and the train/validation/test split."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from BraTSXAILib.errors import InputError
from training.config import TrainConfig, load_config
from training.split import make_split, read_split, write_split

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def test_defaults_are_the_study_settings():
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


@pytest.mark.parametrize("architecture", ["unet", "resunet", "attunet"])
def test_paper_configs_are_the_defaults(architecture):
    paper = load_config(CONFIGS / f"paper_{architecture}.json")
    assert paper == TrainConfig(name=paper.name, architecture=architecture)


@pytest.mark.parametrize("change, key", [
    ({"architecture": "vnet"}, "architecture"), ({"width": 12}, "width"), ({"width": "16"}, "width"),
    ({"spacing": [2, 2]}, "spacing"), ({"patch_size": [64, 64, 0]}, "patch_size"), ({"sampling": "edge"}, "sampling"),
    ({"lr": -1}, "lr"), ({"split": [0.5, 0.2, 0.2]}, "split"), ({"precision": "fp8"}, "precision"),
    ({"epochs": 2.5}, "epochs"), ({"learning_rate": 1e-3}, "learning_rate"), ({"selection": "f1"}, "selection"),
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
