"""Keras losses over the C ABI (kiln/losses.h): kiln.losses / kiln.keras.losses.

    loss_fn = kiln.losses.SparseCategoricalCrossentropy(from_logits=True)
    loss = loss_fn(y_true, logits)                  # a scalar Tensor, differentiable on a tape
    kiln.losses.mse(y_true, y_pred)                 # per-sample values, as keras.losses.mse

Classes take Keras 3's arguments and defaults (reduction "sum_over_batch_size", "sum", "mean",
"mean_with_sample_weight", or "none" / None for no reduction).
get / serialize / deserialize follow keras.losses.get / serialize / deserialize.

Losses written in Python, as Keras's: LossFunctionWrapper(fn) (what compile(loss=my_fn) makes of a
function), and a Loss subclass that overrides call(y_true, y_pred); both give per-sample losses,
which kiln weighs and reduces as its own.
"""
import ctypes
import functools
import itertools
import re
import weakref

from . import _lib
from . import config as _config
from ._handles import Owned, as_tensor, bind_arguments, new_handle
from .errors import (CALLBACK_TLS, FailedPreconditionError, InvalidArgumentError, NotFoundError, call_c,
                     guard_callback)
from .tensor import Tensor

L = _lib.lib

# ---------------------------------------------------------------- losses written in Python
#
# C calls _on_loss with y_true and y_pred (squeezed or expanded to the same rank). The C loss holds
# a function until it drops the loss, and a Loss subclass object only weakly (the object holds the
# C loss): compile and MeanMetricWrapper keep the objects they are given.

_PYTHON_LOSSES = {}  # user_data key -> (the callable (y_true, y_pred) -> values, or a weak method; weak?)
_loss_keys = itertools.count(1)


def _borrowed(handle):
    return Tensor._adopt(new_handle(L.kiln_tensor_clone, handle))


@_lib.LOSS_FN
@guard_callback("a loss function", tls=CALLBACK_TLS)
def _on_loss(out, y_true, y_pred, user_data):
    fn, weak = _PYTHON_LOSSES[user_data]
    if weak:
        fn = fn()
        if fn is None:
            raise FailedPreconditionError("the Python loss object behind this loss was destroyed; keep it while "
                                          "kiln uses its loss")
    values = fn(_borrowed(y_true), _borrowed(y_pred))
    if values is None:
        raise TypeError("the loss function %s gave None; expected the per-sample losses (a Tensor)"
                        % getattr(fn, "__name__", type(fn).__name__))
    values = as_tensor(values)
    out[0] = new_handle(L.kiln_tensor_clone, values)


@_lib.USER_DATA_DESTROY
def _on_loss_destroy(user_data):
    _PYTHON_LOSSES.pop(user_data or 0, None)


_CALLBACKS = _lib.LossCallbacks(ctypes.sizeof(_lib.LossCallbacks), _on_loss, _on_loss_destroy)


def _python_loss_handle(class_name, fn_name, fn, weak, config):
    key = next(_loss_keys)
    _PYTHON_LOSSES[key] = (fn, weak)
    out = ctypes.c_void_p()
    try:
        with _config.to_c(config) as c:
            call_c(L.kiln_loss_create_custom, ctypes.byref(out), class_name and class_name.encode(),
                   fn_name.encode(), c, ctypes.byref(_CALLBACKS), ctypes.c_void_p(key))
    except BaseException:
        _PYTHON_LOSSES.pop(key, None)
        raise
    return out.value


def _snake_case(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Loss(Owned):
    """keras.losses.Loss: the base of the built-in classes below (a C loss made from the class name
    and config); a subclass of it that overrides call(y_true, y_pred) is a loss written in Python."""

    _KIND = "loss"
    _INSTEAD = ("use a built-in loss (kiln.losses.MeanSquaredError, ...), or compute your loss in Python in a "
                "Model subclass's train_step override (a GradientTape, your loss, optimizer.apply_gradients)")

    def __init__(self, *args, **kwargs):
        cls = type(self)
        custom = cls.call is not Loss.call  # Keras 3's custom Loss (or a built-in class's subclass): its own call
        # Positional arguments in Keras's order: the class's own (its reduction, name and dtype where
        # Keras puts them), or Loss's (name, reduction, dtype) for a custom class.
        order = ("name", "reduction", "dtype") if custom or cls._CLASS is None else cls._POSITIONAL
        kwargs = bind_arguments(cls.__name__, order, args, kwargs)
        reduction = kwargs.pop("reduction", "sum_over_batch_size")
        name, dtype = kwargs.pop("name", None), kwargs.pop("dtype", None)
        if reduction is None:  # Keras: None and "none" both leave the per-sample losses
            reduction = "none"
        if custom:
            if kwargs:
                raise TypeError("%s: unknown argument(s) for Loss.__init__: %r; it takes name, reduction, dtype"
                                % (cls.__name__, kwargs))
            if dtype not in (None, "float32"):
                raise InvalidArgumentError("%s: dtype %r is not supported; losses compute in y_pred's dtype"
                                           % (cls.__name__, dtype))
            name = name or _snake_case(cls.__name__)
            self._h = _python_loss_handle(_class_name(cls), name, weakref.WeakMethod(self.call), True,
                                          {"name": name, "reduction": reduction})
            return
        self._init_builtin((), kwargs, {"reduction": reduction, "name": name, "dtype": dtype},
                           ("reduction", "name", "dtype"))

    @classmethod
    def from_config(cls, config):
        """Keras's Loss.from_config: cls(**config)."""
        if cls is Loss:
            raise TypeError("kiln.losses.Loss is the base class; from_config needs one of its classes")
        return cls(**config)

    def _no_class_error(self):
        if type(self) is Loss:
            return TypeError("kiln.losses.Loss is the base class; make one of its built-in classes, or subclass it "
                             "with your own call(y_true, y_pred)")
        from .errors import UnimplementedError
        return UnimplementedError("%s: custom Python loss classes (subclasses of kiln.losses.Loss) need their own "
                                  "call(y_true, y_pred), which gives the per-sample losses" % type(self).__name__)

    def call(self, y_true, y_pred):
        """Keras's Loss.call: the per-sample losses. A subclass overrides it; kiln's built-in
        classes compute theirs in C (reduction "none" of the object gives them)."""
        raise NotImplementedError("%s.call: a Loss subclass must override call(y_true, y_pred)" % type(self).__name__)

    @property
    def reduction(self):
        return self.get_config()["reduction"]

    def __call__(self, y_true, y_pred, sample_weight=None):
        for what, value in (("y_true", y_true), ("y_pred", y_pred)):
            if value is None:
                raise InvalidArgumentError("%s: %s is None; expected a tensor" % (self.name, what))
        y_pred = as_tensor(y_pred)
        y_true = as_tensor(y_true)
        sw = as_tensor(sample_weight)
        out = ctypes.c_void_p()
        call_c(L.kiln_loss_call, ctypes.byref(out), self._h, y_true, y_pred, sw)  # a Python call's exception
        return Tensor._adopt(out.value)


class LossFunctionWrapper(Loss):
    """keras.losses.LossFunctionWrapper(fn, reduction, name, **kwargs): a loss of fn(y_true, y_pred,
    **kwargs), the per-sample losses of a function written in Python, weighed and reduced as kiln's
    losses (compile(loss=my_fn) makes one, named after the function). Its config names the function
    ("fn"); a model compiled with one loads with compile=False (no function travels in a config)."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError("LossFunctionWrapper: fn must be callable; got %r" % (fn,))
        if reduction is None:
            reduction = "none"
        if dtype not in (None, "float32"):
            raise InvalidArgumentError("LossFunctionWrapper: dtype %r is not supported; losses compute in y_pred's "
                                       "dtype" % (dtype,))
        from .saving import get_registered_name  # noqa: PLC0415 - saving imports layers, which import this
        fn_name = getattr(fn, "__name__", None) or type(fn).__name__
        self.fn = fn
        call = functools.partial(fn, **kwargs) if kwargs else fn
        # The config's "fn" is the name the function is registered under, which load_model finds;
        # a function of the user's that shares a built-in loss's name is named with its module, so
        # that it never loads as the built-in one.
        saved = get_registered_name(fn) if hasattr(fn, "__name__") else fn_name
        if saved in _FUNCTIONS and _FUNCTIONS[saved] is not fn or saved in _CLASSES:
            saved = "%s>%s" % (getattr(fn, "__module__", None) or "unknown", saved)
        config = {"name": name or fn_name, "reduction": reduction}
        if kwargs:  # saved as Keras saves them (numbers, strings, bools, lists, None)
            config["fn_kwargs"] = kwargs
        self._h = _python_loss_handle(None, saved, call, False, config)


def _class_name(cls):
    """The C class name of a Loss subclass: its registered name ("MyPackage>MyLoss") or its name."""
    return cls.__dict__.get("_kiln_registered_name") or cls.__name__


# ---------------------------------------------------------------- custom losses by name
#
# custom_objects / register_keras_serializable register functions and Loss subclasses with C
# (kiln_loss_register_class), so a name finds them wherever C makes a loss: compile's names, a
# MeanMetricWrapper's "fn" and the compile config of load_model.

_REGISTERED = {}  # user_data key -> (registered name, the function or Loss subclass)


def _is_custom_loss(obj):
    """A function (a LossFunctionWrapper's) or a Loss subclass with its own call."""
    if isinstance(obj, type):
        return issubclass(obj, Loss) and obj.call is not Loss.call and "_CLASS" not in obj.__dict__
    return callable(obj) and not isinstance(obj, Owned) and hasattr(obj, "__name__")  # not layer objects


@_lib.LOSS_FROM_CONFIG
@guard_callback("a custom loss's from_config", tls=CALLBACK_TLS)
def _on_loss_from_config(out, config_h, user_data):
    name, obj = _REGISTERED[user_data]
    config = _config.from_c(config_h) if config_h else {}
    if isinstance(obj, type):
        if obj.get_config is not Loss.get_config and "name" in config:  # a saved config, not a name
            from .errors import UnimplementedError  # noqa: PLC0415
            raise UnimplementedError(
                "%s overrides get_config, but kiln saves a Python loss's name and reduction only, so its own "
                "arguments were not saved; load the model with compile=False and compile it again"
                % obj.__name__)
        loss = obj.from_config(config)
        if not isinstance(loss, Loss):
            raise TypeError("%s.from_config returned %s; expected a kiln Loss" % (obj.__name__, type(loss).__name__))
        # A handle that holds the object (its own handle holds it only weakly): kiln keeps the loss.
        c = loss.get_config()
        out[0] = _python_loss_handle(_class_name(type(loss)), c["name"], loss.call, False,
                                     {"name": c["name"], "reduction": c["reduction"]})
    else:
        reduction = config.get("reduction", "sum_over_batch_size")
        kwargs = config.get("fn_kwargs") or {}
        c = {"name": config.get("name") or name, "reduction": "none" if reduction is None else reduction}
        if kwargs:
            c["fn_kwargs"] = kwargs
        out[0] = _python_loss_handle(None, name, functools.partial(obj, **kwargs) if kwargs else obj, False, c)


@_lib.USER_DATA_DESTROY
def _on_registration_destroy(user_data):
    _REGISTERED.pop(user_data or 0, None)


_CLASS_CALLBACKS = _lib.LossClassCallbacks(ctypes.sizeof(_lib.LossClassCallbacks), _on_loss_from_config,
                                           _on_registration_destroy)


def _register(name, obj):
    """Registers a function or Loss subclass with C under name; False for a built-in loss name
    (which stays the built-in loss)."""
    key = next(_loss_keys)
    _REGISTERED[key] = (name, obj)
    try:
        call_c(L.kiln_loss_register_class, name.encode(), ctypes.byref(_CLASS_CALLBACKS), ctypes.c_void_p(key))
    except BaseException as e:
        _REGISTERED.pop(key, None)
        if isinstance(e, InvalidArgumentError) and "is a built-in loss" in str(e):
            return False
        raise
    return True


def _unregister(name):
    """Ends name's registration with C (nothing for a name not registered or built in)."""
    try:
        call_c(L.kiln_loss_unregister_class, name.encode())
    except (NotFoundError, InvalidArgumentError):
        pass


def _loss_class(class_name, args, doc, positional=None):
    """A built-in loss class: its own arguments with their defaults, and Keras's positional order
    (by default the own arguments, then reduction, name, dtype)."""
    if positional is None:
        positional = tuple(k for k, _ in args) + ("reduction", "name", "dtype")
    return type(class_name, (Loss,), {"_CLASS": class_name, "_ARGS": tuple(args), "_POSITIONAL": positional,
                                      "__doc__": doc})


SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy",
                                            [("from_logits", False), ("ignore_class", None), ("axis", -1)],
                                            "keras.losses.SparseCategoricalCrossentropy: integer labels.",
                                            ("from_logits", "ignore_class", "reduction", "axis", "name", "dtype"))
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

CategoricalFocalCrossentropy = _loss_class("CategoricalFocalCrossentropy", [
    ("alpha", 0.25), ("gamma", 2.0), ("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)],
    "keras.losses.CategoricalFocalCrossentropy: one-hot labels; alpha a number or one per class.")
Dice = _loss_class("Dice", [("axis", None)],
                   "keras.losses.Dice: 1 - 2 sum(t p) / (sum(t) + sum(p)) over axis (None: every axis).",
                   ("reduction", "name", "axis", "dtype"))
Tversky = _loss_class("Tversky", [("alpha", 0.5), ("beta", 0.5), ("axis", None)],
                      "keras.losses.Tversky: alpha weighs the false positives, beta the false negatives.",
                      ("alpha", "beta", "reduction", "name", "axis", "dtype"))
CategoricalGeneralizedCrossEntropy = _loss_class(
    "CategoricalGeneralizedCrossEntropy", [("q", 0.5)],
    "keras.losses.CategoricalGeneralizedCrossEntropy: (1 - p**q) / q of the integer labels' probabilities.")
Circle = _loss_class("Circle", [("gamma", 80.0), ("margin", 0.4), ("remove_diagonal", True)],
                     "keras.losses.Circle: integer labels [B] and L2-normalized embeddings [B, D].")
CTC = _loss_class("CTC", [], "keras.losses.CTC: integer labels [B, max_length] padded with 0 (the blank) at the "
                  "end, logits [B, frames, classes]; kiln.nn.ctc_loss of every frame and the non-zero labels.")

_CLASSES = {c._CLASS: c for c in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                                  MeanSquaredError, MeanAbsoluteError, Huber, KLDivergence, CosineSimilarity,
                                  MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCosh, Poisson, Hinge,
                                  SquaredHinge, CategoricalHinge, BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
                                  Dice, Tversky, CategoricalGeneralizedCrossEntropy, Circle, CTC)}
Loss._BY_CLASS = _CLASSES


def _function(cls, fname, positional=True):
    """Keras's loss function: the per-sample losses (no reduction). Its arguments after y_true and
    y_pred are the class's own, in Keras's order (by keyword only when positional is False, as
    circle's function takes others first); reduction, name and dtype are not the function's."""
    order = [k for k, _ in cls._ARGS] if positional else []

    def fn(y_true, y_pred, *args, **kwargs):
        foreign = {"reduction", "name", "dtype"} & set(kwargs)
        if foreign:
            raise TypeError("%s() got an unexpected keyword argument '%s'" % (fname, sorted(foreign)[0]))
        return cls(reduction="none", **bind_arguments(fname + "()", order, args, kwargs))(y_true, y_pred)
    fn.__name__ = fn.__qualname__ = fname
    fn.__doc__ = "keras.losses.%s: per-sample losses (%s with reduction 'none')." % (fname, cls.__name__)
    return fn


sparse_categorical_crossentropy = _function(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy")
categorical_crossentropy = _function(CategoricalCrossentropy, "categorical_crossentropy")
binary_crossentropy = bce = BCE = _function(BinaryCrossentropy, "binary_crossentropy")
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
categorical_focal_crossentropy = _function(CategoricalFocalCrossentropy, "categorical_focal_crossentropy")
dice = _function(Dice, "dice")
tversky = _function(Tversky, "tversky")
circle = _function(Circle, "circle", positional=False)
ctc = _function(CTC, "ctc")
categorical_generalized_cross_entropy = _function(CategoricalGeneralizedCrossEntropy,
                                                  "categorical_generalized_cross_entropy")

_FUNCTIONS = {"sparse_categorical_crossentropy": sparse_categorical_crossentropy,
              "categorical_crossentropy": categorical_crossentropy, "binary_crossentropy": binary_crossentropy,
              "mean_squared_error": mse, "mse": mse, "MSE": mse, "mean_absolute_error": mae, "mae": mae, "MAE": mae,
              "huber": huber, "kl_divergence": kld, "kld": kld, "KLD": kld, "kullback_leibler_divergence": kld,
              "cosine_similarity": cosine_similarity, "mean_absolute_percentage_error": mape, "mape": mape,
              "MAPE": mape, "mean_squared_logarithmic_error": msle, "msle": msle, "MSLE": msle,
              "log_cosh": log_cosh, "logcosh": log_cosh, "poisson": poisson, "hinge": hinge,
              "squared_hinge": squared_hinge, "categorical_hinge": categorical_hinge,
              "binary_focal_crossentropy": binary_focal_crossentropy, "bce": bce, "BCE": bce,
              "categorical_focal_crossentropy": categorical_focal_crossentropy, "dice": dice, "tversky": tversky,
              "circle": circle, "categorical_generalized_cross_entropy": categorical_generalized_cross_entropy,
              "ctc": ctc}


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


__all__ = ["Loss", "LossFunctionWrapper", "get", "serialize", "deserialize"] + sorted(_CLASSES) + sorted(_FUNCTIONS)
