"""The suite's errors. Each message names the problem, the value received and the fix."""


class SpikeCodeError(Exception):
    """Base class: an error a user can act on. The CLI prints it without a traceback."""


class ConfigError(SpikeCodeError):
    """A malformed params.yaml key or value."""


class RegistryError(SpikeCodeError):
    """An unknown or duplicate method or dataset."""


class ContractError(SpikeCodeError):
    """A coding method that breaks the method contract."""


class DataError(SpikeCodeError):
    """A missing or corrupt data file."""


class TrainingDiverged(SpikeCodeError):
    """The loss became NaN or exploded."""


class OpCountError(SpikeCodeError):
    """The op counter met a module it does not know how to charge."""


class MissingData(DataError):
    """The raw files of a dataset are nowhere to be found (as opposed to present but corrupt)."""


class DatasetSkipped(DataError):
    """A stage met a dataset that `prepare --skip-missing` marked as absent."""
