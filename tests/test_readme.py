"""The README stays complete: every setting is documented."""

import re
from pathlib import Path

from pydantic import AliasChoices

from zerg.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [f"ZERG_{name.upper()}"]
        if isinstance(alias, AliasChoices):
            names += [str(choice) for choice in alias.choices]
        if not any(re.search(rf"\b{env}(?![A-Z0-9_])", README) for env in names):
            missing.append(names[0])
    assert not missing, f"settings missing from the README: {missing}"
