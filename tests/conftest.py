"""Shared fixtures. Real scanner files live in ../shared/data (see its README); tests that
need them skip with a reason when that folder is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _workflow_models import cohort, model_zoo

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HARM3_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("QT_API", "pyqt6")


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real test data (../shared/data); skips when absent."""
    if not (SHARED_DATA / "real").is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see shared/data/README.md)")
    return SHARED_DATA


def real_file(shared: Path, relative: str) -> Path:
    path = shared / "real" / relative
    if not path.exists():
        pytest.skip(f"real test file absent: {path}")
    return path


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report as ``item.rep_setup/rep_call/rep_teardown``: napari's
    ``make_napari_viewer`` fixture reads ``rep_call`` to skip its leak check after a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """A zoo folder with one pCR and one survival model (``_workflow_models.model_zoo``)."""
    return model_zoo(tmp_path_factory)


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory):
    """The six-patient phantom cohort the tiny models are trained on (``_workflow_models.cohort``)."""
    return cohort(tmp_path_factory)
