"""Networks in the fusion registry: SUM-DUN (:mod:`.sumdun`) and the deep baselines
(:mod:`.baselines`), each registered once its weights ship (:mod:`sumdun.weights`)."""
