"""Every fusion method, one family per sub-package:

* :mod:`sumdun.methods.classical`: the reference toolbox's methods (EXP, BT-H, BDSD, GSA,
  AWLP, C-GSA, MTF-GLP, PRACS), one module per method;
* :mod:`sumdun.methods.neural`: networks with shipped weights (SUM-DUN and the deep
  baselines of :mod:`sumdun.models`).

:mod:`sumdun.methods.base` defines a method and the ``register`` decorator; the lookups
(:func:`~sumdun.methods.registry.get_method`, ``list_methods``) live in
:mod:`sumdun.methods.registry`, which imports a method's module only when it is asked for.
"""
