"""The method contract, the public interface a coding method (built-in or plugin) is written against:

    benchmark.contract.method      CodingMethod, MethodConfig, Readout
    benchmark.contract.registry    register_method, get_method, available_methods
    benchmark.contract.semantics   OpSemantics, EventKind, BINARY_SPIKES, ANALOG_VALUES
    benchmark.contract.errors      the suite's errors (ConfigError, ContractError, ...)
    benchmark.contract.io          atomic file output
    benchmark.contract.provenance  what every result carries: commit, versions, device, data checksum
"""
