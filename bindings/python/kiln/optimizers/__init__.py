"""keras.optimizers: SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Nadam, Adamax, Lion, Ftrl, Lamb, Adafactor, with Keras 3's arguments,
defaults and formulas, run by the C library (one fused in-place kernel per variable).

    opt = kiln.optimizers.Adam(learning_rate=1e-3)
    with kiln.GradientTape() as tape:
        loss = ...
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
"""
import ctypes
import itertools

from .. import _lib
from .._copy import Uncopyable as _Uncopyable
from .. import config as _config
from .._handles import config_dict, new_handle
from ..autodiff import GradientTape, Variable
from ..errors import CALLBACK_TLS, InvalidArgumentError, call_c as _c, check, guard_callback
from ..tensor import Tensor, _as_tensor, _new, constant as _constant
from . import schedules
from .schedules import LearningRateSchedule

L = _lib.lib


class LearningRateValue(float):
    """optimizer.learning_rate: the rate as a float, with the methods Keras's learning-rate variable
    has: assign(value) sets the optimizer's rate (a float, a schedule or a callable, as assigning
    optimizer.learning_rate does), numpy() and value() give it. A value read before an assign keeps
    the number it had."""

    def __new__(cls, value, optimizer):
        obj = float.__new__(cls, value)
        obj._optimizer = optimizer
        return obj

    def assign(self, value):
        self._optimizer.learning_rate = value
        return self._optimizer.learning_rate

    def numpy(self):
        return float(self)

    def value(self):
        return float(self)

    def __reduce__(self):  # pickles and copies as the plain float
        return (float, (float(self),))


def _learning_rate_config(lr):
    if isinstance(lr, LearningRateSchedule):
        return schedules.serialize(lr)
    if isinstance(lr, dict):
        return lr
    return float(lr)


# ---------------------------------------------------------------- custom learning rates
#
# A LearningRateSchedule subclass with its own __call__, or a callable taking no arguments (Keras
# calls learning_rate() each step), runs in Python: C calls _on_learning_rate with the step, without
# the optimizer's lock (it may read the optimizer). The C optimizer holds the schedule (through
# _CUSTOM) until it drops it, so a schedule that refers to its own optimizer keeps both alive; a
# callable has no config (kiln cannot serialize it, unlike Keras's function serialization).

_CUSTOM = {}  # user_data key -> (the schedule: step Tensor -> learning rate, its get_config or None)
_custom_keys = itertools.count(1)


def _is_custom_learning_rate(lr):
    if isinstance(lr, LearningRateSchedule):
        return lr._is_custom()
    return callable(lr) and not isinstance(lr, dict)


@_lib.LEARNING_RATE_FN
@guard_callback("a learning rate schedule", tls=CALLBACK_TLS)
def _on_learning_rate(out_lr, step, user_data):
    schedule = _CUSTOM[user_data][0]
    value = schedule(_constant(step, "int64"))
    if isinstance(value, bool) or not isinstance(value, (float, int)) and not hasattr(value, "__float__"):
        raise TypeError("the learning rate schedule gave %r (%s); expected a float" % (value, type(value).__name__))
    out_lr[0] = float(value)


@_lib.LEARNING_RATE_CONFIG_FN
@guard_callback("a learning rate schedule's get_config", tls=CALLBACK_TLS)
def _on_learning_rate_config(config, user_data):
    values = _CUSTOM[user_data][1]()
    with _config.to_c(values) as c:
        check(L.kiln_config_update(config, c))


@_lib.USER_DATA_DESTROY
def _on_learning_rate_destroy(user_data):
    _CUSTOM.pop(user_data or 0, None)


def _set_custom_learning_rate(handle, lr):
    if isinstance(lr, LearningRateSchedule):
        name, fn = type(lr).__name__, lr
        get_config = lr.get_config if lr._has_config() else None
    else:  # Keras calls a callable learning rate with no arguments
        name, fn, get_config = getattr(lr, "__name__", type(lr).__name__), (lambda step: lr()), None
    key = next(_custom_keys)
    _CUSTOM[key] = (fn, get_config)
    try:
        _c(L.kiln_optimizer_set_learning_rate_fn, handle, name.encode(), _on_learning_rate,
           _on_learning_rate_config if get_config is not None else _lib.LEARNING_RATE_CONFIG_FN(),
           _on_learning_rate_destroy, ctypes.c_void_p(key))
    except BaseException:
        _CUSTOM.pop(key, None)
        raise


class Optimizer(_Uncopyable):
    """keras.optimizers.Optimizer over a kiln_optimizer handle."""

    _COPY_INSTEAD = " (from_config(get_config()) makes another with the same settings)"

    _class_name = None

    def __init__(self, **config):
        custom = config.pop("learning_rate") if _is_custom_learning_rate(config.get("learning_rate")) else None
        if "learning_rate" in config:
            config["learning_rate"] = _learning_rate_config(config["learning_rate"])
        with _config.to_c(config) as c:
            self._h = new_handle(L.kiln_optimizer_create, self._class_name.encode(), c)
        self._accumulation = bool(config.get("gradient_accumulation_steps"))  # fixed at creation
        if custom is not None:
            _set_custom_learning_rate(self._h, custom)

    @classmethod
    def _adopt(cls, handle):
        obj = cls.__new__(cls)
        obj._h = handle
        return obj

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_optimizer_free(h)
            self._h = None

    @property
    def _as_parameter_(self):
        return self._h

    @property
    def name(self):
        return L.kiln_optimizer_get_name(self._h).decode()

    def get_config(self):
        return config_dict(L.kiln_optimizer_get_config, self._h)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr)
        return cls(**config)

    def _kiln_serialize(self):
        return {"class_name": L.kiln_optimizer_get_class_name(self._h).decode(), "config": self.get_config()}

    # ---------------------------------------------------------------- steps

    def apply_gradients(self, grads_and_vars):
        """Keras's apply_gradients(zip(grads, vars)): a None gradient skips its variable."""
        pairs = list(grads_and_vars)
        grads = [g for g, _ in pairs]
        variables = [v for _, v in pairs]
        self.apply(grads, variables)
        return self._iterations

    def compute_gradients(self, loss, var_list, tape=None):
        """Keras's compute_gradients: [(gradient, variable)] of loss (a callable taking no
        arguments, run under a new GradientTape that watches var_list; or a Tensor with the tape
        that recorded it) for var_list (a list, or a callable giving it after loss has run)."""
        if not callable(loss) and tape is None:
            raise InvalidArgumentError("minimize / compute_gradients: a Tensor loss needs the GradientTape that "
                                       "recorded it (tape=...); or pass loss as a callable taking no arguments")
        # Keras 3's apply divides the gradients by loss_scale_factor, so they are of the scaled
        # loss: a callable's loss is scaled under the tape; a recorded Tensor's gradients are
        # scaled instead (scale_loss leaves both alone when no factor is set).
        scaled_under_tape = callable(loss)
        if scaled_under_tape:
            tape = tape if tape is not None else GradientTape()
            with tape:
                if not callable(var_list):
                    tape.watch(list(var_list))
                loss = self.scale_loss(loss())
        if callable(var_list):
            var_list = var_list()
        var_list = list(var_list)
        grads = tape.gradient(loss, var_list)
        if not scaled_under_tape:
            grads = [None if g is None else self.scale_loss(g) for g in grads]
        return list(zip(grads, var_list))

    def minimize(self, loss, var_list, tape=None):
        """Keras's minimize(loss, var_list, tape=None): compute_gradients, then apply_gradients
        (a None gradient skips its variable). Returns iterations, as apply_gradients."""
        return self.apply_gradients(self.compute_gradients(loss, var_list, tape))

    def apply(self, grads, trainable_variables):
        """Keras 3's apply(grads, trainable_variables)."""
        grads, trainable_variables = list(grads), list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise InvalidArgumentError("apply_gradients: %d gradients for %d variables"
                                       % (len(grads), len(trainable_variables)))
        for v in trainable_variables:
            if not isinstance(v, Variable):
                raise InvalidArgumentError("apply_gradients: expected kiln.Variable objects; got %s"
                                           % type(v).__name__)
        tensors = [None if g is None else (g if isinstance(g, Tensor) else _as_tensor(g, v.value()))
                   for g, v in zip(grads, trainable_variables)]
        n = len(tensors)
        g_arr = (ctypes.c_void_p * max(n, 1))(*[None if t is None else t._h for t in tensors])
        v_arr = (ctypes.c_void_p * max(n, 1))(*[v._h for v in trainable_variables])
        _c(L.kiln_optimizer_apply_gradients, self._h, ctypes.cast(g_arr, _lib._HP), ctypes.cast(v_arr, _lib._HP), n)

    def build(self, var_list):
        """Keras's build(var_list): the slots of each variable without them, in this order, without
        a step (slot values a checkpoint restored before they existed land now)."""
        var_list = list(var_list)
        for v in var_list:
            if not isinstance(v, Variable):
                raise InvalidArgumentError("build: expected kiln.Variable objects; got %s" % type(v).__name__)
        arr = (ctypes.c_void_p * max(len(var_list), 1))(*[v._h for v in var_list])
        _c(L.kiln_optimizer_build, self._h, ctypes.cast(arr, _lib._HP), len(var_list))

    # ---------------------------------------------------------------- state

    @property
    def iterations(self):
        """The step counter: an int64 scalar Variable (int(opt.iterations) reads it); with
        gradient_accumulation_steps, as Keras 3, the updates (a Tensor: the raw counter // steps)."""
        if self._accumulates():
            out = ctypes.c_int64()
            check(L.kiln_optimizer_get_iterations(ctypes.byref(out), self._h))
            return _constant(out.value, "int64")
        return self._iterations

    @property
    def _iterations(self):
        """Keras's raw counter variable: one per apply_gradients (what checkpoints save)."""
        first = (ctypes.c_void_p * 1)()  # the counter alone: no handle is made for the slots
        n = ctypes.c_size_t()
        check(L.kiln_optimizer_get_variables(ctypes.cast(first, _lib._HP), 1, ctypes.byref(n), self._h))
        return Variable._adopt(first[0])

    def _accumulates(self):
        # gradient_accumulation_steps is fixed at creation: known then, or read from the config once
        # (an optimizer made in C).
        if not hasattr(self, "_accumulation"):
            self._accumulation = bool(self.get_config().get("gradient_accumulation_steps"))
        return self._accumulation

    def scale_loss(self, loss):
        """Keras's scale_loss: loss * loss_scale_factor, or loss itself when unset."""
        return _new(L.kiln_optimizer_scale_loss, self._h, _as_tensor(loss))

    def finalize_variable_values(self, var_list):
        """Keras's finalize_variable_values (fit's last act): with use_ema, each variable takes
        its moving average."""
        var_list = list(var_list)
        v_arr = (ctypes.c_void_p * max(len(var_list), 1))(*[v._h for v in var_list])
        check(L.kiln_optimizer_finalize_variable_values(self._h, ctypes.cast(v_arr, _lib._HP), len(var_list)))

    @property
    def learning_rate(self):
        """The learning rate of the next step (a schedule's value at the raw step counter): a float
        with Keras's variable methods, so `optimizer.learning_rate.assign(1e-4)` works as
        `optimizer.learning_rate = 1e-4` does."""
        out = ctypes.c_double()
        _c(L.kiln_optimizer_get_learning_rate, ctypes.byref(out), self._h)
        return LearningRateValue(out.value, self)

    @learning_rate.setter
    def learning_rate(self, value):
        if _is_custom_learning_rate(value):
            _set_custom_learning_rate(self._h, value)
        elif isinstance(value, (LearningRateSchedule, dict)):
            with _config.to_c(_learning_rate_config(value)) as c:
                check(L.kiln_optimizer_set_learning_rate_schedule(self._h, c))
        else:
            check(L.kiln_optimizer_set_learning_rate(self._h, float(value)))

    @property
    def variables(self):
        """iterations, the class's own state (Nadam's u_product: float64 until the first step or
        build, then float32 for a float32 model, as Keras's), then each variable's slots (in the
        order of the list each variable was first given in, as Keras builds)."""
        n = ctypes.c_size_t()
        check(L.kiln_optimizer_get_variables(None, 0, ctypes.byref(n), self._h))
        arr = (ctypes.c_void_p * max(n.value, 1))()
        m = ctypes.c_size_t()
        check(L.kiln_optimizer_get_variables(ctypes.cast(arr, _lib._HP), n.value, ctypes.byref(m), self._h))
        return [Variable._adopt(arr[i]) for i in range(min(n.value, m.value))]

    def get_slot(self, var, slot_name):
        """The slot of var ("momentum", "velocity", ... or tf.keras 2's "m", "v", "vhat")."""
        return Variable._adopt(new_handle(L.kiln_optimizer_get_slot, self._h, var._h, str(slot_name).encode()))

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Keras's exclude_from_weight_decay: before the first step; var_names are searched for in
        each variable's name as regular expressions (re.search of the names joined by "|")."""
        var_list, var_names = list(var_list or []), [str(n).encode() for n in (var_names or [])]
        v_arr = (ctypes.c_void_p * max(len(var_list), 1))(*[v._h for v in var_list])
        n_arr = _lib.c_strings(var_names, "exclude_from_weight_decay: var_names")
        check(L.kiln_optimizer_exclude_from_weight_decay(self._h, ctypes.cast(v_arr, _lib._HP), len(var_list),
                                                         n_arr, len(var_names)))

    def __repr__(self):
        return "<kiln.optimizers.%s '%s'>" % (self._class_name, self.name)


_BASE = dict(weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
             ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
             gradient_accumulation_steps=None, name=None)


def _make(class_name, **own):
    """An optimizer class with Keras's signature: learning_rate first, then the class's own
    arguments, then the base optimizer's (all by keyword too; AdamW's weight_decay comes second,
    before its own, as Keras's)."""
    defaults = dict(own)
    defaults.update(_BASE)
    if class_name == "AdamW":
        defaults["weight_decay"] = 0.004
        order = ["weight_decay"] + list(own) + [k for k in _BASE if k != "weight_decay"]
    else:
        order = list(own) + list(_BASE)
    known = set(defaults) | {"learning_rate", "exclude_from_weight_decay", "decay"}

    def __init__(self, learning_rate=None, *args, **kwargs):
        if len(args) > len(order):
            raise TypeError("%s: at most %d positional arguments" % (class_name, len(order) + 1))
        unknown = set(kwargs) - known
        if unknown:  # Keras's ValueError (its __init__ takes **kwargs)
            raise ValueError("%s: argument(s) not recognized: %s" % (class_name, sorted(unknown)))
        twice = set(order[:len(args)]) & set(kwargs)
        if twice:
            raise TypeError("%s: got multiple values for argument(s) %s" % (class_name, sorted(twice)))
        config = dict(zip(order, args))
        config.update(kwargs)
        if learning_rate is not None:
            config["learning_rate"] = learning_rate
        if config.get("name") is None:
            config.pop("name", None)
        if config.get("decay", 0) is None:
            config.pop("decay")
        Optimizer.__init__(self, **config)
    return type(class_name, (Optimizer,), {"__init__": __init__, "_class_name": class_name})


SGD = _make("SGD", momentum=0.0, nesterov=False)
Adam = _make("Adam", beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)
AdamW = _make("AdamW", beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)
RMSprop = _make("RMSprop", rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)
Adagrad = _make("Adagrad", initial_accumulator_value=0.1, epsilon=1e-7)
Adadelta = _make("Adadelta", rho=0.95, epsilon=1e-7)
Nadam = _make("Nadam", beta_1=0.9, beta_2=0.999, epsilon=1e-7)
Adamax = _make("Adamax", beta_1=0.9, beta_2=0.999, epsilon=1e-7)
Lion = _make("Lion", beta_1=0.9, beta_2=0.99)
Ftrl = _make("Ftrl", learning_rate_power=-0.5, initial_accumulator_value=0.1, l1_regularization_strength=0.0,
             l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0, beta=0.0)
Lamb = _make("Lamb", beta_1=0.9, beta_2=0.999, epsilon=1e-7)
# Adafactor's second moment is factored over the last two axes of each variable of rank >= 2
# (slots r, c, velocity); with relative_step and a float learning rate the rate is
# min(learning_rate, 1 / sqrt(step)).
Adafactor = _make("Adafactor", beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
                  relative_step=True)

_ALL = {c._class_name: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Nadam, Adamax, Lion, Ftrl, Lamb,
                                   Adafactor)}


def serialize(optimizer):
    return optimizer._kiln_serialize()


def deserialize(config):
    """An optimizer from {"class_name": ..., "config": {...}} (Keras's lower-case names work too)."""
    name = config["class_name"]
    cls = _ALL.get(name) or {k.lower(): c for k, c in _ALL.items()}.get(str(name).lower())
    if cls is None:
        raise ValueError("unknown optimizer %r; known: %s" % (name, ", ".join(_ALL)))
    return cls.from_config(config.get("config", {}))


def get(identifier):
    """keras.optimizers.get: an optimizer, a name ("adam"), or a serialized dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    return deserialize({"class_name": str(identifier), "config": {}})


def create_optimizer(init_lr, num_train_steps, num_warmup_steps, end_lr=0.0, weight_decay=0.01):
    """BERT/ALBERT's "AdamWarmup" (TF Model Garden's official.nlp.optimization.create_optimizer):
    AdamW with epsilon 1e-6 and weight decay (LayerNorm and bias excluded), its learning rate
    PolynomialDecay(init_lr, num_train_steps, end_lr) wrapped in WarmUp (init_lr * step /
    num_warmup_steps over the warm-up) when num_warmup_steps > 0."""
    lr = schedules.PolynomialDecay(init_lr, num_train_steps, end_learning_rate=end_lr)
    if num_warmup_steps:
        lr = schedules.WarmUp(init_lr, lr, num_warmup_steps)
    return AdamW(learning_rate=lr, weight_decay=weight_decay, epsilon=1e-6,
                 exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"])
