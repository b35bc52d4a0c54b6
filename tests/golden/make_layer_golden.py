#!/usr/bin/python3
"""Golden values for kiln's built-in Keras layers, computed with PyTorch.

How to regenerate layers_golden.json (from the repository root, on a machine with Debian's
python3-torch and python3-numpy; the kiln tests themselves never need torch):

    /usr/bin/python3 tests/golden/make_layer_golden.py           # rewrites tests/golden/layers_golden.json
    /usr/bin/python3 tests/golden/make_layer_golden.py --check   # exit status 1 if the file would change

The output is deterministic (fixed seeds, torch at 2 threads, float64 math), so a regeneration
with the same torch gives the same bytes; commit the JSON together with any change to this script.
Generated with torch 1.13 (the version is written into the file).

What a case is (one JSON object per line under "cases"; a tensor T is
{"shape": [...], "dtype": "float32" | "int32", "data": [row-major values]}):

    name          unique id, printed by the tests
    class_name    kiln / Keras layer class, built with create_layer(class_name, config)
    config        Keras config; weights are assigned after build, so initializers do not matter
    training      the call's training flag
    inputs        [T]: the layer's inputs (one for single-input layers)
    weights       [T]: values assigned to layer.variables() after build, in kiln's order and TF
                  layout (Dense kernel [in, out], Conv2D kernel HWIO, BatchNormalization gamma, beta,
                  moving_mean, moving_variance)
    upstream      [T]: one per output; the objective is sum(output * upstream)
    outputs       [T]: the forward outputs
    input_grads   [T | null]: d objective / d input (null for integer inputs)
    weight_grads  [T | null]: d objective / d weight (null for non-trainable weights)
    extra         {"weights_after": [T | null]}: every variable's value after the call (null =
                  not checked); BatchNormalization's moving statistics live here
    tolerance     {"rtol", "atol"}: |kiln - golden| <= atol + rtol * |golden| for every value
    pending       optional: the branch that adds this class; a test skips the case while the class
                  is not registered (any other unregistered class is an error)

Inputs, weights and upstream gradients are float32 values written with their shortest decimal
form; the script reads them back from that text, exactly as the tests do, so torch and kiln see
identical numbers. References are computed in float64 and rounded to float32.

To add a row: write a function that returns case(...) (or a list of them) and add it to CASES.
"""
import argparse
import json
import math
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "layers_golden.json")

# Tolerances. kiln computes in float32; the golden values are float64 results rounded to float32.
ELEMENTWISE = {"rtol": 1e-6, "atol": 1e-7}     # a few ulp
REDUCTION = {"rtol": 1e-5, "atol": 1e-6}       # dot products, norms, batch statistics
EXACT = {"rtol": 0.0, "atol": 0.0}             # data movement only


# ---------------------------------------------------------------- float32 values and tensors

def f32_list(a):
    """Shortest decimal strings of the float32 values, parsed back as Python floats (doubles)."""
    return [float(repr(np.float32(v))) for v in np.asarray(a, np.float32).ravel()]


def tensor_json(a, dtype="float32"):
    a = np.asarray(a)
    data = [int(v) for v in a.ravel()] if dtype == "int32" else f32_list(a)
    return {"shape": list(a.shape), "dtype": dtype, "data": data}


def as_torch(t):
    """The tensor the tests will see (JSON text -> double -> float32), as float64 torch."""
    a = np.array(t["data"], np.float64).astype(np.float32).reshape(t["shape"])
    return torch.tensor(a.astype(np.float64))


def rng_for(name):
    return np.random.RandomState(zlib.crc32(name.encode()))


def uniform(rng, shape, lo=-1.0, hi=1.0):
    return tensor_json(rng.uniform(lo, hi, size=shape))


def case(name, class_name, config, fn, inputs, weights, trainable=None, training=False, tolerance=REDUCTION,
         pending=None, weights_after=None):
    """Runs fn(inputs, weights) -> outputs with torch autograd and packs a case.

    inputs / weights are tensor_json dicts; trainable[i] says whether weights[i] gets a gradient;
    weights_after(inputs, weights) -> [tensor or None] fills extra.weights_after."""
    if trainable is None:
        trainable = [True] * len(weights)
    rng = rng_for(name + "/upstream")
    xs = [as_torch(t).requires_grad_(t["dtype"] == "float32") if t["dtype"] == "float32"
          else torch.tensor(np.array(t["data"], np.int64).reshape(t["shape"])) for t in inputs]
    ws = [as_torch(t).requires_grad_(tr) for t, tr in zip(weights, trainable)]
    outs = fn(xs, ws)
    ups = [tensor_json(rng.uniform(-1, 1, size=tuple(o.shape))) for o in outs]
    objective = sum((o * as_torch(u)).sum() for o, u in zip(outs, ups))
    need = [x for x in xs if x.requires_grad] + [w for w in ws if w.requires_grad]
    grads = iter(torch.autograd.grad(objective, need, allow_unused=True)) if need else iter(())

    def grad_json(t):
        g = next(grads)
        return tensor_json(np.zeros(tuple(t.shape)) if g is None else g.detach().numpy())

    input_grads = [grad_json(x) if x.requires_grad else None for x in xs]
    weight_grads = [grad_json(w) if w.requires_grad else None for w in ws]
    c = {"name": name, "class_name": class_name, "config": config, "training": training, "inputs": inputs,
         "weights": weights, "upstream": ups, "outputs": [tensor_json(o.detach().numpy()) for o in outs],
         "input_grads": input_grads, "weight_grads": weight_grads, "extra": {}, "tolerance": tolerance}
    if weights_after is not None:
        with torch.no_grad():
            after = weights_after([x.detach() for x in xs], [w.detach() for w in ws])
        c["extra"]["weights_after"] = [None if a is None else tensor_json(a.numpy()) for a in after]
    if pending:
        c["pending"] = pending
    return c


# ---------------------------------------------------------------- activations (Keras definitions)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": lambda x: torch.clamp(x, 0.0, 6.0),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
    "gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),  # Keras's default: exact (erf)
    "elu": lambda x: torch.where(x > 0, x, torch.expm1(x)),  # alpha 1
    "selu": lambda x: SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x)),
    "softplus": lambda x: torch.log1p(torch.exp(-x.abs())) + torch.clamp(x, min=0.0),  # log(1 + e^x), no cutoff
    "softsign": lambda x: x / (1.0 + x.abs()),
    "swish": lambda x: x * torch.sigmoid(x),
    "silu": lambda x: x * torch.sigmoid(x),
    "leaky_relu": lambda x: torch.where(x > 0, x, 0.2 * x),  # Keras 3's default slope
    "exponential": torch.exp,
    "hard_sigmoid": lambda x: torch.clamp(x + 3.0, 0.0, 6.0) / 6.0,  # Keras 3: relu6(x + 3) / 6
    "mish": lambda x: x * torch.tanh(F.softplus(x, beta=1, threshold=1e9)),
}
KINKED = {"relu", "relu6", "leaky_relu", "hard_sigmoid", "elu", "selu"}
DENSE_ACTIVATIONS = ["linear", "relu", "gelu", "tanh", "sigmoid", "softmax", "elu", "selu", "softplus", "swish"]


def check_away_from_kinks(name, z, activation):
    """A pre-activation rounded differently by kiln must not cross a kink (relu's 0, relu6's 6)."""
    if activation in KINKED:
        kinks = {"relu6": [0.0, 6.0], "hard_sigmoid": [-3.0, 3.0]}.get(activation, [0.0])
        d = min(float((z - k).abs().min()) for k in kinks)
        assert d > 1e-3, "%s: a pre-activation is %g from a kink; change the seed" % (name, d)


# ---------------------------------------------------------------- core layers

def dense_cases():
    out = []
    for act in DENSE_ACTIVATIONS:
        for shape in ([4, 5], [2, 3, 5]):
            for use_bias in ([True, False] if act == "linear" else [True]):
                name = "dense_%s_%dd%s" % (act, len(shape), "" if use_bias else "_nobias")
                rng = rng_for(name)
                units = 3
                x = uniform(rng, shape, -2, 2)
                weights = [uniform(rng, [shape[-1], units], -0.8, 0.8)]
                if use_bias:
                    weights.append(uniform(rng, [units], -0.5, 0.5))

                def fn(xs, ws, act=act, name=name):
                    z = xs[0] @ ws[0] + (ws[1] if len(ws) > 1 else 0.0)
                    check_away_from_kinks(name, z, act)
                    return [ACTIVATIONS[act](z)]

                config = {"units": units, "activation": act, "use_bias": use_bias}
                out.append(case(name, "Dense", config, fn, [x], weights))
    return out


def activation_cases():
    out = []
    for act in sorted(ACTIVATIONS):
        name = "activation_" + act
        rng = rng_for(name)
        x = uniform(rng, [2, 3, 4], -4, 4)

        def fn(xs, ws, act=act, name=name):
            check_away_from_kinks(name, xs[0], act)
            return [ACTIVATIONS[act](xs[0])]

        tol = REDUCTION if act in ("softmax", "log_softmax") else ELEMENTWISE
        out.append(case(name, "Activation", {"activation": act}, fn, [x], [], tolerance=tol))
    return out


def flatten_reshape_cases():
    out = []
    rng = rng_for("flatten")
    out.append(case("flatten_3d", "Flatten", {}, lambda xs, ws: [xs[0].reshape(xs[0].shape[0], -1)],
                    [uniform(rng, [2, 3, 4])], [], tolerance=EXACT))
    out.append(case("flatten_4d", "Flatten", {}, lambda xs, ws: [xs[0].reshape(xs[0].shape[0], -1)],
                    [uniform(rng, [2, 2, 3, 2])], [], tolerance=EXACT))
    for target, shape in (([3, -1], [2, 12]), ([4, 3], [2, 3, 4]), ([-1], [3, 2, 2])):
        name = "reshape_%s" % "x".join(str(d) for d in target).replace("-1", "m1")
        out.append(case(name, "Reshape", {"target_shape": target},
                        lambda xs, ws, target=target: [xs[0].reshape([xs[0].shape[0]] + target)],
                        [uniform(rng_for(name), shape)], [], tolerance=EXACT))
    return out


def dropout_cases():
    """Dropout is random in training; what is fixed is the identity in inference and at rate 0."""
    out = []
    for name, rate, training in (("dropout_inference", 0.5, False), ("dropout_rate0_training", 0.0, True)):
        x = uniform(rng_for(name), [3, 4])
        out.append(case(name, "Dropout", {"rate": rate}, lambda xs, ws: [xs[0] * 1.0], [x], [], training=training,
                        tolerance=EXACT))
    return out


def embedding_cases():
    name = "embedding_repeated_ids"
    rng = rng_for(name)
    ids = tensor_json(np.array([[1, 4, 4, 0], [6, 1, 4, 2], [4, 4, 5, 1]], np.int32), "int32")
    table = uniform(rng, [7, 3])
    # Repeated ids sum their upstream rows into the table's gradient; ids 3 never occurs (zero row).
    return [case(name, "Embedding", {"input_dim": 7, "output_dim": 3}, lambda xs, ws: [F.embedding(xs[0], ws[0])],
                 [ids], [table], tolerance=ELEMENTWISE)]


# ---------------------------------------------------------------- normalization

def layer_norm_cases():
    out = []
    for name, shape, axis, center_scale in (("layer_norm_axis_m1_2d", [3, 6], -1, True),
                                            ("layer_norm_axis_m1_3d", [2, 3, 5], -1, True),
                                            ("layer_norm_axes_m2_m1", [2, 3, 4], [-2, -1], True),
                                            ("layer_norm_no_center_scale", [2, 3, 5], -1, False),
                                            ("layer_norm_axes_m2_m1_no_center_scale", [2, 3, 4], [-2, -1], False)):
        rng = rng_for(name)
        x = uniform(rng, shape, -3, 3)
        nd = 1 if isinstance(axis, int) else len(axis)
        pshape = shape[-nd:]
        weights = [uniform(rng, pshape, 0.5, 1.5), uniform(rng, pshape, -0.5, 0.5)] if center_scale else []

        def fn(xs, ws, pshape=pshape):
            # F.layer_norm: biased variance, epsilon inside the square root, as Keras.
            return [F.layer_norm(xs[0], pshape, ws[0] if ws else None, ws[1] if ws else None, eps=1e-3)]

        config = {"axis": axis, "epsilon": 1e-3, "center": center_scale, "scale": center_scale}
        out.append(case(name, "LayerNormalization", config, fn, [x], weights))
    return out


def channels_first(x):
    return x.movedim(-1, 1)


def channels_last(x):
    return x.movedim(1, -1)


def batch_norm_cases():
    """BatchNormalization, channels last. Training normalises with the batch mean and the biased
    batch variance, and moves the statistics by Keras's rule
        moving = moving * momentum + batch * (1 - momentum)
    with the biased batch variance. PyTorch's running_var uses the unbiased variance (and its
    momentum is Keras's 1 - momentum), so the moving statistics are computed here directly rather
    than read from torch's running buffers."""
    out = []
    momentum, eps = 0.99, 1e-3
    for name, shape, training, center_scale in (("batch_norm_train_2d", [6, 3], True, True),
                                                ("batch_norm_train_4d", [3, 2, 2, 4], True, True),
                                                ("batch_norm_train_no_center_scale", [2, 3, 4], True, False),
                                                ("batch_norm_inference_2d", [5, 3], False, True),
                                                ("batch_norm_inference_4d", [2, 2, 3, 4], False, True)):
        rng = rng_for(name)
        c = shape[-1]
        x = uniform(rng, shape, -2, 3)
        weights = [uniform(rng, [c], 0.5, 1.5), uniform(rng, [c], -0.5, 0.5)] if center_scale else []
        weights += [uniform(rng, [c], -0.5, 0.5), uniform(rng, [c], 0.5, 1.5)]
        trainable = [True, True, False, False] if center_scale else [False, False]

        def fn(xs, ws, training=training):
            gamma, beta = (ws[0], ws[1]) if len(ws) == 4 else (None, None)
            mm, mv = ws[-2], ws[-1]
            y = F.batch_norm(channels_first(xs[0]), None if training else mm, None if training else mv, gamma, beta,
                             training=training, eps=eps)
            return [channels_last(y)]

        def after(xs, ws, training=training):
            mm, mv = ws[-2], ws[-1]
            if not training:
                return [None] * (len(ws) - 2) + [mm, mv]
            dims = list(range(xs[0].dim() - 1))  # every axis but the channels
            mean = xs[0].mean(dim=dims)
            var = xs[0].var(dim=dims, unbiased=False)  # biased, as Keras; not torch's running_var
            return [None] * (len(ws) - 2) + [mm * momentum + mean * (1 - momentum),
                                             mv * momentum + var * (1 - momentum)]

        config = {"axis": -1, "momentum": momentum, "epsilon": eps, "center": center_scale, "scale": center_scale}
        out.append(case(name, "BatchNormalization", config, fn, [x], weights, trainable=trainable, training=training,
                        weights_after=after))
    return out


# ---------------------------------------------------------------- convolution and pooling (branch convlayers)

def tf_same_pad(size, k, stride, dilation=1):
    """TF's 'same' padding for one spatial axis: (before, after), the extra pixel after."""
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def pad_nchw(x, padding, ks, strides, dilation=(1, 1), value=0.0):
    if padding == "valid":
        return x
    ph = tf_same_pad(x.shape[2], ks[0], strides[0], dilation[0])
    pw = tf_same_pad(x.shape[3], ks[1], strides[1], dilation[1])
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=value)


def conv2d_cases():
    out = []
    for name, shape, filters, ks, strides, padding, dilation, act, use_bias in (
            ("conv2d_valid_3x3", [2, 5, 6, 3], 4, [3, 3], [1, 1], "valid", [1, 1], "linear", True),
            ("conv2d_same_stride2_nobias", [2, 5, 6, 2], 3, [3, 2], [2, 2], "same", [1, 1], "linear", False),
            ("conv2d_dilated_tanh", [1, 6, 6, 2], 2, [2, 2], [1, 1], "valid", [2, 2], "tanh", True)):
        rng = rng_for(name)
        x = uniform(rng, shape, -2, 2)
        weights = [uniform(rng, ks + [shape[-1], filters], -0.5, 0.5)]  # HWIO
        if use_bias:
            weights.append(uniform(rng, [filters], -0.5, 0.5))

        def fn(xs, ws, ks=ks, strides=strides, padding=padding, dilation=dilation, act=act):
            w = ws[0].permute(3, 2, 0, 1)  # HWIO -> torch's OIHW
            xp = pad_nchw(channels_first(xs[0]), padding, ks, strides, dilation)
            y = F.conv2d(xp, w, ws[1] if len(ws) > 1 else None, stride=strides, dilation=dilation)
            return [ACTIVATIONS[act](channels_last(y))]

        config = {"filters": filters, "kernel_size": ks, "strides": strides, "padding": padding,
                  "dilation_rate": dilation, "activation": act, "use_bias": use_bias}
        out.append(case(name, "Conv2D", config, fn, [x], weights))
    return out


def separable_conv_cases():
    """SeparableConv2D / SeparableConv1D against torch: a grouped convolution (groups = channels,
    depth_multiplier filters each) then a 1x1 convolution with the bias."""
    out = []
    for name, rank, shape, filters, ks, strides, padding, dilation, dm, act in (
            ("separable_conv2d_same_stride2", 2, [2, 6, 5, 3], 4, [3, 3], [2, 2], "same", [1, 1], 2, "linear"),
            ("separable_conv2d_dilated_relu", 2, [1, 7, 7, 2], 3, [2, 3], [1, 1], "valid", [2, 2], 1, "relu"),
            ("separable_conv1d_valid", 1, [2, 9, 3], 5, [3], [2], "valid", [1], 2, "tanh")):
        rng = rng_for(name)
        x = uniform(rng, shape, -2, 2)
        channels = shape[-1]
        weights = [uniform(rng, ks + [channels, dm], -0.5, 0.5),
                   uniform(rng, [1] * rank + [channels * dm, filters], -0.5, 0.5),
                   uniform(rng, [filters], -0.5, 0.5)]

        def fn(xs, ws, rank=rank, ks=ks, strides=strides, padding=padding, dilation=dilation, dm=dm, act=act,
               channels=channels, filters=filters):
            x = xs[0] if rank == 2 else xs[0].unsqueeze(1)  # [N, W, C] as [N, 1, W, C]
            k2 = ks if rank == 2 else [1] + ks
            s2 = strides if rank == 2 else [1] + strides
            d2 = dilation if rank == 2 else [1] + dilation
            dk = ws[0] if rank == 2 else ws[0].unsqueeze(0)  # [kh, kw, C, dm]
            depthwise = dk.permute(2, 3, 0, 1).reshape(channels * dm, 1, k2[0], k2[1])
            xp = pad_nchw(channels_first(x), padding, k2, s2, d2)
            y = F.conv2d(xp, depthwise, None, stride=s2, dilation=d2, groups=channels)
            pointwise = ws[1].reshape(channels * dm, filters).T.reshape(filters, channels * dm, 1, 1)
            y = channels_last(F.conv2d(y, pointwise, ws[2]))
            return [ACTIVATIONS[act](y if rank == 2 else y.squeeze(1))]

        config = {"filters": filters, "kernel_size": ks, "strides": strides, "padding": padding,
                  "dilation_rate": dilation, "depth_multiplier": dm, "activation": act}
        out.append(case(name, "SeparableConv%dD" % rank, config, fn, [x], weights))
    return out


def pooling_cases():
    out = []
    for kind in ("MaxPooling2D", "AveragePooling2D"):
        for tag, shape, pool, strides, padding in (("valid", [2, 4, 6, 3], [2, 2], [2, 2], "valid"),
                                                   ("same_3x3_s2", [1, 5, 6, 2], [3, 3], [2, 2], "same")):
            name = "%s_%s" % (kind.lower(), tag)
            x = uniform(rng_for(name), shape, -2, 2)

            def fn(xs, ws, kind=kind, pool=pool, strides=strides, padding=padding):
                xc = channels_first(xs[0])
                if kind == "MaxPooling2D":
                    y = F.max_pool2d(pad_nchw(xc, padding, pool, strides, value=-math.inf), pool, strides)
                else:
                    # Keras averages over the window's pixels inside the input (padding not counted).
                    s = F.avg_pool2d(pad_nchw(xc, padding, pool, strides), pool, strides) * (pool[0] * pool[1])
                    n = F.avg_pool2d(pad_nchw(torch.ones_like(xc), padding, pool, strides), pool, strides) * (
                        pool[0] * pool[1])
                    y = s / n
                return [channels_last(y)]

            config = {"pool_size": pool, "strides": strides, "padding": padding}
            tol = EXACT if kind == "MaxPooling2D" else ELEMENTWISE
            out.append(case(name, kind, config, fn, [x], [], tolerance=tol))
    for keepdims in (False, True):
        name = "global_average_pooling2d" + ("_keepdims" if keepdims else "")
        x = uniform(rng_for(name), [2, 3, 4, 5], -2, 2)
        out.append(case(name, "GlobalAveragePooling2D", {"keepdims": keepdims},
                        lambda xs, ws, keepdims=keepdims: [xs[0].mean(dim=(1, 2), keepdim=keepdims)], [x], []))
    return out


# ---------------------------------------------------------------- attention, merge and reshaping

def attention_fn(key_dim, has_key, has_mask, scores, causal):
    """Keras's MultiHeadAttention over leading batch dims: inputs query, value[, key][, mask][, flags]."""
    def fn(xs, ws):
        q_in, v_in = xs[0], xs[1]
        k_in = xs[2] if has_key else v_in
        wq, bq, wk, bk, wv, bv, wo, bo = ws
        q = torch.einsum("...c,chd->...hd", q_in, wq) + bq
        k = torch.einsum("...c,chd->...hd", k_in, wk) + bk
        v = torch.einsum("...c,chd->...hd", v_in, wv) + bv
        logits = torch.einsum("...thd,...shd->...hts", q, k) / math.sqrt(key_dim)
        t, s = logits.shape[-2:]
        keep = torch.ones(logits.shape[:-3] + (t, s), dtype=torch.bool)
        if has_mask:
            keep = keep & (xs[3 if has_key else 2] != 0)
        if causal:
            keep = keep & torch.ones(t, s, dtype=torch.bool).tril()
        keep = keep.unsqueeze(-3).to(logits.dtype)
        probs = torch.softmax(logits + (1.0 - keep) * -1e9, dim=-1) * keep  # Keras's masked softmax
        context = torch.einsum("...hts,...shv->...thv", probs, v)
        out = torch.einsum("...thv,hve->...te", context, wo) + bo
        return [out, probs] if scores else [out]
    return fn


def attention_cases():
    out = []
    for name, q_shape, v_shape, k_dim, heads, key_dim, value_dim, out_dim, axes, mask, scores, causal in (
            ("mha_key_mask_scores", [2, 3, 6], [2, 5, 6], 4, 2, 3, 4, 7, None, True, True, False),
            ("mha_self_causal", [2, 4, 5], [2, 4, 5], None, 2, 4, 4, None, None, False, False, True),
            ("mha_causal_mask_scores", [1, 4, 3], [1, 6, 3], None, 3, 2, 2, None, None, True, True, True),
            ("mha_rank4_axis2_scores", [2, 2, 3, 4], [2, 2, 5, 4], None, 2, 2, 3, None, [2], True, True, False)):
        rng = rng_for(name)
        q = uniform(rng, q_shape, -2, 2)
        v = uniform(rng, v_shape, -2, 2)
        inputs = [q, v]
        if k_dim is not None:
            inputs.append(uniform(rng, v_shape[:-1] + [k_dim], -2, 2))
        t, s = q_shape[-2], v_shape[-2]
        if mask:
            if k_dim is None:
                inputs.append(v)  # a mask without a key passes value as the key
            m = rng.uniform(size=q_shape[:-2] + [t, s]) > 0.3
            m[..., 0] = True  # no query row fully masked
            inputs.append(tensor_json(m.astype(np.int32), "int32"))
        if scores or causal:
            inputs.append(tensor_json(np.array(int(scores)), "int32"))
        if causal:
            inputs.append(tensor_json(np.array(1), "int32"))
        e = out_dim or q_shape[-1]
        weights = []
        for c_in, d in ((q_shape[-1], key_dim), (k_dim or v_shape[-1], key_dim), (v_shape[-1], value_dim)):
            weights += [uniform(rng, [c_in, heads, d], -0.5, 0.5), uniform(rng, [heads, d], -0.5, 0.5)]
        weights += [uniform(rng, [heads, value_dim, e], -0.5, 0.5), uniform(rng, [e], -0.5, 0.5)]
        config = {"num_heads": heads, "key_dim": key_dim, "value_dim": value_dim}
        if out_dim:
            config["output_shape"] = out_dim
        if axes:
            config["attention_axes"] = axes
        fn = attention_fn(key_dim, k_dim is not None or mask, mask, scores, causal)
        out.append(case(name, "MultiHeadAttention", config, fn, inputs, weights))
    return out


def grouped_attention_cases():
    """Keras 3's GroupedQueryAttention (key and value heads repeated over their query-head groups,
    ops.repeat on the heads axis) and the use_gate and sliding_window that it and MultiHeadAttention
    take: the output times sigmoid(gate projection of the query) before the output projection; key
    positions within sliding_window - 1 of the query's, ANDed with the causal mask."""
    def fn_for(head_dim, kv_repeat, gate, window, scores, causal):
        def fn(xs, ws):
            q_in, v_in = xs[0], xs[1]
            wq, bq, wk, bk = ws[:4]
            wg, bg = (ws[4], ws[5]) if gate else (None, None)
            wv, bv, wo, bo = ws[-4:]
            q = torch.einsum("btc,chd->bthd", q_in, wq) + bq
            k = torch.repeat_interleave(torch.einsum("bsc,chd->bshd", v_in, wk) + bk, kv_repeat, dim=2)
            v = torch.repeat_interleave(torch.einsum("bsc,chd->bshd", v_in, wv) + bv, kv_repeat, dim=2)
            logits = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(head_dim)
            t, s = logits.shape[-2:]
            keep = torch.ones(t, s, dtype=torch.bool)
            if causal:
                keep = keep & torch.ones(t, s, dtype=torch.bool).tril()
            if window:
                keep = keep & ((torch.arange(t)[:, None] - torch.arange(s)[None, :]).abs() < window)
            keep = keep.to(logits.dtype)
            probs = torch.softmax(logits + (1.0 - keep) * -1e9, dim=-1) * keep
            context = torch.einsum("bhts,bshv->bthv", probs, v)
            if gate:
                context = context * torch.sigmoid(torch.einsum("btc,chd->bthd", q_in, wg) + bg)
            out = torch.einsum("bthv,hve->bte", context, wo) + bo
            return [out, probs] if scores else [out]
        return fn

    out = []
    for name, cls, heads, kv_heads, head_dim, gate, window, scores, causal in (
            ("gqa_gate_window_causal_scores", "GroupedQueryAttention", 4, 2, 3, True, 2, True, True),
            ("gqa_one_kv_head", "GroupedQueryAttention", 3, 1, 2, False, None, False, False),
            ("mha_gate_window", "MultiHeadAttention", 2, 2, 3, True, 3, True, False)):
        rng = rng_for(name)
        dim = 5
        inputs = [uniform(rng, [2, 4, dim], -2, 2), uniform(rng, [2, 4, dim], -2, 2)]
        if scores or causal:
            inputs.append(tensor_json(np.array(int(scores)), "int32"))
        if causal:
            inputs.append(tensor_json(np.array(1), "int32"))
        weights = [uniform(rng, [dim, heads, head_dim], -0.5, 0.5), uniform(rng, [heads, head_dim], -0.5, 0.5),
                   uniform(rng, [dim, kv_heads, head_dim], -0.5, 0.5), uniform(rng, [kv_heads, head_dim], -0.5, 0.5)]
        if gate:
            weights += [uniform(rng, [dim, heads, head_dim], -0.5, 0.5), uniform(rng, [heads, head_dim], -0.5, 0.5)]
        weights += [uniform(rng, [dim, kv_heads, head_dim], -0.5, 0.5), uniform(rng, [kv_heads, head_dim], -0.5, 0.5),
                    uniform(rng, [heads, head_dim, dim], -0.5, 0.5), uniform(rng, [dim], -0.5, 0.5)]
        if cls == "GroupedQueryAttention":
            config = {"head_dim": head_dim, "num_query_heads": heads, "num_key_value_heads": kv_heads}
        else:
            config = {"num_heads": heads, "key_dim": head_dim}
        config.update({"use_gate": gate, "sliding_window": window})
        out.append(case(name, cls, config, fn_for(head_dim, heads // kv_heads, gate, window, scores, causal), inputs,
                        weights))
    return out


def merge_cases():
    rng = rng_for("merge")
    a, b, c = (uniform(rng, [2, 3, 4]) for _ in range(3))
    row, low, x4 = uniform(rng, [2, 1, 4]), uniform(rng, [2, 4]), uniform(rng, [2, 3, 4, 2])
    average = lambda xs: [sum(xs) / len(xs)]  # noqa: E731
    # Sums of three round twice in float32: REDUCTION's tolerance.
    out = [case("add_broadcast", "Add", {}, lambda xs, ws: [xs[0] + xs[1] + xs[2]], [a, row, c], [],
                tolerance=REDUCTION),
           case("subtract", "Subtract", {}, lambda xs, ws: [xs[0] - xs[1]], [a, b], [], tolerance=ELEMENTWISE),
           case("multiply_lower_rank", "Multiply", {}, lambda xs, ws: [xs[0] * xs[1].unsqueeze(1)], [a, low], [],
                tolerance=ELEMENTWISE),
           case("average", "Average", {}, lambda xs, ws: average(xs), [a, b, c], [], tolerance=REDUCTION),
           case("maximum", "Maximum", {}, lambda xs, ws: [torch.maximum(xs[0], xs[1])], [a, b], [], tolerance=EXACT),
           case("minimum", "Minimum", {}, lambda xs, ws: [torch.minimum(torch.minimum(xs[0], xs[1]), xs[2])],
                [a, b, c], [], tolerance=EXACT),
           case("concatenate_axis1", "Concatenate", {"axis": 1}, lambda xs, ws: [torch.cat(xs, 1)], [a, row], [],
                tolerance=EXACT),
           case("permute", "Permute", {"dims": [3, 1, 2]}, lambda xs, ws: [xs[0].permute(0, 3, 1, 2)], [x4], [],
                tolerance=EXACT),
           case("repeat_vector", "RepeatVector", {"n": 3}, lambda xs, ws: [xs[0].unsqueeze(1).repeat(1, 3, 1)],
                [low], [], tolerance=REDUCTION)]  # the input gradient sums three upstream values
    return out


# ---------------------------------------------------------------- activation, reshaping and noise layers

def away_from(name, x, points):
    d = min(float((x - k).abs().min()) for k in points)
    assert d > 1e-3, "%s: an input is %g from a kink; change the seed" % (name, d)


def activation_layer_cases():
    out = []

    def relu(x, max_value=None, negative_slope=0.0, threshold=0.0):  # keras.activations.relu
        neg = F.relu(threshold - x)
        y = torch.where(x > threshold, x, torch.zeros_like(x))
        if max_value is not None:
            y = torch.clamp(y, 0.0, max_value)
        return y - negative_slope * neg

    for name, config in (("relu_layer_default", {}),
                         ("relu_layer_max6_slope_threshold", {"max_value": 6.0, "negative_slope": 0.5, "threshold": 2.0}),
                         ("relu_layer_max_value", {"max_value": 3.0})):
        x = uniform(rng_for(name), [3, 5], -8, 8)

        def fn(xs, ws, config=config, name=name):
            away_from(name, xs[0], [0.0, config.get("threshold", 0.0), config.get("max_value", 0.0)])
            return [relu(xs[0], **config)]

        out.append(case(name, "ReLU", config, fn, [x], [], tolerance=ELEMENTWISE))
    name = "leaky_relu_layer"
    out.append(case(name, "LeakyReLU", {"negative_slope": 0.1},
                    lambda xs, ws: [torch.where(xs[0] > 0, xs[0], 0.1 * xs[0])],
                    [uniform(rng_for(name), [2, 6], -3, 3)], [], tolerance=ELEMENTWISE))
    name = "elu_layer_alpha"
    out.append(case(name, "ELU", {"alpha": 0.5}, lambda xs, ws: [torch.where(xs[0] > 0, xs[0], 0.5 * torch.expm1(xs[0]))],
                    [uniform(rng_for(name), [2, 6], -3, 3)], [], tolerance=ELEMENTWISE))
    for name, axis in (("softmax_layer_axis1", 1), ("softmax_layer_axes_1_2", [1, 2])):
        dims = axis if isinstance(axis, list) else [axis]
        out.append(case(name, "Softmax", {"axis": axis},
                        lambda xs, ws, dims=dims: [torch.exp(xs[0] - torch.logsumexp(xs[0], dims, keepdim=True))],
                        [uniform(rng_for(name), [2, 3, 4], -3, 3)], []))
    name = "prelu_shared_axis1"
    rng = rng_for(name)
    out.append(case(name, "PReLU", {"shared_axes": [1]}, lambda xs, ws: [F.relu(xs[0]) - ws[0] * F.relu(-xs[0])],
                    [uniform(rng, [2, 3, 4], -2, 2)], [uniform(rng, [1, 4], 0.0, 0.5)], tolerance=ELEMENTWISE))
    return out


def nhwc_pad(x, sides):
    """Zero padding of the axes after the batch axis but the last (channels last); sides per axis."""
    flat = []
    for before, after in reversed(sides):
        flat += [before, after]
    return F.pad(x, [0, 0] + flat)


def reshaping_layer_cases():
    out = []
    for name, cls, config, shape, sides in (
            ("zero_padding1d", "ZeroPadding1D", {"padding": [1, 2]}, [2, 3, 2], [(1, 2)]),
            ("zero_padding2d", "ZeroPadding2D", {"padding": [[1, 0], [2, 1]]}, [2, 3, 2, 2], [(1, 0), (2, 1)]),
            ("zero_padding3d", "ZeroPadding3D", {"padding": 1}, [1, 2, 2, 1, 2], [(1, 1)] * 3)):
        out.append(case(name, cls, config, lambda xs, ws, sides=sides: [nhwc_pad(xs[0], sides)],
                        [uniform(rng_for(name), shape)], [], tolerance=EXACT))
    for name, cls, config, shape, index in (
            ("cropping1d", "Cropping1D", {"cropping": [1, 2]}, [2, 5, 2], (slice(None), slice(1, 3))),
            ("cropping2d", "Cropping2D", {"cropping": [[1, 0], [0, 2]]}, [2, 3, 4, 2],
             (slice(None), slice(1, 3), slice(0, 2))),
            ("cropping3d", "Cropping3D", {"cropping": 1}, [1, 3, 4, 3, 2],
             (slice(None), slice(1, 2), slice(1, 3), slice(1, 2)))):
        out.append(case(name, cls, config, lambda xs, ws, index=index: [xs[0][index]],
                        [uniform(rng_for(name), shape)], [], tolerance=EXACT))
    for name, cls, config, shape, sizes in (
            ("up_sampling1d", "UpSampling1D", {"size": 3}, [2, 2, 3], [3]),
            ("up_sampling2d", "UpSampling2D", {"size": [2, 3]}, [2, 2, 2, 3], [2, 3]),
            ("up_sampling3d", "UpSampling3D", {"size": 2}, [1, 2, 1, 2, 2], [2, 2, 2])):
        def fn(xs, ws, sizes=sizes):
            y = xs[0]
            for axis, k in enumerate(sizes, start=1):
                y = y.repeat_interleave(k, dim=axis)
            return [y]

        out.append(case(name, cls, config, fn, [uniform(rng_for(name), shape)], []))
    name = "identity"
    out.append(case(name, "Identity", {}, lambda xs, ws: [xs[0] * 1.0], [uniform(rng_for(name), [2, 3])], [],
                    tolerance=EXACT))
    name = "rescaling_per_channel"
    out.append(case(name, "Rescaling", {"scale": [0.5, -2.0, 0.25], "offset": 0.125},
                    lambda xs, ws: [xs[0] * torch.tensor([0.5, -2.0, 0.25]) + 0.125],
                    [uniform(rng_for(name), [2, 2, 3], -4, 4)], [], tolerance=ELEMENTWISE))
    return out


def noise_layer_cases():
    """The noise layers are random in training; in inference each is the identity."""
    out = []
    for name, cls, config, shape in (("gaussian_noise_inference", "GaussianNoise", {"stddev": 0.5}, [3, 4]),
                                     ("gaussian_dropout_inference", "GaussianDropout", {"rate": 0.3}, [3, 4]),
                                     ("spatial_dropout1d_inference", "SpatialDropout1D", {"rate": 0.5}, [2, 3, 4]),
                                     ("spatial_dropout2d_inference", "SpatialDropout2D", {"rate": 0.5}, [2, 2, 2, 3]),
                                     ("spatial_dropout3d_inference", "SpatialDropout3D", {"rate": 0.5}, [1, 2, 2, 2, 3])):
        out.append(case(name, cls, config, lambda xs, ws: [xs[0] * 1.0], [uniform(rng_for(name), shape)], [],
                        tolerance=EXACT))
    return out


# ---------------------------------------------------------------- recurrent layers (torch's own modules)

def recurrent_cases():
    """SimpleRNN, GRU (reset_after) and LSTM against torch's own cells (torch._VF.rnn_tanh_cell,
    gru_cell, lstm_cell, what torch.nn.RNNCell / GRUCell / LSTMCell run) with kiln's weights in
    torch's layout: transposed, GRU's gates reordered from Keras's z, r, h to torch's r, z, n, and the
    recurrent biases zero where Keras has one bias. go_backwards walks the steps from the last (Keras
    returns the outputs in that order)."""
    def torch_order(a):  # GRU columns z, r, h -> r, z, n
        z, r, h = torch.chunk(a, 3, dim=-1)
        return torch.cat([r, z, h], dim=-1)

    def fn_for(kind, units, go_backwards, return_sequences, return_state, states_given):
        def fn(xs, ws):
            x = xs[0]
            k, rk, b = ws
            if kind == "GRU":
                w_ih, w_hh, b_ih, b_hh = torch_order(k).T, torch_order(rk).T, torch_order(b[0]), torch_order(b[1])
            else:
                w_ih, w_hh, b_ih, b_hh = k.T, rk.T, b, torch.zeros_like(b)
            batch = x.shape[0]
            h = xs[1] if states_given else torch.zeros(batch, units)
            c = xs[2] if states_given and kind == "LSTM" else torch.zeros(batch, units)
            steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
            outs = []
            for t in steps:
                if kind == "LSTM":
                    h, c = torch._VF.lstm_cell(x[:, t], (h, c), w_ih, w_hh, b_ih, b_hh)
                elif kind == "GRU":
                    h = torch._VF.gru_cell(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
                else:
                    h = torch._VF.rnn_tanh_cell(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
                outs.append(h)
            out = [torch.stack(outs, 1) if return_sequences else outs[-1]]
            if return_state:
                out += [h, c] if kind == "LSTM" else [h]
            return out
        return fn

    out = []
    for kind, gates in (("SimpleRNN", 1), ("GRU", 3), ("LSTM", 4)):
        for go_backwards, return_sequences, return_state, states_given in (
                (False, False, False, False), (True, True, True, True)):
            name = "%s%s" % (kind.lower(), "_backwards_states" if go_backwards else "")
            rng = rng_for(name)
            units, feat = 3, 4
            config = {"units": units, "go_backwards": go_backwards, "return_sequences": return_sequences,
                      "return_state": return_state}
            inputs = [uniform(rng, [2, 5, feat])]
            if states_given:
                inputs += [uniform(rng, [2, units]) for _ in range(2 if kind == "LSTM" else 1)]
            bias_shape = [2, gates * units] if kind == "GRU" else [gates * units]
            weights = [uniform(rng, [feat, gates * units], -0.6, 0.6), uniform(rng, [units, gates * units], -0.6, 0.6),
                       uniform(rng, bias_shape, -0.3, 0.3)]
            out.append(case(name, kind, config, fn_for(kind, units, go_backwards, return_sequences, return_state,
                                                        states_given), inputs, weights))
    return out


def conv_lstm_cases():
    """ConvLSTM1D and ConvLSTM2D as Keras 3's ConvLSTMCell computes a step, composed from torch's
    conv2d (1-D as 2-D over a height of 1): z = conv(x_t, kernel) + bias + conv(h, recurrent_kernel)
    (the recurrent one strides 1 with TF's 'same' padding), gates i, f, c, o on the last axis."""
    def fn_for(rank, filters, ks, strides, padding, dilation, go_backwards, return_sequences, return_state,
               states_given):
        def conv(x, w, ks, strides, padding, dilation):  # x [B, S..., C], w [k..., C, O] (TF layout)
            if rank == 1:
                x, w = x.unsqueeze(1), w.unsqueeze(0)
                ks, strides, dilation = [1] + ks, [1] + strides, [1] + dilation
            xp = pad_nchw(channels_first(x), padding, ks, strides, dilation)
            y = channels_last(F.conv2d(xp, w.permute(3, 2, 0, 1), stride=strides, dilation=dilation))
            return y.squeeze(1) if rank == 1 else y

        def fn(xs, ws):
            x = xs[0]
            k, rk, b = ws
            steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
            h = c = None
            if states_given:
                h, c = xs[1], xs[2]
            outs = []
            for t in steps:
                z = conv(x[:, t], k, ks, strides, padding, dilation) + b
                if h is None:
                    h = torch.zeros(z.shape[:-1] + (filters,))
                    c = torch.zeros_like(h)
                z = z + conv(h, rk, ks, [1] * rank, "same", [1] * rank)
                zi, zf, zc, zo = torch.chunk(z, 4, dim=-1)
                c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zc)
                h = torch.sigmoid(zo) * torch.tanh(c)
                outs.append(h)
            out = [torch.stack(outs, 1) if return_sequences else outs[-1]]
            return out + [h, c] if return_state else out
        return fn

    out = []
    for name, rank, shape, filters, ks, strides, padding, dilation, flags in (
            ("conv_lstm2d_valid", 2, [2, 3, 5, 4, 2], 2, [3, 3], [1, 1], "valid", [1, 1], (False, False, False, False)),
            ("conv_lstm2d_same_stride2_backwards_states", 2, [2, 3, 5, 4, 2], 2, [3, 2], [2, 2], "same", [1, 1],
             (True, True, True, True)),
            ("conv_lstm1d_dilated_sequences", 1, [2, 4, 7, 3], 3, [3], [1], "same", [2], (False, True, False, False))):
        go_backwards, return_sequences, return_state, states_given = flags
        rng = rng_for(name)
        inputs = [uniform(rng, shape)]
        spatial = [-(-n // s) if padding == "same" else (n - (k - 1) * d - 1) // s + 1
                   for n, k, s, d in zip(shape[2:-1], ks, strides, dilation)]
        if states_given:
            inputs += [uniform(rng, [shape[0]] + spatial + [filters]) for _ in range(2)]
        weights = [uniform(rng, ks + [shape[-1], 4 * filters], -0.5, 0.5),
                   uniform(rng, ks + [filters, 4 * filters], -0.5, 0.5), uniform(rng, [4 * filters], -0.3, 0.3)]
        config = {"filters": filters, "kernel_size": ks, "strides": strides, "padding": padding,
                  "dilation_rate": dilation, "go_backwards": go_backwards, "return_sequences": return_sequences,
                  "return_state": return_state}
        out.append(case(name, "ConvLSTM%dD" % rank, config,
                        fn_for(rank, filters, ks, strides, padding, dilation, *flags), inputs, weights))
    return out


def adaptive_pooling_cases():
    """AdaptiveAveragePooling and AdaptiveMaxPooling (Keras 3's, which are PyTorch's windows) against
    torch's adaptive_avg_pool / adaptive_max_pool, channels last and first, shrinking and growing axes;
    ActivityRegularization is its input (its loss is checked in the unit tests)."""
    out = []
    for name, kind, rank, shape, size, first in (
            ("adaptive_avg_pool1d", "Average", 1, [2, 7, 3], [3], False),
            ("adaptive_max_pool2d", "Max", 2, [2, 5, 7, 2], [3, 4], False),
            ("adaptive_avg_pool2d_grow_channels_first", "Average", 2, [1, 2, 3, 5], [5, 2], True),
            ("adaptive_max_pool3d", "Max", 3, [1, 4, 5, 3, 2], [2, 3, 2], False)):
        rng = rng_for(name)
        x = uniform(rng, shape)
        pool = getattr(F, "adaptive_%s_pool%dd" % ("avg" if kind == "Average" else "max", rank))

        def fn(xs, ws, pool=pool, size=size, first=first):
            if first:
                return [pool(xs[0], tuple(size))]
            return [channels_last(pool(channels_first(xs[0]), tuple(size)))]

        config = {"output_size": size, "data_format": "channels_first" if first else "channels_last"}
        out.append(case(name, "Adaptive%sPooling%dD" % (kind, rank), config, fn, [x], [],
                        tolerance=ELEMENTWISE if kind == "Max" else REDUCTION))
    name = "activity_regularization"
    out.append(case(name, "ActivityRegularization", {"l1": 0.01, "l2": 0.1}, lambda xs, ws: [xs[0] * 1.0],
                    [uniform(rng_for(name), [2, 3])], [], tolerance=EXACT))
    return out


CASES = [dense_cases, activation_cases, flatten_reshape_cases, dropout_cases, embedding_cases, layer_norm_cases,
         batch_norm_cases, conv2d_cases, separable_conv_cases, pooling_cases, attention_cases, merge_cases,
         activation_layer_cases, reshaping_layer_cases, noise_layer_cases, recurrent_cases, conv_lstm_cases,
         adaptive_pooling_cases, grouped_attention_cases]


def render():
    cases = [c for make in CASES for c in make()]
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    head = {"format": "kiln.layer_golden", "version": 1, "generator": "tests/golden/make_layer_golden.py",
            "torch": torch.__version__.split("+")[0]}
    compact = dict(separators=(",", ":"))
    lines = ["{" + json.dumps(head, **compact)[1:-1] + ',"cases":[']
    lines += [json.dumps(c, **compact) + ("," if i + 1 < len(cases) else "") for i, c in enumerate(cases)]
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the checked-in file instead of writing")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    text = render()
    if args.check:
        with open(args.out) as f:
            same = f.read() == text
        print("%s is %s" % (args.out, "up to date" if same else "OUT OF DATE"))
        return 0 if same else 1
    with open(args.out, "w") as f:
        f.write(text)
    print("wrote %s: %d cases, %d bytes" % (args.out, text.count('"name":'), len(text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
