"""keras.optimizers.schedules: learning-rate schedules, evaluated by the C library.

A schedule is its Keras class name and config; calling it at a step asks kiln for the value, so
Python, C and C++ agree to the bit. Values are computed in float32 in Keras's order (its floatx)
and returned as Python floats. LinearWarmup and WarmUp are TF Model Garden's warm-up wrappers
(BERT/ALBERT).
"""
import ctypes

from .. import _lib
from .. import config as _config
from ..errors import check

L = _lib.lib


class LearningRateSchedule:
    """Base class: a Keras class name and a config; schedule(step) is the learning rate at step.

    Subclass it as Keras's: override __call__(self, step) (step: an int64 scalar Tensor, the
    optimizer's step count) and, to make the optimizer serializable, get_config(). An optimizer
    given one calls it at every step (from C, under the GIL)."""
    _class_name = None

    def __init__(self, **config):
        self._config = config

    def _is_custom(self):
        return type(self).__call__ is not LearningRateSchedule.__call__

    def _has_config(self):
        """Whether get_config works: overridden, or inherited from a built-in schedule."""
        return type(self).get_config is not LearningRateSchedule.get_config or type(self)._class_name is not None

    def __call__(self, step):
        out = ctypes.c_double()
        with _config.to_c(self._builtin_serialize()) as c:
            check(L.kiln_learning_rate_schedule_call(ctypes.byref(out), c, int(step)))
        return out.value

    def get_config(self):
        """Keras's get_config, with the defaults filled in (nested schedules serialized)."""
        if type(self)._class_name is None:  # a direct subclass without its own get_config
            raise NotImplementedError("Learning rate schedule '%s' must override `get_config()` in order to be "
                                      "serializable." % type(self).__name__)
        out = ctypes.c_void_p()
        with _config.to_c(self._builtin_serialize()) as c:
            check(L.kiln_learning_rate_schedule_get_config(ctypes.byref(out), c))
        try:
            return _config.from_c(out.value)["config"]
        finally:
            L.kiln_config_free(out.value)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _kiln_serialize(self):
        if self._is_custom():
            return {"class_name": type(self).__name__, "config": self.get_config()}
        return self._builtin_serialize()

    def _builtin_serialize(self):
        config = {k: (serialize(v) if isinstance(v, LearningRateSchedule) else v) for k, v in self._config.items()}
        return {"class_name": self._class_name, "config": config}

    def __repr__(self):
        return "%s(%s)" % (self._class_name, ", ".join("%s=%r" % kv for kv in self._config.items()))


def _make(class_name, required, **defaults):
    """A schedule class taking Keras's positional arguments (required, then the defaults' keys)."""
    order = list(required) + list(defaults)

    def __init__(self, *args, **kwargs):
        if len(args) > len(order):
            raise TypeError("%s: at most %d positional arguments" % (class_name, len(order)))
        config = dict(defaults)
        config.update(zip(order, args))
        unknown = set(kwargs) - set(order)
        if unknown:
            raise TypeError("%s: unexpected arguments %s" % (class_name, sorted(unknown)))
        config.update(kwargs)
        missing = [k for k in required if k not in config]
        if missing:
            raise TypeError("%s: missing arguments %s" % (class_name, missing))
        config = {k: v for k, v in config.items() if v is not _UNSET}
        LearningRateSchedule.__init__(self, **config)
    return type(class_name, (LearningRateSchedule,), {"__init__": __init__, "_class_name": class_name})


_UNSET = object()  # an argument left to the library's default
ExponentialDecay = _make("ExponentialDecay", ["initial_learning_rate", "decay_steps", "decay_rate"],
                         staircase=False, name=_UNSET)
PiecewiseConstantDecay = _make("PiecewiseConstantDecay", ["boundaries", "values"], name=_UNSET)
PolynomialDecay = _make("PolynomialDecay", ["initial_learning_rate", "decay_steps"], end_learning_rate=0.0001,
                        power=1.0, cycle=False, name=_UNSET)
InverseTimeDecay = _make("InverseTimeDecay", ["initial_learning_rate", "decay_steps", "decay_rate"],
                         staircase=False, name=_UNSET)
CosineDecay = _make("CosineDecay", ["initial_learning_rate", "decay_steps"], alpha=0.0, name=_UNSET,
                    warmup_target=None, warmup_steps=0)
CosineDecayRestarts = _make("CosineDecayRestarts", ["initial_learning_rate", "first_decay_steps"], t_mul=2.0,
                            m_mul=1.0, alpha=0.0, name=_UNSET)
LinearWarmup = _make("LinearWarmup", ["after_warmup_lr_sched", "warmup_steps"], warmup_learning_rate=0.0,
                     name=_UNSET)
# TF Model Garden's WarmUp (official.nlp.optimization, BERT's create_optimizer): initial_learning_rate
# * (step / warmup_steps)^power during the warm-up, then decay_schedule_fn(step).
WarmUp = _make("WarmUp", ["initial_learning_rate", "decay_schedule_fn", "warmup_steps"], power=1.0, name=_UNSET)

_ALL = {c._class_name: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay,
                                   CosineDecay, CosineDecayRestarts, LinearWarmup, WarmUp)}


def serialize(schedule):
    return schedule._kiln_serialize()


def deserialize(config):
    """A schedule from {"class_name": ..., "config": {...}} (nested schedules too)."""
    name = str(config["class_name"])  # Keras's snake-case alias too ("exponential_decay"), as the C library
    cls = _ALL.get(name) or _ALL.get("".join(part[:1].upper() + part[1:] for part in name.split("_")))
    if cls is None:
        raise ValueError("unknown learning rate schedule %r; known: %s" % (config["class_name"], ", ".join(_ALL)))
    inner = {k: (deserialize(v) if isinstance(v, dict) and "class_name" in v else v)
             for k, v in config.get("config", {}).items()}
    return cls.from_config(inner)
