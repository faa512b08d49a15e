"""Quality indices that agree with G. Vivone's MATLAB pansharpening toolbox.

Reduced resolution (fused vs reference): :func:`sam`, :func:`ergas`, :func:`scc`,
:func:`psnr`, :func:`q_index`, :func:`q_avg`, :func:`q2n`. Full resolution (fused vs MS and
PAN): :func:`d_lambda_k`, :func:`d_s`, :func:`hqnr`, and the classic :func:`d_lambda`,
:func:`qnr`. Protocols: :func:`reduced_resolution`, :func:`full_resolution`.
"""
from .full import block_uqi, d_lambda, d_lambda_k, d_s, full_resolution_indices, hqnr, qnr
from .protocols import FULL_KEYS, REDUCED_KEYS, full_resolution, reduced_resolution
from .reduced import ergas, onion_mult, onions_quality, psnr, q2n, q2n_map, q_avg, q_bands, q_index, sam, scc

__all__ = ["sam", "ergas", "scc", "psnr", "q_index", "q_avg", "q_bands", "q2n", "q2n_map",
           "onion_mult", "onions_quality", "d_lambda_k", "d_s", "hqnr", "full_resolution_indices", "d_lambda", "qnr",
           "block_uqi", "reduced_resolution", "full_resolution", "REDUCED_KEYS", "FULL_KEYS"]
