"""The method contract: registration errors, hyperparameter validation, and conformance tests that
every registered method gets automatically (timm's test_models.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.contract.errors import ConfigError, ContractError, RegistryError
from benchmark.contract.method import CodingMethod, MethodConfig, Readout
from benchmark.contract.registry import available_methods, check_contract, create_method, get_method, register_method
from benchmark.metrics.ops import OpCounter
from snn.arch import ArchSpec

TINY_MLP = ArchSpec(kind="mlp", hidden=[16])
TINY_CNN = ArchSpec(kind="cnn", conv=[4, "M"], hidden=[8])
SHAPE = (1, 8, 8)


class _Minimal(CodingMethod):
    family = "direct"
    citation = "test"

    def build(self, arch, input_shape, num_classes):
        return nn.Sequential(nn.Flatten(2), nn.Linear(64, num_classes))

    def encode(self, images, generator=None):
        return images.unsqueeze(0).expand(self.T, *images.shape)

    def loss(self, output, labels):
        return nn.functional.cross_entropy(output.mean(0), labels)

    def readout(self, output):
        prediction = output.mean(0).argmax(-1)
        return Readout(prediction, torch.full_like(prediction, self.T))


def test_a_name_registered_twice_is_an_error_naming_both_classes():
    class Other(_Minimal):
        pass

    register_method("test-dup")(_Minimal)
    with pytest.raises(RegistryError, match="registered twice.*_Minimal.*Other"):
        register_method("test-dup")(Other)


@pytest.mark.parametrize(
    "attribute, value, message",
    [
        ("family", "hybrid", "family"),
        ("citation", "", "citation"),
        ("Config", dict, "Config"),
        ("input_semantics", "binary", "input_semantics"),
    ],
)
def test_a_class_breaking_the_contract_is_rejected_naming_the_part(attribute, value, message):
    broken = type("Broken", (_Minimal,), {attribute: value})
    with pytest.raises(ContractError, match=message):
        register_method("test-broken")(broken)


def test_a_method_without_readout_is_rejected_naming_the_missing_hook():
    class NoReadout(CodingMethod):
        family = "direct"
        citation = "test"
        build, encode, loss = _Minimal.build, _Minimal.encode, _Minimal.loss

    with pytest.raises(ContractError, match="does not implement readout"):
        register_method("test-no-readout")(NoReadout)


def test_a_conversion_method_must_name_its_source():
    class NoSource(_Minimal):
        family = "conversion"

        def convert(self, source, calibration):
            pass

    with pytest.raises(ContractError, match="source_method"):
        register_method("test-no-source")(NoSource)


def test_an_unknown_method_lists_the_registered_ones():
    with pytest.raises(RegistryError, match="unknown method 'nope'.*ann.*rate"):
        get_method("nope")


def test_an_unknown_hyperparameter_is_an_error_naming_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"methods\.rate\.betta: unknown key.*allowed: .*beta"):
        create_method("rate", {"betta": 0.5}, TINY_MLP, SHAPE, 10)


def test_an_ill_typed_hyperparameter_is_an_error_naming_the_key_and_value():
    with pytest.raises(ConfigError, match=r"methods\.rate\.T: .*'many'"):
        create_method("rate", {"T": "many"}, TINY_MLP, SHAPE, 10)


def test_check_contract_names_a_wrong_output_shape():
    class DropTime(nn.Module):
        def forward(self, x):
            return x.mean(0)

    class WrongShape(_Minimal):
        def build(self, arch, input_shape, num_classes):
            return nn.Sequential(nn.Flatten(2), nn.Linear(64, num_classes), DropTime())  # [B, classes]

    method = WrongShape(MethodConfig(T=2), TINY_MLP, SHAPE, 10)
    method.name = "wrong-shape"
    with pytest.raises(ContractError, match=r"network must return \[T, B, classes\]"):
        check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)


def test_check_contract_names_a_decision_step_outside_1_to_T():
    class StepZero(_Minimal):
        def readout(self, output):
            prediction = output.mean(0).argmax(-1)
            return Readout(prediction, torch.zeros_like(prediction))

    method = StepZero(MethodConfig(T=2), TINY_MLP, SHAPE, 10)
    with pytest.raises(ContractError, match="decision_step must lie in 1..T=2"):
        check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)


def test_variant_lists_only_non_default_hyperparameters_and_ignores_the_schedule():
    assert create_method("rate", {"lr": 0.1, "epochs": 3}, TINY_MLP, SHAPE, 10).variant() == ""
    assert create_method("rate", {"T": 8, "beta": 0.5}, TINY_MLP, SHAPE, 10).variant() == "T=8,beta=0.5"


# --- conformance: generated for every registered method -----------------------------------------

TRAINED = [name for name, cls in available_methods().items() if cls.family != "conversion"]


def _method(name: str, arch: ArchSpec = TINY_MLP) -> CodingMethod:
    torch.manual_seed(0)
    return create_method(name, {}, arch, SHAPE, 10)


@pytest.mark.parametrize("name", available_methods())
@pytest.mark.parametrize("arch", [TINY_MLP, TINY_CNN], ids=["mlp", "cnn"])
def test_every_method_honours_the_shape_contract(name, arch):
    method = _method(name, arch)
    check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)


@pytest.mark.parametrize("name", available_methods())
def test_every_method_is_deterministic_under_a_seeded_generator(name):
    method, images = _method(name), torch.rand(4, *SHAPE)
    first = method.forward(images, torch.Generator().manual_seed(7))
    second = method.forward(images, torch.Generator().manual_seed(7))
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", available_methods())
def test_every_method_carries_no_state_from_one_network_to_another(name):
    a, b = _method(name), _method(name)
    images = torch.rand(4, *SHAPE)
    before = a.forward(images, torch.Generator().manual_seed(1))
    b.forward(torch.rand(6, *SHAPE), torch.Generator().manual_seed(2))  # run another instance between
    after = a.forward(images, torch.Generator().manual_seed(1))
    assert torch.equal(before, after)


@pytest.mark.parametrize("name", TRAINED)
def test_every_trained_method_backpropagates_to_all_weights(name):
    method = _method(name)
    output = method.forward(torch.rand(8, *SHAPE) + 0.5, torch.Generator().manual_seed(0))
    method.loss(output, torch.arange(8) % 10).backward()
    weights = [p for p in method.network.parameters() if p.ndim > 1]
    assert weights and all(p.grad is not None for p in weights)


@pytest.mark.parametrize("name", available_methods())
@pytest.mark.parametrize("arch", [TINY_MLP, TINY_CNN], ids=["mlp", "cnn"])
def test_every_method_declares_op_semantics_the_counter_accepts(name, arch):
    method = _method(name, arch)
    with OpCounter(method.network, method.input_semantics) as counter:
        method.forward(torch.rand(2, *SHAPE), torch.Generator().manual_seed(0))
    counts = counter.compute()
    assert counts.totals["dense"] > 0
    assert counts.T == method.T


def test_every_method_declaring_a_constant_input_pays_the_same_first_layer_charge_once():
    """One constant image through every registered method that declares its input constant: the first
    synaptic layer is charged its products once per sample, the same for all, whatever their T."""
    from benchmark.metrics.ops import OpCounter

    image = torch.zeros(1, *SHAPE)
    image[0, 0, :3, :5] = torch.linspace(0.1, 1.0, 15).view(3, 5)  # 15 nonzero pixels of 64
    charges = {}
    for name in available_methods():
        method = _method(name)
        if not method.input_semantics.constant:
            continue
        with torch.no_grad(), OpCounter(method.network, method.input_semantics) as counter:
            method.network(method.encode(image))
        first = counter.compute(1).layers[0]
        charges[name] = (first["macs"], first["macs_every_step"] / method.T)
    # 15 nonzero inputs · fan-out 16 (the hidden layer) = 240 MACs, once; had every step been charged,
    # T times that
    assert {"convert", "qcfs", "ttfs"} <= set(charges)
    assert set(charges.values()) == {(15 * 16, 15 * 16)}, charges
