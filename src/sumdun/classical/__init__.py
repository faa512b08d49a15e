"""Classical pansharpening methods, registered in :mod:`sumdun.fusion`."""
from . import exp  # noqa: F401
