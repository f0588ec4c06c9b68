"""Audits of recorded results: `verify` re-runs a record from its provenance (params, seed, commit) and
says whether its metrics are reproduced."""
