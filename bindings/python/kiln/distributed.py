"""kiln.distributed: data-parallel training over MPI (Horovod's API, and tf.distribute's
MirroredStrategy for fit), through libkiln_mpi.so.

    import kiln
    import kiln.distributed as kd

    kd.init()
    strategy = kd.MirroredStrategy()
    with strategy.scope():
        model = kiln.Sequential([...])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=5)     # each global batch of 128 split over the ranks

    # or a custom loop, as with Horovod:
    opt = kd.DistributedOptimizer(kiln.optimizers.Adam(1e-3))
    kd.broadcast_variables(model.variables, root_rank=0)
    # or Horovod's DistributedGradientTape with a plain optimizer: the gradients are averaged in
    # buckets while the backward pass goes on
    with kiln.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    tape = kd.DistributedGradientTape(tape)
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

Run with `mpirun -np 2 python3 train.py`. Every rank runs the same program and calls the
collectives in the same order. A rank that raises an uncaught exception ends the whole job
(MPI_Abort) so the others do not wait; a collective that waits longer than timeout_seconds ends
its process with a message saying which one.
"""
import atexit
import contextlib
import ctypes
import os
import sys
import threading

from . import _lib
from .communicator import Communicator
from .errors import InvalidArgumentError, check
from .tensor import _new, convert_to_tensor

__all__ = ["init", "finalize", "is_initialized", "rank", "size", "local_rank", "local_size", "allreduce", "allreduce_",
           "broadcast", "allgather", "barrier", "broadcast_variables", "DistributedOptimizer", "DistributedGradientTape",
           "MirroredStrategy",
           "Communicator", "communicator", "abort"]

L = _lib.lib


def _candidates():
    env = os.environ.get("KILN_MPI_LIBRARY")
    if env:
        yield env
    # Beside the libkiln.so in use (installed together), then in the build trees.
    core = getattr(L, "_name", None)
    if core and os.path.exists(core):
        core = os.path.abspath(core)
        yield os.path.join(os.path.dirname(core), "libkiln_mpi.so")
        yield os.path.join(os.path.dirname(os.path.dirname(core)), "src", "distributed", "libkiln_mpi.so")
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libkiln_mpi.so")
    root = os.path.abspath(os.path.join(here, "..", "..", ".."))
    for build in ("build", "build-release"):
        yield os.path.join(root, build, "src", "distributed", "libkiln_mpi.so")
    yield "libkiln_mpi.so"


def _load():
    tried = []
    for path in _candidates():
        if os.path.isabs(path) and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            # RTLD_GLOBAL: Open MPI loads its own plugins later, and they look for libmpi's symbols
            # in the global scope.
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("kiln.distributed: cannot load libkiln_mpi.so (kiln was built without MPI, or set "
                      "KILN_MPI_LIBRARY to its path). Tried: " + "; ".join(tried))


M = _load()
for _name, (_res, _args) in _lib.DIST_SIGS.items():
    _lib._declare(M, _name, _res, _args)

_lock = threading.Lock()
_excepthook_installed = False


def _int(fn):
    out = ctypes.c_int()
    check(fn(ctypes.byref(out)))
    return out.value


def _abort_on_uncaught(previous):
    def hook(kind, value, tb):
        previous(kind, value, tb)
        if M.kiln_dist_is_initialized() and size() > 1:
            sys.stderr.write("kiln.distributed: rank %d raised an uncaught %s; ending every rank of the job\n"
                             % (rank(), kind.__name__))
            sys.stderr.flush()
            M.kiln_dist_abort(1)
    return hook


def init(timeout_seconds=None, threads_per_process=None):
    """hvd.init(): starts MPI (or attaches to an MPI already started). timeout_seconds bounds the
    wait of each collective (default 300, or KILN_DIST_TIMEOUT_SECONDS; 0: no limit);
    threads_per_process sets the kernel threads of each process (default: the processors divided
    among the ranks on this machine, unless OMP_NUM_THREADS is set). A second call is a no-op."""
    global _excepthook_installed
    from . import config as _config
    options = {}
    if timeout_seconds is not None:
        options["timeout_seconds"] = float(timeout_seconds)
    if threads_per_process is not None:
        options["threads_per_process"] = int(threads_per_process)
    with _lock:
        with _config.to_c(options) as c:
            check(M.kiln_dist_init(c))
        if not _excepthook_installed:
            sys.excepthook = _abort_on_uncaught(sys.excepthook)
            atexit.register(finalize)
            _excepthook_installed = True


def finalize():
    """Ends MPI if init started it (also done at exit)."""
    check(M.kiln_dist_finalize())


def is_initialized():
    return bool(M.kiln_dist_is_initialized())


def abort(code=1):
    """Ends every process of the job now (MPI_Abort)."""
    M.kiln_dist_abort(int(code))


def rank():
    """This process's rank in the job (hvd.rank())."""
    return _int(M.kiln_dist_rank)


def size():
    """The number of processes (hvd.size())."""
    return _int(M.kiln_dist_size)


def local_rank():
    """The rank among the processes on this machine (hvd.local_rank())."""
    return _int(M.kiln_dist_local_rank)


def local_size():
    return _int(M.kiln_dist_local_size)


def allreduce(tensor, op="mean"):
    """hvd.allreduce: the element-wise "mean" (default) or "sum" of tensor over the ranks
    (float32, float64, bfloat16; int32/int64 for "sum")."""
    if op not in ("mean", "sum"):
        raise InvalidArgumentError('allreduce: op is %r; expected "sum" or "mean"' % (op,))
    return _new(M.kiln_dist_allreduce, convert_to_tensor(tensor), op.encode())


def allreduce_(variable, op="mean"):
    """hvd.allreduce_: allreduce in place on a kiln.Variable (its value becomes the mean or sum)."""
    if op not in ("mean", "sum"):
        raise InvalidArgumentError('allreduce_: op is %r; expected "sum" or "mean"' % (op,))
    check(M.kiln_dist_allreduce_variable(variable._h, op.encode()))


def broadcast(tensor, root_rank=0):
    """hvd.broadcast: root_rank's tensor on every rank (the same dtype and shape everywhere)."""
    return _new(M.kiln_dist_broadcast, convert_to_tensor(tensor), int(root_rank))


def allgather(tensor):
    """hvd.allgather: the ranks' tensors concatenated along axis 0 in rank order (their first
    dimensions may differ)."""
    return _new(M.kiln_dist_allgather, convert_to_tensor(tensor))


def barrier():
    check(M.kiln_dist_barrier())


_world = None


def communicator():
    """The communicator over every rank of the job (made once)."""
    global _world
    with _lock:
        if _world is None:
            out = ctypes.c_void_p()
            check(M.kiln_dist_communicator(ctypes.byref(out)))
            _world = Communicator(out.value)
        return _world


@atexit.register
def _drop_world():
    # At exit, before or after finalize: freeing a communicator calls no MPI.
    global _world
    _world = None


def broadcast_variables(variables, root_rank=0):
    """hvd.broadcast_variables: root_rank's values of the variables on every rank, in one fused
    broadcast; every rank must pass the same number of variables with the same shapes."""
    vs = list(variables)
    arr = (ctypes.c_void_p * max(len(vs), 1))(*[v._h for v in vs])
    check(L.kiln_communicator_broadcast_variables(communicator()._h, ctypes.cast(arr, _lib._HP), len(vs),
                                                  int(root_rank)))


def _options(op, fusion_threshold_bytes, overlap):
    from . import config as _config
    return _config.to_c({"op": op, "fusion_threshold_bytes": int(fusion_threshold_bytes), "overlap": bool(overlap)})


def DistributedOptimizer(optimizer, op="mean", fusion_threshold_bytes=64 << 20, communicator_=None, overlap=True):
    """hvd.DistributedOptimizer: makes optimizer average (op="mean") or sum its gradients over the
    ranks in apply_gradients, packed into fusion buffers of up to fusion_threshold_bytes, and
    returns it (the same object: its state and checkpoints are the optimizer's own). fit's own
    train step sums them during the backward pass unless overlap is False."""
    comm = communicator_ if communicator_ is not None else communicator()
    with _options(op, fusion_threshold_bytes, overlap) as c:
        check(L.kiln_optimizer_set_distributed(optimizer._h, comm._h, c))
    optimizer._kiln_communicator = comm  # alive as long as the optimizer uses it
    return optimizer


def DistributedGradientTape(tape, op="mean", fusion_threshold_bytes=64 << 20, communicator_=None, overlap=True):
    """hvd.DistributedGradientTape: tape.gradient(...) gives the mean (op="mean") or sum of the
    gradients over the ranks, summed in buckets on a background thread while the backward pass
    goes on (laid out in reverse source order and summed in that order; the first bucket at most
    1 MiB, the others up to fusion_threshold_bytes; overlap=False sums after the pass). Returns
    tape (the same object). Use a plain optimizer with it: a DistributedOptimizer would average
    again. A gradient defined on some ranks but not all raises FailedPreconditionError on all."""
    comm = communicator_ if communicator_ is not None else communicator()
    if not hasattr(tape, "_persistent"):
        raise InvalidArgumentError("DistributedGradientTape: expected a kiln.GradientTape; got %r" % (tape,))
    if op not in ("mean", "sum"):
        raise InvalidArgumentError('DistributedGradientTape: op is %r; expected "mean" or "sum"' % (op,))
    if int(fusion_threshold_bytes) < 0:
        raise InvalidArgumentError("DistributedGradientTape: fusion_threshold_bytes is %d; expected >= 0"
                                   % int(fusion_threshold_bytes))

    def setup(handle):
        with _options(op, fusion_threshold_bytes, overlap) as c:
            check(L.kiln_tape_set_distributed(handle, comm._h, c))

    if tape._h is not None:
        setup(tape._h)
    tape._kiln_on_create = setup
    tape._kiln_communicator = comm  # alive as long as the tape uses it
    return tape


_current = threading.local()


def _current_strategy():
    return getattr(_current, "strategy", None)


class MirroredStrategy:
    """tf.distribute's MirroredStrategy (MultiWorkerMirroredStrategy) over MPI: a model compiled
    in scope() trains data-parallel in fit, with batch_size the global batch."""

    def __init__(self):
        init()
        self._comm = communicator()

    @property
    def num_replicas_in_sync(self):
        return self._comm.size

    @property
    def communicator(self):
        return self._comm

    @contextlib.contextmanager
    def scope(self):
        previous = _current_strategy()
        _current.strategy = self
        try:
            yield self
        finally:
            _current.strategy = previous


def _strategy_for(model, distribution):
    """The strategy fit runs with: the argument, the one the model was compiled under, or the
    scope fit is called in."""
    if distribution is None:
        distribution = model.__dict__.get("_kiln_strategy") or _current_strategy()
    if distribution is None:
        return None
    if isinstance(distribution, MirroredStrategy):
        return distribution.communicator
    if isinstance(distribution, Communicator):
        return distribution
    raise InvalidArgumentError("fit: distribution must be a kiln.distributed.MirroredStrategy or Communicator; "
                               "got %r" % (type(distribution).__name__,))

