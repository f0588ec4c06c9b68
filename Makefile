# The two entry points of the README. Both set everything up first (scripts/setup.sh is idempotent).
.PHONY: repro test bench

repro:
	scripts/setup.sh
	. .venv/bin/activate && dvc repro

test:
	scripts/setup.sh --test
	.venv/bin/python -m pytest -n 2 --dist loadfile

bench:
	scripts/setup.sh --test
	.venv/bin/python scripts/perf_table.py
