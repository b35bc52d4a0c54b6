"""Preprocessing layers: kiln.layers.Normalization, Discretization and IntegerLookup (with adapt()),
Hashing, HashedCrossing, CategoryEncoding, the random image augmentation layers RandomFlip, RandomCrop, RandomContrast,
RandomBrightness, RandomRotation, RandomTranslation, RandomZoom, RandomShear, RandomPerspective, Solarization,
RandomInvert, RandomGrayscale, RandomPosterization, RandomColorDegeneration, RandomSharpness, RandomSaturation,
RandomHue, RandomColorJitter, RandomErasing, RandomGaussianBlur, Equalization and RandAugment, MixUp and CutMix,
and AutoContrast, with Keras's signatures and defaults."""
import itertools as _itertools
import math as _math
import numbers as _numbers

from . import _lib
from .errors import InvalidArgumentError, call_c as _c
from .layers import _BUILTINS, _Builtin, _builtin, _new_handle
from .layers_conv import _tuple
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


def _token_list(v):
    """A vocabulary or idf_weights as a config value: None, a path (vocabulary), or a list (from a
    list, tuple, NumPy array or kiln tensor); the C++ reader checks the values."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, Tensor) or hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [e.item() if hasattr(e, "item") else e for e in v]
    return v


def _integer_lookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                    vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                    pad_to_max_tokens=False, oov_method="floormod", salt=None, vocabulary_size=None,
                    has_input_vocabulary=None):
    import os
    if isinstance(vocabulary, os.PathLike):
        vocabulary = os.fspath(vocabulary)
    config = {"invert": invert, "max_tokens": max_tokens, "num_oov_indices": num_oov_indices, "oov_token": oov_token,
              "mask_token": mask_token, "output_mode": output_mode, "sparse": sparse,
              "pad_to_max_tokens": pad_to_max_tokens, "vocabulary_dtype": vocabulary_dtype,
              "idf_weights": _token_list(idf_weights), "vocabulary": _token_list(vocabulary),
              "vocabulary_size": vocabulary_size, "oov_method": oov_method, "salt": salt}
    if has_input_vocabulary is not None:
        config["has_input_vocabulary"] = has_input_vocabulary
    # NumPy scalars as Python's (the C++ reader checks every type and value)
    return {k: (v.item() if hasattr(v, "item") and not hasattr(v, "__len__") else v) for k, v in config.items()}


_IntegerLookup = _builtin(
    "IntegerLookup", "keras.layers.IntegerLookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, "
    "vocabulary=None, vocabulary_dtype='int64', idf_weights=None, invert=False, output_mode='int', sparse=False, "
    "pad_to_max_tokens=False, oov_method='floormod', salt=None)", _integer_lookup)


def _no_text(value, who):
    """Keras converts lookup and hashing inputs with their integer dtype: text is refused."""
    if isinstance(value, (str, bytes)) or (_np is not None and isinstance(value, _np.ndarray)
                                           and value.dtype.kind in "USO"):
        raise InvalidArgumentError("%s: got text %r; kiln has no string tensors, expected integer tokens"
                                   % (who, value if isinstance(value, (str, bytes)) else value.dtype))
    if isinstance(value, (list, tuple)):
        for v in value:
            _no_text(v, who)


def _read_vocabulary_file(path, who):
    """Keras's vocabulary file: one integer per line, trailing empty lines ignored."""
    with open(path) as f:
        lines = f.read().splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    tokens = []
    for i, line in enumerate(lines):
        try:
            tokens.append(int(line))
        except ValueError:
            raise InvalidArgumentError("%s: vocabulary file '%s' line %d is %r; expected one integer token per line"
                                       % (who, path, i + 1, line[:40])) from None
    return tokens


class _TokenInputs:
    """Keras's call(inputs) of the lookup and hashing layers: tokens as arrays, tensors or (nested)
    lists of ints; training is keyword-only, as a second positional argument is an error in Keras."""

    def __call__(self, inputs, *, training=None, **kwargs):
        _no_text(inputs, self._class_name)
        if isinstance(inputs, (list, tuple)):  # tokens as nested lists, as Keras converts them
            inputs = constant(inputs)
        return super().__call__(inputs, training=training, **kwargs)


class IntegerLookup(_TokenInputs, _Adapt, _IntegerLookup):
    """keras.layers.IntegerLookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
    vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int",
    sparse=False, pad_to_max_tokens=False, oov_method="floormod", salt=None): integer tokens mapped to
    indices of a vocabulary (a list, an array, or a text file of one token per line), or learned
    by adapt() from data: the most frequent tokens, ties broken by the larger token, at most
    max_tokens indices in all. Index 0 is the mask token (output_mode "int" with mask_token set),
    then num_oov_indices indices for out-of-vocabulary tokens (token x goes to floormod(x,
    num_oov_indices), or with oov_method="farmhash" to TF's hash bucket of its digits, keyed by
    salt when given), then the vocabulary. output_mode "int" gives int64 indices (invert=True:
    indices back to tokens); "one_hot", "multi_hot", "count" and "tf_idf" give float32 encodings
    over the vocabulary (max_tokens wide with pad_to_max_tokens). sparse=True and oov_token=None
    with OOV indices are not supported."""

    def adapt(self, data, batch_size=None, steps=None):
        """Learns the vocabulary (and, for "tf_idf", the IDF weights) from data, as Keras: an array
        or a (nested) list of ints is one batch whose rows are the samples (a 1-D array is a
        column: one token per sample), and steps does not apply to it; a Dataset or an iterable
        gives batches (a 1-D batch is one sample)."""
        _no_text(data, "IntegerLookup.adapt")
        if isinstance(data, (list, tuple)):  # Keras reads a list as an array
            data = constant(data)
        if batch_size is None and (isinstance(data, Tensor) or (_np is not None and isinstance(data, _np.ndarray))):
            steps = None  # Keras's array branch reads the whole array
        return _Adapt.adapt(self, data, batch_size=batch_size, steps=steps)

    def get_vocabulary(self, include_special_tokens=True):
        """The tokens by index as a list of ints: with include_special_tokens the mask and OOV tokens
        first, so a token's position is its index."""
        t = Tensor._adopt(_new_handle(L.kiln_layer_get_vocabulary, self._handle(), bool(include_special_tokens)))
        return [int(v) for v in t.tolist()]

    def vocabulary_size(self):
        """The vocabulary's size with the mask and OOV indices."""
        config = self.get_config()
        if config["vocabulary_size"] is not None:
            return config["vocabulary_size"]
        # no vocabulary yet (any sets the size): the mask ("int" mode) and OOV indices
        mask = 1 if config["mask_token"] is not None and config["output_mode"] == "int" else 0
        return mask + config["num_oov_indices"]

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Replaces the vocabulary (a list, array or tensor of ints, or a text file of one per line;
        the mask and OOV tokens left out, or first in Keras's order) and, for output_mode "tf_idf",
        the IDF weights."""
        import os
        from .data import _to_tensor
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = _read_vocabulary_file(os.fspath(vocabulary), "IntegerLookup.set_vocabulary")
        _no_text(vocabulary, "IntegerLookup.set_vocabulary")
        if isinstance(vocabulary, (list, tuple)):  # ints (a fraction is an error, not truncated)
            vocabulary = constant(list(vocabulary), dtype="int64")
        idf = None
        if idf_weights is not None:
            idf = _to_tensor(constant([float(w) for w in idf_weights], dtype="float32")
                             if isinstance(idf_weights, (list, tuple)) else idf_weights)
        _c(L.kiln_layer_set_vocabulary, self._handle(), _to_tensor(vocabulary), idf)


def _salt(salt):
    """Keras's salt: None, one int, or two; the C++ reader checks the values."""
    return list(salt) if isinstance(salt, tuple) else salt


def _mask_value(value):
    """Hashing's mask_value: a number or a bool, an int within int64 (the C++ layer converts it to
    the inputs' dtype, as TF does, and checks it there)."""
    if isinstance(value, _numbers.Integral) and not isinstance(value, bool) and not -2**63 <= int(value) < 2**63:
        raise InvalidArgumentError("Hashing: mask_value %d is outside int64; expected an int64" % value)
    return value.item() if hasattr(value, "item") else value


_Hashing = _builtin(
    "Hashing", "keras.layers.Hashing(num_bins, mask_value=None, salt=None, output_mode='int', sparse=False)",
    lambda num_bins, mask_value=None, salt=None, output_mode="int", sparse=False: {
        "num_bins": num_bins, "salt": _salt(salt), "mask_value": _mask_value(mask_value), "output_mode": output_mode,
        "sparse": sparse})


class Hashing(_TokenInputs, _Hashing):
    """keras.layers.Hashing(num_bins, mask_value=None, salt=None, output_mode="int", sparse=False):
    each value's bin, TF's to_hash_bucket of its text (integers as their decimal digits, floats
    truncated to integers first, bools "true" / "false"): FarmHash's Fingerprint64 modulo num_bins,
    or with salt (one int, or two) HighwayHash's SipHash keyed by it, as Keras. With mask_value
    (and num_bins > 1) the mask is bin 0 and other values hash into 1 .. num_bins - 1. output_mode
    "int" gives int64 bins; "one_hot", "multi_hot" and "count" float32 encodings over num_bins.
    kiln has no string tensors: values are numbers."""



_HashedCrossing = _builtin(
    "HashedCrossing", "keras.layers.HashedCrossing(num_bins, output_mode='int', sparse=False)",
    lambda num_bins, output_mode="int", sparse=False: {"num_bins": num_bins, "output_mode": output_mode,
                                                        "sparse": sparse})


class HashedCrossing(_HashedCrossing):
    """keras.layers.HashedCrossing(num_bins, output_mode="int", sparse=False): the cross of two or
    more integer features of shape (), (batch,) or (batch, 1), hashed as TF's sparse.cross_hashed
    (FingerprintCat64 over the features' values) into num_bins bins. Called on a list or tuple of
    features (arrays, tensors or lists of ints). output_mode "int" gives int64 bins, "one_hot"
    float32 rows; kiln has no string tensors, so features are integers."""

    def __call__(self, inputs, *, training=None, **kwargs):
        if not isinstance(inputs, (list, tuple)):
            raise InvalidArgumentError("HashedCrossing should be called on a list or tuple of features; got %s"
                                       % type(inputs).__name__)
        features = []
        for x in inputs:
            _no_text(x, "HashedCrossing")
            features.append(constant(x) if isinstance(x, (list, tuple, int)) else x)
        return super().__call__(features, training=training, **kwargs)

def _seed(seed):
    """A layer's seed as given: the C++ config reader refuses what is not an int >= 0 (or None)."""
    return seed


def _factor(factor, cls, name="factor"):
    """A colour layer's factor: a number or two numbers (lower, upper)."""
    if isinstance(factor, (list, tuple)):
        return [float(f) for f in factor]
    if isinstance(factor, bool) or not isinstance(factor, _numbers.Real):
        raise InvalidArgumentError("%s: %s must be a number or two numbers (lower, upper); got %r"
                                   % (cls, name, factor))
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
    data_format=None: dict({"height_factor": _factor(height_factor, "RandomTranslation", "height_factor"),
                            "width_factor": _factor(width_factor, "RandomTranslation", "width_factor")},
                           **_transform(fill_mode, interpolation, seed, fill_value, data_format)))
RandomZoom = _builtin(
    "RandomZoom", "keras.layers.RandomZoom(height_factor, width_factor=None, fill_mode='reflect', "
    "interpolation='bilinear', seed=None, fill_value=0.0, data_format=None): in training each image zoomed about "
    "its centre by 1 + a value drawn in each factor's [lower, upper] (above 1 zooms out; width_factor None: the "
    "vertical zoom both ways); float32 out.",
    lambda height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
    data_format=None: dict({"height_factor": _factor(height_factor, "RandomZoom", "height_factor"),
                            "width_factor": (None if width_factor is None
                                             else _factor(width_factor, "RandomZoom", "width_factor"))},
                           **_transform(fill_mode, interpolation, seed, fill_value, data_format)))

RandomShear = _builtin(
    "RandomShear", "keras.layers.RandomShear(x_factor=0.0, y_factor=0.0, interpolation='bilinear', "
    "fill_mode='reflect', fill_value=0.0, data_format=None, seed=None): in training each image sheared about its "
    "top-left corner, output pixel (x, y) read from (x + sx * y, sy * x + y), sx and sy drawn in each factor's "
    "[lower, upper] (f in [0, 1]: [-f, f]) and both negated for half the images; float32 out.",
    lambda x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
    data_format=None, seed=None: dict({"x_factor": _factor(x_factor, "RandomShear", "x_factor"),
                                       "y_factor": _factor(y_factor, "RandomShear", "y_factor")},
                                      **_transform(fill_mode, interpolation, seed, fill_value, data_format)))


def _perspective_config(factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0, seed=None, data_format=None):
    config = dict({"factor": _factor(factor, "RandomPerspective"), "scale": _number(scale, "RandomPerspective",
                                                                                     "scale")},
                  **_transform("constant", interpolation, seed, fill_value, data_format))
    del config["fill_mode"]
    return config


RandomPerspective = _builtin(
    "RandomPerspective", "keras.layers.RandomPerspective(factor=1.0, scale=1.0, interpolation='bilinear', "
    "fill_value=0.0, seed=None, data_format=None): in training, per image with a probability drawn in factor's "
    "range (f: [0, f]), the four corners each moved by a fraction of their coordinates drawn in [-scale / 2, "
    "scale / 2] and the image resampled through the perspective transform between the old and new corners, "
    "points outside reading fill_value; float32 out.", _perspective_config)


def _value_range(value_range, cls):
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise InvalidArgumentError("%s: value_range must be two numbers (low, high); got %r" % (cls, value_range))
    return [_number(v, cls, "value_range") for v in value_range]


def _number(v, cls, what):
    if isinstance(v, bool) or not isinstance(v, _numbers.Real):
        raise InvalidArgumentError("%s: %s must hold numbers; got %r" % (cls, what, v))
    return float(v)


def _whole(v, cls, what):
    if isinstance(v, bool) or not isinstance(v, _numbers.Real) or not _math.isfinite(v) or v != int(v):
        raise InvalidArgumentError("%s: %s must be a whole number; got %r" % (cls, what, v))
    return int(v)


def _colour(cls, signature, doc, make_config):
    return _builtin(cls, "keras.layers.%s(%s): %s" % (cls, signature, doc), make_config)


AutoContrast = _colour(
    "AutoContrast", "value_range=(0, 255), data_format=None", "in training and inference each channel of each "
    "image stretched linearly so that its minimum becomes value_range's low and its maximum the high; a channel "
    "whose result is NaN (constant, or holding NaN) keeps its values; float32 out.",
    lambda value_range=(0, 255), data_format=None: {
        "value_range": _value_range(value_range, "AutoContrast"), "data_format": data_format})
Equalization = _colour(
    "Equalization", "value_range=(0, 255), bins=256, data_format=None", "in training the histogram of each "
    "channel, over the whole batch as Keras's code does, equalized with `bins` bins over value_range (a channel "
    "with one bin in use is kept; NaN stays NaN); float32 out.",
    lambda value_range=(0, 255), bins=256, data_format=None: {
        "value_range": _value_range(value_range, "Equalization"), "bins": _whole(bins, "Equalization", "bins"),
        "data_format": data_format})
Solarization = _colour(
    "Solarization", "addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None, data_format=None",
    "in training each image, seen in [0, 255], gets an addition drawn in addition_factor * 255 added (clipped to "
    "[0, 255]), and values at or above a threshold drawn in threshold_factor * 255 become 255 - value (factors: "
    "f in [0, 1] is [0, f], or (lower, upper)); float32 out.",
    lambda addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255), seed=None, data_format=None: {
        "addition_factor": _factor(addition_factor, "Solarization", "addition_factor"),
        "threshold_factor": _factor(threshold_factor, "Solarization", "threshold_factor"),
        "value_range": _value_range(value_range, "Solarization"), "seed": _seed(seed), "data_format": data_format})
RandomInvert = _colour(
    "RandomInvert", "factor=1.0, value_range=(0, 255), seed=None, data_format=None", "in training each image is "
    "inverted (value_range's high - x) with a probability drawn in factor's [lower, upper] (f: [0, f]); float32 "
    "out.",
    lambda factor=1.0, value_range=(0, 255), seed=None, data_format=None: {
        "factor": _factor(factor, "RandomInvert"), "value_range": _value_range(value_range, "RandomInvert"),
        "seed": _seed(seed), "data_format": data_format})
RandomGrayscale = _colour(
    "RandomGrayscale", "factor=0.5, data_format=None, seed=None", "in training each image, with probability "
    "factor, becomes its grayscale 0.2989 r + 0.5870 g + 0.1140 b in every channel (3 channels or 1); float32 "
    "out.",
    lambda factor=0.5, data_format=None, seed=None: {
        "factor": _number(factor, "RandomGrayscale", "factor"), "data_format": data_format, "seed": _seed(seed)})


def _bits(factor):
    if isinstance(factor, (list, tuple)):
        return [_bits(f) for f in factor]
    if (isinstance(factor, bool) or not isinstance(factor, _numbers.Real) or not _math.isfinite(factor)
            or factor != int(factor)):
        raise InvalidArgumentError("RandomPosterization: factor must be a whole number of bits in [1, 8] or two; "
                                   "got %r" % (factor,))
    return int(factor)


def _factor_colour(cls, doc, factor_of=None):
    """Keras 3's colour layers of (factor, value_range=(0, 255), data_format=None, seed=None)."""
    return _colour(cls, "factor, value_range=(0, 255), data_format=None, seed=None", doc,
                   lambda factor, value_range=(0, 255), data_format=None, seed=None: {
                       "factor": factor_of(factor) if factor_of else _factor(factor, cls),
                       "value_range": _value_range(value_range, cls), "data_format": data_format,
                       "seed": _seed(seed)})


RandomPosterization = _factor_colour(
    "RandomPosterization", "in training each image, seen in [0, 255] and truncated to whole numbers, keeps its top "
    "b bits per value; factor is a whole number of bits in [1, 8] (f: [1, f]) or two (lower, upper), b is lower "
    "when they are equal, else drawn among lower .. upper - 1 as Keras draws it; float32 out.", _bits)
RandomColorDegeneration = _factor_colour(
    "RandomColorDegeneration", "in training each image moves towards its grayscale by f drawn in factor's "
    "[lower, upper] (f in [0, 1]: [0, f]; two numbers within [-1, 1], as Keras writes them): x + f * (gray - x), "
    "clipped to value_range; float32 out.")
RandomSharpness = _factor_colour(
    "RandomSharpness", "in training each image becomes x + (1 - 2 f) * (smoothed - x), f drawn in factor's "
    "[lower, upper] (f in [0, 1]: [0, f]), smoothed by the 3x3 filter [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 "
    "with zero padding, clipped to value_range: 0.5 keeps the image, above sharpens, below blurs; float32 out.")

RandomSaturation = _factor_colour(
    "RandomSaturation", "in training each image, seen in [0, 1], has its saturation scaled by f / (1 - f + 1e-7), "
    "f drawn in factor's [lower, upper] (f in [0, 1]: [0, f]; two numbers within [-1, 1], as Keras writes them): "
    "0.5 keeps the image, 0 makes it gray, 1 saturates it fully; the saturation is clipped to [0, 1]; 3 channels; "
    "float32 out.")
RandomHue = _factor_colour(
    "RandomHue", "in training each image, seen in [0, 1], has its hue moved by f * 0.5 in either direction (f "
    "drawn in factor's [lower, upper], f in [0, 1]: [0, f]), wrapped into [0, 1], the result clipped to "
    "value_range; 3 channels; float32 out.")


def _optional_factor(factor, name):
    return None if factor is None else _factor(factor, "RandomColorJitter", name)


RandomColorJitter = _colour(
    "RandomColorJitter", "value_range=(0, 255), brightness_factor=None, contrast_factor=None, saturation_factor=None, "
    "hue_factor=None, seed=None, data_format=None", "in training, in this order, RandomBrightness, RandomContrast, "
    "RandomSaturation and RandomHue with the factors given (None: that step is skipped), each image drawing its "
    "own values; float32 out.",
    lambda value_range=(0, 255), brightness_factor=None, contrast_factor=None, saturation_factor=None,
    hue_factor=None, seed=None, data_format=None: {
        "value_range": _value_range(value_range, "RandomColorJitter"),
        "brightness_factor": _optional_factor(brightness_factor, "brightness_factor"),
        "contrast_factor": _optional_factor(contrast_factor, "contrast_factor"),
        "saturation_factor": _optional_factor(saturation_factor, "saturation_factor"),
        "hue_factor": _optional_factor(hue_factor, "hue_factor"), "seed": _seed(seed),
        "data_format": data_format})

def _fill_value(fill_value):
    if fill_value is None:
        return None
    if isinstance(fill_value, (list, tuple)):
        return [_number(v, "RandomErasing", "fill_value") for v in fill_value]
    return _number(fill_value, "RandomErasing", "fill_value")


RandomErasing = _colour(
    "RandomErasing", "factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255), seed=None, "
    "data_format=None", "in training each image, with a probability drawn in factor's range (f: [0, f]), has a "
    "box of width sqrt(s) * W and height sqrt(s') * H (s, s' drawn in scale's range) at a random place replaced "
    "by normal noise times value_range's high (fill_value None) or fill_value (a number or three, one per "
    "channel), clipped to value_range; float32 out.",
    lambda factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255), seed=None, data_format=None: {
        "factor": _factor(factor, "RandomErasing"), "scale": _factor(scale, "RandomErasing", "scale"),
        "fill_value": _fill_value(fill_value), "value_range": _value_range(value_range, "RandomErasing"),
        "seed": _seed(seed), "data_format": data_format})
RandomGaussianBlur = _colour(
    "RandomGaussianBlur", "factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255), data_format=None, seed=None",
    "in training each image is blurred, with a probability drawn in factor's range (f: [0, f]), by Keras's "
    "Gaussian filter of kernel_size (odd: k or (a, b)) with 'same' zero padding, its two sigmas drawn once per "
    "call in sigma's range (f in [0, 1]: [0, f]); then every image is clipped to value_range; float32 out.",
    lambda factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255), data_format=None, seed=None: {
        "factor": _factor(factor, "RandomGaussianBlur"),
        "kernel_size": _tuple(kernel_size, 2, "RandomGaussianBlur: kernel_size"),
        "sigma": _factor(sigma, "RandomGaussianBlur", "sigma"),
        "value_range": _value_range(value_range, "RandomGaussianBlur"), "data_format": data_format,
        "seed": _seed(seed)})

RandAugment = _builtin(
    "RandAugment", "keras.layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, interpolation='bilinear', "
    "seed=None, data_format=None): in training, num_ops times, one of Keras's eleven augmentation layers "
    "(RandomShear, RandomTranslation, RandomRotation, RandomBrightness, RandomColorDegeneration, RandomContrast, "
    "RandomSharpness, RandomPosterization, Solarization, AutoContrast, Equalization), drawn for the whole batch, "
    "is applied with factor's range (f: [0, f]) and value_range; float32 out.",
    lambda value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear", seed=None, data_format=None: {
        "value_range": _value_range(value_range, "RandAugment"), "num_ops": _whole(num_ops, "RandAugment", "num_ops"),
        "factor": _factor(factor, "RandAugment"), "interpolation": str(interpolation), "seed": _seed(seed),
        "data_format": data_format})

class _ImageMix(_Builtin):
    """Keras's MixUp and CutMix calls: images, or a dict {"images": ..., "labels": ...} (labels [N, ...] floats,
    mixed alike) giving back the dict with those two replaced, or a list [images, labels]."""

    def __call__(self, inputs, *args, **kwargs):
        if not isinstance(inputs, dict):
            return super().__call__(inputs, *args, **kwargs)
        if "images" not in inputs:
            raise InvalidArgumentError("%s: a dict of data must hold 'images' (and may hold 'labels'); got keys %s"
                                       % (self._class_name, sorted(inputs)))
        if "bounding_boxes" in inputs or "segmentation_masks" in inputs:
            raise InvalidArgumentError("%s: kiln mixes images and labels only, not bounding_boxes or "
                                       "segmentation_masks" % self._class_name)
        keys = ["images"] + (["labels"] if "labels" in inputs else [])
        out = super().__call__([inputs[k] for k in keys], *args, **kwargs)
        result = dict(inputs)
        result.update(zip(keys, out if isinstance(out, (list, tuple)) else [out]))
        return result


MixUp = _builtin(
    "MixUp", "keras.layers.MixUp(alpha=0.2, data_format=None, seed=None): in training each image becomes "
    "w * x + (1 - w) * x[perm], w drawn from Beta(alpha, alpha) per image and perm a random permutation of the "
    "batch; called on {'images': x, 'labels': y} (or [x, y]) the labels are mixed alike; float32 images out (outside "
    "training integer images come back as they are, as Keras's).",
    lambda alpha=0.2, data_format=None, seed=None: {
        "alpha": _number(alpha, "MixUp", "alpha"), "data_format": data_format, "seed": _seed(seed)}, _ImageMix)
CutMix = _builtin(
    "CutMix", "keras.layers.CutMix(factor=1.0, seed=None, data_format=None): in training a box of each image "
    "(sqrt(1 - w) of each side at a random place, w from Beta(alpha, alpha), alpha drawn in factor's range "
    "once per call) is replaced by that box of another image of the batch; called on {'images': x, "
    "'labels': y} (or [x, y]) the labels are mixed by the box's share; float32 images out.",
    lambda factor=1.0, seed=None, data_format=None: {
        "factor": _factor(factor, "CutMix"), "seed": _seed(seed), "data_format": data_format}, _ImageMix)

_AUGMENTATION = (RandomFlip, RandomCrop, RandomContrast, RandomBrightness, RandomRotation, RandomTranslation,
                 RandomZoom, RandomShear, AutoContrast, Solarization, RandomInvert, RandomGrayscale,
                 RandomPosterization, RandomColorDegeneration, RandomSharpness, RandomSaturation, RandomHue,
                 RandomColorJitter, RandomErasing, RandomGaussianBlur, RandomPerspective, Equalization, RandAugment, MixUp, CutMix)
_BUILTINS.update({c._class_name: c for c in _AUGMENTATION})
_BUILTINS["CategoryEncoding"] = CategoryEncoding
_BUILTINS["Discretization"] = Discretization
_BUILTINS["IntegerLookup"] = IntegerLookup
_BUILTINS["Hashing"] = Hashing
_BUILTINS["HashedCrossing"] = HashedCrossing

__all__ = ["Normalization", "Discretization", "CategoryEncoding", "IntegerLookup", "Hashing", "HashedCrossing"] + [c._class_name for c in _AUGMENTATION]
