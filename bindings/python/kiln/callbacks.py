"""Keras callbacks over the C ABI (kiln/callbacks.h): kiln.callbacks / kiln.keras.callbacks.

    history = kiln.callbacks.History()

Built-in classes are made by class name with Keras's arguments and defaults.
"""
from . import _lib
from ._handles import Owned, config_dict

L = _lib.lib


class Callback(Owned):
    """A built-in callback: the base of the classes below (a C callback made from the class name
    and config)."""

    _KIND = "callback"

    def __init__(self, *args, **kwargs):
        self._init_builtin(args, kwargs, {}, ())

    def __repr__(self):  # callbacks have no name, unlike Owned's other kinds
        return "<kiln.callbacks.%s>" % self.class_name


def _callback_class(class_name, args, doc):
    return type(class_name, (Callback,), {"_CLASS": class_name, "_ARGS": tuple(args), "__doc__": doc})


class History(Callback):
    """keras.callbacks.History: what fit returns. ``history.history`` maps each log name to its
    per-epoch values (names in the order first seen); ``history.epoch`` lists the epochs."""

    _CLASS = "History"
    _ARGS = ()

    def _record(self):
        return config_dict(L.kiln_callback_get_history, self._h)

    @property
    def history(self):
        r = self._record()
        return {k: [float(v) for v in r["history"][k]] for k in r["keys"]}

    @property
    def epoch(self):
        return list(self._record()["epoch"])

Callback._BY_CLASS = {c._CLASS: c for c in (History,)}
