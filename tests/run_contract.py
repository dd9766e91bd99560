"""Checks of the run-folder contract shared by every experiment's tests.

Same seed and config -> byte-identical outputs; a run killed mid-way (final files and one
finished unit gone) and restarted -> byte-identical outputs.
"""

import shutil
from pathlib import Path


def assert_rerun_identical(module, reference: Path, tmp_path: Path, files) -> None:
    """Run ``module.smoke()`` into a fresh folder and compare ``files`` byte for byte."""
    again = tmp_path / "again"
    module.run(module.smoke(), again)
    for name in files:
        assert (again / name).read_bytes() == (reference / name).read_bytes(), name


def assert_resume_identical(module, reference: Path, tmp_path: Path, files) -> None:
    """Delete ``files`` and the last finished unit from a copy, rerun, compare byte for byte."""
    out = tmp_path / "resume"
    shutil.copytree(reference, out)
    for name in files:
        (out / name).unlink()
    sorted((out / "units").glob("*.csv"))[-1].unlink()
    module.run(module.smoke(), out)
    for name in files:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
