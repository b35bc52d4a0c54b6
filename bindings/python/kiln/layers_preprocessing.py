"""Preprocessing layers: kiln.layers.Normalization and Discretization (with adapt()) and
CategoryEncoding, with Keras's signatures and defaults."""
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


class _Adapt:
    """Keras's adapt() of the preprocessing layers that compute their state from data."""

    def adapt(self, data, batch_size=None, steps=None):
        """Computes the layer's state from data (Normalization: the mean and variance;
        Discretization: the bin boundaries): a NumPy array or kiln tensor (as one batch), a
        kiln.data.Dataset of batches, or an iterable of batches (a list of arrays, a generator);
        a batch may be an (x, y) tuple, whose x is read. Dataset elements must be batches, as in
        Keras. batch_size (tf.keras 2's) cuts an array into batches (32 when only steps is
        given); steps stops after that many batches of any kind of data."""
        from . import data as _data  # data imports layers' neighbours; imported when used
        is_array = isinstance(data, Tensor) or (_np is not None and isinstance(data, _np.ndarray))
        if batch_size is not None and not is_array:
            raise InvalidArgumentError("%s.adapt: batch_size is for arrays; a Dataset or an iterable of batches is "
                                       "batched already" % self._class_name)
        if is_array and (batch_size is not None or steps is not None):
            data = _data.Dataset.from_tensor_slices(_data._to_tensor(data))
            data = data.batch(int(batch_size) if batch_size is not None else 32)
            is_array = False
        if not is_array and (isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__")):
            raise TypeError("%s.adapt: unsupported data of type %s; expected a NumPy array, a kiln tensor, "
                            "a kiln.data.Dataset or an iterable of batches" % (self._class_name, type(data).__name__))
        if steps is not None:
            data = data.take(int(steps)) if isinstance(data, _data.Dataset) else _itertools.islice(iter(data),
                                                                                                    int(steps))
        if isinstance(data, _data.Dataset):
            self._adapt_dataset(data)
        elif is_array:
            _c(L.kiln_layer_adapt, self._handle(), _data._to_tensor(data))
        else:
            it = iter(data)
            first = next(it, None)
            if first is None:
                raise InvalidArgumentError("%s.adapt: the iterable has no batches; expected at least one"
                                           % self._class_name)
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


class Normalization(_Adapt, _Normalization):
    """keras.layers.Normalization(axis=-1, mean=None, variance=None, invert=False): (x - mean) /
    sqrt(variance) per index of the kept axes (axis=None: one mean and variance over every value),
    or its inverse. Give mean and variance, or compute them from data with adapt(); they are the
    layer's non-trainable weights "mean", "variance" and "count" then, saved with the model."""


def _discretization(bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False):
    if num_bins is not None and bin_boundaries is not None:
        raise InvalidArgumentError("Discretization: set num_bins or bin_boundaries, not both; got num_bins=%r and "
                                   "bin_boundaries=%r" % (num_bins, bin_boundaries))
    if bin_boundaries is not None:
        if isinstance(bin_boundaries, Tensor) or hasattr(bin_boundaries, "tolist"):
            bin_boundaries = bin_boundaries.tolist()
        if isinstance(bin_boundaries, (str, bytes)) or not hasattr(bin_boundaries, "__iter__"):
            raise InvalidArgumentError("Discretization: bin_boundaries must be a list of numbers; got %r"
                                       % (bin_boundaries,))
        bin_boundaries = [float(b) for b in bin_boundaries]
    return {"bin_boundaries": bin_boundaries, "num_bins": None if num_bins is None else int(num_bins),
            "epsilon": float(epsilon), "output_mode": str(output_mode), "sparse": bool(sparse)}


_Discretization = _builtin(
    "Discretization", "keras.layers.Discretization(bin_boundaries=None, num_bins=None, epsilon=0.01, "
    "output_mode='int', sparse=False)", _discretization)


class Discretization(_Adapt, _Discretization):
    """keras.layers.Discretization(bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
    sparse=False): each value's bin, i where bin_boundaries[i - 1] <= x < bin_boundaries[i] (0 below
    the first boundary, len(bin_boundaries) from the last; NaN in the last), compared in float32, as
    int32 ("int") or encoded over len(bin_boundaries) + 1 bins as CategoryEncoding encodes ("one_hot",
    "multi_hot", "count"). With num_bins, adapt() computes num_bins - 1 boundaries at the data's
    approximate quantiles (epsilon: the summaries' error tolerance), as Keras computes them."""

    @property
    def bin_boundaries(self):
        """The boundaries: given, or computed by adapt(); None before adapt() when made with num_bins."""
        return self.get_config()["bin_boundaries"]

    @property
    def num_bins(self):
        return self.get_config()["num_bins"]


_CategoryEncoding = _builtin(
    "CategoryEncoding", "keras.layers.CategoryEncoding(num_tokens=None, output_mode='multi_hot', sparse=False)",
    lambda num_tokens=None, output_mode="multi_hot", sparse=False: {
        "num_tokens": None if num_tokens is None else int(num_tokens), "output_mode": str(output_mode),
        "sparse": bool(sparse)})


class CategoryEncoding(_CategoryEncoding):
    """keras.layers.CategoryEncoding(num_tokens, output_mode="multi_hot", sparse=False): integer token
    ids in [0, num_tokens) as one-hot rows ("one_hot"), or over axis 1 (each sample's ids of [batch, n];
    Keras 3's axis for rank 3 too) as a multi-hot vector ("multi_hot") or token counts ("count",
    weighted by count_weights when given).
    Called as Keras calls it: layer(inputs, count_weights=None)."""

    def __call__(self, inputs, count_weights=None, training=None):
        if isinstance(inputs, (list, tuple)):  # token ids as nested lists, as Keras converts them
            inputs = constant(inputs)
        if count_weights is None:
            return _CategoryEncoding.__call__(self, inputs, training=training)
        return _CategoryEncoding.__call__(self, [inputs, count_weights], training=training)


_BUILTINS["Normalization"] = Normalization
_BUILTINS["CategoryEncoding"] = CategoryEncoding
_BUILTINS["Discretization"] = Discretization

__all__ = ["Normalization", "Discretization", "CategoryEncoding"]
