"""Losses, extra reductions, scans, floor division and einsum over the C API (names as TensorFlow's)."""
import collections as _collections
import ctypes
import numbers as _numbers

from . import _lib
from .errors import InvalidArgumentError, check
from .ops import _axes, _pair, reshape
from .tensor import Tensor, _as_tensor, _new

L = _lib.lib


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    """tf.nn.sparse_softmax_cross_entropy_with_logits: per-example losses; labels are class indices."""
    return _new(L.kiln_sparse_softmax_cross_entropy_with_logits, _as_tensor(labels), _as_tensor(logits))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """tf.nn.softmax_cross_entropy_with_logits: per-example losses; labels are distributions along axis."""
    logits = _as_tensor(logits)
    return _new(L.kiln_softmax_cross_entropy_with_logits, _as_tensor(labels, logits), logits, int(axis))


def sigmoid_cross_entropy_with_logits(labels, logits):
    """tf.nn.sigmoid_cross_entropy_with_logits: elementwise, labels and logits of one shape."""
    labels, logits = _pair(labels, logits)
    return _new(L.kiln_sigmoid_cross_entropy_with_logits, labels, logits)


def _reduce(name):
    fn = getattr(L, "kiln_" + name)

    def op(input_tensor, axis=None, keepdims=False):
        x = _as_tensor(input_tensor)
        if axis is not None and not isinstance(axis, _numbers.Integral) and len(axis) == 0:
            return reshape(x, x.shape)  # TF: an empty axis list reduces nothing
        ax, n = _axes(axis)
        return _new(fn, x, ax, n, bool(keepdims))
    op.__name__ = name
    op.__doc__ = "tf.math.%s over axis (None: all axes)." % name
    return op


reduce_prod, reduce_any, reduce_all = _reduce("reduce_prod"), _reduce("reduce_any"), _reduce("reduce_all")
reduce_logsumexp = _reduce("reduce_logsumexp")


def argmin(input, axis=-1):  # noqa: A002
    """Index of the smallest value along axis (int64; first index on ties)."""
    return _new(L.kiln_argmin, _as_tensor(input), int(axis))


def bias_add(value, bias, data_format=None):
    """tf.nn.bias_add: bias [C] added along the last axis (channels last only)."""
    if data_format not in (None, "NHWC", "NWC", "NDHWC", "N...C"):
        raise InvalidArgumentError("bias_add: data_format %r is not supported; kiln is channels last (NHWC)"
                                   % (data_format,))
    value = _as_tensor(value)
    return _new(L.kiln_bias_add, value, _as_tensor(bias, value))


def moments(x, axes, shift=None, keepdims=False):
    """tf.nn.moments: (mean, variance) over axes; variance is biased. shift is ignored, as in TF2."""
    del shift
    x = _as_tensor(x)
    ax, n = _axes(axes)
    m, v = ctypes.c_void_p(), ctypes.c_void_p()
    check(L.kiln_moments(ctypes.byref(m), ctypes.byref(v), x, ax, n, bool(keepdims)))
    return Tensor._adopt(m.value), Tensor._adopt(v.value)


def l2_normalize(x, axis=None, epsilon=1e-12):
    """tf.math.l2_normalize: x / sqrt(max(sum(x**2, axis), epsilon)); axis None: all axes."""
    ax, n = _axes(axis)
    return _new(L.kiln_l2_normalize, _as_tensor(x), ax, n, float(epsilon))


def cumsum(x, axis=0, exclusive=False, reverse=False):
    """tf.math.cumsum."""
    return _new(L.kiln_cumsum, _as_tensor(x), int(axis), bool(exclusive), bool(reverse))


TopKV2 = _collections.namedtuple("TopKV2", ["values", "indices"])


def top_k(input, k=1, sorted=True):  # noqa: A002
    """tf.math.top_k: (values, indices) of the k largest entries along the last axis; ties to the lower index."""
    v, i = ctypes.c_void_p(), ctypes.c_void_p()
    check(L.kiln_top_k(ctypes.byref(v), ctypes.byref(i), _as_tensor(input), int(k), bool(sorted)))
    return TopKV2(Tensor._adopt(v.value), Tensor._adopt(i.value))


__all__ = ["sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
           "sigmoid_cross_entropy_with_logits", "reduce_prod", "reduce_any", "reduce_all", "reduce_logsumexp",
           "argmin", "bias_add", "moments", "l2_normalize", "cumsum", "top_k"]
