"""Copies and pickles of the Python objects that own a kiln C handle. A plain copy (copy.copy,
copy.deepcopy, pickle) would hold the same handle as the original, and both would free it: so each
such class says what a copy is. Immutable values (tensors, datasets) are their own copies; the
others refuse with a TypeError that names what to use instead."""


class Uncopyable:
    """copy.copy, copy.deepcopy and pickling raise TypeError, naming _COPY_INSTEAD."""

    __slots__ = ()
    _COPY_INSTEAD = ""

    def _refuse(self, what):
        raise TypeError("%s cannot be %s: it owns a kiln object%s" % (type(self).__name__, what, self._COPY_INSTEAD))

    def __copy__(self):
        self._refuse("copied")

    def __deepcopy__(self, memo):
        self._refuse("copied")

    def __reduce_ex__(self, protocol):
        self._refuse("pickled")


class Immutable(Uncopyable):
    """A value that never changes: a copy or a deep copy is the object itself (pickling still
    raises, unless the class defines __reduce_ex__)."""

    __slots__ = ()

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self
