"""Benchmarks: `python -m bench [module ...]` runs them (all by default) and writes JSON to var/bench/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTPUT_DIR = Path(__file__).resolve().parent.parent / "var" / "bench"


def write_json(name: str, data: Any) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
