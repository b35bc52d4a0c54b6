"""Built-in attention, merge and reshaping layers (kiln.layers.MultiHeadAttention, Add, ...)."""
from .layers import _BUILTINS, _builtin, _serializable  # noqa: F401

__all__ = []
