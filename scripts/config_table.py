"""Rewrite the configuration table in README.md from rerum_server.settings.ENVIRONMENT.

Run after adding a variable: `.venv/bin/python scripts/config_table.py` (tests/unit/test_settings.py
fails while the table and the settings disagree).
"""

from __future__ import annotations

from pathlib import Path

from rerum_server.settings import ENVIRONMENT

HEADER = "| Variable | Default | Meaning |\n|---|---|---|\n"


def main() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    rows = "\n".join(
        f"| `{name}` | `{default}` | {meaning} |" if default else f"| `{name}` | (unset) | {meaning} |"
        for name, (default, meaning) in ENVIRONMENT.items()
    )
    start = text.index(HEADER) + len(HEADER)
    end = text.index("\n\n", start)
    readme.write_text(text[:start] + rows + text[end:])


if __name__ == "__main__":
    main()
