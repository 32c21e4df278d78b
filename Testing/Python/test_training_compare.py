"""training.compare_runs on two hand-written logs: the best epoch within the first K, and the config change."""
import json

from training.compare_runs import compare
from training.log import write_log

SCORES = ("dice_WT", "dice_TC", "dice_ET", "jaccard_WT", "jaccard_TC", "jaccard_ET")


def run(folder, config, dices):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"epoch": i + 1, "lr": 1e-3, "train_loss": 0.5, **{f"train_{s}": 0.5 for s in SCORES},
             "validation_loss": 0.4, **{f"validation_{s}": 0.0 for s in SCORES},
             "train_seconds": 1.0, "validation_seconds": 1.0, "epoch_seconds": 2.0} for i in range(len(dices))]
    for row, (wt, tc, et) in zip(rows, dices):
        row.update(validation_dice_WT=wt, validation_dice_TC=tc, validation_dice_ET=et)
    write_log(rows, folder / "log.csv")
    return folder


def test_compares_at_the_fewest_epochs_and_names_the_change(tmp_path):
    first = run(tmp_path / "a", {"name": "a", "tumour_probability": 0.33, "epochs": 60},
                [(0.8, 0.7, 0.6), (0.9, 0.8, 0.7), (0.95, 0.9, 0.9)])
    second = run(tmp_path / "b", {"name": "b", "tumour_probability": 0.67, "epochs": 10},
                 [(0.85, 0.7, 0.6), (0.8, 0.7, 0.6)])
    table = compare([first, second])
    assert "within the first 2 epochs" in table
    assert "| `a` | (reference) | 2 | 0.900 | 0.800 | 0.700 | 0.800 |" in table
    assert "| `b` | tumour_probability 0.67 | 1 | 0.850 | 0.700 | 0.600 | 0.717 |" in table
