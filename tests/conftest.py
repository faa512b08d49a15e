import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    """``SUMDUN_MUTANT=NAME`` applies one code mutation of ``tests/mutants.py`` in memory before
    any test runs (``python tests/mutants.py`` checks that the suite catches each).

    Under pytest-xdist (``make test`` runs one worker per core) each worker gets its share of
    the cores as its default thread count (``SUMDUN_THREADS``, ``OMP_NUM_THREADS``, before torch
    loads): two workers of two threads each on two cores spin-wait against each other and ran
    the suite several times slower. Tests that set threads on purpose still do."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and os.environ.get("PYTEST_XDIST_WORKER"):
        share = str(max(1, len(os.sched_getaffinity(0)) // int(workers)))
        os.environ.setdefault("SUMDUN_THREADS", share)
        os.environ.setdefault("OMP_NUM_THREADS", share)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", share)
    name = os.environ.get("SUMDUN_MUTANT")
    if name:
        from mutants import apply

        apply(name)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory):
    """``shared_dir(name, build)``: a folder ``build(folder)`` filled once per test run, shared
    by every pytest-xdist worker (under a file lock, in the run's common temporary folder) and
    by a plain run alike."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder all workers' basetemps share

    def get(name: str, build) -> Path:
        folder = root / f"shared-{name}"
        with FileLock(str(folder) + ".lock"):
            if not (folder / ".complete").exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                build(folder)
                (folder / ".complete").touch()
        return folder

    return get


def pytest_collection_modifyitems(config, items):
    """Tests marked ``heavy`` (a minute or more each) first: pytest-xdist hands out work in
    collection order, so they start at once on different workers instead of one of them
    finishing alone after everything else."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
