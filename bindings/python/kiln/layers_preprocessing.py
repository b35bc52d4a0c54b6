"""Preprocessing layers: kiln.layers.Normalization and Discretization (with adapt()),
CategoryEncoding, and the random image augmentation layers RandomFlip, RandomCrop, RandomContrast,
RandomBrightness, RandomRotation, RandomTranslation and RandomZoom, with Keras's signatures and
defaults."""
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
    return {"bin_boundaries": bin_boundaries, "num_bins": num_bins,  # the C++ reader checks for an int
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
def _seed(seed):
    """A layer's seed as given: the C++ config reader refuses what is not an int >= 0 (or None)."""
    return seed


def _factor(factor, cls):
    """A colour layer's factor: a number or two numbers (lower, upper)."""
    if isinstance(factor, (list, tuple)):
        return [float(f) for f in factor]
    if isinstance(factor, bool) or not isinstance(factor, _numbers.Real):
        raise InvalidArgumentError("%s: factor must be a number or two numbers (lower, upper); got %r" % (cls, factor))
    return float(factor)


RandomFlip = _builtin(
    "RandomFlip", "keras.layers.RandomFlip(mode='horizontal_and_vertical', seed=None, data_format=None): in "
    "training each image flipped left-right ('horizontal') and / or upside down ('vertical'), each with "
    "probability 1/2; float32 out. Pass training=True to call it outside fit.",
    lambda mode="horizontal_and_vertical", seed=None, data_format=None: {
        "mode": str(mode), "seed": _seed(seed), "data_format": data_format})
RandomCrop = _builtin(
    "RandomCrop", "keras.layers.RandomCrop(height, width, seed=None, data_format=None): in training a height x "
    "width window at a random place (one for the whole batch); outside training, and for images not larger "
    "than that, the largest centred window of the target's aspect ratio resized to it; float32 out.",
    lambda height, width, seed=None, data_format=None: {
        "height": height, "width": width, "seed": _seed(seed), "data_format": data_format})
def _color(cls, doc):
    return _builtin(cls, "keras.layers.%s(factor, value_range=(0, 255), seed=None, data_format=None): %s" % (cls, doc),
                    lambda factor, value_range=(0, 255), seed=None, data_format=None: {
                        "factor": _factor(factor, cls), "value_range": [float(v) for v in value_range],
                        "seed": _seed(seed), "data_format": data_format})


RandomContrast = _color(
    "RandomContrast", "in training each image's channels become (x - mean) * c + mean, c drawn in [1 - lower, "
    "1 + upper] (factor f: lower = upper = f), then clipped to value_range; float32 out.")
RandomBrightness = _color(
    "RandomBrightness", "in training each image gets delta * (high - low) added, delta drawn in [lower, upper] "
    "within [-1, 1] (factor f: [-f, f]), then clipped to value_range; float32 out.")


def _transform(fill_mode, interpolation, seed, fill_value, data_format):
    return {"fill_mode": str(fill_mode), "interpolation": str(interpolation), "seed": _seed(seed),
            "fill_value": float(fill_value), "data_format": data_format}


RandomRotation = _builtin(
    "RandomRotation", "keras.layers.RandomRotation(factor, fill_mode='reflect', interpolation='bilinear', seed=None, "
    "fill_value=0.0, data_format=None): in training each image turned about its centre by an angle in "
    "[lower, upper] * 2 pi (factor f: [-f, f]; positive turns counter-clockwise), points outside filled by "
    "fill_mode ('reflect', 'wrap', 'constant', 'nearest'); float32 out.",
    lambda factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None: dict(
        {"factor": _factor(factor, "RandomRotation")}, **_transform(fill_mode, interpolation, seed, fill_value,
                                                                    data_format)))
RandomTranslation = _builtin(
    "RandomTranslation", "keras.layers.RandomTranslation(height_factor, width_factor, fill_mode='reflect', "
    "interpolation='bilinear', seed=None, fill_value=0.0, data_format=None): in training each image shifted by "
    "fractions of its height and width drawn in each factor's [lower, upper] (f: [-f, f]); float32 out.",
    lambda height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
    data_format=None: dict({"height_factor": _factor(height_factor, "RandomTranslation"),
                            "width_factor": _factor(width_factor, "RandomTranslation")},
                           **_transform(fill_mode, interpolation, seed, fill_value, data_format)))
RandomZoom = _builtin(
    "RandomZoom", "keras.layers.RandomZoom(height_factor, width_factor=None, fill_mode='reflect', "
    "interpolation='bilinear', seed=None, fill_value=0.0, data_format=None): in training each image zoomed about "
    "its centre by 1 + a value drawn in each factor's [lower, upper] (above 1 zooms out; width_factor None: the "
    "vertical zoom both ways); float32 out.",
    lambda height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
    data_format=None: dict({"height_factor": _factor(height_factor, "RandomZoom"),
                            "width_factor": None if width_factor is None else _factor(width_factor, "RandomZoom")},
                           **_transform(fill_mode, interpolation, seed, fill_value, data_format)))

_AUGMENTATION = (RandomFlip, RandomCrop, RandomContrast, RandomBrightness, RandomRotation, RandomTranslation,
                 RandomZoom)
_BUILTINS.update({c._class_name: c for c in _AUGMENTATION})
_BUILTINS["CategoryEncoding"] = CategoryEncoding
_BUILTINS["Discretization"] = Discretization

__all__ = ["Normalization", "Discretization", "CategoryEncoding"] + [c._class_name for c in _AUGMENTATION]
