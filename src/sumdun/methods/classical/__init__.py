"""Classical pansharpening methods, one module per method (GLP and BDSD with their variants),
registered through :mod:`sumdun.methods.base`.

Each reproduces the algorithm of G. Vivone's MATLAB toolbox (public copy in
``liangjiandeng/DLPan-Toolbox``) with its default options; the MS is expanded with
``interp23tap`` first, as the toolbox scripts do.

Each module registers its methods when imported; :data:`sumdun.methods.registry.BUILTIN` says which
module holds which method, so a lookup imports only what it needs.
"""
