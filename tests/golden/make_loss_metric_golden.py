#!/usr/bin/python3
"""Golden values for kiln's Keras losses and metrics, computed with NumPy from Keras 3's formulas.

How to regenerate losses_metrics_golden.json (from the repository root, with Debian's python3-numpy;
the kiln tests themselves never need NumPy):

    /usr/bin/python3 tests/golden/make_loss_metric_golden.py           # rewrites the JSON
    /usr/bin/python3 tests/golden/make_loss_metric_golden.py --check   # exit status 1 if it would change

The references follow Keras 3 (keras/src/losses/losses.py, loss.py, metrics/*.py and the
TensorFlow backend's nn.py) written out in float64 NumPy: probabilities clipped to [1e-7, 1 - 1e-7]
(float32 values of those bounds), sparse cross-entropy of probabilities as TF's backend computes it
(the fused sparse op on log(clip(p))), reduce_weighted_values' "sum_over_batch_size" dividing by the
number of per-sample losses, and the thresholded confusion counts of metrics_utils with AUC's
Riemann sums and its PR interpolation (interpolate_pr_auc).

A case (one JSON object under "cases"; a tensor T is {"shape": [...], "dtype": "float32" | "int64",
"data": [...]}):

    name          unique id, printed by the tests
    kind          "loss" or "metric"
    class_name    the class or alias given to create_loss / create_metric
    config        its config
    batches       [{"y_true": T, "y_pred": T, "sample_weight": T | null}]: one for a loss; a metric
                  is updated with each in turn (a Mean / Sum takes "values" in place of the pair)
    want          T: the loss's value, or the metric's result after every batch
    tolerance     {"rtol", "atol"}: |kiln - golden| <= atol + rtol * |golden|

Inputs are float32 values written with their shortest decimal form (repr of float32) and read back
from that text, so NumPy and kiln see identical numbers.
"""
import json
import sys

import numpy as np

F32 = np.float32
EPS = float(F32(1e-7))
ONE_MINUS_EPS = float(F32(1) - F32(1e-7))
OUT = "tests/golden/losses_metrics_golden.json"


def t(a, dtype="float32"):
    a = np.asarray(a)
    if dtype == "float32":
        data = [float(repr(F32(x)).replace("np.float32(", "").rstrip(")")) for x in a.astype(F32).ravel()]
    else:
        data = [int(x) for x in a.ravel()]
    return {"shape": list(a.shape), "dtype": dtype, "data": data}


def back(tj):
    a = np.array(tj["data"], dtype=np.float64 if tj["dtype"] == "float32" else np.int64)
    return a.reshape(tj["shape"])


def rng_uniform(seed, shape, lo=0.0, hi=1.0):
    return np.random.RandomState(seed).uniform(lo, hi, size=shape).astype(F32)


def probs(seed, shape):
    x = np.random.RandomState(seed).normal(size=shape)
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(F32)


def clip(p):
    return np.clip(p, EPS, ONE_MINUS_EPS)


def log_softmax(x, axis=-1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


# ------------------------------------------------------------------ losses (per sample)

def mse(yt, yp, **_):
    return ((yp - yt) ** 2).mean(-1)


def mae(yt, yp, **_):
    return np.abs(yp - yt).mean(-1)


def huber(yt, yp, delta=1.0, **_):
    e = yp - yt
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e * e, delta * a - 0.5 * delta * delta).mean(-1)


def kld(yt, yp, **_):
    yt = np.clip(yt, EPS, 1)
    yp = np.clip(yp, EPS, 1)
    return (yt * np.log(yt / yp)).sum(-1)


def cosine(yt, yp, axis=-1, **_):
    def norm(x):
        return x * np.minimum(1 / np.sqrt((x * x).sum(axis, keepdims=True)), 1 / EPS)
    return -(norm(yt) * norm(yp)).sum(axis)


def bce(yt, yp, from_logits=False, label_smoothing=0.0, axis=-1, **_):
    if label_smoothing:
        yt = yt * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        v = np.maximum(yp, 0) - yp * yt + np.log1p(np.exp(-np.abs(yp)))
    else:
        p = clip(yp)
        v = -(yt * np.log(p) + (1 - yt) * np.log(1 - p))
    return v.mean(axis)


def cce(yt, yp, from_logits=False, label_smoothing=0.0, axis=-1, **_):
    if label_smoothing:
        yt = yt * (1 - label_smoothing) + label_smoothing / yp.shape[axis]  # Keras 3: classes on the axis
    if from_logits:
        return -(yt * log_softmax(yp, axis)).sum(axis)
    p = clip(yp / yp.sum(axis, keepdims=True))
    return -(yt * np.log(p)).sum(axis)


def scce(yt, yp, from_logits=False, ignore_class=None, **_):
    yt = yt.astype(np.int64)
    if yt.ndim == yp.ndim and yt.shape[-1] == 1:
        yt = yt[..., 0]
    valid = None
    if ignore_class is not None:
        valid = yt != ignore_class
        yt = np.where(valid, yt, 0)
        yp = yp * valid[..., None]
    logits = yp if from_logits else np.log(clip(yp))
    ls = log_softmax(logits)
    res = -np.take_along_axis(ls, yt[..., None], -1)[..., 0]
    if valid is not None:
        res = np.where(valid, res, 0.0)
    return res, valid


def mape(yt, yp, **_):
    return 100.0 * np.abs((yt - yp) / np.maximum(np.abs(yt), EPS)).mean(-1)


def msle(yt, yp, **_):
    return ((np.log(np.maximum(yp, EPS) + 1.0) - np.log(np.maximum(yt, EPS) + 1.0)) ** 2).mean(-1)


def log_cosh(yt, yp, **_):
    return np.log(np.cosh(yp - yt)).mean(-1)


def poisson(yt, yp, **_):
    return (yp - yt * np.log(yp + EPS)).mean(-1)


def hinge_labels(yt):
    return 2.0 * yt - 1.0 if np.all((yt == 0) | (yt == 1)) else yt


def hinge(yt, yp, **_):
    return np.maximum(1.0 - hinge_labels(yt) * yp, 0.0).mean(-1)


def squared_hinge(yt, yp, **_):
    return (np.maximum(1.0 - hinge_labels(yt) * yp, 0.0) ** 2).mean(-1)


def categorical_hinge(yt, yp, **_):
    pos = (yt * yp).sum(-1)
    neg = ((1.0 - yt) * yp).max(-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def focal_bce(yt, yp, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
              axis=-1, **_):
    if label_smoothing:
        yt = yt * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        b = np.maximum(yp, 0) - yp * yt + np.log1p(np.exp(-np.abs(yp)))
        p = 1 / (1 + np.exp(-yp))
    else:
        c = clip(yp)
        b = -(yt * np.log(c) + (1 - yt) * np.log(1 - c))
        p = yp
    p_t = yt * p + (1 - yt) * (1 - p)
    v = (1.0 - p_t) ** gamma * b
    if apply_class_balancing:
        v = (yt * alpha + (1 - yt) * (1 - alpha)) * v
    return v.mean(axis)


def focal_cce(yt, yp, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1, **_):
    if label_smoothing:
        yt = yt * (1 - label_smoothing) + label_smoothing / yp.shape[axis]
    if from_logits:
        e = np.exp(yp - yp.max(axis, keepdims=True))
        yp = e / e.sum(axis, keepdims=True)
    out = clip(yp / yp.sum(axis, keepdims=True))
    return ((1.0 - out) ** gamma * np.asarray(alpha, np.float64) * (-yt * np.log(out))).sum(axis)


def overlap_axes(axis):
    return None if axis is None else tuple(np.atleast_1d(axis).tolist())


def dice(yt, yp, axis=None, **_):
    ax = overlap_axes(axis)
    return 1.0 - 2.0 * (yt * yp).sum(ax) / (yt.sum(ax) + yp.sum(ax) + EPS)


def tversky(yt, yp, alpha=0.5, beta=0.5, axis=None, **_):
    ax = overlap_axes(axis)
    tp = (yp * yt).sum(ax)
    fp = ((1 - yt) * yp).sum(ax)
    fn = (yt * (1 - yp)).sum(ax)
    return 1.0 - tp / (tp + fp * alpha + fn * beta + EPS)


def generalized_cce(yt, yp, q=0.5, **_):
    labels = yt.astype(np.int64)
    if labels.ndim == yp.ndim:
        labels = labels[..., 0]
    p = np.take_along_axis(yp, labels[..., None], -1)[..., 0]
    return (1.0 - p ** q) / q


def circle(yt, yp, gamma=80.0, margin=0.4, remove_diagonal=True, **_):
    labels = yt.reshape(-1).astype(np.int32)
    pos = labels[:, None] == labels[None, :]
    neg = ~pos
    if remove_diagonal:
        pos &= ~np.eye(len(labels), dtype=bool)
    d = np.maximum(1.0 - yp @ yp.T, 0.0)
    pos_w = -gamma * np.maximum((margin + d) * pos, 0.0) * (margin - d)
    neg_w = gamma * np.maximum((1.0 + margin - d) * neg, 0.0) * (1.0 - margin - d)

    def logsumexp(x, m):
        x = np.where(m, x, -np.inf)
        top = x.max(1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            return np.log(np.exp(x - top).sum(1)) + top[:, 0]

    loss = np.logaddexp(0.0, logsumexp(pos_w, pos) + logsumexp(neg_w, neg))
    return loss, loss > 0


def ctc(yt, yp, **_):
    """Keras's ctc by enumeration: every path of classes over the frames whose collapse (repeats
    merged, then blanks (0) dropped) is the row's labels before its 0 padding."""
    import itertools
    frames, classes = yp.shape[1], yp.shape[2]
    out = []
    for labels, x in zip(yt.astype(np.int64), yp):
        want = tuple(int(v) for v in labels if v != 0)
        p = np.exp(log_softmax(x))
        total = 0.0
        for path in itertools.product(range(classes), repeat=frames):
            merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
            if tuple(c for c in merged if c != 0) == want:
                total += np.prod(p[np.arange(frames), list(path)])
        out.append(-np.log(total))
    return np.array(out)


LOSS_FNS = {"MeanSquaredError": mse, "mse": mse, "MeanAbsoluteError": mae, "mae": mae, "Huber": huber,
            "KLDivergence": kld, "kld": kld, "CosineSimilarity": cosine, "BinaryCrossentropy": bce,
            "binary_crossentropy": bce, "CategoricalCrossentropy": cce, "categorical_crossentropy": cce,
            "SparseCategoricalCrossentropy": scce, "sparse_categorical_crossentropy": scce,
            "MeanAbsolutePercentageError": mape, "mape": mape, "MeanSquaredLogarithmicError": msle, "msle": msle,
            "LogCosh": log_cosh, "logcosh": log_cosh, "Poisson": poisson, "Hinge": hinge, "hinge": hinge,
            "SquaredHinge": squared_hinge, "CategoricalHinge": categorical_hinge,
            "BinaryFocalCrossentropy": focal_bce, "CategoricalFocalCrossentropy": focal_cce,
            "categorical_focal_crossentropy": focal_cce, "Dice": dice, "dice": dice, "Tversky": tversky,
            "CategoricalGeneralizedCrossEntropy": generalized_cce, "Circle": circle, "circle": circle,
            "CTC": ctc, "ctc": ctc}


def same_rank(a, b):
    """Keras's squeeze_or_expand_to_same_rank."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        if b.ndim == 1:
            b = b[..., None]
        else:
            a = a[..., 0]
    elif b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        if a.ndim == 1:
            a = a[..., None]
        else:
            b = b[..., 0]
    return a, b


def reduce_weighted(values, sw, mask, reduction):
    w = sw
    if mask is not None:
        m = mask.astype(np.float64)
        if reduction == "sum_over_batch_size":
            m = m * (m.size / (m.sum() + EPS))
        w = m if w is None else same_rank(m, w)[1] * same_rank(m, w)[0]
    if w is not None:
        values, w = same_rank(values, w)
        if w.ndim < values.ndim:
            w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
        values = values * w
    if reduction == "none" or values.ndim == 0:
        return values
    s = values.sum()
    if reduction == "sum":
        return s
    return s / values.size if values.size else 0.0


def loss_value(cls, config, yt, yp, sw):
    fn = LOSS_FNS[cls]
    kw = {k: v for k, v in config.items() if k not in ("reduction", "name")}
    if fn not in (scce, generalized_cce, circle, ctc):
        yt, yp = same_rank(yt, yp)
    out = fn(yt, yp, **kw)
    values, mask = out if isinstance(out, tuple) else (out, None)
    return reduce_weighted(values, sw, mask, config.get("reduction", "sum_over_batch_size"))


def loss_case(name, cls, config, yt, yp, sw=None, ytype="float32", tol=(1e-5, 1e-6)):
    b = {"y_true": t(yt, ytype), "y_pred": t(yp), "sample_weight": None if sw is None else t(sw)}
    ytb = back(b["y_true"])
    want = loss_value(cls, config, ytb, back(b["y_pred"]), None if sw is None else back(b["sample_weight"]))
    return {"name": name, "kind": "loss", "class_name": cls, "config": config, "batches": [b],
            "want": t(np.asarray(want)), "tolerance": {"rtol": tol[0], "atol": tol[1]}}


def loss_cases():
    cases = []
    B, C = 4, 5
    yp = probs(1, (B, C))
    labels = np.array([0, 3, 4, 1])
    onehot = np.eye(C, dtype=F32)[labels]
    logits = np.random.RandomState(2).normal(size=(B, C)).astype(F32) * 3
    sw = np.array([1.0, 0.5, 2.0, 0.0], dtype=F32)
    reductions = ["sum_over_batch_size", "sum", "none"]
    for red in reductions:
        for w in (None, sw):
            tag = "%s_%s" % (red, "w" if w is not None else "nw")
            cases.append(loss_case("scce_probs_" + tag, "SparseCategoricalCrossentropy", {"reduction": red},
                                   labels, yp, w, "int64"))
            cases.append(loss_case("scce_logits_" + tag, "SparseCategoricalCrossentropy",
                                   {"from_logits": True, "reduction": red}, labels, logits, w, "int64"))
            cases.append(loss_case("cce_probs_" + tag, "CategoricalCrossentropy", {"reduction": red}, onehot, yp, w))
            cases.append(loss_case("cce_logits_" + tag, "CategoricalCrossentropy",
                                   {"from_logits": True, "reduction": red}, onehot, logits, w))
            bt = (rng_uniform(3, (B, 3)) > 0.5).astype(F32)
            bp = rng_uniform(4, (B, 3))
            cases.append(loss_case("bce_probs_" + tag, "BinaryCrossentropy", {"reduction": red}, bt, bp, w))
            cases.append(loss_case("bce_logits_" + tag, "BinaryCrossentropy", {"from_logits": True, "reduction": red},
                                   bt, bp * 8 - 4, w))
            rt = rng_uniform(5, (B, 3), -2, 2)
            rp = rng_uniform(6, (B, 3), -2, 2)
            for cls in ("MeanSquaredError", "MeanAbsoluteError", "Huber", "CosineSimilarity"):
                cases.append(loss_case("%s_%s" % (cls, tag), cls, {"reduction": red}, rt, rp, w))
            cases.append(loss_case("KLDivergence_" + tag, "KLDivergence", {"reduction": red}, probs(7, (B, C)), yp, w))
    # Options, aliases, shapes.
    cases.append(loss_case("cce_smoothing", "CategoricalCrossentropy", {"label_smoothing": 0.2}, onehot, yp))
    cases.append(loss_case("cce_logits_smoothing", "CategoricalCrossentropy",
                           {"label_smoothing": 0.1, "from_logits": True}, onehot, logits))
    onehot_axis1 = np.moveaxis(np.eye(3, dtype=F32)[np.array([[0, 2, 1, 1], [2, 0, 0, 1]])], -1, 1)  # (2, 3, 4)
    cases.append(loss_case("cce_axis1_smoothing", "CategoricalCrossentropy", {"label_smoothing": 0.2, "axis": 1},
                           onehot_axis1, np.moveaxis(probs(9, (2, 4, 3)), -1, 1)))
    cases.append(loss_case("cce_axis1_logits_smoothing", "CategoricalCrossentropy",
                           {"label_smoothing": 0.3, "axis": 1, "from_logits": True}, onehot_axis1,
                           rng_uniform(10, (2, 3, 4), -3, 3)))
    cases.append(loss_case("bce_smoothing", "BinaryCrossentropy", {"label_smoothing": 0.3},
                           onehot, rng_uniform(8, (B, C))))
    cases.append(loss_case("bce_logits_smoothing", "BinaryCrossentropy", {"label_smoothing": 0.3, "from_logits": True},
                           onehot, logits))
    cases.append(loss_case("bce_clipped", "BinaryCrossentropy", {}, np.array([[1, 0, 1, 0]], F32),
                           np.array([[0, 1, 1, 0]], F32)))
    cases.append(loss_case("cce_clipped", "CategoricalCrossentropy", {}, np.array([[0, 1, 0]], F32),
                           np.array([[1, 0, 0]], F32)))
    cases.append(loss_case("scce_clipped", "sparse_categorical_crossentropy", {}, np.array([1]),
                           np.array([[1, 0, 0]], F32), None, "int64"))
    cases.append(loss_case("huber_delta", "Huber", {"delta": 0.3}, rng_uniform(9, (B, 3), -1, 1),
                           rng_uniform(10, (B, 3), -1, 1)))
    cases.append(loss_case("cosine_axis0", "CosineSimilarity", {"axis": 0}, rng_uniform(11, (B, 3), -1, 1),
                           rng_uniform(12, (B, 3), -1, 1)))
    cases.append(loss_case("cce_axis0_logits", "CategoricalCrossentropy", {"axis": 0, "from_logits": True},
                           onehot.T.copy(), logits.T.copy()))
    cases.append(loss_case("mse_alias", "mse", {}, rng_uniform(13, (B, 3)), rng_uniform(14, (B, 3))))
    cases.append(loss_case("mae_alias_rank3_w", "mae", {}, rng_uniform(15, (2, 3, 4)), rng_uniform(16, (2, 3, 4)),
                           np.array([0.5, 2.0], F32)))
    cases.append(loss_case("kld_alias", "kld", {}, probs(17, (B, C)), yp))
    cases.append(loss_case("mse_column_labels", "MeanSquaredError", {}, rng_uniform(18, (B, 1)),
                           rng_uniform(19, (B,))))
    seq_labels = np.array([[1, 2, 0], [3, 3, 1]])
    seq_logits = np.random.RandomState(20).normal(size=(2, 3, 4)).astype(F32)
    cases.append(loss_case("scce_seq_logits_w", "SparseCategoricalCrossentropy", {"from_logits": True},
                           seq_labels, seq_logits, np.array([[1, 0, 2], [1, 1, 0.5]], F32), "int64"))
    cases.append(loss_case("scce_column_labels", "SparseCategoricalCrossentropy", {}, labels[:, None], yp, None,
                           "int64"))
    for red in reductions:
        cases.append(loss_case("scce_ignore_class_" + red, "SparseCategoricalCrossentropy",
                               {"from_logits": True, "ignore_class": 3, "reduction": red},
                               np.array([0, 3, 4, 3]), logits, None, "int64"))
        cases.append(loss_case("scce_ignore_class_w_" + red, "SparseCategoricalCrossentropy",
                               {"ignore_class": 0, "reduction": red}, labels, yp, sw, "int64"))
    # Keras 3's other losses (since 2026-12-05).
    rt, rp = rng_uniform(80, (B, 3), -2, 2), rng_uniform(81, (B, 3), -2, 2)
    pos_t, pos_p = rng_uniform(82, (B, 3), 0, 3), rng_uniform(83, (B, 3), 0.1, 3)
    bt, bp = (rng_uniform(84, (B, 3)) > 0.5).astype(F32), rng_uniform(85, (B, 3))
    w = rng_uniform(86, (B,))
    for red in ("sum_over_batch_size", "sum", "none"):
        cases.append(loss_case("mape_" + red, "MeanAbsolutePercentageError", {"reduction": red}, rt, rp, w))
        cases.append(loss_case("msle_" + red, "MeanSquaredLogarithmicError", {"reduction": red}, pos_t, rp, w))
        cases.append(loss_case("log_cosh_" + red, "LogCosh", {"reduction": red}, rt, rp, w))
        cases.append(loss_case("poisson_" + red, "Poisson", {"reduction": red}, pos_t, pos_p, w))
        cases.append(loss_case("hinge_binary_" + red, "Hinge", {"reduction": red}, bt, rp, w))
        cases.append(loss_case("squared_hinge_binary_" + red, "SquaredHinge", {"reduction": red}, bt, rp, w))
        cases.append(loss_case("categorical_hinge_" + red, "CategoricalHinge", {"reduction": red},
                               np.eye(3, dtype=F32)[np.arange(B) % 3], rp, w))
        cases.append(loss_case("focal_" + red, "BinaryFocalCrossentropy", {"reduction": red}, bt, bp, w))
    cases.append(loss_case("mape_zero_labels", "mape", {}, np.array([[0.0, 1.0], [-2.0, 0.0]], F32),
                           np.array([[0.5, 1.5], [1.0, -1e-3]], F32)))
    cases.append(loss_case("msle_negatives", "msle", {}, np.array([[-1.0, 2.0]], F32), np.array([[0.5, -3.0]], F32)))
    cases.append(loss_case("log_cosh_large", "logcosh", {}, np.array([[0.0, 0.0, 0.0]], F32),
                           np.array([[30.0, -40.0, 1e-3]], F32)))
    cases.append(loss_case("hinge_signed_labels", "hinge", {}, np.where(bt > 0, 1.0, -1.0).astype(F32), rp))
    cases.append(loss_case("hinge_other_labels", "Hinge", {}, np.array([[0.0, 0.5, 1.0]], F32),
                           np.array([[0.3, -0.2, 0.7]], F32)))
    cases.append(loss_case("focal_balanced", "BinaryFocalCrossentropy",
                           {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5}, bt, bp))
    cases.append(loss_case("focal_logits_smoothing", "BinaryFocalCrossentropy",
                           {"from_logits": True, "label_smoothing": 0.1, "gamma": 3.0}, bt, rp))
    cases.append(loss_case("focal_gamma0_is_bce", "BinaryFocalCrossentropy", {"gamma": 0.0}, bt, bp))
    # CategoricalFocalCrossentropy, Dice, Tversky, CategoricalGeneralizedCrossEntropy, Circle (2026-12-07).
    cp = probs(90, (B, C))
    for red in ("sum_over_batch_size", "sum", "none"):
        cases.append(loss_case("focal_cce_" + red, "CategoricalFocalCrossentropy", {"reduction": red}, onehot, cp, w))
        cases.append(loss_case("dice_axis_" + red, "Dice", {"axis": [1], "reduction": red}, bt, bp, w))
        cases.append(loss_case("tversky_axis_" + red, "Tversky", {"axis": 1, "alpha": 0.3, "beta": 0.7,
                                                                  "reduction": red}, bt, bp, w))
        cases.append(loss_case("gce_" + red, "CategoricalGeneralizedCrossEntropy", {"reduction": red}, labels, cp, w,
                               "int64"))
    cases.append(loss_case("focal_cce_logits_smoothing", "CategoricalFocalCrossentropy",
                           {"from_logits": True, "label_smoothing": 0.1, "gamma": 1.5}, onehot, logits))
    cases.append(loss_case("focal_cce_alpha_per_class", "categorical_focal_crossentropy",
                           {"alpha": [0.1, 0.2, 0.3, 0.25, 0.15], "gamma": 3.0}, onehot, cp))
    cases.append(loss_case("focal_cce_axis0", "CategoricalFocalCrossentropy", {"axis": 0, "alpha": 0.5},
                           onehot.T.copy(), cp.T.copy()))
    cases.append(loss_case("focal_cce_unnormalized", "CategoricalFocalCrossentropy", {},
                           onehot, rng_uniform(91, (B, C), 0.0, 2.0)))
    cases.append(loss_case("focal_cce_gamma0_alpha1_is_cce", "CategoricalFocalCrossentropy", {"gamma": 0.0, "alpha": 1.0},
                           onehot, cp))
    seg_t = (rng_uniform(92, (2, 3, 3, 1)) > 0.5).astype(F32)
    seg_p = rng_uniform(93, (2, 3, 3, 1))
    cases.append(loss_case("dice_all_axes", "dice", {}, seg_t, seg_p))
    cases.append(loss_case("dice_all_axes_w", "Dice", {}, seg_t, seg_p, np.array([0.5, 2.0], F32)))
    cases.append(loss_case("dice_per_image", "Dice", {"axis": [1, 2, 3], "reduction": "none"}, seg_t, seg_p))
    cases.append(loss_case("dice_negative_axes", "Dice", {"axis": [-3, -2]}, seg_t, seg_p))
    cases.append(loss_case("dice_no_axes_per_element", "Dice", {"axis": [], "reduction": "none"}, bt, bp))
    cases.append(loss_case("tversky_all_axes", "Tversky", {}, seg_t, seg_p))
    cases.append(loss_case("tversky_per_image", "Tversky", {"alpha": 0.8, "beta": 0.2, "axis": [1, 2, 3]},
                           seg_t, seg_p))
    cases.append(loss_case("gce_column_labels_q", "CategoricalGeneralizedCrossEntropy", {"q": 0.8}, labels[:, None],
                           cp, None, "int64"))
    cases.append(loss_case("gce_float_labels", "CategoricalGeneralizedCrossEntropy", {"q": 0.2},
                           labels.astype(F32), cp))
    emb = np.random.RandomState(94).normal(size=(6, 4))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(F32)
    ids = np.array([0, 1, 0, 2, 1, 3])  # 2 and 3 alone: no positive pair, masked out
    ctol = (1e-4, 1e-4)
    for red in ("sum_over_batch_size", "sum", "none"):
        cases.append(loss_case("circle_" + red, "Circle", {"reduction": red}, ids, emb, None, "int64", tol=ctol))
        cases.append(loss_case("circle_w_" + red, "Circle", {"reduction": red, "gamma": 16.0, "margin": 0.25},
                               ids, emb, np.array([1.0, 0.5, 2.0, 1.0, 0.0, 3.0], F32), "int64", tol=ctol))
    cases.append(loss_case("circle_keep_diagonal", "circle", {"remove_diagonal": False, "gamma": 4.0},
                           ids[:, None], emb, None, "int64", tol=ctol))
    cases.append(loss_case("circle_all_alone", "Circle", {}, np.arange(4), emb[:4], None, "int64", tol=ctol))
    # CTC (2026-12-07): labels padded with 0 (the blank) at the end, repeats that need a blank
    # between them, a row with no labels, and [1, 1, 2], which needs 4 of the 5 frames.
    ctc_t = np.array([[1, 2, 0], [3, 3, 0], [0, 0, 0], [2, 1, 3]])
    ctc_p = (np.random.RandomState(95).normal(size=(4, 5, 4)) * 2).astype(F32)
    ctc_w = np.array([1.0, 0.5, 2.0, 0.0], F32)
    for red in ("sum_over_batch_size", "sum", "none"):
        cases.append(loss_case("ctc_" + red, "CTC", {"reduction": red}, ctc_t, ctc_p, None, "int64"))
        cases.append(loss_case("ctc_w_" + red, "CTC", {"reduction": red}, ctc_t, ctc_p, ctc_w, "int64"))
    cases.append(loss_case("ctc_float_labels", "ctc", {}, ctc_t.astype(F32), ctc_p))
    cases.append(loss_case("ctc_repeats_tight", "CTC", {"reduction": "none"}, np.array([[1, 1, 2]]), ctc_p[:1], None,
                           "int64"))
    return cases


# ------------------------------------------------------------------ metrics

def samplewise(values, sw, mean):
    red = (lambda x, ax: x.mean(axis=tuple(ax))) if mean else (lambda x, ax: x.sum(axis=tuple(ax)))
    if sw is not None:
        values, sw = same_rank(values, sw)
        if values.ndim > sw.ndim:
            values = red(values, range(sw.ndim, values.ndim))
        sw = np.broadcast_to(sw, values.shape)
        values = values * sw
        if sw.ndim > 1:
            sw = red(sw, range(1, sw.ndim))
    if values.ndim > 1:
        values = red(values, range(1, values.ndim))
    return values, sw


class MeanRef:
    def __init__(self, mean=True):
        self.total, self.count, self.mean = 0.0, 0.0, mean

    def add(self, values, sw):
        v, w = samplewise(np.asarray(values, np.float64), sw, self.mean)
        self.total += v.sum()
        self.count += w.sum() if w is not None else (v.shape[0] if v.ndim else 1)

    def result(self):
        if not self.mean:
            return self.total
        return self.total / self.count if self.count else 0.0


def acc(yt, yp, **_):
    yt, yp = same_rank(yt, yp)
    return (yt == yp).astype(np.float64).mean(-1)


def bin_acc(yt, yp, threshold=0.5, **_):
    yt, yp = same_rank(yt, yp)
    return (yt == (yp.astype(F32) > F32(threshold))).astype(np.float64).mean(-1)


def cat_acc(yt, yp, **_):
    return (yt.argmax(-1) == yp.argmax(-1)).astype(np.float64)


def sparse_cat_acc(yt, yp, **_):
    shape = yt.shape
    if yt.ndim == yp.ndim and yt.shape[-1] == 1:
        yt = yt[..., 0]
    m = (yt == yp.argmax(-1)).astype(np.float64).reshape(shape)
    if m.ndim > 1 and m.shape[-1] == 1:
        m = m[..., 0]
    return m


def in_top_k(targets, pred, k):
    pred = pred.reshape(-1, pred.shape[-1]).astype(F32)
    targets = targets.reshape(-1).astype(np.int64)
    score = pred[np.arange(len(targets)), targets]
    return ((pred > score[:, None]).sum(-1) < k).astype(np.float64)


def topk_acc(yt, yp, k=5, **_):
    return in_top_k(yt.argmax(-1), yp, k).reshape(yt.shape[:-1])


def sparse_topk_acc(yt, yp, k=5, **_):
    return in_top_k(yt, yp, k).reshape(yt.shape)


WRAPPED = {"Accuracy": acc, "BinaryAccuracy": bin_acc, "CategoricalAccuracy": cat_acc,
           "SparseCategoricalAccuracy": sparse_cat_acc, "TopKCategoricalAccuracy": topk_acc,
           "SparseTopKCategoricalAccuracy": sparse_topk_acc, "MeanSquaredError": mse,
           "binary_crossentropy": bce, "categorical_crossentropy": cce, "mae": mae,
           "MeanAbsoluteError": mae, "MeanAbsolutePercentageError": mape, "MeanSquaredLogarithmicError": msle,
           "LogCoshError": log_cosh, "Poisson": poisson, "KLDivergence": kld, "Hinge": hinge,
           "SquaredHinge": squared_hinge, "CategoricalHinge": categorical_hinge,
           "CosineSimilarity": lambda yt, yp, axis=-1: -cosine(yt, yp, axis),
           "BinaryCrossentropy": bce, "CategoricalCrossentropy": cce,
           "SparseCategoricalCrossentropy": scce}


def confusion(yt, yp, sw, thresholds, top_k=None, class_id=None):
    yp = yp.astype(F32)
    yp, yt = same_rank(yp, yt)
    if sw is not None:
        yp, sw = same_rank(yp, sw)
    if top_k is not None:
        idx = np.argsort(-yp, axis=-1, kind="stable")[..., :top_k]
        keep = np.zeros(yp.shape, bool)
        np.put_along_axis(keep, idx, True, -1)
        yp = np.where(keep, yp, F32(-1e10))
    if sw is not None:
        sw = np.broadcast_to(sw, yp.shape)
    if class_id is not None:
        yp, yt = yp[..., class_id], yt[..., class_id]
        sw = None if sw is None else sw[..., class_id]
    p, lab = yp.ravel(), yt.ravel() != 0
    w = np.ones(p.shape) if sw is None else sw.ravel().astype(np.float64)
    th = np.asarray(thresholds, F32)
    pos = p[None, :] > th[:, None]
    tp = ((lab & pos) * w).sum(1)
    fp = ((~lab & pos) * w).sum(1)
    tn = ((~lab & ~pos) * w).sum(1)
    fn = ((lab & ~pos) * w).sum(1)
    return np.stack([tp, fp, tn, fn])


def dnn(a, b):
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1, b))


def auc_thresholds(n):
    return [F32(0.0) - F32(EPS)] + [F32((i + 1) * 1.0 / (n - 1)) for i in range(n - 2)] + [F32(1.0) + F32(EPS)]


def auc_result(c, curve, summation):
    tp, fp, tn, fn = [x.astype(F32).astype(np.float64) for x in c]
    n = len(tp)
    if curve == "PR" and summation == "interpolation":
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = dnn(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0), dnn(p[:-1], np.maximum(p[1:], 0)), np.ones(n - 1))
        return dnn(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0)).sum()
    recall = dnn(tp, tp + fn)
    if curve == "ROC":
        x, y = dnn(fp, fp + tn), recall
    else:
        x, y = recall, dnn(tp, tp + fp)
    h = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
         "majoring": np.maximum(y[:-1], y[1:])}[summation]
    return ((x[:-1] - x[1:]) * h).sum()


def metric_case(name, cls, config, batches, ytype="float32", tol=(1e-5, 1e-6)):
    bj = []
    for b in batches:
        if "values" in b:
            bj.append({"values": t(b["values"]), "sample_weight": None if b.get("sw") is None else t(b["sw"])})
        else:
            bj.append({"y_true": t(b["yt"], ytype), "y_pred": t(b["yp"]),
                       "sample_weight": None if b.get("sw") is None else t(b["sw"])})
    rb = [{k: (None if v is None else back(v)) for k, v in b.items()} for b in bj]
    if cls in ("Mean", "Sum"):
        ref = MeanRef(cls == "Mean")
        for b in rb:
            ref.add(b["values"], b["sample_weight"])
        want = ref.result()
    elif cls in WRAPPED or cls == "RootMeanSquaredError":
        ref = MeanRef()
        for b in rb:
            yt, yp = b["y_true"], b["y_pred"]
            if cls == "RootMeanSquaredError":
                yt, yp = same_rank(yt, yp)
                values = (yp - yt) ** 2
            else:
                values = WRAPPED[cls](yt, yp, **{k: v for k, v in config.items() if k != "name"})
            sw = b["sample_weight"]
            if isinstance(values, tuple):  # values and their mask: Keras weighs by it only given weights
                values, mask = values
                if sw is not None and mask is not None:
                    sw = np.broadcast_to(sw.reshape(sw.shape + (1,) * (mask.ndim - sw.ndim)), mask.shape) * mask
            ref.add(values, sw)
        want = ref.result() if cls != "RootMeanSquaredError" else np.sqrt(ref.result())
    elif cls in ("Precision", "Recall"):
        top_k, class_id = config.get("top_k"), config.get("class_id")
        th = config.get("thresholds")
        th = [0.5 if top_k is None else -1e10] if th is None else (th if isinstance(th, list) else [th])
        c = sum(confusion(b["y_true"], b["y_pred"], b["sample_weight"], th, top_k, class_id)
                for b in rb).astype(F32).astype(np.float64)
        tp, fp, tn, fn = c
        want = dnn(tp, tp + (fp if cls == "Precision" else fn))
        if len(th) == 1:
            want = want[0]
    elif cls == "AUC":
        th = auc_thresholds(config.get("num_thresholds", 200))
        c = sum(confusion(b["y_true"], b["y_pred"], b["sample_weight"], th) for b in rb)
        want = auc_result(c, config.get("curve", "ROC"), config.get("summation_method", "interpolation"))
    else:
        raise ValueError(cls)
    return {"name": name, "kind": "metric", "class_name": cls, "config": config, "batches": bj,
            "want": t(np.asarray(want)), "tolerance": {"rtol": tol[0], "atol": tol[1]}}


def metric_cases():
    cases = []
    r = np.random.RandomState(30)
    cases.append(metric_case("mean_two_batches", "Mean", {}, [{"values": r.normal(size=(5,))},
                                                              {"values": r.normal(size=(3, 2))}]))
    cases.append(metric_case("mean_weighted", "Mean", {}, [
        {"values": r.normal(size=(4,)), "sw": np.array([1, 0, 2, 0.5])},
        {"values": r.normal(size=(2, 3)), "sw": np.array([1.5, 1])},
        {"values": r.normal(size=(2, 3)), "sw": np.array([[1, 0, 1], [2, 2, 0]])}]))
    cases.append(metric_case("sum_weighted", "Sum", {}, [{"values": r.normal(size=(4,))},
                                                         {"values": r.normal(size=(2, 3)), "sw": np.array([1.5, 1])}]))
    labels = [r.randint(0, 4, size=(6,)) for _ in range(2)]
    pr = [probs(31 + i, (6, 4)) for i in range(2)]
    sw = np.array([1, 0.5, 0, 2, 1, 1])
    cases.append(metric_case("sparse_cat_acc", "SparseCategoricalAccuracy", {},
                             [{"yt": labels[0], "yp": pr[0]}, {"yt": labels[1][:, None], "yp": pr[1], "sw": sw}],
                             "int64"))
    cases.append(metric_case("cat_acc", "CategoricalAccuracy", {},
                             [{"yt": np.eye(4)[labels[0]], "yp": pr[0], "sw": sw},
                              {"yt": np.eye(4)[labels[1]], "yp": pr[1]}]))
    bt = [(rng_uniform(40 + i, (6, 2)) > 0.5).astype(F32) for i in range(2)]
    bp = [rng_uniform(42 + i, (6, 2)) for i in range(2)]
    cases.append(metric_case("binary_acc", "BinaryAccuracy", {}, [{"yt": bt[0], "yp": bp[0]},
                                                                  {"yt": bt[1], "yp": bp[1], "sw": sw}]))
    cases.append(metric_case("binary_acc_threshold", "BinaryAccuracy", {"threshold": 0.7},
                             [{"yt": bt[0], "yp": bp[0]}]))
    cases.append(metric_case("accuracy", "Accuracy", {}, [{"yt": np.array([[1], [2], [3], [4]]),
                                                           "yp": np.array([[0], [2], [3], [4]])},
                                                          {"yt": np.array([[1], [2]]), "yp": np.array([[1], [3]]),
                                                           "sw": np.array([1, 3])}]))
    cases.append(metric_case("topk", "TopKCategoricalAccuracy", {"k": 2},
                             [{"yt": np.eye(4)[labels[0]], "yp": pr[0]},
                              {"yt": np.eye(4)[labels[1]], "yp": pr[1], "sw": sw}]))
    cases.append(metric_case("sparse_topk", "SparseTopKCategoricalAccuracy", {"k": 3},
                             [{"yt": labels[0], "yp": pr[0], "sw": sw}, {"yt": labels[1], "yp": pr[1]}], "int64"))
    cases.append(metric_case("sparse_topk_ties", "SparseTopKCategoricalAccuracy", {"k": 1},
                             [{"yt": np.array([0, 1, 2]), "yp": np.array([[0.5, 0.5, 0], [0.2, 0.2, 0.6],
                                                                           [0.1, 0.1, 0.1]])}], "int64"))
    rt = [rng_uniform(50 + i, (5, 3), -1, 1) for i in range(2)]
    rp = [rng_uniform(52 + i, (5, 3), -1, 1) for i in range(2)]
    for cls in ("MeanSquaredError", "RootMeanSquaredError"):
        cases.append(metric_case(cls.lower(), cls, {}, [{"yt": rt[0], "yp": rp[0]},
                                                        {"yt": rt[1], "yp": rp[1], "sw": sw[:5]}]))
    cases.append(metric_case("loss_wrapper_bce", "binary_crossentropy", {}, [{"yt": bt[0], "yp": bp[0], "sw": sw}]))
    cases.append(metric_case("loss_wrapper_mae", "mae", {}, [{"yt": rt[0], "yp": rp[0]}]))
    # The metric classes that wrap Keras 3's loss functions (since 2026-12-05).
    two = [{"yt": rt[0], "yp": rp[0]}, {"yt": rt[1], "yp": rp[1], "sw": sw[:5]}]
    for cls in ("MeanAbsoluteError", "MeanAbsolutePercentageError", "LogCoshError", "CosineSimilarity"):
        cases.append(metric_case("metric_" + cls, cls, {}, two))
    cases.append(metric_case("metric_CosineSimilarity_axis0", "CosineSimilarity", {"axis": 0}, two[:1]))
    positive = [{"yt": np.abs(rt[0]) * 2, "yp": np.abs(rp[0]) + 0.1},
                {"yt": np.abs(rt[1]), "yp": np.abs(rp[1]) + 0.2, "sw": sw[:5]}]
    for cls in ("MeanSquaredLogarithmicError", "Poisson"):
        cases.append(metric_case("metric_" + cls, cls, {}, positive))
    binary = [{"yt": bt[0], "yp": bp[0]}, {"yt": bt[1], "yp": bp[1], "sw": sw}]
    for cls in ("Hinge", "SquaredHinge", "BinaryCrossentropy"):
        cases.append(metric_case("metric_" + cls, cls, {}, binary))
    cases.append(metric_case("metric_bce_logits_smoothing", "BinaryCrossentropy",
                             {"from_logits": True, "label_smoothing": 0.2}, binary))
    onehot = [{"yt": np.eye(4)[labels[0]], "yp": pr[0]}, {"yt": np.eye(4)[labels[1]], "yp": pr[1], "sw": sw}]
    for cls in ("CategoricalHinge", "KLDivergence", "CategoricalCrossentropy"):
        cases.append(metric_case("metric_" + cls, cls, {}, onehot))
    cases.append(metric_case("metric_cce_smoothing", "CategoricalCrossentropy", {"label_smoothing": 0.1}, onehot))
    cases.append(metric_case("metric_scce", "SparseCategoricalCrossentropy", {},
                             [{"yt": labels[0], "yp": pr[0]}, {"yt": labels[1], "yp": pr[1], "sw": sw}], "int64"))
    # ignore_class: without weights the ignored samples count as zeros in the mean; with weights
    # their weights are masked (Keras's reduce_to_samplewise_values).
    for tag, batches in (("no_weights", [{"yt": labels[0], "yp": pr[0]}]),
                         ("weights", [{"yt": labels[0], "yp": pr[0], "sw": sw}])):
        cases.append(metric_case("metric_scce_ignore_class_" + tag, "SparseCategoricalCrossentropy",
                                 {"ignore_class": int(labels[0][0])}, batches, "int64"))
    # Confusion-matrix metrics.
    ct = [(rng_uniform(60 + i, (8, 3)) > 0.6).astype(F32) for i in range(2)]
    cp = [rng_uniform(62 + i, (8, 3)) for i in range(2)]
    csw = rng_uniform(64, (8, 1))
    pair = [{"yt": ct[0], "yp": cp[0]}, {"yt": ct[1], "yp": cp[1], "sw": csw}]
    for cls in ("Precision", "Recall"):
        cases.append(metric_case(cls.lower(), cls, {}, pair))
        cases.append(metric_case(cls.lower() + "_thresholds", cls, {"thresholds": [0.2, 0.5, 0.8]}, pair))
        cases.append(metric_case(cls.lower() + "_top_k", cls, {"top_k": 2}, pair))
        cases.append(metric_case(cls.lower() + "_class_id", cls, {"class_id": 1}, pair))
        cases.append(metric_case(cls.lower() + "_top_k_class_id", cls, {"top_k": 1, "class_id": 2}, pair))
    at = [(rng_uniform(70 + i, (50,)) > 0.5).astype(F32) for i in range(2)]
    ap = [np.clip(at[i] * 0.3 + rng_uniform(72 + i, (50,)) * 0.7, 0, 1).astype(F32) for i in range(2)]
    asw = rng_uniform(74, (50,))
    apair = [{"yt": at[0], "yp": ap[0]}, {"yt": at[1], "yp": ap[1], "sw": asw}]
    for curve in ("ROC", "PR"):
        for summation in ("interpolation", "minoring", "majoring"):
            cases.append(metric_case("auc_%s_%s" % (curve, summation), "AUC",
                                     {"curve": curve, "summation_method": summation}, apair, tol=(1e-4, 1e-5)))
    cases.append(metric_case("auc_ROC_17", "AUC", {"num_thresholds": 17}, apair, tol=(1e-4, 1e-5)))
    cases.append(metric_case("auc_PR_17", "AUC", {"num_thresholds": 17, "curve": "PR"}, apair, tol=(1e-4, 1e-5)))
    return cases


def main():
    doc = {"format": "kiln losses/metrics golden v1", "generator": "tests/golden/make_loss_metric_golden.py",
           "numpy": np.__version__, "cases": loss_cases() + metric_cases()}
    text = json.dumps(doc, indent=None, separators=(",", ":")).replace('{"name"', '\n{"name"') + "\n"
    if "--check" in sys.argv:
        with open(OUT) as f:
            sys.exit(0 if f.read() == text else 1)
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote %d cases to %s" % (len(doc["cases"]), OUT))


if __name__ == "__main__":
    main()
