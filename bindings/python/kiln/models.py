"""kiln.models (keras.models): the model classes and load_model of a SavedModel directory."""
from .layers import Model, Sequential
from .saved_model import load_model

__all__ = ["Model", "Sequential", "load_model"]
