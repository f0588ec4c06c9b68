"""benchmark.run.robustness: the per-corruption record of a tiny method, its agreement with a hand
evaluation, its reproducibility, official sets used instead of generated ones, and the relative
corruption error (Hendrycks & Dietterich, ICLR 2019) computed by hand on small cases."""

from __future__ import annotations

import pytest
import torch

from benchmark.contract.errors import ConfigError, SpikeCodeError
from benchmark.contract.registry import create_method
from benchmark.data.corruptions import CORRUPTIONS, corrupt
from benchmark.data.prepared import to_unit_float
from benchmark.metrics.corruption import relative_corruption_error, relative_mce
from benchmark.run.robustness import evaluate_robustness
from snn.arch import ArchSpec

N = 12
SEED = 3


@pytest.fixture(scope="module")
def method():
    torch.manual_seed(0)
    return create_method("ann", {}, ArchSpec(kind="mlp", hidden=[16]), (1, 8, 8), 10)


@pytest.fixture(scope="module")
def test_set():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (N, 1, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (N,), generator=g)
    return images, labels


def evaluate(method, test_set, **kwargs):
    options = {"device": "cpu", "batch_size": 5, "seed": SEED, "progress": False, **kwargs}
    return evaluate_robustness(method, *test_set, **options)


@pytest.fixture(scope="module")
def record(method, test_set):
    return evaluate(method, test_set)


def test_record_has_every_corruption_with_five_severities_and_accuracies_in_unit_range(record):
    assert set(record["per_corruption"]) == set(CORRUPTIONS)
    for name, row in record["per_corruption"].items():
        assert row["family"] == CORRUPTIONS[name].family and row["source"] == "generated"
        assert row["severities"] == [1, 2, 3, 4, 5]
        assert len(row["accuracy"]) == 5 and all(0 <= a <= 1 for a in row["accuracy"])
        assert row["decision_step_mean"] == [1.0] * 5  # the ANN decides at its only step
    means = [sum(row["accuracy"]) / 5 for row in record["per_corruption"].values()]
    assert record["mean_accuracy"] == pytest.approx(sum(means) / len(means))
    assert 0 <= record["clean_accuracy"] <= 1 and record["clean_decision_step_mean"] == 1.0


def test_accuracy_is_that_of_the_method_on_the_corrupted_images(method, test_set, record):
    images, labels = test_set
    with torch.no_grad():
        for name in ("gaussian_noise", "contrast", "rotate"):
            for severity in (1, 5):
                x = corrupt(to_unit_float(images), name, severity, SEED, range(N))
                prediction = method.readout(method.forward(x)).prediction
                expected = float((prediction == labels).double().mean())
                assert record["per_corruption"][name]["accuracy"][severity - 1] == pytest.approx(expected)


def test_same_seed_reproduces_the_record_and_batch_size_does_not_matter(method, test_set, record):
    again = evaluate(method, test_set, batch_size=N, corruptions=["impulse_noise", "translate"])
    for name in ("impulse_noise", "translate"):
        assert again["per_corruption"][name] == record["per_corruption"][name]


def test_unknown_corruption_fails_before_any_evaluation(method, test_set):
    with pytest.raises(ConfigError, match="unknown corruption 'snow'"):
        evaluate(method, test_set, corruptions=["contrast", "snow"])


def test_official_set_is_evaluated_instead_of_the_generated_one(method, test_set):
    images, labels = test_set
    # an "official" set whose five severities are the clean images: accuracy = clean accuracy
    official = {"contrast": (images.unsqueeze(0).expand(5, -1, -1, -1, -1), labels)}
    result = evaluate(method, test_set, corruptions=["contrast"], official=official)
    row = result["per_corruption"]["contrast"]
    assert row["source"] == "official" and row["family"] == "digital"
    assert row["accuracy"] == [result["clean_accuracy"]] * 5
    # MNIST-C has one severity per corruption
    one = evaluate(method, test_set, corruptions=[], official={"fog": (images.unsqueeze(0), labels)})
    assert one["per_corruption"]["fog"]["severities"] == [1] and one["per_corruption"]["fog"]["family"] == "weather"


def row(accuracy: list[float]) -> dict:
    return {"family": "noise", "severities": list(range(1, len(accuracy) + 1)), "accuracy": accuracy}


def test_relative_corruption_error_by_hand():
    method = {"per_corruption": {"a": row([0.9, 0.8, 0.7, 0.6, 0.5]), "b": row([0.5, 0.5, 0.5, 0.5, 0.5])}}
    baseline = {"per_corruption": {"a": row([0.8, 0.6, 0.4, 0.2, 0.0]), "b": row([0.75, 0.75, 0.75, 0.75, 0.75]),
                                   "c": row([0.1] * 5)}}
    # a: Σ E_method = .1+.2+.3+.4+.5 = 1.5, Σ E_baseline = .2+.4+.6+.8+1 = 3.0 -> 0.5
    # b: Σ E_method = 5 · .5 = 2.5,           Σ E_baseline = 5 · .25 = 1.25   -> 2.0
    # mean over the method's corruptions (the baseline's extra "c" is ignored): (0.5 + 2.0) / 2
    assert relative_corruption_error(method, baseline) == pytest.approx(1.25)
    assert relative_corruption_error(baseline, baseline) == pytest.approx(1.0)


def test_relative_mce_subtracts_the_clean_error_by_hand():
    method = {"clean_accuracy": 0.9, "per_corruption": {"a": row([0.8, 0.7])}}
    baseline = {"clean_accuracy": 0.95, "per_corruption": {"a": row([0.75, 0.55])}}
    # method: (.2 − .1) + (.3 − .1) = 0.3; baseline: (.25 − .05) + (.45 − .05) = 0.6 -> 0.5
    assert relative_mce(method, baseline) == pytest.approx(0.5)


def test_relative_error_of_a_real_record_against_itself_is_one(record):
    assert relative_corruption_error(record, record) == pytest.approx(1.0)


def test_relative_error_needs_the_same_corruptions_and_severities():
    method = {"per_corruption": {"a": row([0.5] * 5), "b": row([0.5] * 5)}}
    with pytest.raises(ConfigError, match="lacks corruption.*b"):
        relative_corruption_error(method, {"per_corruption": {"a": row([0.5] * 5)}})
    with pytest.raises(ConfigError, match="different severities"):
        relative_corruption_error(method, {"per_corruption": {"a": row([0.5] * 4), "b": row([0.5] * 5)}})


def test_relative_error_is_undefined_when_the_baseline_never_errs():
    with pytest.raises(SpikeCodeError, match="baseline makes no error"):
        relative_corruption_error({"per_corruption": {"a": row([0.5] * 5)}},
                                  {"per_corruption": {"a": row([1.0] * 5)}})
