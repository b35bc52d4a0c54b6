"""Losses, extra reductions, scans, floor division and einsum over the C API (names as TensorFlow's)."""
from . import _lib
from .ops import _pair
from .tensor import _as_tensor, _new

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


__all__ = ["sparse_softmax_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
           "sigmoid_cross_entropy_with_logits"]
