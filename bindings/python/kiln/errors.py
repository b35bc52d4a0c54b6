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


class FailedPreconditionError(KilnError):
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
