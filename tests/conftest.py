import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    """``SUMDUN_MUTANT=NAME`` applies one code mutation of ``tests/mutants.py`` in memory before
    any test runs (``python tests/mutants.py`` checks that the suite catches each)."""
    name = os.environ.get("SUMDUN_MUTANT")
    if name:
        from mutants import apply

        apply(name)
