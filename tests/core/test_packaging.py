"""pyproject.toml installs every package: setuptools takes only the packages it lists.

An editable install finds unlisted subpackages anyway, so the suite would pass
while a built wheel lacked them; this compares the list with the folders.
"""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def test_every_package_folder_is_listed_for_installation():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {package: ROOT / folder for package, folder in setuptools["package-dir"].items()}
    found = set()
    for package, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder).parts
            found.add(".".join([package, *relative]))
    assert set(setuptools["packages"]) == found
