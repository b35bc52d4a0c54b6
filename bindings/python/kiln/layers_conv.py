"""Built-in convolution and pooling layers (kiln.layers.Conv2D, ...)."""
from .layers import _BUILTINS, _builtin, _serializable  # noqa: F401

__all__ = []
