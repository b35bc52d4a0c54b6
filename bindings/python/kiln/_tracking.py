"""The lists and dicts a layer's attributes hold, as Keras's ListWrapper / _DictWrapper (Keras 3's
TrackedList / TrackedDict): Layer.__setattr__ keeps a plain list or dict as a TrackedList or
TrackedDict (a copy, as Keras 3 makes; the lists and dicts inside it too), and a change to it, or
to one inside it, that may move layers is told to the layer, which then tracks the layers it holds
by their paths as if the whole container had been assigned again (Layer._track_container). As in
Keras 3, what goes in later is kept as given (a list appended and filled afterwards is the one the
layer calls; the layer looks through its containers again when it builds). A change that adds no
layer to a container holding none costs what list's or dict's own method does. A change the layer
refuses (one that moves its layers after it was built) is undone before the exception goes on.

They are lists and dicts: equal to plain ones, isinstance list / dict; a slice, a copy (copy.copy,
.copy()) or a pickle of one is a plain list or dict. Tuples are left as they are (immutable)."""
import functools
import weakref


def _unbound():
    return None


def _holds_layer(values):
    """Whether any of values is a layer or a list, tuple or dict holding one (at any depth)."""
    from .layers import Layer  # noqa: PLC0415 - layers imports this module
    stack, seen = list(values), set()
    while stack:
        v = stack.pop()
        if isinstance(v, Layer):
            return True
        if isinstance(v, (list, tuple, dict)) and id(v) not in seen:
            seen.add(id(v))
            stack.extend(v.values() if isinstance(v, dict) else v)
    return False


class Tracked:
    """What TrackedList and TrackedDict share. Each knows its layer (weakly), the attribute, and
    the container the attribute holds (weakly; itself for that one)."""

    __slots__ = ()

    def __init__(self, values=(), _binding=(_unbound, None, None)):
        self._owner, self._name, root = _binding
        self._root = root or weakref.ref(self)
        self._base.__init__(self, values)
        self._rewrap()

    def _rewrap(self):
        """The lists and dicts that went in become tracked ones of this attribute (copies)."""
        for key, value in list(self._items()):
            wrapped = _wrap(value, self._owner, self._name, self._root)
            if wrapped is not value:
                self._base.__setitem__(self, key, wrapped)

    def _change(self, method, *args, _adds=(), **kwargs):
        """method (list's or dict's own) on self, then told to the layer, unless the attribute's
        container holds no layers and _adds (the values going in) hold none either."""
        owner = self._owner()
        if owner is None or (not owner._container_holds_layers(self._name) and not _holds_layer(_adds)):
            return method(self, *args, **kwargs)
        before = self._base.copy(self)
        try:
            return method(self, *args, **kwargs)
        finally:
            self._report(before)

    def _report(self, before):
        """Tells the layer the attribute's container changed; if it refuses, the contents are put
        back as they were before and the layer told again, so that kiln tracks what is there."""
        owner, root = self._owner(), self._root()
        if owner is None or root is None or owner.__dict__.get(self._name) is not root:
            return  # the layer is gone or the attribute holds another value: a plain list or dict now
        try:
            owner._track_container(self._name, root, stacklevel=5)
        except BaseException:
            self._base.clear(self)
            self._base.__init__(self, before)
            owner._track_container(self._name, root)
            raise

    def _adopt(self, values):
        """values as this container keeps what goes in: as given (Keras 3), but a tracked list or
        dict of another attribute or layer becomes a tracked copy of this one, so that its changes
        are told to this attribute."""
        return [_wrap(v, self._owner, self._name, self._root) if isinstance(v, Tracked) else v for v in values]

    def __setitem__(self, key, value):
        if self._base is list and isinstance(key, slice):
            value = self._adopt(value)  # once: an iterator read twice would be empty the second time
            self._change(list.__setitem__, key, value, _adds=value)
        else:
            value = self._adopt((value,))[0]
            self._change(self._base.__setitem__, key, value, _adds=(value,))

    def __reduce__(self):
        return self._base, (self._base.copy(self),)


def _reporting(cls, names):
    """Makes each named method of cls's base (list or dict), which puts nothing new in, one that
    tells the layer of the change."""
    for name in names:
        method = getattr(cls._base, name)
        setattr(cls, name, functools.wraps(method)(lambda self, *args, _method=method, **kwargs:
                                                   self._change(_method, *args, **kwargs)))


class TrackedList(Tracked, list):
    """A list attribute of a layer (Keras's ListWrapper): a list that tells the layer of changes."""

    __slots__ = ("_owner", "_name", "_root", "__weakref__")
    _base = list

    def _items(self):
        return enumerate(self)

    def append(self, value):
        value = self._adopt((value,))[0]
        self._change(list.append, value, _adds=(value,))

    def extend(self, values):
        values = self._adopt(values)
        self._change(list.extend, values, _adds=values)

    def insert(self, index, value):
        value = self._adopt((value,))[0]
        self._change(list.insert, index, value, _adds=(value,))

    def __iadd__(self, values):
        self.extend(values)
        return self


class TrackedDict(Tracked, dict):
    """A dict attribute of a layer (Keras's _DictWrapper): a dict that tells the layer of changes."""

    __slots__ = ("_owner", "_name", "_root", "__weakref__")
    _base = dict

    def _items(self):
        return self.items()

    def setdefault(self, key, default=None):
        """dict.setdefault, giving the value the dict holds: for a list or dict default, its tracked
        copy (so that `heads.setdefault("c", []).append(layer)` is told to the layer)."""
        if key not in self:
            self[key] = _wrap(default, self._owner, self._name, self._root)
        return self[key]

    def update(self, *args, **kwargs):
        items = dict(*args, **kwargs)  # once: an iterator read twice would be empty the second time
        values = self._adopt(items.values())
        items = dict(zip(items, values))
        self._change(dict.update, items, _adds=values)

    def __ior__(self, other):
        self.update(other)
        return self


_reporting(TrackedList, ("pop", "remove", "clear", "sort", "reverse", "__delitem__", "__imul__"))
_reporting(TrackedDict, ("__delitem__", "pop", "popitem", "clear"))
_KINDS = {list: TrackedList, dict: TrackedDict, TrackedList: TrackedList, TrackedDict: TrackedDict}


def _wrap(value, owner, name, root):
    """value as the container root holds it (root None: as the attribute holds it): a list or dict
    (one tracked elsewhere too) as a new tracked copy; a tracked one of root and others as they are.
    owner: a weak reference to the layer."""
    kind = _KINDS.get(type(value))
    if kind is None or owner() is None or (isinstance(value, Tracked) and value._root is root):
        return value
    return kind(value, (owner, name, root))


def track(value, owner, name):
    """What owner's attribute `name` keeps for value: a list or dict as a TrackedList / TrackedDict
    telling owner of changes (the one already kept there, as it is); anything else as it is."""
    if isinstance(value, Tracked) and value._root() is value and value._owner() is owner and value._name == name:
        return value
    return _wrap(value, weakref.ref(owner), name, None)
