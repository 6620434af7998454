"""Calibrating a new model's weight vector on the frozen network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gateway.cli import main
from router_model.calibrate import fit_profile, load_calibrated
from router_model.calibration_study import gaps, study
from router_model.data import read_calibration_rows
from router_model.router import Router
from router_model.train import TrainConfig, prepare
from tests.router_model.test_checkpoint_and_cli import tiny  # noqa: F401  (module fixture reused)


def test_fit_recovers_a_linear_capability_and_reports_held_out_error():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(300, 16))
    truth = rng.normal(size=16) * 0.05
    quality = np.clip(hidden @ truth + 0.5 + rng.normal(scale=0.02, size=300), 0, 1)
    profile = fit_profile("new", hidden, quality, np.full(300, 100), None, seed=1)
    assert profile.card["rows"] == 300 and profile.card["held_out_rows"] == 60
    assert profile.card["held_out_mse"] < 0.2 * profile.card["held_out_mse_of_mean"]
    assert np.corrcoef(profile.score(hidden), hidden @ truth)[0, 1] > 0.95


def test_reads_jsonl_and_routerbench_columns(tmp_path):
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"prompt": "a?", "quality": 1, "cost": 0.001}\n{"prompt": "b?", "quality": 0.5}\n')
    prompts, quality, cost = read_calibration_rows(jsonl, "anything")
    assert prompts == ["a?", "b?"] and quality.tolist() == [1.0, 0.5] and cost is None  # one cost missing
    table = tmp_path / "rows.parquet"
    pd.DataFrame({"prompt": ["['x']"], "newbie": [0.0], "newbie|total_cost": [0.002]}).to_parquet(table)
    prompts, quality, cost = read_calibration_rows(table, "newbie")
    assert prompts == ["x"] and cost.tolist() == [0.002]
    jsonl.write_text('{"prompt": "a?", "quality": 3}\n')
    with pytest.raises(ValueError, match=r"quality must lie in \[0, 1\]"):
        read_calibration_rows(jsonl, "x")


def calibrated_checkpoint(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of `trained` with the profile "newbie" calibrated from 40 rows (code succeeds, quizzes fail)."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(trained, checkpoint)
    rows = tmp_path / "newbie.jsonl"
    with rows.open("w") as out:
        for i in range(40):
            quality = 1.0 if i % 2 else 0.0
            prompt = f"Write a function to sort list {i}." if i % 2 else f"Which is {i}?\nA) x\nB) y\nAnswer:"
            out.write(json.dumps({"prompt": prompt, "quality": quality, "cost": 0.0001}) + "\n")
    assert main(["calibrate", "--backend", "newbie", "--data", str(rows), "--checkpoint", str(checkpoint)]) == 0
    return checkpoint, rows


def test_calibrate_command_adds_a_profile_the_router_scores(tiny, tmp_path):  # noqa: F811
    checkpoint, rows = calibrated_checkpoint(tiny[1], tmp_path)
    card = json.loads((checkpoint / "calibrated" / "newbie.json").read_text())
    assert card["rows"] == 40 and card["costs_given"] is True and "held_out_mse" in card
    router = Router.load(checkpoint)
    assert router.profiles[-1] == "newbie" and [p.name for p in load_calibrated(checkpoint)] == ["newbie"]
    vectors = router.vectorize(["Write a function to sort list 99.", "Which is 99?\nA) x\nB) y\nAnswer:"])
    quality = router.quality(vectors)
    assert quality.shape == (2, 3)
    assert quality[0, -1] > quality[1, -1]  # it learned: code prompts succeed, quiz prompts fail
    assert router.estimated_cost(["x"]).shape == (1, 3)
    with pytest.raises(ValueError, match="already a trained model"):
        main(["calibrate", "--backend", "big", "--data", str(rows), "--checkpoint", str(checkpoint)])


def test_a_profile_fitted_on_another_network_stops_the_router_loading(tiny, tmp_path):  # noqa: F811
    """Retraining into a directory that holds calibrated profiles must not score them on the new network."""
    checkpoint, _ = calibrated_checkpoint(tiny[1], tmp_path)
    card_path = checkpoint / "calibrated" / "newbie.json"
    card = json.loads(card_path.read_text())
    assert card["checkpoint_version"].split("+")[0] == Router.load(checkpoint).checkpoint.version
    card_path.write_text(json.dumps(card | {"checkpoint_version": "0123456789abcdef+int8-fused+tail64"}))
    with pytest.raises(ValueError, match=r"newbie were fitted on another network.*calibrated/newbie\.json"):
        Router.load(checkpoint)


def test_the_calibration_study_averages_both_sides_of_each_gap_over_initialisation_seeds(tiny):  # noqa: F811
    data, _ = tiny
    config = TrainConfig(data=data, out=Path("unused"), epochs=3, ablations=False, progress=False)
    prepared = prepare(config)
    results = study(prepared, config, {"perf": 0.0, "balanced": 100.0}, rows=(10, 40), init_seeds=(7, 8))
    assert [r["held_out"] for r in results] == list(prepared.data.models)
    assert {r["source"] for r in results} == {"routerbench"} and all(r["graded_training_rows"] == 84 for r in results)
    for r in results:
        assert 0.0 < r["full"]["aiq"] <= 1.0 and 0.0 <= r["rows_40"]["aiq"] <= 1.0
        assert set(r["full_by_seed"]) == {7, 8}
        for tier in ("perf", "balanced"):
            by_seed = [r["full_by_seed"][s][tier] for s in (7, 8)]
            assert r["full"][tier] == pytest.approx(sum(by_seed) / 2)
            assert 0.0 <= r["rows_10"][tier] <= 1.0
    summary = gaps(results, rows=(10, 40))
    expected = np.mean([r["rows_40"]["balanced"] - r["full"]["balanced"] for r in results])
    assert summary["mean_gap"]["balanced"]["rows_40"] == pytest.approx(expected)
    assert summary["worst_gap"]["perf"]["rows_10"] == min(r["rows_10"]["perf"] - r["full"]["perf"] for r in results)
