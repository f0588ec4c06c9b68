"""Copies the measured quick-profile leaderboard table into README.md, between its markers.

    python scripts/sync_readme.py [--board reports/fashion-mnist-quick/leaderboard.md] [--readme README.md]

The README shows what `dvc repro` measured, never typed-in numbers: this script takes the first
table of the board file (written by `spikecode report`) and replaces the lines between
`<!-- leaderboard:start -->` and `<!-- leaderboard:end -->`, keeping the note that follows the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

START, END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"


def first_table(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| ")), None)
    if start is None:
        raise ValueError("the board file holds no markdown table")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def sync(readme: str, table: list[str]) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} block; add the two markers where the table goes")
    head, rest = readme.split(START, 1)
    body, tail = rest.split(END, 1)
    old = body.strip("\n").splitlines()
    note = [line for line in old if line and not line.startswith("|")]  # the prose under the table
    return head + START + "\n" + "\n".join(table + [""] + note) + "\n" + END + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", type=Path, default=Path("reports/fashion-mnist-quick/leaderboard.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    if not args.board.exists():
        print(f"{args.board} not found: run `dvc repro` (or `spikecode report`) first", file=sys.stderr)
        return 2
    args.readme.write_text(sync(args.readme.read_text(), first_table(args.board.read_text())))
    print(f"{args.readme}: leaderboard table replaced from {args.board}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
