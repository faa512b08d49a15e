"""Classical pansharpening methods, registered in :mod:`sumdun.fusion`.

Each reproduces the algorithm of G. Vivone's MATLAB toolbox (public copy in
``liangjiandeng/DLPan-Toolbox``) with its default options; the MS is expanded with
``interp23tap`` first, as the toolbox scripts do.
"""
from . import bdsd, brovey, exp, glp, gsa, pracs  # noqa: F401
from . import neural  # noqa: F401  (SUM-DUN; registered only when its weights ship)
