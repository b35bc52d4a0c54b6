"""Keras losses over the C ABI (kiln/losses.h): kiln.losses / kiln.keras.losses.

    loss_fn = kiln.losses.SparseCategoricalCrossentropy(from_logits=True)
    loss = loss_fn(y_true, logits)                  # a scalar Tensor, differentiable on a tape
    kiln.losses.mse(y_true, y_pred)                 # per-sample values, as keras.losses.mse

Classes take Keras 3's arguments and defaults (reduction "sum_over_batch_size", "sum", "mean",
"mean_with_sample_weight", or "none" / None for no reduction).
get / serialize / deserialize follow keras.losses.get / serialize / deserialize.
"""
from . import _lib
from ._handles import Owned, as_tensor, new_handle
from .errors import InvalidArgumentError
from .tensor import Tensor

L = _lib.lib


class Loss(Owned):
    """A built-in loss: the base of the classes below (a C loss made from the class name and config)."""

    _KIND = "loss"
    _INSTEAD = ("use a built-in loss (kiln.losses.MeanSquaredError, ...), or compute your loss in Python in a "
                "Model subclass's train_step override (a GradientTape, your loss, optimizer.apply_gradients)")

    def __init__(self, *args, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        if reduction is None:  # Keras: None and "none" both leave the per-sample losses
            reduction = "none"
        self._init_builtin(args, kwargs, {"reduction": reduction, "name": name, "dtype": dtype},
                           ("reduction", "name", "dtype"))

    @property
    def reduction(self):
        return self.get_config()["reduction"]

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = as_tensor(y_pred)
        y_true = as_tensor(y_true)
        sw = as_tensor(sample_weight)
        return Tensor._adopt(new_handle(L.kiln_loss_call, self._h, y_true, y_pred, sw))


def _loss_class(class_name, args, doc):
    return type(class_name, (Loss,), {"_CLASS": class_name, "_ARGS": tuple(args), "__doc__": doc})


SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy",
                                            [("from_logits", False), ("ignore_class", None)],
                                            "keras.losses.SparseCategoricalCrossentropy: integer labels.")
CategoricalCrossentropy = _loss_class("CategoricalCrossentropy",
                                      [("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)],
                                      "keras.losses.CategoricalCrossentropy: one-hot labels.")
BinaryCrossentropy = _loss_class("BinaryCrossentropy", [("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)],
                                 "keras.losses.BinaryCrossentropy.")
MeanSquaredError = _loss_class("MeanSquaredError", [], "keras.losses.MeanSquaredError.")
MeanAbsoluteError = _loss_class("MeanAbsoluteError", [], "keras.losses.MeanAbsoluteError.")
Huber = _loss_class("Huber", [("delta", 1.0)], "keras.losses.Huber.")
KLDivergence = _loss_class("KLDivergence", [], "keras.losses.KLDivergence.")
CosineSimilarity = _loss_class("CosineSimilarity", [("axis", -1)], "keras.losses.CosineSimilarity.")
MeanAbsolutePercentageError = _loss_class("MeanAbsolutePercentageError", [],
                                          "keras.losses.MeanAbsolutePercentageError.")
MeanSquaredLogarithmicError = _loss_class("MeanSquaredLogarithmicError", [],
                                          "keras.losses.MeanSquaredLogarithmicError.")
LogCosh = _loss_class("LogCosh", [], "keras.losses.LogCosh.")
Poisson = _loss_class("Poisson", [], "keras.losses.Poisson.")
Hinge = _loss_class("Hinge", [], "keras.losses.Hinge: labels -1 or 1 (all-0/1 labels become -1/1).")
SquaredHinge = _loss_class("SquaredHinge", [], "keras.losses.SquaredHinge.")
CategoricalHinge = _loss_class("CategoricalHinge", [], "keras.losses.CategoricalHinge.")
BinaryFocalCrossentropy = _loss_class("BinaryFocalCrossentropy", [
    ("apply_class_balancing", False), ("alpha", 0.25), ("gamma", 2.0), ("from_logits", False),
    ("label_smoothing", 0.0), ("axis", -1)], "keras.losses.BinaryFocalCrossentropy.")

_CLASSES = {c._CLASS: c for c in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                                  MeanSquaredError, MeanAbsoluteError, Huber, KLDivergence, CosineSimilarity,
                                  MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCosh, Poisson, Hinge,
                                  SquaredHinge, CategoricalHinge, BinaryFocalCrossentropy)}
Loss._BY_CLASS = _CLASSES


def _function(cls, fname):
    """Keras's loss function: the per-sample losses (no reduction)."""
    def fn(y_true, y_pred, **kwargs):
        if kwargs.get("axis", -1) != -1 and cls is SparseCategoricalCrossentropy:
            raise InvalidArgumentError("%s: only axis=-1 is supported" % fname)
        if cls is SparseCategoricalCrossentropy:
            kwargs.pop("axis", None)
        return cls(reduction="none", **kwargs)(y_true, y_pred)
    fn.__name__ = fn.__qualname__ = fname
    fn.__doc__ = "keras.losses.%s: per-sample losses (%s with reduction 'none')." % (fname, cls.__name__)
    return fn


sparse_categorical_crossentropy = _function(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy")
categorical_crossentropy = _function(CategoricalCrossentropy, "categorical_crossentropy")
binary_crossentropy = _function(BinaryCrossentropy, "binary_crossentropy")
mean_squared_error = mse = MSE = _function(MeanSquaredError, "mean_squared_error")
mean_absolute_error = mae = MAE = _function(MeanAbsoluteError, "mean_absolute_error")
huber = _function(Huber, "huber")
kl_divergence = kld = KLD = kullback_leibler_divergence = _function(KLDivergence, "kl_divergence")
cosine_similarity = _function(CosineSimilarity, "cosine_similarity")
mean_absolute_percentage_error = mape = MAPE = _function(MeanAbsolutePercentageError,
                                                        "mean_absolute_percentage_error")
mean_squared_logarithmic_error = msle = MSLE = _function(MeanSquaredLogarithmicError,
                                                        "mean_squared_logarithmic_error")
log_cosh = logcosh = _function(LogCosh, "log_cosh")
poisson = _function(Poisson, "poisson")
hinge = _function(Hinge, "hinge")
squared_hinge = _function(SquaredHinge, "squared_hinge")
categorical_hinge = _function(CategoricalHinge, "categorical_hinge")
binary_focal_crossentropy = _function(BinaryFocalCrossentropy, "binary_focal_crossentropy")

_FUNCTIONS = {"sparse_categorical_crossentropy": sparse_categorical_crossentropy,
              "categorical_crossentropy": categorical_crossentropy, "binary_crossentropy": binary_crossentropy,
              "mean_squared_error": mse, "mse": mse, "MSE": mse, "mean_absolute_error": mae, "mae": mae, "MAE": mae,
              "huber": huber, "kl_divergence": kld, "kld": kld, "KLD": kld, "kullback_leibler_divergence": kld,
              "cosine_similarity": cosine_similarity, "mean_absolute_percentage_error": mape, "mape": mape,
              "MAPE": mape, "mean_squared_logarithmic_error": msle, "msle": msle, "MSLE": msle,
              "log_cosh": log_cosh, "logcosh": log_cosh, "poisson": poisson, "hinge": hinge,
              "squared_hinge": squared_hinge, "categorical_hinge": categorical_hinge,
              "binary_focal_crossentropy": binary_focal_crossentropy}


def serialize(loss):
    """keras.losses.serialize: {"class_name": ..., "config": {...}} for a loss object; a function's name."""
    if isinstance(loss, Loss):
        return loss._serialize()
    if callable(loss) and getattr(loss, "__name__", None) in _FUNCTIONS:
        return loss.__name__
    raise InvalidArgumentError("serialize: %r is not a kiln loss" % (loss,))


def deserialize(config):
    """keras.losses.deserialize: a loss object from its serialized dict, or a function from its name."""
    if isinstance(config, str):
        return get(config)
    return Loss._adopt(Loss._deserialize_handle(config))


def get(identifier):
    """keras.losses.get: None, a loss object or callable (as it is), a class name (a new object), a
    function name or alias (the function), or a serialized dict. Unknown names raise NotFoundError
    listing the known ones."""
    if identifier is None or isinstance(identifier, Loss) or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in _FUNCTIONS:
            return _FUNCTIONS[identifier]
        return Loss._adopt(Loss._create_handle(identifier, {}))
    raise InvalidArgumentError("losses.get: cannot interpret %r as a loss" % (identifier,))


__all__ = ["Loss", "get", "serialize", "deserialize"] + sorted(_CLASSES) + sorted(_FUNCTIONS)
