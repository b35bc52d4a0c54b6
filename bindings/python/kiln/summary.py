"""kiln.summary: tf.summary over the C ABI (kiln/summary.h) — TensorBoard event files.

    writer = kiln.summary.create_file_writer("logs/run1")
    with writer.as_default():
        kiln.summary.scalar("loss", mean_loss.result(), step=optimizer.iterations)
        kiln.summary.histogram("weights", dense.kernel, step=optimizer.iterations)

The files are what TensorFlow 2 writes, so `tensorboard --logdir logs` shows them unchanged. Each
thread has a stack of default writers (`as_default`) and a default step (`set_step`, which may be
bound to a Variable such as optimizer.iterations). Summary functions return False when the
thread has no default writer or recording is off, as TensorFlow's do.
"""
import contextlib
import ctypes
import numbers
import os
import threading

from . import _lib
from ._copy import Uncopyable as _Uncopyable
from . import config as _config
from ._handles import as_tensor, config_dict
from .errors import InvalidArgumentError, check
from .tensor import checked_int64

L = _lib.lib

__all__ = ["create_file_writer", "create_noop_writer", "SummaryWriter", "scalar", "histogram", "image", "text",
           "write_hparams", "hparams", "hparams_end", "hparams_config", "trace_on", "trace_export", "trace_off",
           "record_if", "should_record_summaries", "read_events", "experimental"]


def _bytes(s, what):
    if not isinstance(s, str):
        raise InvalidArgumentError("summary: %s must be a str; got %s" % (what, type(s).__name__))
    return s.encode("utf-8")


def _step_arg(step):
    """A ctypes int64 pointer for step (None: the default step). Variables and tensors are read."""
    if step is None:
        return None
    try:
        if isinstance(step, numbers.Real) and not isinstance(step, numbers.Integral):
            raise TypeError  # 1.5 is no step (TF cannot convert it to int64)
        value = int(step)
    except (TypeError, ValueError):
        raise InvalidArgumentError("summary: step must be an integer, a Variable or a scalar tensor; got %r" % (step,))
    return ctypes.byref(ctypes.c_int64(checked_int64(value, "step", "summary")))


def _desc(description):
    return None if description is None else _bytes(description, "description")


class SummaryWriter(_Uncopyable):
    """tf.summary.SummaryWriter: an event file in a log directory. close() (or the writer being
    garbage-collected) flushes everything."""

    def __init__(self, handle):
        self._h = handle

    def __del__(self):
        h = getattr(self, "_h", None)
        if h:
            L.kiln_summary_writer_free(h)
            self._h = None

    @property
    def path(self):
        """The event file."""
        return L.kiln_summary_writer_get_path(self._handle()).decode("utf-8")

    @property
    def logdir(self):
        return L.kiln_summary_writer_get_logdir(self._handle()).decode("utf-8")

    def _handle(self):
        if not self._h:
            raise InvalidArgumentError("SummaryWriter: this writer has no handle (a no-op writer)")
        return self._h

    @contextlib.contextmanager
    def as_default(self, step=None):
        """Makes this the thread's default writer inside the with block (and step the default
        step, when given)."""
        check(L.kiln_summary_writer_push_default(self._h, _step_arg(step)))
        try:
            yield self
        finally:
            check(L.kiln_summary_writer_pop_default())

    def set_as_default(self, step=None):
        """Makes this the thread's default writer from now on."""
        check(L.kiln_summary_writer_push_default(self._h, _step_arg(step)))

    def flush(self):
        if self._h:
            check(L.kiln_summary_writer_flush(self._h))

    def close(self):
        if self._h:
            check(L.kiln_summary_writer_close(self._h))

    def init(self):
        """TF's writer.init(): the file exists from creation, so there is nothing to do."""


def create_file_writer(logdir, max_queue=None, flush_millis=None, filename_suffix=None, name=None):
    """tf.summary.create_file_writer: a new event file in logdir (created with its parents)."""
    del name  # TF's op name; there are no graph ops here
    o = _lib.SummaryWriterOptions()
    check(L.kiln_summary_writer_options_init(ctypes.byref(o), ctypes.sizeof(o)))
    if max_queue is not None:
        o.max_queue = int(max_queue)
    if flush_millis is not None:
        o.flush_millis = int(flush_millis)
    suffix = None
    if filename_suffix is not None:
        suffix = _bytes(filename_suffix, "filename_suffix")
        o.filename_suffix = suffix
    out = ctypes.c_void_p()
    check(L.kiln_summary_create_file_writer(ctypes.byref(out), os.fsencode(os.fspath(logdir)), ctypes.byref(o)))
    return SummaryWriter(out.value)


def create_noop_writer():
    """tf.summary.create_noop_writer: a writer whose as_default() turns summaries off."""
    return SummaryWriter(None)


class _Experimental:
    """tf.summary.experimental: set_step / get_step for the calling thread."""

    @staticmethod
    def set_step(step):
        if step is None:
            check(L.kiln_summary_clear_step())
        elif hasattr(step, "_h") and hasattr(step, "assign_add"):  # a Variable: read at each summary
            check(L.kiln_summary_set_step_variable(step._h))
        else:
            try:
                value = int(step)
            except (TypeError, ValueError):
                raise InvalidArgumentError("set_step: expected an integer or a Variable; got %r" % (step,))
            check(L.kiln_summary_set_step(value))

    @staticmethod
    def get_step():
        out, has = ctypes.c_int64(), ctypes.c_bool()
        check(L.kiln_summary_get_step(ctypes.byref(out), ctypes.byref(has)))
        return out.value if has.value else None


experimental = _Experimental()


_recording = threading.local()  # .on: this thread's record_if condition (C keeps it per thread too)


@contextlib.contextmanager
def record_if(condition):
    """tf.summary.record_if: summaries inside the block are written only when condition is true
    (a bool, or a callable returning one, evaluated on entry)."""
    on = bool(condition() if callable(condition) else condition)
    previous = getattr(_recording, "on", True)  # an enclosing record_if's, restored on exit
    check(L.kiln_summary_record_if(on))
    _recording.on = on
    try:
        yield
    finally:
        _recording.on = previous
        check(L.kiln_summary_record_if(previous))


def should_record_summaries():
    """tf.summary.should_record_summaries: whether a summary written now would be recorded (the
    thread has a default writer and recording is on)."""
    out = ctypes.c_bool()
    check(L.kiln_summary_should_record(ctypes.byref(out)))
    return bool(out.value)


def _written(fn, *args):
    w = ctypes.c_bool()
    check(fn(*args, ctypes.byref(w)))
    return bool(w.value)


def scalar(name, data, step=None, description=None):
    """tf.summary.scalar: a float32 scalar (data: a number, a one-element tensor or a Variable)."""
    if hasattr(data, "_kiln_value") or hasattr(data, "_h"):
        t = as_tensor(data)
        if t.size != 1:
            raise InvalidArgumentError("scalar: data is %s; expected a scalar (one element)" % (t,))
        value = float(t.item())
    else:
        try:
            value = float(data)
        except (TypeError, ValueError):
            raise InvalidArgumentError("scalar: data must be a number or a one-element tensor; got %r" % (data,))
    return _written(L.kiln_summary_scalar, _bytes(name, "name"), value, _step_arg(step), _desc(description))


def histogram(name, data, step=None, buckets=None, description=None):
    """tf.summary.histogram: data of any numeric dtype in `buckets` (30) equal-width buckets."""
    t = as_tensor(data)
    return _written(L.kiln_summary_histogram, _bytes(name, "name"), t._h, _step_arg(step),
                    30 if buckets is None else int(buckets), _desc(description))


def image(name, data, step=None, max_outputs=3, description=None):
    """tf.summary.image: data [k, h, w, c] (c = 1, 2, 3 or 4), uint8 or float in [0, 1], as PNG."""
    t = as_tensor(data)
    return _written(L.kiln_summary_image, _bytes(name, "name"), t._h, _step_arg(step), int(max_outputs),
                    _desc(description))


def text(name, data, step=None, description=None):
    """tf.summary.text: a string (markdown renders, tables included)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return _written(L.kiln_summary_text, _bytes(name, "name"), _bytes(data, "data"), _step_arg(step),
                    _desc(description))


def hparams(hparams, trial_id=None, start_time_secs=None):
    """TensorBoard's hp.hparams: this run's hyperparameter values ({name: number, bool or str})."""
    del start_time_secs  # always now
    if not isinstance(hparams, dict):
        raise InvalidArgumentError("hparams: expected a dict of name -> value; got %s" % type(hparams).__name__)
    values = {}
    for k, v in hparams.items():
        key = getattr(k, "name", k)  # hp.HParam objects are keyed by their name
        values[str(key)] = v
    with _config.to_c(values) as c:
        return _written(L.kiln_summary_hparams, c, None if trial_id is None else _bytes(trial_id, "trial_id"))


write_hparams = hparams


def hparams_end(status="success"):
    """The hparams plugin's session-end summary ("success", "failure", "running", "unknown")."""
    return _written(L.kiln_summary_hparams_end, _bytes(status, "status"))


def hparams_config(hparams, metrics, time_created_secs=None):
    """TensorBoard's hp.hparams_config: hparams [{"name", "values": [...]} or {"name", "min_value",
    "max_value"}, ...], metrics [{"tag", "display_name"?, ...}, ...] (dicts)."""
    del time_created_secs
    with _config.to_c({"hparams": list(hparams), "metrics": list(metrics)}) as c:
        return _written(L.kiln_summary_hparams_config, c)


def trace_on(graph=True, profiler=False):
    """tf.summary.trace_on: time every op this thread runs until trace_export / trace_off."""
    del graph, profiler
    check(L.kiln_summary_trace_on())


def trace_export(name, step=None, profiler_outdir=None):
    """tf.summary.trace_export: writes the op timings as a markdown table (text `name`) and one
    scalar `name/<op>` of microseconds per op, then stops tracing."""
    del profiler_outdir
    return _written(L.kiln_summary_trace_export, _bytes(name, "name"), _step_arg(step))


def trace_off():
    check(L.kiln_summary_trace_off())


def read_events(path):
    """Reads one event file, verifying both CRCs of every record: {"path", "truncated",
    "truncation_message", "events": [{"step", "wall_time", "values": [{"tag", "plugin", "kind",
    ...}]}]}. A damaged record raises kiln.DataLossError naming it."""
    out = ctypes.c_void_p()
    check(L.kiln_summary_read_events(ctypes.byref(out), os.fsencode(os.fspath(path))))
    try:
        return _config.from_c(out.value)
    finally:
        L.kiln_config_free(out.value)
