"""Method building blocks: spiking neurons, folded synaptic layers, single-spike temporal parts, the
ANN-to-SNN conversion toolkit and the named architectures. Imports nothing of the harness's stages
(only the contract's op semantics and errors), so a method can be read with this package alone."""
