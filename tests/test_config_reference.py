"""docs/configuration.md is what `python -m callnow.config_reference` prints, for every setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from callnow.config import Settings
from callnow.config_reference import reference

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def every_key() -> list[str]:
    keys = []
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            keys.extend(f"{name}.{key}" for key in model.model_fields)
        else:
            keys.append(name)
    return keys


def test_the_committed_reference_is_the_generated_one():
    # Stale? Regenerate: python -m callnow.config_reference > docs/configuration.md
    assert DOCS.read_text(encoding="utf-8") == reference()


def test_the_generator_runs_as_a_module_and_prints_the_reference():
    printed = subprocess.run(
        [sys.executable, "-m", "callnow.config_reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=DOCS.parent.parent,
    )
    assert printed.stdout == reference()


def test_every_setting_has_a_row_with_its_environment_variable_and_a_description():
    lines = reference().splitlines()
    for key in every_key():
        rows = [line for line in lines if line.startswith(f"| `{key}` |")]
        assert len(rows) == 1, key
        cells = [cell.strip() for cell in rows[0].strip("|").split(" | ")]
        assert cells[4] == f"`CALLNOW_{key.upper().replace('.', '__')}`"
        assert cells[5], key


def test_ranges_and_rate_limits_are_shown():
    text = reference()
    assert "| `web.port` | integer | `8000` | 1 ≤ x ≤ 65535 |" in text
    assert '| `abuse.spike_captcha` | rate limit | `"100/10 minutes"` |' in text
    assert '| `rtpengine.mode` | choice | `"spawn"` | `"spawn"`, `"external"` |' in text
