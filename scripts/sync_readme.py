"""Copies the measured quick-profile leaderboard tables and the claims table into README.md, between their
markers.

    python scripts/sync_readme.py [--readme README.md]

The README shows what `dvc repro` measured, never typed-in numbers: for each board of `BOARDS` this
script takes the first table of the board file (written by `spikecode report`) and replaces the
lines between `<!-- NAME:start -->` and `<!-- NAME:end -->`, keeping the note that follows the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BOARDS = {"leaderboard": Path("reports/fashion-mnist-quick/leaderboard.md"),
          "events-leaderboard": Path("reports/fashion-mnist-dvs-quick/leaderboard.md"),
          "claims": Path("reports/claims.md")}


def first_table(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| ")), None)
    if start is None:
        raise ValueError("the board file holds no markdown table")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def sync(readme: str, table: list[str], name: str = "leaderboard") -> str:
    START, END = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if START not in readme or END not in readme:
        raise ValueError(f"README.md has no {START} ... {END} block; add the two markers where the table goes")
    head, rest = readme.split(START, 1)
    body, tail = rest.split(END, 1)
    old = body.strip("\n").splitlines()
    note = [line for line in old if line and not line.startswith("|")]  # the prose under the table
    return head + START + "\n" + "\n".join(table + [""] + note) + "\n" + END + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    missing = [str(board) for board in BOARDS.values() if not board.exists()]
    if missing:
        print(f"{', '.join(missing)} not found: run `dvc repro` (or `spikecode report`) first", file=sys.stderr)
        return 2
    readme = args.readme.read_text()
    for name, board in BOARDS.items():
        readme = sync(readme, first_table(board.read_text()), name)
    args.readme.write_text(readme)
    print(f"{args.readme}: leaderboard tables replaced from {', '.join(map(str, BOARDS.values()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
