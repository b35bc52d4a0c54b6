"""Preprocessing layers: kiln.layers.Normalization (with adapt()) and CategoryEncoding, with
Keras's signatures and defaults."""
import itertools as _itertools
import numbers as _numbers

from . import _lib
from .errors import InvalidArgumentError, call_c as _c
from .layers import _BUILTINS, _builtin
from .autodiff import Variable
from .tensor import Tensor, constant

L = _lib.lib

try:
    import numpy as _np
except ImportError:  # pragma: no cover - NumPy is optional
    _np = None


def _nested(v, key):
    """Normalization's mean or variance as a config value: None, a number, or nested lists of
    numbers (NumPy arrays, kiln tensors and lists of them as Keras takes them)."""
    if v is None:
        return None
    if isinstance(v, Variable):
        v = v.value()
    if isinstance(v, Tensor) or hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, bool) or not isinstance(v, (_numbers.Real, list, tuple)):
        raise InvalidArgumentError("Normalization: %s must be a number or a (nested) list or array of numbers; got %r"
                                   % (key, v))
    if isinstance(v, _numbers.Real):
        return float(v)
    return [_nested(e, key) for e in v]


def _normalization(axis=-1, mean=None, variance=None, invert=False):
    if axis is None:
        axes = []
    elif isinstance(axis, _numbers.Integral):
        axes = [int(axis)]
    else:
        axes = [int(a) for a in axis]
    return {"axis": axes, "mean": _nested(mean, "mean"), "variance": _nested(variance, "variance"),
            "invert": bool(invert)}


def _first(batch):
    """Keras's _extract_batch: the x of an (x, y) or (x, y, sample_weight) tuple."""
    return batch[0] if isinstance(batch, tuple) else batch


_Normalization = _builtin(
    "Normalization", "keras.layers.Normalization(axis=-1, mean=None, variance=None, invert=False)", _normalization)


class Normalization(_Normalization):
    """keras.layers.Normalization(axis=-1, mean=None, variance=None, invert=False): (x - mean) /
    sqrt(variance) per index of the kept axes (axis=None: one mean and variance over every value),
    or its inverse. Give mean and variance, or compute them from data with adapt(); they are the
    layer's non-trainable weights "mean", "variance" and "count" then, saved with the model."""

    def adapt(self, data, batch_size=None, steps=None):
        """Computes the mean and variance of data: a NumPy array or kiln tensor (as one batch), a
        kiln.data.Dataset of batches, or an iterable of batches (a list of arrays, a generator);
        a batch may be an (x, y) tuple, whose x is read. Dataset elements must be batches, as in
        Keras. batch_size and steps (tf.keras 2's) cut an array into batches and stop after that
        many batches."""
        from . import data as _data  # data imports layers' neighbours; imported when used
        if batch_size is not None or steps is not None:
            if isinstance(data, _data.Dataset):
                if batch_size is not None:
                    raise InvalidArgumentError("Normalization.adapt: batch_size is for arrays; a Dataset is "
                                               "batched already")
            else:
                data = _data.Dataset.from_tensor_slices(_data._to_tensor(data))
                data = data.batch(int(batch_size) if batch_size is not None else 32)
            if steps is not None:
                data = data.take(int(steps))
        if isinstance(data, _data.Dataset):
            self._adapt_dataset(data)
        elif isinstance(data, Tensor) or (_np is not None and isinstance(data, _np.ndarray)):
            _c(L.kiln_layer_adapt, self._handle(), _data._to_tensor(data))
        elif isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
            raise TypeError("Normalization.adapt: unsupported data of type %s; expected a NumPy array, a kiln tensor, "
                            "a kiln.data.Dataset or an iterable of batches" % type(data).__name__)
        else:
            it = iter(data)
            first = next(it, None)
            if first is None:
                raise InvalidArgumentError("Normalization.adapt: the iterable has no batches; expected at least one")
            first = _data._to_tensor(_first(first))
            batches = _itertools.chain([first], (_first(b) for b in it))
            spec = _data.TensorSpec(shape=None, dtype=first.dtype)
            ds = _data.Dataset.from_generator(lambda: batches, output_signature=spec)
            self._adapt_dataset(ds)

    def _adapt_dataset(self, ds):
        """kiln_layer_adapt_dataset; an exception raised by Python code in the pipeline (a map
        function, a generator) comes out as itself, as iterating the dataset gives it."""
        from . import data as _data
        from .errors import deferred_call
        status = deferred_call(L.kiln_layer_adapt_dataset, self._handle(), ds)
        if status:
            _data._raise(status)


_CategoryEncoding = _builtin(
    "CategoryEncoding", "keras.layers.CategoryEncoding(num_tokens=None, output_mode='multi_hot', sparse=False)",
    lambda num_tokens=None, output_mode="multi_hot", sparse=False: {
        "num_tokens": None if num_tokens is None else int(num_tokens), "output_mode": str(output_mode),
        "sparse": bool(sparse)})


class CategoryEncoding(_CategoryEncoding):
    """keras.layers.CategoryEncoding(num_tokens, output_mode="multi_hot", sparse=False): integer token
    ids in [0, num_tokens) as one-hot rows ("one_hot"), or per sample over the ids of its last axis as
    a multi-hot vector ("multi_hot") or token counts ("count", weighted by count_weights when given).
    Called as Keras calls it: layer(inputs, count_weights=None)."""

    def __call__(self, inputs, count_weights=None, training=None):
        if isinstance(inputs, (list, tuple)):  # token ids as nested lists, as Keras converts them
            inputs = constant(inputs)
        if count_weights is None:
            return _CategoryEncoding.__call__(self, inputs, training=training)
        return _CategoryEncoding.__call__(self, [inputs, count_weights], training=training)


_BUILTINS["Normalization"] = Normalization
_BUILTINS["CategoryEncoding"] = CategoryEncoding

__all__ = ["Normalization", "CategoryEncoding"]
