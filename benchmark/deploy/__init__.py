"""Deployment: a run's network as a NIR graph (exact, or with its approximations stated; or the exact
reasons it cannot be one), its round trip through other SNN libraries, and its accuracy and energy
under fixed-point weights and membranes.

    nir_export    the network -> a NIR graph (with every approximation it makes), or every reason NIR
                  cannot express it
    roundtrip     the graph imported by other libraries, run on the harness's encoded inputs, compared
    fixed_point   per-layer symmetric k-bit weights, 16-bit membranes: accuracy and tier-1 energy
    stage         `run_deploy`: all three for one run -> runs/<dataset>/<method>/<seed>/deploy.json
"""
