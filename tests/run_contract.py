"""Checks of the run-folder contract shared by every experiment's tests.

Same seed and config -> byte-identical outputs; a run killed mid-way (final files and one
finished unit gone) and restarted -> byte-identical outputs; the same run on 2 (virtual CPU)
devices -> the same samples, floats equal up to float32 rounding; an LM experiment's real-model
path (``model_dir`` / ``data_file``) runs end to end on a tiny random checkpoint.
"""

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import io
from tests import tiny_hf

_ROOT = Path(__file__).resolve().parents[1]


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


def run_on_two_devices(module, out: Path) -> None:
    """Run ``module.smoke()`` into ``out`` in a subprocess with 2 virtual CPU devices.

    The device count is fixed when JAX starts, hence the subprocess.
    """
    code = (
        "import importlib, pathlib, jax; assert jax.device_count() == 2, jax.devices(); "
        f"m = importlib.import_module({module.__name__!r}); "
        f"m.run(m.smoke(), pathlib.Path({str(out)!r}))"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=_ROOT, timeout=600)


def assert_csv_close(one: Path, two: Path, files, *, atol: float, rtol: float = 0.0) -> None:
    """Same columns; float columns within ``atol + rtol |x|`` (NaN equals NaN), others equal."""
    for name in files:
        a, b = io.read_csv(one / name), io.read_csv(two / name)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        for column in a.columns:
            if pd.api.types.is_float_dtype(a[column]):
                np.testing.assert_allclose(
                    a[column], b[column], atol=atol, rtol=rtol, err_msg=f"{name}:{column}"
                )
            else:
                assert a[column].equals(b[column]), (name, column)


def assert_real_model_pipeline(
    module,
    tmp_path: Path,
    *,
    files: Sequence[str],
    columns: Sequence[str],
    splits: Callable[[Any], tuple[list, list]],
    **changes,
) -> tuple[Any, Path]:
    """Run ``module.smoke()`` with ``changes`` on the tiny random Hugging Face Llama and the
    5-record GSM8K JSONL (record 0 the demonstration) of :mod:`tests.tiny_hf`.

    Checks: ``files`` written, no char model pretrained (no ``pretrain/``), the eval and training
    examples of ``splits(cfg)`` distinct, disjoint and without the demonstration, and every
    ``columns`` entry of ``metrics.csv`` non-NaN. Returns ``(cfg, run folder)`` for the
    experiment's own checks.
    """
    cfg = dataclasses.replace(
        module.smoke(),
        model_dir=str(tiny_hf.tiny_llama(tmp_path / "tiny-llama")),
        data_file=str(tiny_hf.write_gsm8k(tmp_path / "gsm8k.jsonl")),
        **changes,
    )
    out = tmp_path / module.NAME
    module.run(cfg, out)
    for name in files:
        assert (out / name).is_file(), name
    assert not (out / "pretrain").exists()
    eval_examples, train_examples = splits(cfg)
    eval_q = {e.prompt for e in eval_examples}
    train_q = {e.prompt for e in train_examples}
    assert len(eval_q) == len(eval_examples) > 0 and len(train_q) == len(train_examples) > 0
    assert not eval_q & train_q
    assert tiny_hf.GSM8K[0][0] not in eval_q | train_q
    metrics = io.read_csv(out / "metrics.csv")
    for column in columns:
        assert metrics[column].notna().all(), column
    return cfg, out
