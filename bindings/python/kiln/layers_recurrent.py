"""Built-in recurrent layers (kiln.layers.SimpleRNN, GRU, LSTM) and the wrappers Bidirectional and
TimeDistributed, as Keras 3's."""
import numbers as _numbers

from .errors import InvalidArgumentError
from .layers import _BUILTINS, _Builtin, _base_config, _serializable, Layer


def _rate(x):
    return float(x)


def _recurrent_config(kind, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                      kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                      bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                      recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                      kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                      recurrent_dropout=0.0, reset_after=True, seed=None, return_sequences=False, return_state=False,
                      go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False, use_cudnn="auto",
                      implementation=2):
    if isinstance(units, bool) or not isinstance(units, _numbers.Integral):
        raise InvalidArgumentError("%s: units must be an int; got %r" % (kind, units))
    c = {"return_sequences": bool(return_sequences), "return_state": bool(return_state),
         "go_backwards": bool(go_backwards), "stateful": bool(stateful), "unroll": bool(unroll),
         "zero_output_for_mask": bool(zero_output_for_mask), "units": int(units),
         "activation": _serializable(activation) or "linear"}
    if kind != "SimpleRNN":
        c["recurrent_activation"] = _serializable(recurrent_activation) or "linear"
    c.update({"use_bias": bool(use_bias), "kernel_initializer": _serializable(kernel_initializer),
              "recurrent_initializer": _serializable(recurrent_initializer),
              "bias_initializer": _serializable(bias_initializer)})
    if kind == "LSTM":
        c["unit_forget_bias"] = bool(unit_forget_bias)
    c.update({"kernel_regularizer": _serializable(kernel_regularizer),
              "recurrent_regularizer": _serializable(recurrent_regularizer),
              "bias_regularizer": _serializable(bias_regularizer),
              "activity_regularizer": _serializable(activity_regularizer), "kernel_constraint": kernel_constraint,
              "recurrent_constraint": recurrent_constraint, "bias_constraint": bias_constraint,
              "dropout": _rate(dropout), "recurrent_dropout": _rate(recurrent_dropout)})
    if kind == "GRU":
        c["reset_after"] = bool(reset_after)
    c["seed"] = int(seed) if seed is not None else None
    if use_cudnn != "auto":
        c["use_cudnn"] = use_cudnn
    if implementation != 2:
        c["implementation"] = int(implementation)
    return c


class _Recurrent(_Builtin):
    def __call__(self, sequences, initial_state=None, mask=None, training=None):
        """Keras's RNN call: layer(sequences, initial_state=None, mask=None, training=None). The C layer
        takes the initial states as inputs after the sequences; layer([sequences, h, c]) passes such a
        list as it is. mask defaults to the sequences' _keras_mask."""
        if initial_state is None:
            return Layer.__call__(self, sequences, training=training, mask=mask)
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if mask is None:
            mask = getattr(sequences, "_keras_mask", None)
        return Layer.__call__(self, [sequences] + states, training=training, mask=[mask] + [None] * len(states))


def _recurrent_class(kind, doc, params):
    def __init__(self, units, *args, name=None, trainable=True, dtype=None, **kwargs):
        unknown = sorted(set(kwargs) - params)
        if unknown:
            raise TypeError("%s: unexpected keyword arguments %s" % (kind, unknown))
        if args:
            raise TypeError("%s: give the arguments after units by keyword" % kind)
        config = _base_config(name, trainable, dtype)
        config.update(_recurrent_config(kind, units, **kwargs))
        self._create(config)
    return type(kind, (_Recurrent,), {"__init__": __init__, "__doc__": doc, "_class_name": kind})


_COMMON = {"activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
           "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
           "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed",
           "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask"}

SimpleRNN = _recurrent_class(
    "SimpleRNN", "keras.layers.SimpleRNN(units, activation='tanh', use_bias=True, ..., dropout=0.0, "
    "recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False): "
    "h = activation(x @ kernel + bias + h @ recurrent_kernel) at each step.", _COMMON)
GRU = _recurrent_class(
    "GRU", "keras.layers.GRU(units, activation='tanh', recurrent_activation='sigmoid', ..., reset_after=True, "
    "return_sequences=False, return_state=False, go_backwards=False): Keras 3's GRU (gates z, r, h).",
    _COMMON | {"recurrent_activation", "reset_after", "use_cudnn", "implementation"})
LSTM = _recurrent_class(
    "LSTM", "keras.layers.LSTM(units, activation='tanh', recurrent_activation='sigmoid', ..., "
    "unit_forget_bias=True, return_sequences=False, return_state=False, go_backwards=False): Keras 3's LSTM "
    "(gates i, f, c, o; states h and c).",
    _COMMON | {"recurrent_activation", "unit_forget_bias", "use_cudnn", "implementation"})



def _sublayer(layer, index):
    from .layers import L, _new_handle, _wrap  # noqa: PLC0415
    return _wrap(_new_handle(L.kiln_layer_get_layer, layer._handle(), index))


def _serialized(layer, owner, what):
    from .layers import serialize  # noqa: PLC0415
    if not isinstance(layer, Layer):
        raise InvalidArgumentError("%s: %s must be a keras layer; got %s (%r)" % (owner, what, type(layer).__name__,
                                                                                   layer))
    return serialize(layer)


class Bidirectional(_Recurrent):
    """keras.layers.Bidirectional(layer, merge_mode="concat", weights=None, backward_layer=None): a copy of
    the recurrent layer run forwards and one run backwards (go_backwards=True, or backward_layer), their
    outputs merged ("concat", "sum", "ave", "mul", or None for both). Called as an RNN:
    layer(sequences, initial_state=None, mask=None, training=None), the forward states first."""

    _class_name = "Bidirectional"

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, name=None, trainable=True,
                 dtype=None, **kwargs):
        if kwargs:
            raise TypeError("Bidirectional: unexpected keyword arguments %s" % sorted(kwargs))
        if weights is not None:
            raise InvalidArgumentError("Bidirectional: weights= is not supported; set them after the build "
                                       "(layer.set_weights)")
        config = _base_config(name, trainable, dtype)
        config.update({"merge_mode": merge_mode, "layer": _serialized(layer, "Bidirectional", "layer")})
        if backward_layer is not None:
            config["backward_layer"] = _serialized(backward_layer, "Bidirectional", "backward_layer")
        self._create(config)

    @property
    def forward_layer(self):
        """Keras's forward_layer: the forward copy of the wrapped layer (its sub-layer 0)."""
        return _sublayer(self, 0)

    @property
    def backward_layer(self):
        return _sublayer(self, 1)

    @property
    def merge_mode(self):
        return self.get_config()["merge_mode"]


class TimeDistributed(_Builtin):
    """keras.layers.TimeDistributed(layer): the layer applied to every step of [batch, time, ...]."""

    _class_name = "TimeDistributed"

    def __init__(self, layer, name=None, trainable=True, dtype=None, **kwargs):
        if kwargs:
            raise TypeError("TimeDistributed: unexpected keyword arguments %s" % sorted(kwargs))
        config = _base_config(name, trainable, dtype)
        config["layer"] = _serialized(layer, "TimeDistributed", "layer")
        self._create(config)

    @property
    def layer(self):
        """Keras's layer: the wrapped layer (a copy made from its config)."""
        return _sublayer(self, 0)


for _c in (SimpleRNN, GRU, LSTM, Bidirectional, TimeDistributed):
    _BUILTINS[_c._class_name] = _c

__all__ = ["SimpleRNN", "GRU", "LSTM", "Bidirectional", "TimeDistributed"]
