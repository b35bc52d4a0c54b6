"""kiln errors: one exception class per status code, like tf.errors."""
from . import _lib


class KilnError(Exception):
    """Base of every kiln error; `code` is the C status code."""

    code = 0

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message


class InvalidArgumentError(KilnError, ValueError):
    code = 1


class NotFoundError(KilnError):
    code = 2


class OutOfRangeError(KilnError, IndexError):
    code = 3


class FailedPreconditionError(KilnError, RuntimeError):
    """Also a RuntimeError, Python's class for an operation refused in the object's current state (Keras raises
    RuntimeError where kiln says FAILED_PRECONDITION, e.g. TerminateOnNaN(raise_error=True))."""

    code = 4


class DataLossError(KilnError):
    code = 5


class UnimplementedError(KilnError, NotImplementedError):
    code = 6


class ResourceExhaustedError(KilnError, MemoryError):
    code = 7


class InternalError(KilnError):
    code = 8


_BY_CODE = {c.code: c for c in (InvalidArgumentError, NotFoundError, OutOfRangeError, FailedPreconditionError,
                                DataLossError, UnimplementedError, ResourceExhaustedError, InternalError)}


def check(status):
    """Raises the matching KilnError for a non-NULL kiln_status and frees it."""
    if status:
        code = _lib.lib.kiln_status_get_code(status)
        message = _lib.lib.kiln_status_get_message(status).decode("utf-8", "replace")
        _lib.lib.kiln_status_free(status)
        raise _BY_CODE.get(code, KilnError)(message, code)


# ---------------------------------------------------------------- exceptions raised in callbacks
#
# C calls back into Python (a layer's call, a dataset function, a fit callback). An exception
# raised there crosses back to C as a kiln_status and waits to be re-raised, unchanged, by the
# Python call that entered C: on the thread (a thread-local `pending` slot) or, for callbacks that
# run on pipeline threads, under a token the status message carries. A ctypes callback must never
# raise itself: ctypes would hand C an uninitialised pointer as the status. So making the status
# is guarded, and when even that fails (near the recursion limit every Python-level call fails) a
# status made in advance is handed out; taking one is a builtin list.pop, which needs no frame.

import itertools as _itertools  # noqa: E402 - grouped with the code that uses them
import re as _re  # noqa: E402
import threading as _threading  # noqa: E402
import traceback as _traceback  # noqa: E402

PENDING = {}                    # token -> exception waiting for the Python call that entered C
CALLBACK_TLS = _threading.local()  # .pending: a callback's exception waiting on its thread (call_c)
PENDING_LOCK = _threading.Lock()
KEYS = _itertools.count(1)      # tokens (and data.py's callback keys)
TOKEN = _re.compile(r"\[kiln-python-exception (\d+)\]")
_SPARE = []                     # statuses made in advance, for when no status can be made
_SPARE_TEXT = (b"Python exception in a kiln callback; its details could not be formatted (for example "
               b"near the recursion limit)")
_NUM_SPARE = 8


def _refill_spares():
    try:
        while len(_SPARE) < _NUM_SPARE:
            s = _lib.lib.kiln_status_create(8, _SPARE_TEXT)
            if not s:
                return
            _SPARE.append(s)
    except BaseException:  # noqa: B902 - best effort; the pool is refilled on the next error
        pass


def _describe(exc):
    try:
        return "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # noqa: B902 - formatting itself can fail (RecursionError, a broken __str__)
        try:
            return "%s (its traceback could not be formatted)" % type(exc).__name__
        except BaseException:  # noqa: B902
            return "an exception (it could not be formatted)"


def callback_status(exc, where, tls=None, token=False):
    """The kiln_status to hand C for exception exc raised in a callback (`where` says which). The
    exception waits for re-raising in tls.pending (when tls is given) and, with token=True, in
    PENDING under a token the message carries. Never raises; never returns NULL unless no status
    can be made at all."""
    try:
        if tls is not None:
            tls.pending = exc
        head = ""
        if token:
            t = next(KEYS)
            with PENDING_LOCK:
                PENDING[t] = exc
                while len(PENDING) > 256:  # never consumed (an iterator freed with errors in flight)
                    del PENDING[next(iter(PENDING))]
            head = "[kiln-python-exception %d] " % t
        code = getattr(exc, "code", None)
        code = code if isinstance(code, int) and not isinstance(code, bool) and 1 <= code <= 8 else 8
        msg = "%sPython exception in %s:\n%s" % (head, where, _describe(exc))
        status = _lib.lib.kiln_status_create(code, msg.encode("utf-8", "replace"))
        if status:
            if len(_SPARE) < _NUM_SPARE:
                _refill_spares()
            return status
    except BaseException:  # noqa: B902 - fall back to a status made in advance
        pass
    return spare_status()


def spare_status():
    """A status made in advance (None when the pool is empty). Safe to call near the recursion limit
    only as `errors._SPARE.pop()` is; callers at risk use that expression directly."""
    try:
        return _SPARE.pop()
    except BaseException:  # noqa: B902
        return None


def guard_callback(where, tls=None, token=False):
    """Decorator for the Python function behind a ctypes callback that returns a kiln_status: an
    exception becomes a status (see callback_status) and nothing ever escapes to ctypes."""
    def decorate(fn):
        def callback(*args):
            try:
                return fn(*args)
            except BaseException as e:  # noqa: B902 - every exception crosses back as a status
                try:
                    return callback_status(e, where(args) if callable(where) else where, tls, token)
                except BaseException:  # noqa: B902 - not even a call was possible: no frame needed
                    if tls is not None:
                        tls.pending = e
                    return _SPARE.pop() if _SPARE else None
        callback.__name__ = getattr(fn, "__name__", "callback")
        callback.__doc__ = fn.__doc__
        return callback
    return decorate


_GUARD_CODE = guard_callback("")(lambda: None).__code__  # the frame of every guarded callback


def take_pending(status):
    """The exception waiting under the token a status message carries (callback_status with
    token=True), taken out of PENDING; None when the status carries none or it was taken."""
    m = TOKEN.search(_lib.lib.kiln_status_get_message(status).decode("utf-8", "replace"))
    if not m:
        return None
    with PENDING_LOCK:
        return PENDING.pop(int(m.group(1)), None)


def ensure_headroom(frames=12):
    """Raises RecursionError unless `frames` more Python frames fit under the recursion limit. Called
    before entering C on a path where C calls back into Python: ctypes cannot report an exception
    raised while entering the callback (it would hand C garbage), so there must be room for it: the
    callback's wrapper frame and its fallback (errors.guard_callback) need only a few frames."""
    _probe(frames)


def _probe(n):
    return _probe(n - 1) if n > 0 else None


_refill_spares()


# ---------------------------------------------------------------- Ctrl-C during a C call
#
# Python's own SIGINT handler raises KeyboardInterrupt at any bytecode, which may be inside a
# ctypes callback's frame before its guard (guard_callback), where ctypes would hand C an undefined
# status: a crash. So while the outermost C call that may call back into Python (fit, a layer's
# call, a dataset iterator's next, ...) runs on the main thread under the default handler, SIGINT
# only sets a flag. Hooks that run inside a guard may raise it (take_interrupt: fit's per-batch
# hook, callbacks._Interruptible); a flag still set when the call returns raises KeyboardInterrupt
# then, after the call's status is dealt with (deferred_call).

import signal as _signal  # noqa: E402


class DeferredInterrupt:
    """Context manager: SIGINT is deferred while the outermost one on the main thread is open. On
    leaving it, `interrupted` says whether Ctrl-C arrived and was not yet taken."""

    depth = 0         # open managers on the main thread
    pending = False
    saved = None

    def __init__(self):
        self.active = False
        self.interrupted = False

    def __enter__(self):
        if _threading.current_thread() is not _threading.main_thread():
            return self  # signals reach the main thread only; other threads leave the handler alone
        cls = DeferredInterrupt
        if cls.depth == 0:
            if _signal.getsignal(_signal.SIGINT) is not _signal.default_int_handler:
                return self  # the program installed its own handler: it keeps it
            cls.pending = False
            cls.saved = _signal.signal(_signal.SIGINT, _defer_sigint)
        cls.depth += 1
        self.active = True
        return self

    def __exit__(self, *exc):
        if not self.active:
            return False
        self.active = False
        cls = DeferredInterrupt
        cls.depth -= 1
        if cls.depth == 0:
            _signal.signal(_signal.SIGINT, cls.saved)
            cls.saved = None
            self.interrupted = cls.pending
            cls.pending = False
        return False


def _defer_sigint(signum, frame):
    # Python code that a guarded callback runs (a layer's call, a map function) may take the
    # interrupt at once: it becomes the callback's status, and the call that entered C raises it,
    # so that a long or stuck callback still stops on Ctrl-C. Anywhere else (the guard's own frame,
    # C, or Python outside a callback) it waits for take_interrupt or the end of the call.
    f = frame.f_back if frame is not None else None
    while f is not None:
        if f.f_code is _GUARD_CODE:
            raise KeyboardInterrupt
        f = f.f_back
    DeferredInterrupt.pending = True


def take_interrupt():
    """True (and cleared) when Ctrl-C arrived during the current deferred C call."""
    if DeferredInterrupt.pending:
        DeferredInterrupt.pending = False
        return True
    return False


def deferred_call(fn, *args):
    """fn(*args), a C call that may call back into Python, with Ctrl-C deferred (DeferredInterrupt).
    Returns its status; when Ctrl-C arrived meanwhile, frees the status and raises KeyboardInterrupt."""
    with DeferredInterrupt() as d:
        status = fn(*args)
    if d.interrupted:
        if status:  # its error, if Python raised it, is dropped for the KeyboardInterrupt
            take_pending(status)
            _lib.lib.kiln_status_free(status)
        raise KeyboardInterrupt
    return status


def call_c(fn, *args):
    """Calls a C function; a failure caused by a Python callback that kept its exception in
    CALLBACK_TLS (a layer's, a fit callback's, a learning-rate schedule's) re-raises that exception."""
    ensure_headroom()  # a callback C makes must be able to start and report its errors
    CALLBACK_TLS.pending = None
    status = deferred_call(fn, *args)
    if status:
        pending = getattr(CALLBACK_TLS, "pending", None)
        CALLBACK_TLS.pending = None
        if pending is not None:
            _lib.lib.kiln_status_free(status)
            try:
                raise pending
            finally:
                pending = None  # no cycle through this frame (it is in the traceback)
        check(status)
