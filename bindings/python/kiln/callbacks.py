"""Keras callbacks over the C ABI (kiln/callbacks.h): kiln.callbacks / kiln.keras.callbacks.

    history = kiln.callbacks.History()

Built-in classes are made by class name with Keras's arguments and defaults.
"""
from . import _lib
from ._handles import Owned

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


History = _callback_class("History", [], "keras.callbacks.History: the per-epoch logs fit returns.")

Callback._BY_CLASS = {c._CLASS: c for c in (History,)}
