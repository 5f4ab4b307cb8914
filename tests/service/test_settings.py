"""Settings: one reference page generated from their descriptions, and command-line values validated like
the environment's."""

import subprocess
import sys
from pathlib import Path

import pytest

from citeqa.service.config import Settings, reference
from tests.support import ROOT

CITEQA = str(Path(sys.executable).with_name("citeqa"))


def test_the_settings_page_is_generated_from_the_settings_and_up_to_date():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert page == reference(), "docs/settings.md is stale: run `make docs`"
    for name, field in Settings.model_fields.items():
        assert f"`CITEQA_{name.upper()}`" in page and field.description, f"{name} is undocumented"


@pytest.mark.parametrize("args, named", [
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--port", "0"], "--port"),
    (["search", "anything", "--k", "0"], "--k"),
    (["ask", "anything", "--k", "51"], "--k"),
])
def test_a_bad_command_line_value_is_refused_in_one_line_naming_the_option(args, named, tmp_path):
    done = subprocess.run([CITEQA, *args, "--data", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {named}: ")
