"""training.report on two known runs: the values of Tables 2–11 from logs and evaluation CSVs written here."""
from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
import torch

from BraTSXAILib.metrics import region_metrics
from training import report
from training.log import COLUMNS, write_log

# Case A: WT tp 4 fp 1 fn 1 tn 4, TC tp 3 tn 7, ET tp 1 fn 1 tn 8; case B: only edema, found exactly.
CASES = {"A": ([4, 4, 1, 2, 2, 0, 0, 0, 0, 0], [4, 1, 1, 2, 0, 2, 0, 0, 0, 0]),
         "B": ([2, 2, 2, 0, 0, 0, 0, 0, 0, 0], [2, 2, 2, 0, 0, 0, 0, 0, 0, 0])}


def write_run(folder, architecture, train_seconds, validation_seconds, validation_losses, stopped=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architecture": architecture, "width": 8, "spacing": None,
                                                    "patch_size": [16, 16, 16], "selection": "loss"}))
    rows = [{**{key: 0.5 for key in COLUMNS}, "epoch": epoch + 1, "train_seconds": t, "validation_seconds": v,
             "epoch_seconds": t + v, "validation_loss": loss}
            for epoch, (t, v, loss) in enumerate(zip(train_seconds, validation_seconds, validation_losses))]
    write_log(rows, folder / "log.csv")
    if stopped:
        torch.save({"counters": {"stopped": stopped}}, folder / "checkpoint.pt")


def write_evaluation(path, model, seconds=(2.0, 4.0), losses=(0.3, 0.5)):
    rows = []
    for (case, (truth, prediction)), second, loss in zip(CASES.items(), seconds, losses):
        scores = region_metrics(np.array(prediction, np.uint8)[None, None], np.array(truth, np.uint8)[None, None])
        rows.append({"model": model, "case": case, "seconds": second, "loss": loss, **scores})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    write_run(root / "alpha", "unet", [10, 12, 14], [2, 3, 4], [0.9, 0.5, 0.7], stopped="early stopping")
    write_run(root / "beta", "attunet", [20, 20], [5, 7], [0.8, 0.6])
    evaluation = root / "evaluation"
    evaluation.mkdir()
    for split in ("validation", "test"):
        write_evaluation(evaluation / f"alpha_{split}.csv", "alpha")
    write_evaluation(evaluation / "beta_test.csv", "beta", seconds=(1.0, 1.0), losses=(0.2, 0.2))
    out = root / "out"
    assert report.main(["--runs", str(root / "alpha"), str(root / "beta"), "--evaluation", str(evaluation),
                        "--out", str(out)]) == 0
    return out


def table_after(text: str, marker: str, keys: int = 1) -> dict:
    """The first table after `marker`, as {first `keys` cells: the other cells}."""
    lines = text[text.index(marker):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[tuple(cells[:keys]) if keys > 1 else cells[0]] = cells[keys:]
    return rows


def test_table_2_separates_training_and_validation_time_and_gives_totals(written):
    rows = table_after((written / "report.md").read_text(), "## Training (Table 2)")
    # architecture, width, parameters, spacing, patch, epochs run, to convergence, stopped, train, val, totals
    alpha, beta = rows["alpha"], rows["beta"]
    assert alpha[5:] == ["3", "2", "early stopping", "12.0 ± 2.0", "3.0 ± 1.0", "36.0", "9.0", "45.0"]
    assert beta[5:] == ["2", "2", "running", "20.0 ± 0.0", "6.0 ± 1.4", "40.0", "12.0", "52.0"]
    assert alpha[:2] == ["UNet", "8"] and beta[0] == "Attention UNet"


def test_tables_3_and_4_give_mean_and_spread_per_split(written):
    text = (written / "report.md").read_text()
    inference = table_after(text, "## Inference time (Table 3)", keys=2)
    assert inference[("alpha", "test")] == ["3.00 ± 1.41", "2"] and inference[("beta", "test")] == ["1.00 ± 0.00", "2"]
    assert ("beta", "validation") not in inference
    loss = table_after(text, "## BCE-Dice loss (Table 4)")
    assert loss["alpha"][:3] == ["–", "0.4000 ± 0.1414", "0.4000 ± 0.1414"]
    assert loss["alpha"][3:] == ["0.5000", "0.5000"]  # † the log at the kept epoch


def test_tables_5_and_6_pool_the_three_regions_per_case(written):
    """Case A pooled: tp 8, fp 1, fn 2 → Dice 16/19, Jaccard 8/11; case B: 1 and 1 (the region mean would give
    Dice 0.822 for case A)."""
    rows = table_after((written / "report.md").read_text(), "## Dice and Jaccard at train / validation / test")
    dice, jaccard = [16 / 19, 1.0], [8 / 11, 1.0]
    expected = [f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" for v in (dice, jaccard)]
    assert rows["alpha"] == ["–", "–", *expected, *expected]
    assert rows["beta"] == ["–", "–", "–", "–", *expected]


def test_tables_7_to_10_cover_validation_and_test_in_one_call(written):
    text = (written / "report.md").read_text()
    assert table_after(text, "Table 7: Dice per region (validation)")["alpha"] == [
        "0.900 ± 0.141", "1.000 ± 0.000", "0.833 ± 0.236"]
    assert table_after(text, "Table 8: Jaccard per region (validation)")["alpha"] == [
        "0.833 ± 0.236", "1.000 ± 0.000", "0.750 ± 0.354"]
    test_dice = table_after(text, "Table 9: Dice per region (test)")
    assert test_dice["alpha"] == test_dice["beta"] == ["0.900 ± 0.141", "1.000 ± 0.000", "0.833 ± 0.236"]
    assert "Table 10: Jaccard per region (test)" in text and "beta" not in table_after(text, "Table 7:")


def test_table_11_pools_every_voxel_of_every_region_and_case(written):
    """tp 11, fp 1, fn 2, tn 46 over both cases and the three regions (the mean of the per-case, per-region
    precisions would be 0.967, not 11/12)."""
    rows = table_after((written / "report.md").read_text(), "## Voxel classification (Table 11)", keys=2)
    assert rows[("alpha", "validation")] == rows[("alpha", "test")] == ["0.9500", "0.9167", "0.8462", "0.8800"]
    assert ("beta", "validation") not in rows


def test_additions_are_marked_and_fig_7_has_a_panel_per_split(written):
    text = (written / "report.md").read_text()
    assert "## Paired comparison between networks (test) (addition: not in the study)" in text
    assert "HD95 (mm) per region (test) (addition: not in the study)" in text
    assert "train (log) †" in text and "width †" in text

    def png_size(path):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        return struct.unpack(">II", data[16:24])

    width, height = png_size(written / "violin_dice.png")  # validation and test side by side
    assert width > 2.5 * height
    width, height = png_size(written / "learning_curves.png")  # Figs. 4, 5, 6
    assert width > 3 * height


def test_the_model_card_says_how_each_run_ended_as_its_checkpoint_records_it(tmp_path):
    """Early stopping on the last allowed epoch is still early stopping; a run with no recorded end is unfinished."""
    import json

    import torch

    from training.log import COLUMNS, write_log
    from training.model_card import training_section

    runs = {}
    for name, stopped in (("stopped-last", "early stopping"), ("interrupted", None)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"epochs": 3, "selection": "loss"}))
        write_log([{**dict.fromkeys(COLUMNS, 0.0), "epoch": e, "train_seconds": 3600.0,
                    "validation_seconds": 360.0, "validation_loss": 1.0 / e} for e in (1, 2, 3)], run / "log.csv")
        if stopped:
            torch.save({"counters": {"stopped": stopped}}, run / "checkpoint.pt")
        runs[name] = run
    rows = {line.split("|")[1].strip(" `"): line.split("|")[4].strip() for line in training_section(runs).splitlines()
            if line.startswith("| `")}
    assert rows == {"stopped-last": "early stopping (validation loss)", "interrupted": "not finished"}
