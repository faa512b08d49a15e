"""Literal, loop-based transcriptions of the toolbox's quality indices (MATLAB -> numpy).

Written line by line from ``Quality_Indices/*.m`` (public copy in ``liangjiandeng/DLPan-Toolbox``)
with H x W x C arrays, per-block and per-band loops, scipy for ``filter2``/``imfilter``, and
independent of ``sumdun.metrics``. The tests compare against them; ``benchmarks/metrics.py``
times them as the "straightforward loop implementation".
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate
from scipy.signal import correlate2d

EPS = np.finfo(float).eps


def mean2(x):
    return float(np.mean(x))


def std2(x):
    return float(np.std(x, ddof=1))


def img_qi(img1, img2, block):
    n = block * block
    k = np.ones((block, block))
    s1 = correlate2d(img1, k, "valid")
    s2 = correlate2d(img2, k, "valid")
    s11 = correlate2d(img1 * img1, k, "valid")
    s22 = correlate2d(img2 * img2, k, "valid")
    s12 = correlate2d(img1 * img2, k, "valid")
    mul = s1 * s2
    sq_mul = s1 * s1 + s2 * s2
    num = 4 * (n * s12 - mul) * mul
    den1 = n * (s11 + s22) - sq_mul
    den = den1 * sq_mul
    q = np.ones(den.shape)
    idx = (den1 == 0) & (sq_mul != 0)
    q[idx] = 2 * mul[idx] / sq_mul[idx]
    idx = den != 0
    q[idx] = num[idx] / den[idx]
    return mean2(q)


def Q(i1, i2, block=32):
    return float(np.mean([img_qi(i1[:, :, b], i2[:, :, b], block) for b in range(i1.shape[2])]))


def SAM(i1, i2):
    prod_scal = np.sum(i1 * i2, axis=2)
    norm_orig = np.sum(i1 * i1, axis=2)
    norm_fusa = np.sum(i2 * i2, axis=2)
    prod_norm = np.sqrt(norm_orig * norm_fusa).ravel()
    prod_scal = prod_scal.ravel()
    keep = prod_norm != 0
    ang = np.arccos(np.clip(prod_scal[keep] / prod_norm[keep], -1, 1))
    return float(np.sum(ang) / keep.sum() * 180 / math.pi)


def ERGAS(i1, i2, ratio):
    err = i1 - i2
    acc = 0.0
    for b in range(err.shape[2]):
        acc += mean2(err[:, :, b] ** 2) / mean2(i1[:, :, b]) ** 2
    return 100 / ratio * math.sqrt(acc / err.shape[2])


def SCC(i_f, i_gt):
    sob = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)

    def lap(img):
        out = []
        for b in range(img.shape[2]):
            x = img[1:-1, 1:-1, b]
            gy = correlate(x, sob, mode="constant")
            gx = correlate(x, sob.T, mode="constant")
            out.append(np.sqrt(gy**2 + gx**2))
        return np.stack(out, 2)

    a, b = lap(i_f), lap(i_gt)
    return float(np.sum(a * b) / np.sqrt(np.sum(a**2)) / np.sqrt(np.sum(b**2)))


def onion_mult(o1, o2):
    n = len(o1)
    if n > 1:
        half = n // 2
        a, b = list(o1[:half]), list(o1[half:])
        b = [b[0]] + [-v for v in b[1:]]
        c, d = list(o2[:half]), list(o2[half:])
        d = [d[0]] + [-v for v in d[1:]]
        if n == 2:
            return [a[0] * c[0] - d[0] * b[0], a[0] * d[0] + c[0] * b[0]]
        r1 = onion_mult(a, c)
        r2 = onion_mult(d, [b[0]] + [-v for v in b[1:]])
        r3 = onion_mult([a[0]] + [-v for v in a[1:]], d)
        r4 = onion_mult(c, b)
        return [x - y for x, y in zip(r1, r2)] + [x + y for x, y in zip(r3, r4)]
    return [o1[0] * o2[0]]


def onions_quality(dat1, dat2, size1):
    dat1 = dat1.astype(float).copy()
    dat2 = dat2.astype(float).copy()
    dat2[:, :, 1:] = -dat2[:, :, 1:]
    n3 = dat1.shape[2]
    for i in range(n3):
        x = dat1[:, :, i]
        s, t = mean2(x), std2(x)
        if t == 0:
            t = EPS
        dat1[:, :, i] = (x - s) / t + 1
        if s == 0:
            dat2[:, :, i] = dat2[:, :, i] - s + 1 if i == 0 else -(-dat2[:, :, i] - s + 1)
        else:
            dat2[:, :, i] = ((dat2[:, :, i] - s) / t) + 1 if i == 0 else -(((-dat2[:, :, i] - s) / t) + 1)
    m1 = [mean2(dat1[:, :, i]) for i in range(n3)]
    m2 = [mean2(dat2[:, :, i]) for i in range(n3)]
    mod_q1m = math.sqrt(sum(v * v for v in m1))
    mod_q2m = math.sqrt(sum(v * v for v in m2))
    mod_q1 = np.sqrt(np.sum(dat1**2, axis=2))
    mod_q2 = np.sqrt(np.sum(dat2**2, axis=2))
    nn = size1 * size1
    termine2 = mod_q1m * mod_q2m
    termine4 = mod_q1m**2 + mod_q2m**2
    int1 = nn / (nn - 1) * mean2(mod_q1**2)
    int2 = nn / (nn - 1) * mean2(mod_q2**2)
    termine3 = int1 + int2 - nn / (nn - 1) * (mod_q1m**2 + mod_q2m**2)
    mean_bias = 2 * termine2 / termine4
    if termine3 == 0:
        q = np.zeros(n3)
        q[-1] = mean_bias
        return q
    cbm = 2 / termine3
    # onion_mult2D: the same recursion with each band a 2-D array
    qu = np.stack(onion_mult([dat1[:, :, i] for i in range(n3)],
                             [dat2[:, :, i] for i in range(n3)]), axis=2)
    qm = onion_mult(m1, m2)
    qv = np.array([nn / (nn - 1) * mean2(qu[:, :, i]) for i in range(n3)])
    q = qv - nn / (nn - 1) * np.array(qm)
    return q * mean_bias * cbm


def _matlab_uint16(x):
    return np.clip(np.floor(np.clip(x, 0, None) + 0.5), 0, 65535)


def q2n(i_gt, i_f, block=32, shift=32, quantize=True):
    n1, n2, n3 = i_gt.shape
    stepx, stepy = math.ceil(n1 / shift), math.ceil(n2 / shift)
    est1 = (stepx - 1) * shift + block - n1
    est2 = (stepy - 1) * shift + block - n2
    if est1 or est2:
        def pad(img):
            out = np.zeros((n1 + est1, n2 + est2, n3))
            for i in range(n3):
                ia = np.zeros((n1 + est1, n2 + est2))
                ia[:n1, :n2] = img[:, :, i]
                ia[:, n2:n2 + est2] = ia[:, n2 - 1:n2 - est2 - 1 if n2 - est2 - 1 >= 0 else None:-1]
                ia[n1:n1 + est1, :] = ia[n1 - 1:n1 - est1 - 1 if n1 - est1 - 1 >= 0 else None:-1, :]
                out[:, :, i] = ia
            return out
        i_gt, i_f = pad(i_gt), pad(i_f)
    if quantize:
        i_gt, i_f = _matlab_uint16(i_gt), _matlab_uint16(i_f)
    n3 = i_gt.shape[2]
    if math.ceil(math.log2(n3)) - math.log2(n3) != 0:
        ndif = 2 ** math.ceil(math.log2(n3)) - n3
        z = np.zeros(i_gt.shape[:2] + (ndif,))
        i_gt, i_f = np.concatenate([i_gt, z], 2), np.concatenate([i_f, z], 2)
    vals = np.zeros((stepx, stepy, i_gt.shape[2]))
    for j in range(stepx):
        for i in range(stepy):
            sl = (slice(j * shift, j * shift + block), slice(i * shift, i * shift + block))
            vals[j, i, :] = onions_quality(i_gt[sl], i_f[sl], block)
    return float(np.mean(np.sqrt(np.sum(vals**2, axis=2))))


def uqi(x, y):
    x, y = x.ravel(), y.ravel()
    mx, my = x.mean(), y.mean()
    c = np.cov(x, y)
    return 4 * c[0, 1] * mx * my / (c[0, 0] + c[1, 1]) / (mx**2 + my**2)


def blockproc_mean_uqi(a, b, s):
    vals = []
    for r in range(0, a.shape[0], s):
        for c in range(0, a.shape[1], s):
            vals.append(uqi(a[r:r + s, c:c + s], b[r:r + s, c:c + s]))
    return float(np.mean(vals))


def D_s(i_f, i_ms, i_pan, pan_filt, s=32, q=1):
    """``pan_filt`` = interp23tap(imresize(I_PAN, 1/ratio), ratio), computed by the caller."""
    acc = 0.0
    nb = i_f.shape[2]
    for i in range(nb):
        q_high = blockproc_mean_uqi(i_f[:, :, i], i_pan, s)
        q_low = blockproc_mean_uqi(i_ms[:, :, i], pan_filt, s)
        acc += abs(q_high - q_low) ** q
    return (acc / nb) ** (1 / q)


def D_lambda(i_f, i_ms, s=32, p=1):
    nb = i_f.shape[2]
    acc = 0.0
    for i in range(nb - 1):
        for j in range(i + 1, nb):
            q_exp = blockproc_mean_uqi(i_ms[:, :, i], i_ms[:, :, j], s)
            q_fused = blockproc_mean_uqi(i_f[:, :, i], i_f[:, :, j], s)
            acc += abs(q_fused - q_exp) ** p
    return (acc / ((nb * nb - nb) / 2)) ** (1 / p)


def hwc(x):
    """(C, H, W) -> H x W x C float64, as the MATLAB code sees images."""
    return np.moveaxis(np.asarray(x, dtype=float), 0, -1)


# ---------------------------------------------------------------- Tools/ (for full resolution)
CDF23_HALF = 2.0 * np.array([0.5, 0.305334091185, 0, -0.072698593239, 0, 0.021809577942, 0,
                             -0.005192756653, 0, 0.000807762146, 0, -0.000060081482])
CDF23 = np.concatenate([CDF23_HALF[:0:-1], CDF23_HALF])


def interp23tap(img, ratio):
    """interp23tap.m on H x W x C: zero insertion, then imfilter(.., 'circular') twice."""
    from scipy.ndimage import correlate1d

    for z in range(int(math.log2(ratio))):
        r, c, b = img.shape
        up = np.zeros((2 * r, 2 * c, b))
        if z == 0:
            up[1::2, 1::2, :] = img
        else:
            up[0::2, 0::2, :] = img
        for ii in range(b):
            t = correlate1d(up[:, :, ii], CDF23, axis=0, mode="wrap")
            up[:, :, ii] = correlate1d(t, CDF23, axis=1, mode="wrap")
        img = up
    return img


def MTF(img, kernels):
    """MTF.m: imfilter(band, h, 'replicate') per band, direct (no FFT); kernels (C, N, N)."""
    return np.stack([correlate(img[:, :, i], kernels[i], mode="nearest")
                     for i in range(img.shape[2])], axis=2)


def gauss_fir(gnyq, ratio, n=41, spread=None):
    """genMTF.m (spread = N-1) / LPfilterGauss.m (spread = N) kernel, by explicit inverse-DFT
    cosine sums of the sampled Gaussian response times Huang's circular Kaiser window."""
    from scipy.signal.windows import kaiser

    spread = n - 1 if spread is None else spread
    alpha = math.sqrt((spread * (1 / ratio) / 2) ** 2 / (-2 * math.log(gnyq)))
    k = np.arange(n) - (n - 1) // 2
    g1 = np.exp(-(k**2) / (2 * alpha**2))
    hd = np.outer(g1, g1)
    hd[hd < EPS * hd.max()] = 0
    hd = hd / hd.max()
    c = np.cos(2 * np.pi * np.outer(k, k) / n)
    s = np.sin(2 * np.pi * np.outer(k, k) / n)
    h = (c @ hd @ c.T - s @ hd @ s.T) / n**2
    t = np.linspace(-1, 1, n)
    r = np.hypot(*np.meshgrid(t, t))
    w = np.where(r <= 1, np.interp(np.minimum(r, 1), t, kaiser(n, 0.5)), 0.0)
    return h * w


def MTF_GLP(i_ms, i_pan, gains, ratio, hpm=False):
    """MTF_GLP.m / MTF_GLP_HPM.m on the upsampled MS i_ms (H x W x C) and i_pan (H x W)."""
    hg = gauss_fir(0.3, ratio, spread=41)
    pan_g = correlate(i_pan, hg, mode="nearest")
    out = np.zeros_like(i_ms)
    for ii in range(i_ms.shape[2]):
        eq = (i_pan - mean2(i_pan)) * (std2(i_ms[:, :, ii]) / std2(pan_g)) + mean2(i_ms[:, :, ii])
        lp = correlate(eq, gauss_fir(gains[ii], ratio), mode="nearest")
        t = lp[ratio // 2::ratio, ratio // 2::ratio]
        lp = interp23tap(t[:, :, None], ratio)[:, :, 0]
        out[:, :, ii] = i_ms[:, :, ii] * (eq / (lp + EPS)) if hpm else i_ms[:, :, ii] + eq - lp
    return out


def BroveyRegHazeMin(i_ms, i_pan, ratio):
    c = i_ms.shape[2]
    if c == 4:
        frac = [0.95, 0.45, 0.40, 0.05]
        L = np.array([frac[i] * np.percentile(i_ms[:, :, i].ravel(), 1, method="hazen")
                      for i in range(4)])
    else:
        L = np.array([i_ms[:, :, i].min() for i in range(c)])
    hr_lr = correlate(i_pan, gauss_fir(0.3, ratio, spread=41), mode="nearest")
    alpha = np.linalg.lstsq(i_ms.reshape(-1, c), hr_lr.ravel(), rcond=None)[0]
    intensity = np.sum((i_ms - L) * alpha, axis=2)
    hr = (i_pan - mean2(hr_lr)) * (std2(intensity) / std2(hr_lr)) + mean2(intensity)
    ms_l = np.maximum(i_ms - L, 0)
    return ms_l * (hr / (intensity + EPS))[:, :, None] + L


def _imresize_hwc(img, scale, method="bicubic"):
    """MATLAB imresize for H x W x C via sumdun's (tested on its own against hand values):
    scipy has no MATLAB-compatible imresize."""
    from sumdun.degrade import imresize

    return np.moveaxis(imresize(np.moveaxis(img, -1, 0), scale, method), 0, -1)


def BDSD(i_ms, i_pan, ratio, S, ms_gains, pan_gain):
    """BDSD.m with blockproc loops; S = None means one global block."""
    n, m = i_pan.shape
    sh, sw = (n, m) if S is None else (S, S)
    pan_lp = correlate(i_pan, gauss_fir(pan_gain, ratio), mode="nearest")
    pan_lp_d = pan_lp[2::ratio, 2::ratio]
    ms_orig = _imresize_hwc(i_ms, 1 / ratio)
    ms_lp_d = np.stack([correlate(ms_orig[:, :, k], gauss_fir(ms_gains[k], ratio), mode="nearest")
                        for k in range(ms_orig.shape[2])], 2)
    nb = i_ms.shape[2]
    out = np.zeros_like(i_ms)
    lh, lw = sh // ratio, sw // ratio
    for r in range(n // sh):
        for c in range(m // sw):
            lo = (slice(r * lh, (r + 1) * lh), slice(c * lw, (c + 1) * lw))
            hd = np.concatenate([np.stack([ms_lp_d[lo][:, :, k].ravel(order="F")
                                           for k in range(nb)], 1),
                                 pan_lp_d[lo].ravel(order="F")[:, None]], 1)
            B = np.linalg.solve(hd.T @ hd, hd.T)
            gamma = np.stack([B @ (ms_orig[lo][:, :, k] - ms_lp_d[lo][:, :, k]).ravel(order="F")
                              for k in range(nb)], 1)
            hi = (slice(r * sh, (r + 1) * sh), slice(c * sw, (c + 1) * sw))
            H = np.concatenate([np.stack([i_ms[hi][:, :, k].ravel(order="F") for k in range(nb)], 1),
                                i_pan[hi].ravel(order="F")[:, None]], 1)
            for k in range(nb):
                out[hi][:, :, k] = (i_ms[hi][:, :, k].ravel(order="F") + H @ gamma[:, k]).reshape(
                    sh, sw, order="F")
    return out


def BDSD_PC(i_ms, i_pan, ratio, ms_gains, pan_gain):
    """BDSD_PC.m; lsqlin's constraints (gamma_pan >= 0, gamma_ms <= 0) solved as an NNLS on
    sign-flipped MS columns (a different solver from sumdun's bounded least squares)."""
    from scipy.optimize import nnls

    gt = _imresize_hwc(i_ms, 1 / ratio)
    ms_lr = np.stack([correlate(gt[:, :, k], gauss_fir(ms_gains[k], ratio), mode="nearest")
                      for k in range(gt.shape[2])], 2)
    pan_lr = _imresize_hwc(correlate(i_pan, gauss_fir(pan_gain, ratio), mode="nearest")[:, :, None],
                           1 / ratio, "nearest")[:, :, 0]
    nb = i_ms.shape[2]
    H = np.concatenate([pan_lr.reshape(-1, 1), ms_lr.reshape(-1, nb)], 1)
    flip = np.r_[1.0, -np.ones(nb)]
    Hf = np.concatenate([i_pan.reshape(-1, 1), i_ms.reshape(-1, nb)], 1)
    out = np.zeros_like(i_ms)
    for k in range(nb):
        d, _ = nnls(H * flip, (gt[:, :, k] - ms_lr[:, :, k]).ravel(), maxiter=1000)
        out[:, :, k] = i_ms[:, :, k] + (Hf @ (d * flip)).reshape(i_ms.shape[:2])
    return out


def corr2(a, b):
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def PRACS(i_ms, i_pan, ratio, beta=0.95):
    n, m, L = i_ms.shape
    hm = np.zeros_like(i_ms)
    for k in range(L):
        b = i_ms[:, :, k]
        b = (b - mean2(b) + mean2(i_pan) / std2(i_pan) * std2(b)) * std2(i_pan) / std2(b)
        b[b < 0] = 0
        hm[:, :, k] = b
    up = lambda x: _imresize_hwc(_imresize_hwc(x[:, :, None], 1 / ratio), ratio)[:, :, 0]  # noqa: E731
    pan_l = up(i_pan)
    bb = np.concatenate([np.ones((n * m, 1)), hm.reshape(-1, L)], 1)
    alpha = np.linalg.lstsq(bb, pan_l.ravel(), rcond=None)[0]
    i_l = (bb @ alpha).reshape(n, m)
    i_h = np.zeros_like(i_ms)
    for k in range(L):
        cc = corr2(i_l, hm[:, :, k])
        i_h[:, :, k] = cc * i_pan + (1 - cc) * hm[:, :, k]
    i_lp = np.zeros_like(i_ms)
    for k in range(L):
        a = np.linalg.lstsq(bb, up(i_h[:, :, k]).ravel(), rcond=None)[0]
        i_lp[:, :, k] = (bb @ a).reshape(n, m)
    aux3 = np.mean([std2(i_ms[:, :, k]) for k in range(L)])
    out = np.zeros_like(i_ms)
    for k in range(L):
        delta = i_h[:, :, k] - i_lp[:, :, k] - (mean2(i_h[:, :, k]) - mean2(i_lp[:, :, k]))
        b = i_ms[:, :, k]
        w = beta * corr2(i_lp[:, :, k], b) * std2(b) / aux3
        l_i = 1 - np.abs(1 - corr2(i_l, b) * b / i_lp[:, :, k])
        out[:, :, k] = b + w * l_i * delta
    return out


def MTF_GLP_FS(i_ms, i_pan, ratio, gains):
    out = np.zeros_like(i_ms)
    for k in range(i_ms.shape[2]):
        lp = correlate(i_pan, gauss_fir(gains[k], ratio), mode="nearest")
        lp = interp23tap(lp[ratio // 2::ratio, ratio // 2::ratio][:, :, None], ratio)[:, :, 0]
        g = np.cov(i_ms[:, :, k].ravel(), i_pan.ravel())[0, 1] / np.cov(lp.ravel(), i_pan.ravel())[0, 1]
        out[:, :, k] = i_ms[:, :, k] + g * (i_pan - lp)
    return out


# --- Starck-Murtagh wavelet (ndwt2_working / indwt2_working), GSA.m, AWLP.m ----------------------
# Written step by step after the structure of MATLAB's ndwt2 / indwt2 ('sym' extension, full
# conv2, the two crops of wdec1D, recFUNC's central extraction and /4). The toolbox's
# ndwt2_working.m is not in the public copy; a public Python port of it shows the same steps.

SM_H = np.sqrt(2) * np.array([1, 4, 6, 4, 1]) / 16  # h and htilde (analysis = synthesis)


def _wdec1d_lo(x, lo):
    """wdec1D along dim 2 (each row), approximation only."""
    lf = len(lo)
    lx = x.shape[1]
    lc = lx + lf - 1
    x = np.concatenate([x[:, lf - 2::-1], x, x[:, :-lf - 1:-1]], axis=1)  # X(:,lf-1:-1:1), X, X(:,end:-1:end-lf+1)
    full = np.stack([np.convolve(row, lo) for row in x])                 # conv2(X, Lo)
    length = full.shape[1]
    full = full[:, lf - 1:length - lf + 1]                               # first = lf, last = lenL-lf+1
    first = (full.shape[1] - lc) // 2                                    # 1 + floor((lenL-lc)/2)
    return full[:, first:first + lc]


def _wrec1d(x, f):
    """wrec1D along dim 2: full conv2 of each row."""
    return np.stack([np.convolve(row, f) for row in x])


def starck_murtagh_lowpass(img, ratio):
    """ndwt2_working(img, levels, WF), every detail zeroed, indwt2_working(WT, 'c'); 2-D."""
    levels = int(math.ceil(math.log2(ratio)))
    sizes = [img.shape]
    a = img.astype(np.float64)
    for _ in range(levels):
        a = _wdec1d_lo(a, SM_H)                 # decFUNC: dim 2 first,
        a = _wdec1d_lo(a.T, SM_H).T             # then dim 1 (permutation [2 1 3])
        sizes.append(a.shape)
    for k in range(levels):
        target = sizes[levels - 1 - k]
        w = _wrec1d(a.T, SM_H).T                # W{1} = wrec1D(dec{1,1}, Lo{2}, perm)
        x = _wrec1d(w, SM_H) / 4                # (wrec1D(W{1}, Lo{1}, []) + 0) / 4
        f0, f1 = (x.shape[0] - target[0]) // 2, (x.shape[1] - target[1]) // 2
        c0, c1 = -(-(x.shape[0] - target[0]) // 2), -(-(x.shape[1] - target[1]) // 2)
        a = x[f0:x.shape[0] - c0, f1:x.shape[1] - c1]
    return a


def LPfilterPlusDec(img, ratio):
    lp = starck_murtagh_lowpass(img, ratio)
    return lp[ratio // 2::ratio, ratio // 2::ratio]  # imresize(.., 1/ratio, 'nearest')


def GSA(i_ms, i_pan, i_ms_lr, ratio):
    """GSA.m on H x W x C arrays (I_MS expanded, I_MS_LR original)."""
    c = i_ms.shape[2]
    lr0 = np.stack([i_ms[:, :, i] - mean2(i_ms[:, :, i]) for i in range(c)], axis=2)
    lp0 = np.stack([i_ms_lr[:, :, i] - mean2(i_ms_lr[:, :, i]) for i in range(c)], axis=2)
    hr0 = LPfilterPlusDec(i_pan - mean2(i_pan), ratio)
    a_mat = np.concatenate([lp0, np.ones(lp0.shape[:2] + (1,))], axis=2).reshape(-1, c + 1)
    alpha = np.linalg.lstsq(a_mat, hr0.ravel(), rcond=None)[0]
    intensity = np.sum(np.concatenate([lr0, np.ones(lr0.shape[:2] + (1,))], axis=2) * alpha, 2)
    i0 = intensity - mean2(intensity)
    g = np.ones(c + 1)
    for ii in range(c):
        g[ii + 1] = np.cov(i0.ravel(), lr0[:, :, ii].ravel())[0, 1] / np.var(i0.ravel(), ddof=1)
    delta = (i_pan - mean2(i_pan)) - i0
    v = np.concatenate([i0[:, :, None], lr0], axis=2)
    v_hat = v + delta[:, :, None] * g
    out = v_hat[:, :, 1:]
    return np.stack([out[:, :, i] - mean2(out[:, :, i]) + mean2(i_ms[:, :, i]) for i in range(c)],
                    axis=2)


def AWLP(i_ms, i_pan, ratio):
    """AWLP.m (the GRSM 2021 version: PAN equalised to each band with the std of
    imresize(imresize(PAN, 1/ratio), ratio))."""
    c = i_ms.shape[2]
    ratio_img = i_ms / (i_ms.sum(2, keepdims=True) / c + EPS)
    hr_lr = _imresize_hwc(_imresize_hwc(i_pan[:, :, None], 1 / ratio), ratio)[:, :, 0]
    out = np.zeros_like(i_ms)
    for i in range(c):
        p = (i_pan - mean2(i_pan)) * (std2(i_ms[:, :, i]) / std2(hr_lr)) + mean2(i_ms[:, :, i])
        details = p - starck_murtagh_lowpass(p, ratio)
        out[:, :, i] = details * ratio_img[:, :, i] + i_ms[:, :, i]
    return out


def LPfilterGauss(img, ratio):
    """LPfilterGauss.m: imfilter with the 0.3-gain Gaussian (N-spread), replicate borders."""
    return correlate(img, gauss_fir(0.3, ratio, spread=41), mode="nearest")


def gen_LP_image_GSA(i_ms, i_pan, i_ms_lr, ratio):
    """gen_LP_image.m, case 'GSA': regression of the decimated low-pass PAN on [MS_LR, 1]."""
    c = i_ms.shape[2]
    pan_lp2 = LPfilterGauss(i_pan, ratio)[ratio // 2::ratio, ratio // 2::ratio]  # 'nearest'
    a_mat = np.concatenate([i_ms_lr, np.ones(i_ms_lr.shape[:2] + (1,))], axis=2).reshape(-1, c + 1)
    alpha = np.linalg.lstsq(a_mat, pan_lp2.ravel(), rcond=None)[0]
    cols = np.concatenate([i_ms.reshape(-1, c), np.ones((i_ms.shape[0] * i_ms.shape[1], 1))], 1)
    return np.sum(cols * alpha[None, :], axis=1).reshape(i_ms.shape[:2])


def GS_Segm(i_ms, i_pan, i_lr_input, S):
    """GS_Segm.m: per band and per segment, g = cov(I_LR, MS) / var(I_LR) (N - 1 both)."""
    details = i_pan - i_lr_input
    out = np.zeros_like(i_ms)
    for ii in range(i_ms.shape[2]):
        coeff = np.zeros(i_pan.shape)
        for lab in np.unique(S):
            idx = S == lab
            c = np.cov(i_lr_input[idx], i_ms[:, :, ii][idx])
            coeff[idx] = c[0, 1] / np.var(i_lr_input[idx], ddof=1)
        out[:, :, ii] = coeff * details + i_ms[:, :, ii]
    return out


def k_means_features(i_ms):
    """k_means_clustering.m's features: each band divided by its maximum, one row per pixel."""
    return np.stack([i_ms[:, :, b].ravel() / i_ms[:, :, b].max() for b in range(i_ms.shape[2])], 1)
