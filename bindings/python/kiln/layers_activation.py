"""Built-in activation layers with settings (kiln.layers.ReLU, LeakyReLU, ELU, Softmax, PReLU) and
the regularization layers active in training (GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D/2D/3D),
with Keras's signatures and defaults."""
import numbers as _numbers
import warnings as _warnings

from .layers import _BUILTINS, _builtin, _dropout, _serializable


def _relu(max_value=None, negative_slope=0.0, threshold=0.0):
    return {"max_value": None if max_value is None else float(max_value), "negative_slope": float(negative_slope),
            "threshold": float(threshold)}


def _leaky_relu(negative_slope=0.3, alpha=None):
    if alpha is not None:
        _warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=3)
        negative_slope = alpha
    return {"negative_slope": float(negative_slope)}


def _axis(axis):
    return int(axis) if isinstance(axis, _numbers.Integral) else [int(a) for a in axis]


def _prelu(alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None):
    if shared_axes is not None:
        shared_axes = [int(shared_axes)] if isinstance(shared_axes, _numbers.Integral) else [int(a) for a in shared_axes]
    return {"alpha_initializer": _serializable(alpha_initializer), "alpha_regularizer": _serializable(alpha_regularizer),
            "alpha_constraint": alpha_constraint, "shared_axes": shared_axes}


def _seed(seed):
    return None if seed is None else int(seed)


ReLU = _builtin("ReLU", "keras.layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0): max_value above "
                "max_value, x from threshold up, negative_slope * (x - threshold) below.", _relu)
LeakyReLU = _builtin("LeakyReLU", "keras.layers.LeakyReLU(negative_slope=0.3): x, or negative_slope * x below 0 "
                     "(alpha, tf.keras 2's name, is taken with a warning).", _leaky_relu)
ELU = _builtin("ELU", "keras.layers.ELU(alpha=1.0): x, or alpha * (exp(x) - 1) below 0.",
               lambda alpha=1.0: {"alpha": float(alpha)})
Softmax = _builtin("Softmax", "keras.layers.Softmax(axis=-1): softmax over axis (an int or a list of axes); "
                   "called with a mask, masked entries give 0.", lambda axis=-1: {"axis": _axis(axis)})
PReLU = _builtin("PReLU", "keras.layers.PReLU(alpha_initializer='zeros', alpha_regularizer=None, shared_axes=None): "
                 "relu(x) - alpha * relu(-x), alpha a trained weight.", _prelu)

GaussianNoise = _builtin("GaussianNoise", "keras.layers.GaussianNoise(stddev, seed=None): x + N(0, stddev^2) in "
                         "training.", lambda stddev, seed=None: {"stddev": float(stddev), "seed": _seed(seed)})
GaussianDropout = _builtin("GaussianDropout", "keras.layers.GaussianDropout(rate, seed=None): x * N(1, rate / "
                           "(1 - rate)) in training.", lambda rate, seed=None: {"rate": float(rate), "seed": _seed(seed)})
AlphaDropout = _builtin(
    "AlphaDropout", "keras.layers.AlphaDropout(rate, noise_shape=None, seed=None): in training, dropped values take "
    "SELU's saturation value and an affine map keeps the mean and variance (self-normalizing networks).", _dropout)
SpatialDropout1D = _builtin("SpatialDropout1D", "keras.layers.SpatialDropout1D(rate, seed=None): dropout of whole "
                            "channels of [N, steps, C].", lambda rate, seed=None: {"rate": float(rate), "seed": _seed(seed)})


def _spatial_dropout(rate, data_format=None, seed=None):
    return {"rate": float(rate), "data_format": data_format, "seed": _seed(seed)}


SpatialDropout2D = _builtin("SpatialDropout2D", "keras.layers.SpatialDropout2D(rate, data_format=None, seed=None): "
                            "dropout of whole feature maps.", _spatial_dropout)
SpatialDropout3D = _builtin("SpatialDropout3D", "keras.layers.SpatialDropout3D(rate, data_format=None, seed=None): "
                            "dropout of whole feature volumes.", _spatial_dropout)

_CLASSES = (ReLU, LeakyReLU, ELU, Softmax, PReLU, GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D,
            SpatialDropout2D, SpatialDropout3D)
_BUILTINS.update({c._class_name: c for c in _CLASSES})

__all__ = [c._class_name for c in _CLASSES]
