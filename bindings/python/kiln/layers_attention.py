"""Built-in attention, merge and reshaping layers (kiln.layers.MultiHeadAttention, Add, ...)."""
import numbers as _numbers

from .errors import InvalidArgumentError
from .layers import _BUILTINS, _Builtin, _base_config, _builtin, _serializable, Layer
from .tensor import constant


def _mha_config(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                attention_axes=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                bias_constraint=None, seed=None, flash_attention=None, use_gate=False, sliding_window=None):
    def ints(x):
        if x is None or isinstance(x, int):
            return x
        return [int(d) for d in x]
    c = {"num_heads": _count(num_heads, "num_heads"), "key_dim": _count(key_dim, "key_dim"),
         "value_dim": _count(value_dim, "value_dim") if value_dim else None,
         "dropout": float(dropout), "use_bias": bool(use_bias), "output_shape": ints(output_shape),
         "attention_axes": ints(attention_axes), "kernel_initializer": _serializable(kernel_initializer),
         "bias_initializer": _serializable(bias_initializer), "kernel_regularizer": _serializable(kernel_regularizer),
         "bias_regularizer": _serializable(bias_regularizer),
         "activity_regularizer": _serializable(activity_regularizer), "kernel_constraint": kernel_constraint,
         "bias_constraint": bias_constraint, "seed": int(seed) if seed is not None else None}
    c.update(_gate_and_window(use_gate, sliding_window))
    if flash_attention is not None:
        c["flash_attention"] = bool(flash_attention)
    return c


def _count(v, name):
    """A head count or size: an int (a float or a string is an error, not truncated)."""
    if isinstance(v, bool) or not isinstance(v, _numbers.Integral):
        raise InvalidArgumentError("%s must be an int; got %r" % (name, v))
    return int(v)


def _gate_and_window(use_gate, sliding_window):
    """Keras 3's use_gate and sliding_window (None or a positive int) of the attention layers."""
    if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(sliding_window, int)):
        raise InvalidArgumentError("sliding_window must be None or a positive int; got %r" % (sliding_window,))
    return {"use_gate": bool(use_gate), "sliding_window": sliding_window}


def _gqa_config(head_dim, num_query_heads, num_key_value_heads, dropout=0.0, use_bias=True, sliding_window=None,
                flash_attention=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                bias_constraint=None, use_gate=False, seed=None):
    c = {"head_dim": _count(head_dim, "head_dim"), "num_query_heads": _count(num_query_heads, "num_query_heads"),
         "num_key_value_heads": _count(num_key_value_heads, "num_key_value_heads"), "dropout": float(dropout),
         "use_bias": bool(use_bias),
         "kernel_initializer": _serializable(kernel_initializer), "bias_initializer": _serializable(bias_initializer),
         "kernel_regularizer": _serializable(kernel_regularizer), "bias_regularizer": _serializable(bias_regularizer),
         "activity_regularizer": _serializable(activity_regularizer), "kernel_constraint": kernel_constraint,
         "bias_constraint": bias_constraint, "seed": int(seed) if seed is not None else None}
    c.update(_gate_and_window(use_gate, sliding_window))
    if flash_attention is not None:
        c["flash_attention"] = bool(flash_attention)
    return c


class MultiHeadAttention(_Builtin):
    """keras.layers.MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
    output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform", bias_initializer="zeros", ...).

    Called as Keras calls it: layer(query, value, key=None, attention_mask=None, return_attention_scores=False,
    training=None, use_causal_mask=False) returns the output, or (output, scores) with return_attention_scores.
    The C layer takes these as one input list: query, value, key, attention_mask, then the two flags as scalar
    bool tensors (return_attention_scores, use_causal_mask); layer([query, value, ...]) passes such a list as it is."""

    _class_name = "MultiHeadAttention"

    def __init__(self, num_heads, key_dim, *args, name=None, trainable=True, dtype=None, **kwargs):
        config = _base_config(name, trainable, dtype)
        config.update(_mha_config(num_heads, key_dim, *args, **kwargs))
        self._create(config)

    def __call__(self, query, value=None, key=None, query_mask=None, value_mask=None, key_mask=None,
                 attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False):
        if value is None and isinstance(query, (list, tuple)):
            return Layer.__call__(self, list(query), training=training)  # the C layer's input list as it is
        inputs = [query, value]
        if key is not None or attention_mask is not None or key_mask is not None:
            inputs.append(value if key is None else key)  # Keras applies an explicit key_mask without a key
        if attention_mask is not None:
            inputs.append(attention_mask)
        if return_attention_scores or use_causal_mask:
            inputs.append(constant(bool(return_attention_scores), dtype="bool"))
        if use_causal_mask:
            inputs.append(constant(True, dtype="bool"))
        # Keras fills query_mask, value_mask and key_mask from the tensors' _keras_mask; no key
        # given, no key mask.
        masks = [query_mask if query_mask is not None else getattr(query, "_keras_mask", None),
                 value_mask if value_mask is not None else getattr(value, "_keras_mask", None)]
        if len(inputs) > 2:
            masks.append(key_mask if key_mask is not None else getattr(key, "_keras_mask", None))
        masks += [None] * (len(inputs) - len(masks))
        out = Layer.__call__(self, inputs, training=training, mask=masks)
        return tuple(out) if return_attention_scores else out


class GroupedQueryAttention(MultiHeadAttention):
    """keras.layers.GroupedQueryAttention(head_dim, num_query_heads, num_key_value_heads, dropout=0.0,
    use_bias=True, sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform", ...,
    use_gate=False, seed=None): attention whose key and value have num_key_value_heads heads, each shared by
    num_query_heads / num_key_value_heads query heads. Inputs (batch, positions, features); called as
    MultiHeadAttention."""

    _class_name = "GroupedQueryAttention"

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, *args, name=None, trainable=True, dtype=None,
                 **kwargs):
        config = _base_config(name, trainable, dtype)
        config.update(_gqa_config(head_dim, num_query_heads, num_key_value_heads, *args, **kwargs))
        self._create(config)


class _DotAttention(_Builtin):
    def __call__(self, inputs, mask=None, training=None, return_attention_scores=False, use_causal_mask=False):
        """layer([query, value] or [query, value, key], mask=[query_mask, value_mask], training=None,
        return_attention_scores=False, use_causal_mask=False), as Keras; masks default to the inputs'
        _keras_mask."""
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            got = ("a list of %d" % len(inputs)) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError("%s layer must be called on a list of inputs, namely [query, value] or "
                             "[query, value, key]; got %s" % (self._class_name, got))
        inputs = list(inputs)
        if mask is not None:  # else Layer.__call__ takes the inputs' own masks
            if not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3:
                raise ValueError("%s layer mask must be a list, namely [query_mask, value_mask]" % self._class_name)
            mask = list(mask)[:len(inputs)]
        if return_attention_scores or use_causal_mask:
            inputs.append(constant(bool(return_attention_scores), dtype="bool"))
        if use_causal_mask:
            inputs.append(constant(True, dtype="bool"))
        if mask is not None:  # empty slots for the key and the flags
            mask += [None] * (len(inputs) - len(mask))
        out = Layer.__call__(self, inputs, training=training, mask=mask)
        return tuple(out) if return_attention_scores else out


class Attention(_DotAttention):
    """keras.layers.Attention(use_scale=False, score_mode="dot", dropout=0.0, seed=None): Luong-style
    attention, softmax(query . key) . value ("concat": scores sum(tanh(query + key))); use_scale adds a
    trainable scalar "scale". Called as Keras: layer([query, value(, key)], mask=..., ...)."""

    _class_name = "Attention"

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, name=None, trainable=True,
                 dtype=None):
        config = _base_config(name, trainable, dtype)
        config.update({"use_scale": bool(use_scale), "score_mode": score_mode, "dropout": float(dropout),
                       "seed": None if seed is None else int(seed)})
        self._create(config)


class AdditiveAttention(_DotAttention):
    """keras.layers.AdditiveAttention(use_scale=True, dropout=0.0): Bahdanau-style attention, scores
    sum(scale * tanh(query + key)) with a trainable "scale" of the query's dim. Called as Attention."""

    _class_name = "AdditiveAttention"

    def __init__(self, use_scale=True, dropout=0.0, seed=None, name=None, trainable=True, dtype=None,
                 score_mode="dot"):
        config = _base_config(name, trainable, dtype)
        config.update({"use_scale": bool(use_scale), "dropout": float(dropout),
                       "seed": None if seed is None else int(seed), "score_mode": score_mode})
        self._create(config)


_MERGE_DOC = "keras.layers.%s(): called on a list of tensors of one shape (size-1 dims broadcast)."
Add = _builtin("Add", _MERGE_DOC % "Add", lambda: {})
Subtract = _builtin("Subtract", "keras.layers.Subtract(): called on exactly two tensors, the first minus the second.",
                    lambda: {})
Multiply = _builtin("Multiply", _MERGE_DOC % "Multiply", lambda: {})
Average = _builtin("Average", _MERGE_DOC % "Average", lambda: {})
Maximum = _builtin("Maximum", _MERGE_DOC % "Maximum", lambda: {})
Minimum = _builtin("Minimum", _MERGE_DOC % "Minimum", lambda: {})
Concatenate = _builtin("Concatenate", "keras.layers.Concatenate(axis=-1)", lambda axis=-1: {"axis": int(axis)})
Dot = _builtin("Dot", "keras.layers.Dot(axes, normalize=False): the dot product of two inputs' samples along an "
               "axis of each (an int, or one per input); normalize=True gives the cosine proximity.",
               lambda axes, normalize=False: {"axes": int(axes) if isinstance(axes, _numbers.Integral)
                                              else [int(a) for a in axes],
                                              "normalize": bool(normalize)})
Permute = _builtin("Permute", "keras.layers.Permute(dims): the non-batch axes reordered, 1-based.",
                   lambda dims: {"dims": [int(d) for d in dims]})
RepeatVector = _builtin("RepeatVector", "keras.layers.RepeatVector(n): (batch, features) -> (batch, n, features).",
                        lambda n: {"n": int(n)})


def _functional(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(list(inputs))
    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = "keras.layers.%s(inputs, **kwargs): %s(**kwargs)(inputs)." % (merge.__name__, cls.__name__)
    return merge


add, subtract, multiply, average, maximum, minimum, concatenate = (
    _functional(c) for c in (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate))


def dot(inputs, axes=-1, **kwargs):
    """keras.layers.dot(inputs, axes=-1, normalize=False, **kwargs): Dot(axes, ...)(inputs)."""
    return Dot(axes=axes, **kwargs)(list(inputs))

GroupQueryAttention = GroupedQueryAttention  # Keras 3 exports it under both names

_CLASSES = (MultiHeadAttention, GroupedQueryAttention, Attention, AdditiveAttention, Add, Subtract, Multiply, Average, Maximum, Minimum,
            Concatenate, Dot, Permute, RepeatVector)
_BUILTINS.update({c._class_name: c for c in _CLASSES})

__all__ = [c.__name__ for c in _CLASSES] + ["GroupQueryAttention", "add", "subtract", "multiply", "average", "maximum", "minimum",
                                            "concatenate", "dot"]
