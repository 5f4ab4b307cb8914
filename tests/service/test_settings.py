"""Every setting is documented in the README, as its CITEQA_ variable."""

from service.config import Settings
from tests.conftest import ROOT


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"CITEQA_{name.upper()}" not in readme]
    assert not missing
