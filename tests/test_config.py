"""params.yaml validation: every key checked at the boundary, errors name the key and the fix."""

from __future__ import annotations

import pytest
import yaml

from benchmark.contract.errors import ConfigError
from benchmark.run.config import load_params, resolve_run
from tests.conftest import REPO, smoke_params


def _write(tmp_path, params) -> object:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_repository_params_yaml_is_valid_and_defines_the_three_profiles():
    params = load_params(REPO / "params.yaml")
    assert {"smoke", "quick", "paper"} <= set(params.profiles)
    assert params.profile == "quick"


def test_an_unknown_top_level_key_is_named(tmp_path):
    params = smoke_params()
    params["epochz"] = 3
    with pytest.raises(ConfigError, match="epochz: unknown key"):
        load_params(_write(tmp_path, params))


def test_an_ill_typed_profile_value_is_named_with_its_path(tmp_path):
    params = smoke_params(**{"profiles.smoke.epochs": "many"})
    with pytest.raises(ConfigError, match=r"profiles\.smoke\.epochs: .*'many'"):
        load_params(_write(tmp_path, params))


def test_a_missing_required_key_is_named(tmp_path):
    params = smoke_params()
    del params["profiles"]["smoke"]["batch_size"]
    with pytest.raises(ConfigError, match=r"profiles\.smoke\.batch_size: required key is missing"):
        load_params(_write(tmp_path, params))


def test_an_undefined_profile_is_an_error_listing_the_defined_ones(tmp_path):
    with pytest.raises(ConfigError, match="profile 'fast' is not defined.*smoke"):
        load_params(_write(tmp_path, smoke_params(profile="fast")))


def test_invalid_yaml_is_reported_as_such(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(path)


def test_profile_overrides_are_merged_over_the_method_entry(tmp_path):
    params = load_params(_write(tmp_path, smoke_params(**{"profiles.smoke.methods": {"rate": {"T": 5}}})))
    spec = resolve_run(params, "digits", "rate", 0)
    assert spec.hyperparameters["T"] == 5
    assert spec.hyperparameters["beta"] == params.methods["rate"]["beta"]
    assert spec.arch_name == "mlp-s"


def test_dataset_overrides_apply_on_that_dataset_only_over_the_profiles(tmp_path):
    params = load_params(_write(tmp_path, smoke_params(**{"profiles.smoke.methods": {"rate": {"T": 5, "beta": 0.8}},
                                                          "datasets.digits.methods": {"rate": {"T": 7}}})))
    on_digits = resolve_run(params, "digits", "rate", 0)
    assert (on_digits.hyperparameters["T"], on_digits.hyperparameters["beta"]) == (7, 0.8)
    assert resolve_run(params, "fashion-mnist", "rate", 0).hyperparameters["T"] == 5
    assert resolve_run(params, "digits", "rate", 0, overrides={"T": 9}).hyperparameters["T"] == 9  # a grid's point


def test_a_dataset_override_changes_the_fingerprint_only_through_the_hyperparameters(tmp_path):
    base = load_params(_write(tmp_path, smoke_params()))
    unused = load_params(_write(tmp_path, smoke_params(**{"datasets.digits.methods": {"ann": {"lr": 0.5}}})))
    used = load_params(_write(tmp_path, smoke_params(**{"datasets.digits.methods": {"rate": {"T": 7}}})))
    fingerprint = resolve_run(base, "digits", "rate", 0).fingerprint()
    assert resolve_run(unused, "digits", "rate", 0).fingerprint() == fingerprint
    assert resolve_run(used, "digits", "rate", 0).fingerprint() != fingerprint


def test_a_dataset_override_of_an_undefined_method_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.digits\.methods overrides ratee"):
        load_params(_write(tmp_path, smoke_params(**{"datasets.digits.methods": {"ratee": {"T": 7}}})))


def test_a_method_without_an_entry_is_an_error_saying_how_to_add_one(tmp_path):
    raw = smoke_params()
    del raw["methods"]["css"]
    with pytest.raises(ConfigError, match=r"methods\.css: no entry in params.yaml"):
        resolve_run(load_params(_write(tmp_path, raw)), "digits", "css", 0)


def test_the_fingerprint_changes_with_a_hyperparameter_and_not_with_a_description(tmp_path):
    base = load_params(_write(tmp_path, smoke_params()))
    other = load_params(_write(tmp_path, smoke_params(**{"methods.rate.beta": 0.5})))
    described = load_params(_write(tmp_path, smoke_params(**{"profiles.smoke.description": "x"})))
    fingerprint = resolve_run(base, "digits", "rate", 0).fingerprint()
    assert resolve_run(other, "digits", "rate", 0).fingerprint() != fingerprint
    assert resolve_run(described, "digits", "rate", 0).fingerprint() == fingerprint


def test_the_baseline_is_declared_and_must_be_a_defined_method(tmp_path):
    assert load_params(_write(tmp_path, smoke_params())).run.baseline == "ann"
    with pytest.raises(ConfigError, match=r"run.baseline is 'annn'.*defined: .*ann"):
        load_params(_write(tmp_path, smoke_params(**{"run.baseline": "annn"})))


def test_grid_files_add_their_grids_and_a_name_defined_twice_is_an_error(tmp_path):
    probe = {"method": "rate", "dataset": "digits", "axes": {"T": [2, 4]}}
    (tmp_path / "probes.yaml").write_text(yaml.safe_dump({"rate-probe": probe}))
    params = load_params(_write(tmp_path, smoke_params(grid_files=["probes.yaml"])))
    assert params.grids["rate-probe"].axes == {"T": [2, 4]}
    (tmp_path / "probes.yaml").write_text(yaml.safe_dump({"css-T": probe}))
    with pytest.raises(ConfigError, match="grid 'css-T' is defined twice"):
        load_params(_write(tmp_path, smoke_params(grid_files=["probes.yaml"])))
    with pytest.raises(ConfigError, match="grid_files names missing.yaml, which does not exist"):
        load_params(_write(tmp_path, smoke_params(grid_files=["missing.yaml"])))


def test_dvc_repro_runs_only_grids_of_params_yaml(tmp_path):
    (tmp_path / "probes.yaml").write_text(yaml.safe_dump({"rate-probe": {"method": "rate", "dataset": "digits",
                                                                          "axes": {"T": [2]}}}))
    with pytest.raises(ConfigError, match="run.grids names rate-probe, not defined under `grids:` in params.yaml"):
        load_params(_write(tmp_path, smoke_params(grid_files=["probes.yaml"], **{"run.grids": ["rate-probe"]})))


def test_every_trained_method_gets_the_profiles_budget_unless_an_exception_is_declared(tmp_path):
    with pytest.raises(ConfigError, match=r"method 'rate' trains with epochs = 4 in profile 'smoke'.*"
                                          r"profiles\.smoke\.budget_exceptions\.rate"):
        load_params(_write(tmp_path, smoke_params(**{"profiles.smoke.methods": {"rate": {"epochs": 4}}})))
    declared = smoke_params(**{"profiles.smoke.methods": {"rate": {"epochs": 4}},
                               "profiles.smoke.budget_exceptions": {"rate": "its BPTT is 20 steps long"}})
    assert load_params(_write(tmp_path, declared)).profiles["smoke"].budget_exceptions == {
        "rate": "its BPTT is 20 steps long"}
