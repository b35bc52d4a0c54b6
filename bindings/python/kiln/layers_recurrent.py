"""Built-in recurrent layers (kiln.layers.SimpleRNN, GRU, LSTM, RNN), the cells (SimpleRNNCell, GRUCell,
LSTMCell, StackedRNNCells) and the wrappers Bidirectional, TimeDistributed and SpectralNormalization, as
Keras 3's."""
import ctypes
import numbers as _numbers
import warnings

from . import config as _config

from .errors import InvalidArgumentError
from .layers import (_BUILTINS, _Builtin, _builtin, L, _base_config, _call_cell, _cell_sizes, _flat_states,
                     _new_handle, _serializable, _sync_cell, _wrap, Layer)
from .layers_conv import _tuple


def _rate(x):
    return float(x)


def _cell_config(kind, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, reset_after=True, seed=None, implementation=2, owner=None):
    """The cell arguments of kind ("SimpleRNN", "GRU", "LSTM"), which its cell and its layer share."""
    if isinstance(units, bool) or not isinstance(units, _numbers.Integral):
        raise InvalidArgumentError("%s: units must be an int; got %r" % (owner or kind, units))
    c = {"units": int(units), "activation": _serializable(activation) or "linear"}
    if kind != "SimpleRNN":
        c["recurrent_activation"] = _serializable(recurrent_activation) or "linear"
    c.update({"use_bias": bool(use_bias), "kernel_initializer": _serializable(kernel_initializer),
              "recurrent_initializer": _serializable(recurrent_initializer),
              "bias_initializer": _serializable(bias_initializer)})
    if kind == "LSTM":
        c["unit_forget_bias"] = bool(unit_forget_bias)
    c.update({"kernel_regularizer": _serializable(kernel_regularizer),
              "recurrent_regularizer": _serializable(recurrent_regularizer),
              "bias_regularizer": _serializable(bias_regularizer), "kernel_constraint": kernel_constraint,
              "recurrent_constraint": recurrent_constraint, "bias_constraint": bias_constraint,
              "dropout": _rate(dropout), "recurrent_dropout": _rate(recurrent_dropout)})
    if kind == "GRU":
        c["reset_after"] = bool(reset_after)
    c["seed"] = int(seed) if seed is not None else None
    if implementation != 2:
        c["implementation"] = int(implementation)
    return c


def _loop_config(return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 zero_output_for_mask=False):
    """keras.layers.RNN's own arguments."""
    return {"return_sequences": bool(return_sequences), "return_state": bool(return_state),
            "go_backwards": bool(go_backwards), "stateful": bool(stateful), "unroll": bool(unroll),
            "zero_output_for_mask": bool(zero_output_for_mask)}


_LOOP_KEYS = {"return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask"}


def _recurrent_config(kind, units, activity_regularizer=None, use_cudnn="auto", **kwargs):
    c = _loop_config(**{k: v for k, v in kwargs.items() if k in _LOOP_KEYS})
    c.update(_cell_config(kind, units, **{k: v for k, v in kwargs.items() if k not in _LOOP_KEYS}))
    c["activity_regularizer"] = _serializable(activity_regularizer)
    if use_cudnn != "auto":
        c["use_cudnn"] = use_cudnn
    return c


class _Recurrent(_Builtin):
    def __call__(self, sequences, initial_state=None, mask=None, training=None):
        """Keras's RNN call: layer(sequences, initial_state=None, mask=None, training=None). The C layer
        takes the initial states as inputs after the sequences; layer([sequences, h, c]) passes such a
        list as it is. mask defaults to the sequences' _keras_mask."""
        if initial_state is None:
            return Layer.__call__(self, sequences, training=training, mask=mask)
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if mask is None:
            mask = getattr(sequences, "_keras_mask", None)
        return Layer.__call__(self, [sequences] + states, training=training, mask=[mask] + [None] * len(states))


def _units_class(class_name, base, make_config, doc, params):
    """A class (a layer or a cell) taking units, then the keyword arguments params, whose own config
    make_config(units, **kwargs) gives."""
    def __init__(self, units, *args, name=None, trainable=True, dtype=None, **kwargs):
        unknown = sorted(set(kwargs) - params)
        if unknown:
            raise TypeError("%s: unexpected keyword arguments %s" % (class_name, unknown))
        if args:
            raise TypeError("%s: give the arguments after units by keyword" % class_name)
        config = _base_config(name, trainable, dtype)
        config.update(make_config(units, **kwargs))
        self._create(config)
    return type(class_name, (base,), {"__init__": __init__, "__doc__": doc, "_class_name": class_name})


def _recurrent_class(kind, doc, params):
    return _units_class(kind, RNN, lambda units, **kw: _recurrent_config(kind, units, **kw), doc, params)


_CELL_COMMON = {"activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
                "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
                "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed"}
_COMMON = _CELL_COMMON | _LOOP_KEYS | {"activity_regularizer"}

def _sublayer(layer, index):
    return _wrap(_new_handle(L.kiln_layer_get_layer, layer._handle(), index))


def _serialized(layer, owner, what):
    from .layers import serialize  # noqa: PLC0415
    if not isinstance(layer, Layer):
        raise InvalidArgumentError("%s: %s must be a keras layer; got %s (%r)" % (owner, what, type(layer).__name__,
                                                                                   layer))
    if layer.built and layer.weights:
        warnings.warn("%s wraps a copy of layer '%s' made from its config: its current weights are not carried "
                      "over (Keras wraps the layer itself); set them on the wrapper's layer after building it"
                      % (owner, layer.name), stacklevel=3)
    return serialize(layer)


class Bidirectional(_Recurrent):
    """keras.layers.Bidirectional(layer, merge_mode="concat", weights=None, backward_layer=None): a copy of
    the recurrent layer run forwards and one run backwards (go_backwards=True, or backward_layer), their
    outputs merged ("concat", "sum", "ave", "mul", or None for both). Called as an RNN:
    layer(sequences, initial_state=None, mask=None, training=None), the forward states first."""

    _class_name = "Bidirectional"

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, name=None, trainable=True,
                 dtype=None, **kwargs):
        if kwargs:
            raise TypeError("Bidirectional: unexpected keyword arguments %s" % sorted(kwargs))
        if weights is not None:
            raise InvalidArgumentError("Bidirectional: weights= is not supported; set them after the build "
                                       "(layer.set_weights)")
        config = _base_config(name, trainable, dtype)
        config.update({"merge_mode": merge_mode, "layer": _serialized(layer, "Bidirectional", "layer")})
        if backward_layer is not None:
            config["backward_layer"] = _serialized(backward_layer, "Bidirectional", "backward_layer")
        self._create(config)

    @property
    def forward_layer(self):
        """Keras's forward_layer: the forward copy of the wrapped layer (its sub-layer 0)."""
        return _sublayer(self, 0)

    @property
    def backward_layer(self):
        return _sublayer(self, 1)

    @property
    def merge_mode(self):
        return self.get_config()["merge_mode"]


class TimeDistributed(_Builtin):
    """keras.layers.TimeDistributed(layer): the layer applied to every step of [batch, time, ...]."""

    _class_name = "TimeDistributed"

    def __init__(self, layer, name=None, trainable=True, dtype=None, **kwargs):
        if kwargs:
            raise TypeError("TimeDistributed: unexpected keyword arguments %s" % sorted(kwargs))
        config = _base_config(name, trainable, dtype)
        config["layer"] = _serialized(layer, "TimeDistributed", "layer")
        self._create(config)

    @property
    def layer(self):
        """Keras's layer: the wrapped layer (a copy made from its config)."""
        return _sublayer(self, 0)


class SpectralNormalization(_Builtin):
    """keras.layers.SpectralNormalization(layer, power_iterations=1): before each training call the
    wrapped layer's kernel (or embeddings) is divided by its largest singular value, estimated by
    power iteration from the kept non-trainable vector_u, and assigned back, as Keras does."""

    _class_name = "SpectralNormalization"

    def __init__(self, layer, power_iterations=1, name=None, trainable=True, dtype=None, **kwargs):
        if kwargs:
            raise TypeError("SpectralNormalization: unexpected keyword arguments %s" % sorted(kwargs))
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, _numbers.Integral):
            raise InvalidArgumentError("SpectralNormalization: power_iterations must be an int >= 1; got %r"
                                       % (power_iterations,))
        config = _base_config(name, trainable, dtype)
        config["layer"] = _serialized(layer, "SpectralNormalization", "layer")
        config["power_iterations"] = int(power_iterations)
        self._create(config)

    @property
    def layer(self):
        """Keras's layer: the wrapped layer (a copy made from its config)."""
        return _sublayer(self, 0)

    @property
    def power_iterations(self):
        return self.get_config()["power_iterations"]


def _custom_cell(layer):
    """Whether layer is a Python-written layer (its state_size is Python's to say)."""
    return isinstance(layer, Layer) and getattr(layer, "_custom", False)


class _Cell(_Builtin):
    """What the built-in cells share: Keras's cell call and state_size."""

    def __call__(self, inputs, states=None, training=None):
        """Keras's cell call: cell(inputs, states, training=None) -> (output, new_states). states is a
        list (SimpleRNNCell, GRUCell: [h]; LSTMCell: [h, c]); new_states comes back the same way."""
        if states is None:
            raise TypeError("%s.__call__: a cell takes (inputs, states, training=None); got no states"
                            % type(self).__name__)
        return self._step(inputs, states, training)

    def _step(self, inputs, states, training):
        return _call_cell(self, inputs, states, training)

    @property
    def state_size(self):
        """Keras's state_size: an int for one state, a list for several (LSTMCell: [units, units])."""
        sizes = _cell_sizes(self)
        return sizes[0] if len(sizes) == 1 else sizes

    @property
    def output_size(self):
        return _cell_sizes(self)[0]

    def get_initial_state(self, batch_size=None):
        """Keras's get_initial_state: zeros [batch_size, size] for each state, in a list."""
        return _zero_states(self, batch_size)


def _zero_states(cell, batch_size):
    from .ops import zeros  # noqa: PLC0415
    return [zeros((int(batch_size or 0), n), dtype=cell.compute_dtype) for n in _cell_sizes(cell)]


def _cell_class(kind, doc, params):
    return _units_class(kind + "Cell", _Cell, lambda units, **kw: _cell_config(kind, units, owner=kind + "Cell", **kw),
                        doc, params)


SimpleRNNCell = _cell_class(
    "SimpleRNN", "keras.layers.SimpleRNNCell(units, activation='tanh', use_bias=True, ..., dropout=0.0, "
    "recurrent_dropout=0.0, seed=None): one step of SimpleRNN. cell(x, [h]) -> (h', [h']).", _CELL_COMMON)
GRUCell = _cell_class(
    "GRU", "keras.layers.GRUCell(units, activation='tanh', recurrent_activation='sigmoid', ..., reset_after=True, "
    "seed=None): one step of GRU. cell(x, [h]) -> (h', [h']).",
    _CELL_COMMON | {"recurrent_activation", "reset_after", "implementation"})
LSTMCell = _cell_class(
    "LSTM", "keras.layers.LSTMCell(units, activation='tanh', recurrent_activation='sigmoid', ..., "
    "unit_forget_bias=True, seed=None): one step of LSTM. cell(x, [h, c]) -> (h', [h', c']).",
    _CELL_COMMON | {"recurrent_activation", "unit_forget_bias", "implementation"})


def _check_cell(cell, owner):
    if not isinstance(cell, Layer):
        raise InvalidArgumentError("%s: a cell must be a keras layer with a state_size; got %s (%r)"
                                   % (owner, type(cell).__name__, cell))
    if not _sync_cell(cell):
        raise InvalidArgumentError("%s: the cell %s has no state_size; a cell has a state_size (an int, or a list of "
                                   "ints: one per state) and its call(inputs, states) returns (output, new_states)"
                                   % (owner, type(cell).__name__))
    return cell


def _create_around(obj, class_name, config, layers):
    handles = (ctypes.c_void_p * len(layers))(*[c._handle() for c in layers])
    with _config.to_c(config) as c:
        obj._adopt_handle(_new_handle(L.kiln_layer_create_around, class_name.encode(), c, handles, len(layers)))
    object.__setattr__(obj, "_cells_kept", list(layers))  # custom cells' Python objects live as long as it


def _initial_state_of(cell, batch_size):
    """Keras's initial state of a cell: its get_initial_state when it has one, else zeros (a tensor
    alone for an int state_size, as Keras's StackedRNNCells.get_initial_state makes it)."""
    fn = getattr(cell, "get_initial_state", None)
    if fn is not None:
        return fn(batch_size=batch_size)
    zeros = _zero_states(cell, batch_size)
    return zeros[0] if isinstance(getattr(cell, "state_size", None), int) else zeros


class StackedRNNCells(_Cell):
    """keras.layers.StackedRNNCells(cells): the cells run one after the other in each step, each one's
    output the next one's input. Its states are the cells' states: cell(x, [[h1], [h2, c2]]) gives
    (output, [[h1'], [h2', c2']]), each cell's as given (a tensor alone stays alone; one cell's are not
    nested), as Keras's."""

    _class_name = "StackedRNNCells"

    def __init__(self, cells, name=None, trainable=True, dtype=None, **kwargs):
        if kwargs:
            raise TypeError("StackedRNNCells: unexpected keyword arguments %s" % sorted(kwargs))
        cells = [_check_cell(c, "StackedRNNCells") for c in cells]
        if not cells:
            raise InvalidArgumentError("StackedRNNCells: needs at least one cell")
        _create_around(self, "StackedRNNCells", _base_config(name, trainable, dtype), cells)

    @property
    def cells(self):
        return [_sublayer(self, i) for i in range(L.kiln_layer_get_num_layers(self._handle()))]

    @property
    def state_size(self):
        """Keras's: each cell's state_size, in a list."""
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        last = self.cells[-1]
        size = getattr(last, "output_size", None)
        return size if size is not None else _cell_sizes(last)[0]

    def _group(self, flat, like=None):
        """Flat states as each cell's: a list per cell, or a tensor alone where like (the structure
        given) has one; one cell's are not nested in another list."""
        cells = self.cells
        out, at = [], 0
        for i, c in enumerate(cells):
            n = len(_cell_sizes(c))
            part = list(flat[at:at + n])
            alone = like is not None and i < len(like) and not isinstance(like[i], (list, tuple))
            out.append(part[0] if alone and n == 1 else part)
            at += n
        return out[0] if len(cells) == 1 else out

    def _step(self, inputs, states, training):
        like = [states] if len(self.cells) == 1 else list(states)
        y, new = _call_cell(self, inputs, like, training)
        return y, self._group(new if isinstance(new, list) else [new], like)

    def get_initial_state(self, batch_size=None):
        return [_initial_state_of(c, batch_size) for c in self.cells]


class _CellLoop(_Recurrent):
    """An RNN layer with a cell (RNN, SimpleRNN, GRU, LSTM, the ConvLSTMs): Keras's .cell and the
    attributes of the layer's arguments."""

    _TUPLES = ()  # the arguments Keras standardizes to tuples

    @property
    def cell(self):
        """Keras's cell: the cell object given (or made from the config)."""
        cell = self.__dict__.get("_cell")
        if cell is None:
            cell = _sublayer(self, 0)
            object.__setattr__(self, "_cell", cell)
        return cell

    def __getattr__(self, name):
        """Keras's attributes of the layer's arguments (units, filters, return_sequences, dropout, ...): its
        config's."""
        if not name.startswith("_"):
            config = self.get_config()
            if name in config:
                return tuple(config[name]) if name in self._TUPLES else config[name]
        return _Recurrent.__getattr__(self, name)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        """Keras's: the output's shape, then with return_state each state's."""
        if initial_state_shape is None:
            return _Recurrent.compute_output_shape(self, sequences_shape)
        return _Recurrent.compute_output_shape(self, [sequences_shape] + _flat_shapes(initial_state_shape))


class RNN(_CellLoop):
    """keras.layers.RNN(cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
    unroll=False, zero_output_for_mask=False): runs the cell over the time steps. cell is a built-in cell,
    a list of cells (a StackedRNNCells), or a custom Layer with a state_size whose call(inputs, states)
    returns (output, new_states). Called as Keras's RNN: layer(sequences, initial_state=None, mask=None,
    training=None); without initial_state a custom cell's get_initial_state gives it, as in Keras (in a
    Python call: a model run from C starts such a cell at zeros)."""

    _class_name = "RNN"

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, activity_regularizer=None, name=None, trainable=True,
                 dtype=None, **kwargs):
        if kwargs:
            raise TypeError("RNN: unexpected keyword arguments %s" % sorted(kwargs))
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        _check_cell(cell, "RNN")
        config = _base_config(name, trainable, dtype)
        config.update(_loop_config(return_sequences, return_state, go_backwards, stateful, unroll,
                                   zero_output_for_mask))
        if activity_regularizer is not None:
            config["activity_regularizer"] = _serializable(activity_regularizer)
        if _wants_own_initial_state(cell):
            warnings.warn("RNN: the cell %s has its own get_initial_state, which a direct call rnn(x) uses; kiln's C "
                          "loop cannot call it, so inside a Sequential (or any model run from C) the cell starts at "
                          "zeros: pass initial_state there" % type(cell).__name__, stacklevel=2)
        _create_around(self, "RNN", config, [cell])
        object.__setattr__(self, "_cell", cell)

    @property
    def state_size(self):
        """Keras's: the cell's state_size as a list (a stack's: each cell's)."""
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    def __call__(self, sequences, initial_state=None, mask=None, training=None):
        cell = self.cell
        if initial_state is None and not isinstance(sequences, (list, tuple)) and _wants_own_initial_state(cell):
            initial_state = self.get_initial_state(int(sequences.shape[0]))
        if initial_state is not None:
            initial_state = _flat_states(initial_state)
        out = _Recurrent.__call__(self, sequences, initial_state=initial_state, mask=mask, training=training)
        if isinstance(cell, StackedRNNCells) and isinstance(out, list) and len(out) > 1:
            grouped = cell._group(out[1:])
            return [out[0]] + (grouped if len(cell.cells) > 1 else [grouped])  # Keras: output, then each cell's
        return out

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        """Keras's: the output's shape, then with return_state each state's; a stack's grouped per cell
        as its state_size is (a shape alone for an int, a list for a list)."""
        shapes = _CellLoop.compute_output_shape(self, sequences_shape, initial_state_shape)
        cell = self.cell
        if not isinstance(cell, StackedRNNCells) or not isinstance(shapes, list):
            return shapes
        grouped, at = [shapes[0]], 1
        for size in cell.state_size:
            n = len(size) if isinstance(size, (list, tuple)) else 1
            grouped.append(list(shapes[at:at + n]) if isinstance(size, (list, tuple)) else shapes[at])
            at += n
        return grouped

    def get_initial_state(self, batch_size):
        """Keras's: the cell's get_initial_state, else zeros for each state."""
        state = _initial_state_of(self.cell, batch_size)
        return state if isinstance(state, list) else [state]


def _flat_shapes(shapes):
    """Initial states' shapes, one tuple or a (nested) list of them, as a flat list."""
    if isinstance(shapes, tuple) or (isinstance(shapes, list) and shapes and not isinstance(shapes[0], (list, tuple))):
        return [tuple(shapes)]
    out = []
    for s in shapes:
        out.extend(_flat_shapes(s))
    return out


def _wants_own_initial_state(cell):
    """Whether a custom cell (or one in a stack) has its own get_initial_state, which kiln's C loop
    cannot call: RNN.__call__ then passes the initial state it gives."""
    if isinstance(cell, StackedRNNCells):
        return any(_wants_own_initial_state(c) for c in cell.cells)
    return _custom_cell(cell) and getattr(cell, "get_initial_state", None) is not None


SimpleRNN = _recurrent_class(
    "SimpleRNN", "keras.layers.SimpleRNN(units, activation='tanh', use_bias=True, ..., dropout=0.0, "
    "recurrent_dropout=0.0, return_sequences=False, return_state=False, go_backwards=False): "
    "h = activation(x @ kernel + bias + h @ recurrent_kernel) at each step.", _COMMON)
GRU = _recurrent_class(
    "GRU", "keras.layers.GRU(units, activation='tanh', recurrent_activation='sigmoid', ..., reset_after=True, "
    "return_sequences=False, return_state=False, go_backwards=False): Keras 3's GRU (gates z, r, h).",
    _COMMON | {"recurrent_activation", "reset_after", "use_cudnn", "implementation"})
LSTM = _recurrent_class(
    "LSTM", "keras.layers.LSTM(units, activation='tanh', recurrent_activation='sigmoid', ..., "
    "unit_forget_bias=True, return_sequences=False, return_state=False, go_backwards=False): Keras 3's LSTM "
    "(gates i, f, c, o; states h and c).",
    _COMMON | {"recurrent_activation", "unit_forget_bias", "use_cudnn", "implementation"})


def _conv_lstm(rank):
    """The config maker of ConvLSTM{rank}D: Keras's ConvLSTM arguments, then RNN's."""
    def make(filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
             activation="tanh", recurrent_activation="sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
             recurrent_initializer="orthogonal", bias_initializer="zeros", unit_forget_bias=True,
             kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
             kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
             recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False, go_backwards=False,
             stateful=False, unroll=False, zero_output_for_mask=False):
        if isinstance(filters, bool) or not isinstance(filters, _numbers.Integral):
            raise InvalidArgumentError("ConvLSTM%dD: filters must be an int; got %r" % (rank, filters))
        c = _loop_config(return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask)
        c.update({"filters": int(filters), "kernel_size": _tuple(kernel_size, rank, "kernel_size"),
                  "strides": _tuple(strides, rank, "strides"), "padding": padding, "data_format": data_format,
                  "dilation_rate": _tuple(dilation_rate, rank, "dilation_rate"),
                  "activation": _serializable(activation) or "linear",
                  "recurrent_activation": _serializable(recurrent_activation) or "linear",
                  "use_bias": bool(use_bias), "kernel_initializer": _serializable(kernel_initializer),
                  "recurrent_initializer": _serializable(recurrent_initializer),
                  "bias_initializer": _serializable(bias_initializer), "unit_forget_bias": bool(unit_forget_bias),
                  "kernel_regularizer": _serializable(kernel_regularizer),
                  "recurrent_regularizer": _serializable(recurrent_regularizer),
                  "bias_regularizer": _serializable(bias_regularizer),
                  "activity_regularizer": _serializable(activity_regularizer),
                  "kernel_constraint": kernel_constraint, "recurrent_constraint": recurrent_constraint,
                  "bias_constraint": bias_constraint, "dropout": _rate(dropout),
                  "recurrent_dropout": _rate(recurrent_dropout), "seed": int(seed) if seed is not None else None})
        return c
    return make


class _ConvLSTMCell(_Builtin):
    """Keras 3's ConvLSTMCell, the cell a ConvLSTM layer makes and runs (layer.cell): its weights
    kernel, recurrent_kernel and bias. Not made on its own (Keras does not export it)."""

    _class_name = "ConvLSTMCell"

    def __init__(self, *args, **kwargs):
        raise TypeError("ConvLSTMCell is made by ConvLSTM1D / ConvLSTM2D / ConvLSTM3D (their .cell)")


class _ConvLSTM(_CellLoop):
    """The ConvLSTM layers: RNN layers of a ConvLSTMCell."""

    _TUPLES = ("kernel_size", "strides", "dilation_rate")


def _conv_lstm_class(rank, spatial):
    name = "ConvLSTM%dD" % rank
    return _builtin(
        name, "keras.layers.%s(filters, kernel_size, strides=1, padding='valid', data_format=None, "
        "dilation_rate=1, activation='tanh', recurrent_activation='sigmoid', ..., dropout=0.0, "
        "recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False, go_backwards=False): "
        "an LSTM whose input and recurrent transformations are convolutions, channels last. Sequences "
        "(batch, time, %s, channels); the states h and c (batch, out %s, filters). Called as an RNN: "
        "layer(sequences, initial_state=None, mask=None, training=None)." % (name, spatial, spatial),
        _conv_lstm(rank), base=_ConvLSTM)


ConvLSTM1D = _conv_lstm_class(1, "width")
ConvLSTM2D = _conv_lstm_class(2, "rows, cols")
ConvLSTM3D = _conv_lstm_class(3, "depth, rows, cols")


for _c in (SimpleRNN, GRU, LSTM, Bidirectional, TimeDistributed, SpectralNormalization, SimpleRNNCell, GRUCell,
           LSTMCell, StackedRNNCells, RNN, ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, _ConvLSTMCell):
    _BUILTINS[_c._class_name] = _c

__all__ = ["SimpleRNN", "GRU", "LSTM", "Bidirectional", "TimeDistributed", "SpectralNormalization", "SimpleRNNCell",
           "GRUCell", "LSTMCell", "StackedRNNCells", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"]
