"""Train a tiny checkpoint through the CLI, reload it, and get identical scores; eval, route, the window study and
the data-size study run on it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from gateway.cli import main
from router_model import data_size_study, window_study
from router_model.checkpoint import load_checkpoint
from router_model.encoder import DEFAULT_CACHE_DIR
from router_model.router import Router
from router_model.train import TrainConfig, train
from tests.router_model.fixtures import frame, write_tiny_routerbench


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    data = write_tiny_routerbench(root / "tiny.parquet")
    out = root / "ckpt"
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "3", "--lambda", "1000"]) == 0
    return data, out


def test_save_and_load_give_identical_scores(tiny, tmp_path):
    _, out = tiny
    first = Router.load(out)
    prompts = ["Write a function to sort a list.", "Which is bigger?\nA) x\nB) y\nAnswer:"]
    vectors = first.vectorize(prompts)
    first.checkpoint.save(tmp_path / "copy")
    second = Router.load(tmp_path / "copy")
    for head in ("quality", "features_only", "embedding_only", "lambda_1000"):
        assert np.array_equal(first.quality(vectors, head), second.quality(vectors, head))
    assert np.array_equal(
        np.stack([v.features for v in vectors]), np.stack([v.features for v in second.vectorize(prompts)])
    )


def test_card_names_data_split_seed_lambda_and_metrics(tiny):
    data, out = tiny
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["paths"] == [str(data)] and len(card["data"]["sha256"][str(data)]) == 64
    assert card["split"]["seed"] == 7 and card["split"]["n_test"] == 18
    assert card["split"]["tasks"] == {"routerbench/code": 60, "routerbench/quiz": 60}
    assert card["heads"]["lambda_1000"] == {"lambda": 1000.0}
    assert {"perf", "balanced", "cost"} == set(card["tiers_from_validation"])
    assert {r["name"] for r in card["test"]["routerbench"]["rows"]} >= {
        "oracle",
        "perf",
        "knn",
        "ridge",
        "embedding_only",
    }
    assert card["test"]["overall"]["aiq"] == card["test"]["routerbench"]["aiq"]
    assert load_checkpoint(out).version == card["version"]
    assert card["encoder"]["trained_on"] == "fp32" and card["encoder"]["precision"] == "int8"
    assert card["encoder"]["trained_max_tokens"] == 32 and card["encoder"]["max_tokens"] == 32


def test_router_serves_with_the_encoder_the_checkpoint_names(tiny, tmp_path):
    _, out = tiny
    assert Router.load(out).encoder.precision == "int8"
    checkpoint = load_checkpoint(out)
    checkpoint.encoder = {**checkpoint.encoder, "precision": "fp32"}
    checkpoint.save(tmp_path / "fp32")
    router = Router.load(tmp_path / "fp32")
    assert router.encoder.precision == "fp32" and router.version.endswith("+fp32+tail32")


def test_eval_uses_the_held_out_split_of_its_own_file_and_all_rows_of_another(tiny, tmp_path, capsys):
    data, out = tiny
    report_path, plot = tmp_path / "eval.json", tmp_path / "pareto.png"
    assert (
        main(["eval", "--data", str(data), "--checkpoint", str(out), "--json", str(report_path), "--plot", str(plot)])
        == 0
    )
    report = json.loads(report_path.read_text())
    assert report["overall"]["n"] == 18 and report["scope"].startswith("held-out")
    assert plot.stat().st_size > 10_000
    assert "Table 3" in capsys.readouterr().out
    other = tmp_path / "other.parquet"
    frame([("quiz", f"Which is new{i}?\nA) x\nB) y\nAnswer:", 1.0, 0.0, 0.01, 0.0005) for i in range(55)]).to_parquet(
        other
    )
    assert main(["eval", "--data", str(other), "--checkpoint", str(out), "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["overall"]["n"] == 55 and report["scope"] == "every row of 1 task(s) not seen in training"
    names = [r["name"] for r in report["per_source"]["routerbench"]["rows"]]
    for name in (
        "oracle",
        "perf",
        "balanced",
        "cost",
        "paper_perf",
        "paper_balanced",
        "paper_cost",
        "best_single",
        "cheapest",
        "knn",
        "ridge",
        "features_only",
        "embedding_only",
    ):
        assert name in names
    rep = report["per_source"]["routerbench"]
    assert {"lambda", "quality", "cost"} == set(rep["sweep"][0]) and rep["aiq"] > 0
    assert report["overall"]["aiq"] == rep["aiq"]


def test_route_prints_choice_utilities_and_attributions(tiny, capsys):
    _, out = tiny
    assert main(["route", "Write a function to reverse a list.", "--tier", "perf", "--checkpoint", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("tier perf (λ = ")
    assert "big" in text and "small" in text and "integrated gradients" in text


def test_help_lists_exactly_the_subcommands_that_exist():
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True, check=True)
    assert "{serve,train,eval,route,calibrate,collect}" in result.stdout


def test_attributions_sum_to_the_score_difference_from_the_baseline(tiny):
    from router_model.explain import attributions

    _, out = tiny
    router = Router.load(out)
    vector = router.vectorize(["Write a function to sort a list."])[0]
    net = router.checkpoint.heads["quality"].net
    f, e = torch.from_numpy(vector.features), torch.from_numpy(vector.embedding)
    attrs = attributions(net, router.featurizer.infos, f, e, target=0)
    with torch.no_grad():
        delta = net(f[None], e[None])[0, 0] - net(net.feature_mean[None], torch.zeros_like(e)[None])[0, 0]
    assert sum(a.attribution for a in attrs) == pytest.approx(float(delta), abs=0.02)


def test_the_window_study_trains_and_serves_each_window_and_averages_over_seeds(tiny):
    data, _ = tiny
    runs = window_study.study([data], windows=[16, 32], seeds=[7, 8], cache_dir=DEFAULT_CACHE_DIR)
    assert [(r["window"], r["seed"]) for r in runs] == [(16, 7), (16, 8), (32, 7), (32, 8)]
    assert all(r["trained_and_served"] == (r["window"], r["window"]) for r in runs)
    assert all(0 < r["miss_ms_p50"]["100_words"] < 1000 for r in runs)
    rows = {row["window"]: row for row in window_study.summary(runs)}
    assert rows[32]["test_aiq"] == pytest.approx((runs[2]["test"]["aiq"] + runs[3]["test"]["aiq"]) / 2)
    assert rows[16]["aiq_both"] == pytest.approx((rows[16]["val_aiq"] + rows[16]["test_aiq"]) / 2)
    assert rows[16]["test_aiq_per_source"]["routerbench"] == pytest.approx(rows[16]["test_aiq"])


def test_a_share_of_the_training_part_keeps_the_split_that_scores_it(tiny, tmp_path):
    data, _ = tiny
    full = train(TrainConfig(data=data, out=tmp_path / "full", epochs=2, ablations=False, progress=False))
    config = TrainConfig(
        data=data, out=tmp_path / "half", seed=8, split_seed=7, train_fraction=0.5, epochs=2, ablations=False,
        progress=False,
    )  # fmt: skip
    half = train(config).card["split"]
    assert half["seed"] == 7 and half["train_fraction"] == 0.5
    assert (half["n_train"], half["n_val"], half["n_test"]) == (42, 18, 18)
    assert (full.card["split"]["n_train"], full.card["split"]["n_test"]) == (84, 18)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_training_share_outside_zero_to_one_is_refused(tiny, tmp_path, fraction):
    with pytest.raises(ValueError, match="train_fraction must be in"):
        TrainConfig(data=tiny[0], out=tmp_path, train_fraction=fraction)


def test_the_data_size_study_scores_every_share_on_one_split_and_averages_over_seeds(tiny):
    data, _ = tiny
    runs = data_size_study.study([data], fractions=[0.5, 1.0], seeds=[7, 8], split_seed=7, cache_dir=DEFAULT_CACHE_DIR)
    assert [(r["fraction"], r["seed"], r["n_train"]) for r in runs] == [
        (0.5, 7, 42),
        (0.5, 8, 42),
        (1.0, 7, 84),
        (1.0, 8, 84),
    ]
    assert all(0 < run[part]["aiq"] <= 1 for run in runs for part in ("val", "test"))
    rows = {row["fraction"]: row for row in data_size_study.summary(runs)}
    assert rows[0.5]["test_aiq"] == pytest.approx((runs[0]["test"]["aiq"] + runs[1]["test"]["aiq"]) / 2)
    assert rows[1.0]["val_aiq_per_source"]["routerbench"] == pytest.approx(
        (runs[2]["val"]["routerbench"]["aiq"] + runs[3]["val"]["routerbench"]["aiq"]) / 2
    )
