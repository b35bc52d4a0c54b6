"""keras.saving: custom classes by name, so deserialization (layers.deserialize, a Sequential's
config, later the SavedModel) can make them.

    @kiln.saving.register_keras_serializable(package="MyPackage")
    class MyDense(kiln.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
        def get_config(self):
            return {**super().get_config(), "units": self.units}
        ...

    kiln.layers.deserialize(kiln.layers.serialize(MyDense(4)))   # a new MyDense
    kiln.layers.deserialize(config, custom_objects={"MyDense": MyDense})
"""
import contextlib
import threading

from . import layers as _layers
from . import losses as _losses

_REGISTERED = {}   # registered name -> class (register_keras_serializable)
_ACTIVE = {}       # name -> the class registered under it now (by the decorator or a scope)
_FUNCTION_NAMES = {}  # a registered function -> its registered name (builtins take no attributes)
_scope_lock = threading.RLock()


def register_keras_serializable(package="Custom", name=None):
    """Decorator: registers a Layer subclass, a Loss subclass, or a function (a loss, a metric, a
    Lambda layer's) as "<package>><name>" (name: the class's or function's name), so configs that
    name it (a saved model's layers and compile config) find it."""
    if ">" in str(package):
        raise ValueError("register_keras_serializable: package %r must not contain '>'" % (package,))

    def decorate(cls):
        registered = "%s>%s" % (package, name or cls.__name__)
        if _is_layer_class(cls):  # C's deserialization makes layers; functions stay here
            _layers._register_class(registered, cls)
        if isinstance(cls, type):
            cls._kiln_registered_name = registered
        else:
            _FUNCTION_NAMES[cls] = registered
        if _losses._is_custom_loss(cls):  # C makes losses by name: the compile config's, a metric's "fn"
            _losses._register(registered, cls)
        _REGISTERED[registered] = cls
        _ACTIVE[registered] = cls
        return cls

    return decorate


def get_registered_name(obj):
    """The name obj's class is registered under ("MyPackage>MyDense"), else its class name."""
    if callable(obj) and not isinstance(obj, type) and hasattr(obj, "__name__"):  # a function
        try:
            return _FUNCTION_NAMES.get(obj) or obj.__name__
        except TypeError:  # unhashable
            return obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    return cls.__dict__.get("_kiln_registered_name") or cls.__name__


def get_registered_object(name, custom_objects=None):
    """The class (or function) registered as name (custom_objects first), or None."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    return _REGISTERED.get(name)


@contextlib.contextmanager
def custom_object_scope(custom_objects):
    """Within the block, deserialization finds the classes and functions of custom_objects
    ({"MyDense": MyDense, "my_loss": my_loss}) by those names (layers, losses and metrics of a
    loaded model); on exit the names are registered as before (an enclosing scope's object, a
    register_keras_serializable one, or none)."""
    items = dict(custom_objects or {})
    if not items:
        yield
        return
    with _scope_lock:
        done = []
        try:
            for key, obj in items.items():
                previous = _ACTIVE.get(key) or _layers._PY_BUILTINS.get(key)
                if _is_layer_class(obj):  # C's deserialization makes layers; functions stay here
                    _layers._register_class(key, obj)
                elif _is_layer_class(previous):  # a function shadows the class for the scope
                    _layers._unregister_class(key)
                if _losses._is_custom_loss(obj):
                    _losses._register(key, obj)
                elif _losses._is_custom_loss(previous):
                    _losses._unregister(key)
                _ACTIVE[key] = obj
                done.append((key, obj, previous))
            yield
        finally:
            for key, obj, previous in reversed(done):
                if _is_layer_class(previous):
                    _layers._register_class(key, previous)
                elif _is_layer_class(obj):
                    _layers._unregister_class(key)
                if _losses._is_custom_loss(previous):
                    _losses._register(key, previous)
                elif _losses._is_custom_loss(obj):
                    _losses._unregister(key)
                if previous is not None and previous is not _layers._PY_BUILTINS.get(key):
                    _ACTIVE[key] = previous
                else:
                    _ACTIVE.pop(key, None)


def _is_layer_class(obj):
    return isinstance(obj, type) and issubclass(obj, _layers.Layer)


__all__ = ["register_keras_serializable", "get_registered_name", "get_registered_object", "custom_object_scope"]
