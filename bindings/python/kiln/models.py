"""kiln.models (keras.models): the model classes, load_model of a SavedModel directory, and the
config round trips model_from_json and clone_model."""
import json as _json

from .errors import UnimplementedError
from .layers import Model, Sequential, deserialize, serialize
from .saved_model import load_model


def _to_json(self, **kwargs):
    """keras.Model.to_json(**kwargs): the model's serialized config ({"class_name", "config"}) as
    JSON text (kwargs go to json.dumps); model_from_json makes the model again, with new weights."""
    return _json.dumps(serialize(self), **kwargs)


Model.to_json = _to_json


def model_from_json(json_string, custom_objects=None):
    """keras.models.model_from_json: the model of a to_json text (custom classes through
    custom_objects or register_keras_serializable), with newly initialised weights."""
    return deserialize(_json.loads(json_string), custom_objects=custom_objects)


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False,
                **kwargs):
    """keras.models.clone_model: a new model of the same config with newly initialised weights (none
    shared). For a Sequential, clone_function(layer) makes each new layer (by default one of the same
    config). input_tensors, call_function and recursive are not supported (kiln has no functional
    API)."""
    if input_tensors is not None or call_function is not None or recursive or kwargs:
        raise UnimplementedError("clone_model: input_tensors, call_function, recursive and other arguments are not "
                                 "supported; kiln clones a model from its config")
    if clone_function is None:
        return deserialize(serialize(model))
    if not isinstance(model, Sequential):
        raise UnimplementedError("clone_model: clone_function is supported for Sequential models only")
    config = serialize(model)
    first = config["config"]["layers"][0] if config["config"].get("layers") else None
    layers = [clone_function(layer) for layer in model.layers]
    if first is not None and first.get("class_name") == "InputLayer":
        layers.insert(0, deserialize(first))
    return Sequential(layers, name=model.name)


__all__ = ["Model", "Sequential", "load_model", "model_from_json", "clone_model"]
