"""One registration point for coding methods (timm's `register_model` / `create_model`).

Built-in methods register with `@register_method("name")` in `methods/`; third-party packages
declare an entry point in the group `spikecode.methods` whose value is their method class (or a
module that registers on import). Duplicate names and classes that break the contract are errors.
A plugin that fails to load is listed as broken with its error (`broken_methods`) and does not stop
the other methods; asking for it by name raises that error.

The registry imports the package `methods` when first asked (the one import loop of the harness:
`methods` imports `register_method` from here).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable, TypeVar

import torch
from pydantic import ValidationError

from benchmark.contract.errors import ConfigError, ContractError, RegistryError
from benchmark.contract.method import FAMILIES, CodingMethod, MethodConfig, Readout
from benchmark.contract.semantics import OpSemantics
from snn.arch import ArchSpec

ENTRY_POINT_GROUP = "spikecode.methods"
_METHODS: dict[str, type[CodingMethod]] = {}
_BROKEN: dict[str, str] = {}  # entry-point name -> why it could not be loaded or registered
_loaded = False

M = TypeVar("M", bound=type[CodingMethod])


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: validates the class against the contract and records it under `name`."""

    def decorate(cls: M) -> M:
        _check_class(cls, name)
        if name in _METHODS and _METHODS[name] is not cls:
            other = _METHODS[name]
            raise RegistryError(
                f"method name {name!r} is registered twice: by {other.__module__}.{other.__qualname__} "
                f"and by {cls.__module__}.{cls.__qualname__}; rename one of them"
            )
        cls.name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _check_class(cls: Any, name: str) -> None:
    where = f"method {name!r} ({getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)})"
    if not (isinstance(cls, type) and issubclass(cls, CodingMethod)):
        raise ContractError(f"{where}: must be a subclass of benchmark.contract.method.CodingMethod")
    if getattr(cls, "family", None) not in FAMILIES:
        raise ContractError(f"{where}: class attribute `family` must be one of {FAMILIES}, got {getattr(cls, 'family', None)!r}")
    if not isinstance(getattr(cls, "citation", None), str) or not cls.citation.strip():
        raise ContractError(f"{where}: class attribute `citation` must name the paper it implements")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, MethodConfig)):
        raise ContractError(f"{where}: `Config` must subclass benchmark.contract.method.MethodConfig")
    if not isinstance(cls.input_semantics, OpSemantics):
        raise ContractError(f"{where}: `input_semantics` must be an OpSemantics declaring the encoder's events")
    required = ["build", "encode", "readout"] + (["convert"] if cls.family == "conversion" else ["loss"])
    missing = [hook for hook in required if getattr(cls, hook) is getattr(CodingMethod, hook)]
    if missing:
        raise ContractError(f"{where}: does not implement {', '.join(missing)} (required for family {cls.family!r})")
    if cls.family == "conversion" and not cls.source_method:
        raise ContractError(f"{where}: a conversion method must name its `source_method`, the registered method "
                            "whose trained network it converts")


def _load() -> None:
    """Imports the built-in methods and every installed plugin, once; a plugin that fails to load or
    breaks the contract is recorded in `_BROKEN` instead of stopping the others."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("methods")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            if isinstance(loaded, type) and loaded not in _METHODS.values():
                register_method(entry.name)(loaded)
        except Exception as error:  # a broken plugin must name itself, whatever it raised
            _BROKEN[entry.name] = (f"plugin entry point {entry.name!r} = {entry.value!r} (group {ENTRY_POINT_GROUP}) "
                                   f"failed to load: {type(error).__name__}: {error}; fix or uninstall that package")


def available_methods() -> dict[str, type[CodingMethod]]:
    _load()
    return dict(sorted(_METHODS.items()))


def broken_methods() -> dict[str, str]:
    """Plugins that could not be loaded: entry-point name -> the error, naming the fix."""
    _load()
    return dict(sorted(_BROKEN.items()))


def get_method(name: str) -> type[CodingMethod]:
    methods = available_methods()
    if name in _BROKEN and name not in methods:
        raise RegistryError(_BROKEN[name])
    if name not in methods:
        raise RegistryError(
            f"unknown method {name!r}; registered methods: {', '.join(methods)}. "
            f"A plugin registers through the entry-point group {ENTRY_POINT_GROUP!r}."
        )
    return methods[name]


def parse_config(cls: type[CodingMethod], raw: dict[str, Any], where: str) -> MethodConfig:
    """Validates `raw` against the method's Config; errors name the key and what it accepts."""
    try:
        return cls.Config(**raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"])
            if item["type"] == "extra_forbidden":
                allowed = ", ".join(cls.Config.model_fields)
                problems.append(f"{where}.{key}: unknown key for method {cls.name!r} (allowed: {allowed})")
            else:
                problems.append(f"{where}.{key}: {item['msg']} (got {item.get('input')!r})")
        raise ConfigError("invalid hyperparameters in params.yaml:\n  " + "\n  ".join(problems)) from None


def create_method(
    name: str, hyperparameters: dict[str, Any], arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int
) -> CodingMethod:
    cls = get_method(name)
    config = parse_config(cls, hyperparameters, f"methods.{name}")
    return cls(config, arch, input_shape, num_classes)


def check_contract(method: CodingMethod, encoded: torch.Tensor, batch: int, encoder: str = "encode()") -> None:
    """Checks every shape the harness relies on, from the output of `method`'s encoder (`encoder`
    names it) on a tiny batch of `batch` samples: network, readout and, when trained, loss."""
    where = f"method {method.name!r}"
    if not isinstance(encoded, torch.Tensor) or encoded.ndim < 2 or encoded.shape[:2] != (method.T, batch):
        raise ContractError(f"{where}: {encoder} must return a tensor [T={method.T}, B={batch}, ...], got "
                            f"{getattr(encoded, 'shape', type(encoded).__name__)}")
    output = method.network(encoded)
    expected = (method.T, batch, method.num_classes)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        raise ContractError(f"{where}: the network must return [T, B, classes] = {list(expected)}, got "
                            f"{list(getattr(output, 'shape', []))}")
    readout = method.readout(output)
    if not isinstance(readout, Readout):
        raise ContractError(f"{where}: readout() must return a benchmark.contract.method.Readout, got "
                            f"{type(readout).__name__}")
    for field in ("prediction", "decision_step"):
        value = getattr(readout, field)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (batch,):
            raise ContractError(f"{where}: readout().{field} must be a tensor of shape [B={batch}]")
    steps = readout.decision_step
    if bool((steps < 1).any() or (steps > method.T).any()):
        raise ContractError(f"{where}: readout().decision_step must lie in 1..T={method.T}, got {steps.tolist()}")
    if method.family != "conversion":
        loss = method.loss(output, torch.zeros(batch, dtype=torch.long))
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ContractError(f"{where}: loss() must return a scalar tensor")
