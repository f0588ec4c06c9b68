"""Rendering: tables (`tables`), plots (`plots`), the report stage's files (`report`) and the static
site (`site`, Jinja2 templates). Draws the summaries of benchmark.results; computes nothing."""
