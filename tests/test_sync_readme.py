"""scripts/sync_readme.py: the README's leaderboard block is replaced by the board's measured table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("sync_readme", Path(__file__).parents[1] / "scripts" / "sync_readme.py")
sync_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_readme)


def test_the_block_takes_the_boards_first_table_and_keeps_the_note():
    readme = "intro\n<!-- leaderboard:start -->\n| a |\n| --- |\n| 1 |\n\nMeasured by make repro.\n<!-- leaderboard:end -->\nrest\n"
    board = "# Board\n\ntext\n\n| a |\n| --- |\n| 2 |\n| 3 |\n\n## Robustness\n\n| b |\n| --- |\n"
    synced = sync_readme.sync(readme, sync_readme.first_table(board))
    assert synced == ("intro\n<!-- leaderboard:start -->\n| a |\n| --- |\n| 2 |\n| 3 |\n\nMeasured by make repro.\n"
                      "<!-- leaderboard:end -->\nrest\n")
    assert sync_readme.sync(synced, sync_readme.first_table(board)) == synced  # idempotent


def test_a_readme_without_markers_is_an_error_naming_them():
    with pytest.raises(ValueError, match="leaderboard:start"):
        sync_readme.sync("no markers", ["| a |"])


def test_each_named_block_takes_its_own_board():
    readme = "<!-- leaderboard:start -->\n| a |\n<!-- leaderboard:end -->\n<!-- events-leaderboard:start -->\n| e |\n" \
             "<!-- events-leaderboard:end -->\n"
    synced = sync_readme.sync(sync_readme.sync(readme, ["| 1 |"]), ["| 2 |"], "events-leaderboard")
    assert synced == ("<!-- leaderboard:start -->\n| 1 |\n\n<!-- leaderboard:end -->\n"
                      "<!-- events-leaderboard:start -->\n| 2 |\n\n<!-- events-leaderboard:end -->\n")
