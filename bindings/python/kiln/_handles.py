"""The shared plumbing of the objects that own one C handle and a config (losses, metrics)."""
import ctypes

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from . import config as _config
from .errors import InvalidArgumentError, UnimplementedError, call_c, check
from .tensor import Tensor, constant

L = _lib.lib


def as_tensor(x, dtype=None):
    """A kiln Tensor from a Tensor, a Variable, or anything kiln.constant takes; None stays None."""
    if x is None:
        return None
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "_kiln_value"):
        return x._kiln_value()
    return constant(x, dtype)


def bind_arguments(who, order, args, kwargs):
    """Python's binding of positional args to the parameter names in order: kwargs with them added;
    TypeError, as Python gives, for too many or for a name given both ways."""
    if len(args) > len(order):
        raise TypeError("%s takes at most %d positional arguments (%s); got %d"
                        % (who, len(order), ", ".join(order), len(args)))
    twice = [k for k in order[:len(args)] if k in kwargs]
    if twice:
        raise TypeError("%s got multiple values for argument '%s'" % (who, twice[0]))
    bound = dict(kwargs)
    bound.update(zip(order, args))
    return bound


def new_handle(fn, *args):
    out = ctypes.c_void_p()
    check(fn(ctypes.byref(out), *args))
    return out.value


def config_dict(fn, handle):
    """The dict of a config a C getter makes (fn(&config, handle)). A getter may run Python code (a
    custom learning-rate schedule's get_config): its exception is re-raised as it was (call_c)."""
    out = ctypes.c_void_p()
    call_c(fn, ctypes.byref(out), handle)
    try:
        return _config.from_c(out.value)
    finally:
        L.kiln_config_free(out.value)


class Owned(_Uncopyable):
    """Owns one C handle of a kind whose C functions are named kiln_<_KIND>_*."""

    _COPY_INSTEAD = " (from_config(get_config()) makes another with the same settings)"

    _KIND = None
    _CLASS = None
    _ARGS = ()  # a built-in class's own arguments, in Keras's order, with their defaults
    _BY_CLASS = {}  # a kind's built-in Python classes by C class name (set by its module)
    _INSTEAD = ""  # a kind without Python subclasses: its module and what to use instead of one
    _h = None

    @classmethod
    def _adopt(cls, handle):
        """The Python object for a new C handle: the built-in class of its C class, else cls."""
        name = getattr(L, "kiln_%s_get_class_name" % cls._KIND)(handle).decode()
        obj = object.__new__(cls._BY_CLASS.get(name, cls))
        obj._h = handle
        return obj

    @classmethod
    def from_config(cls, config):
        if cls._CLASS is None:
            raise TypeError("from_config needs a built-in %s class" % cls._KIND)
        return cls(**config)

    def _fn(self, verb):
        return getattr(L, "kiln_%s_%s" % (self._KIND, verb))

    def _init_builtin(self, args, kwargs, extra, common):
        """Makes this object's C object from a built-in class's arguments: positional args in _ARGS
        order, keyword ones by name (unknown names raise, naming what the class takes), then the
        common keywords `extra` (name, reduction, dtype: None and the class's default dtype, "float32" unless
        _DEFAULT_DTYPE says otherwise, are left out)."""
        if self._CLASS is None:
            raise self._no_class_error()
        names = [k for k, _ in self._ARGS]
        if len(args) > len(names):
            raise TypeError("%s takes at most %d positional arguments" % (self._CLASS, len(names)))
        config = dict(self._ARGS)
        config.update(zip(names, args))
        unknown = set(kwargs) - set(config)
        if unknown:
            raise InvalidArgumentError("%s: unknown argument(s) %s; it takes %s" % (
                self._CLASS, ", ".join(sorted(unknown)), ", ".join(names + [c for c in common if c not in names])))
        given = [k for k in names[:len(args)] if k in kwargs or extra.get(k) is not None]
        if given:  # as Python does for a function's own arguments
            raise TypeError("%s got multiple values for argument '%s'" % (self._CLASS, given[0]))
        config.update(kwargs)
        for key, value in extra.items():
            if value is not None and not (key == "dtype" and value == getattr(self, "_DEFAULT_DTYPE", "float32")):
                config[key] = value
        self._h = self._create_handle(self._CLASS, config)

    def _no_class_error(self):
        """The error for making the kind's base class itself, or a Python subclass of it (losses and
        metrics are C objects: there is no callback table for one written in Python)."""
        cls = type(self)
        base = next(c for c in cls.__mro__ if "_KIND" in c.__dict__)  # kiln.losses.Loss, kiln.metrics.Metric
        if cls is base:
            return TypeError("%s.%s is the base class; make one of its built-in classes" % (base.__module__, cls.__name__))
        return UnimplementedError("%s: custom Python %s classes (subclasses of %s.%s) are not supported; %s"
                                  % (cls.__name__, self._KIND, base.__module__, base.__name__, self._INSTEAD))

    @classmethod
    def _create_handle(cls, name, config):
        with _config.to_c(config) as c:
            return new_handle(getattr(L, "kiln_%s_create" % cls._KIND), str(name).encode("utf-8"), c)

    @classmethod
    def _deserialize_handle(cls, serialized):
        with _config.to_c(serialized) as c:
            return new_handle(getattr(L, "kiln_%s_deserialize" % cls._KIND), c)

    def __del__(self):
        h = self._h
        if h:
            self._fn("free")(h)
            self._h = None

    @property
    def name(self):
        return self._fn("get_name")(self._h).decode("utf-8")

    @property
    def class_name(self):
        return self._fn("get_class_name")(self._h).decode("utf-8")

    @property
    def _unique_id(self):
        return int(self._fn("get_id")(self._h))

    def get_config(self):
        return config_dict(self._fn("get_config"), self._h)

    def _serialize(self):
        return config_dict(self._fn("serialize"), self._h)

    def __repr__(self):
        return "<kiln.%s %s %r>" % (self._KIND, self.class_name, self.name)
