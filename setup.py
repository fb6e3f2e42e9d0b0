"""Ship the checklist scenarios with the distribution (the rest of the build is in pyproject.toml).

``scenarios/`` (and the project's ``monitoring/`` files the monitoring checks read) stay where the
checklist and README expect them in a checkout (``pytest scenarios``); a built wheel carries copies
under ``harness/scenarios/`` so that ``liquidation-harness verify`` finds them when installed.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = (("scenarios", "*.py", "harness/scenarios"), ("monitoring", "*", "harness/scenarios/monitoring"))


class BuildWithScenarios(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's scenarios/ directly
            return
        for source, pattern, target in SHIPPED:
            destination = Path(self.build_lib) / target
            for path in sorted((ROOT / source).glob(pattern)):
                if path.is_file():
                    destination.mkdir(parents=True, exist_ok=True)
                    self.copy_file(str(path), str(destination / path.name))


setup(cmdclass={"build_py": BuildWithScenarios})
