"""kiln.communicator: the collectives data-parallel training runs on (kiln/communicator.h), over
any transport. kiln.distributed gives the one over MPI; Communicator.create wraps the caller's:

    def allreduce(buffer, dtype):        # sum over the ranks, in place
        arr = np.frombuffer(buffer, dtype)
        arr[...] = my_transport.allreduce_sum(arr)

    def broadcast(buffer, root):         # root's bytes to every rank
        buffer[:] = my_transport.broadcast(bytes(buffer), root)

    comm = kiln.Communicator.create(rank, size, allreduce, broadcast)
    model.fit(x, y, distribution=comm)
"""
import ctypes
import itertools

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from .errors import InvalidArgumentError, check, guard_callback

__all__ = ["Communicator"]

L = _lib.lib

# kiln_dtype code -> (name, memoryview format, item size)
_FORMATS = {1: ("float32", "f", 4), 2: ("bfloat16", "H", 2), 3: ("int32", "i", 4), 4: ("int64", "q", 8),
            7: ("float64", "d", 8)}
_LIVE = {}  # token -> (allreduce, broadcast), from create until kiln destroys the communicator
_TOKENS = itertools.count(1)


def _buffer(address, nbytes, fmt):
    """A writable memoryview of nbytes at address, in format fmt."""
    if nbytes == 0:
        return memoryview(bytearray()).cast(fmt)
    return memoryview((ctypes.c_char * nbytes).from_address(address)).cast("B").cast(fmt)


@guard_callback("Communicator.create's allreduce")
def _allreduce(data, count, dtype, user):
    if dtype not in _FORMATS:
        raise InvalidArgumentError("Communicator allreduce: unknown dtype code %d" % dtype)
    name, fmt, size = _FORMATS[dtype]
    _LIVE[user][0](_buffer(data, count * size, fmt), name)


@guard_callback("Communicator.create's broadcast")
def _broadcast(data, nbytes, root, user):
    _LIVE[user][1](_buffer(data, nbytes, "B"), root)


def _destroy(user):
    _LIVE.pop(user, None)


# One set of C thunks for every communicator made here: they live as long as the module, so no
# thunk is freed while C may still call it; each call finds its functions by the token.
_TABLE = _lib.CommunicatorTable(ctypes.sizeof(_lib.CommunicatorTable), _lib.COMM_ALLREDUCE(_allreduce),
                                _lib.COMM_BROADCAST(_broadcast), _lib.COMM_DESTROY(_destroy))


class Communicator(_Uncopyable):
    """A kiln_communicator handle: the collectives fit, DistributedOptimizer and
    DistributedGradientTape use (kiln.distributed.communicator() for MPI's)."""

    def __init__(self, handle):
        self._h = handle

    @classmethod
    def create(cls, rank, size, allreduce, broadcast):
        """A communicator over the caller's transport, in which this process is `rank` of `size`.
        allreduce(buffer, dtype) sums the elements of buffer (a writable memoryview; dtype is
        "float32", "float64", "bfloat16" (as uint16 bits), "int32" or "int64";
        numpy.frombuffer(buffer, dtype) views it) over the ranks, in place. broadcast(buffer, root)
        copies root's bytes of buffer (a writable memoryview of bytes) to every rank. Every rank
        calls them in the same order; they may run on kiln's background thread. An exception in
        either reaches the training as its error. The buffer is kiln's memory, valid only during
        the call: finish with it (copy, or wait for an asynchronous collective) before returning."""
        if not callable(allreduce) or not callable(broadcast):
            raise InvalidArgumentError("Communicator.create: allreduce and broadcast must be callable; got %r and %r"
                                       % (type(allreduce).__name__, type(broadcast).__name__))
        token = next(_TOKENS)
        _LIVE[token] = (allreduce, broadcast)
        out = ctypes.c_void_p()
        try:
            check(L.kiln_communicator_create(ctypes.byref(out), int(rank), int(size), ctypes.byref(_TABLE),
                                             ctypes.c_void_p(token)))
        except BaseException:
            _LIVE.pop(token, None)  # on failure kiln does not call destroy
            raise
        return cls(out.value)

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_communicator_free(h)
            self._h = None

    @property
    def rank(self):
        return L.kiln_communicator_get_rank(self._h)

    @property
    def size(self):
        return L.kiln_communicator_get_size(self._h)
