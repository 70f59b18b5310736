"""Only the wheel's UI files: the configuration is in pyproject.toml.

The browser UI lives at the top of the repository (``static/``, ``templates/``); the wheel
carries it inside the server package as ``server/ui/static`` and ``server/ui/templates``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

UI = ("static", "templates")


class BuildWithUI(build_py):
    """build_py, plus the UI's files copied under ``server/ui/`` in the build."""

    def run(self) -> None:
        super().run()
        here = Path(__file__).resolve().parent
        for name in UI:
            target = Path(self.build_lib) / "server" / "ui" / name
            shutil.copytree(here / name, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithUI})
