"""keras.layers.RNN(cell) and the cells SimpleRNNCell, GRUCell, LSTMCell and StackedRNNCells from Python:
cell steps against a NumPy transcription of Keras 3's cells, RNN of a built-in cell against the matching
layer, a custom cell (Keras's MinimalRNNCell) run, masked, trained and differentiated, stacks, dropout
masks held for a whole sequence, configs, and errors."""
import unittest

import numpy as np

import kiln
from kiln import layers
from test_recurrent import reference


class MinimalRNNCell(layers.Layer):
    """The Keras guide's custom cell: output = x @ kernel + h @ recurrent_kernel."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="orthogonal",
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        prev = states[0]
        output = kiln.ops.matmul(inputs, self.kernel) + kiln.ops.matmul(prev, self.recurrent_kernel)
        return output, [output]


def minimal_reference(x, k, rk, mask=None, h0=None):
    batch, steps, _ = x.shape
    h = np.zeros((batch, k.shape[1])) if h0 is None else h0.astype(np.float64)
    prev, outs = np.zeros_like(h), []
    for t in range(steps):
        o = x[:, t].astype(np.float64) @ k + h @ rk
        nh = o
        if mask is not None:
            m = mask[:, t:t + 1]
            o, nh = np.where(m, o, prev), np.where(m, nh, h)
        h, prev = nh, o
        outs.append(o)
    return np.stack(outs, axis=1), h


class CellTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        self.rng = np.random.default_rng(5)
        self.x = self.rng.standard_normal((3, 5, 4)).astype(np.float32)

    def randomize(self, layer):
        ws = [self.rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()]
        layer.set_weights(ws)
        return ws

    def test_cell_step_as_keras(self):
        for kind, n in (("SimpleRNN", 1), ("GRU", 1), ("LSTM", 2)):
            with self.subTest(kind=kind):
                cell = getattr(layers, kind + "Cell")(6)
                self.assertEqual(cell.state_size, [6, 6] if n == 2 else 6)
                self.assertEqual(cell.output_size, 6)
                h0 = self.rng.standard_normal((3, 6)).astype(np.float32)
                c0 = self.rng.standard_normal((3, 6)).astype(np.float32)
                states = [h0, c0][:n]
                out, new = cell(self.x[:, 0], states)
                ws = self.randomize(cell)
                out, new = cell(self.x[:, 0], states)
                _, last, h, c = reference(kind, self.x[:, :1], ws, 6, h0=h0, c0=c0)
                np.testing.assert_allclose(out.numpy(), last, rtol=2e-5, atol=2e-6)
                self.assertEqual(len(new), n)
                np.testing.assert_allclose(new[0].numpy(), h, rtol=2e-5, atol=2e-6)
                if n == 2:
                    np.testing.assert_allclose(new[1].numpy(), c, rtol=2e-5, atol=2e-6)
                self.assertEqual([w.name for w in cell.weights][0], cell.name + "/kernel")
                # a state alone (not in a list) comes back alone, as Keras's SimpleRNNCell / GRUCell
                if n == 1:
                    _, alone = cell(self.x[:, 0], kiln.constant(h0))
                    self.assertFalse(isinstance(alone, list))

    def test_rnn_of_builtin_cell_is_the_layer(self):
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]], bool)
        for kind in ("SimpleRNN", "GRU", "LSTM"):
            for options in ({}, {"go_backwards": True}, {"zero_output_for_mask": True}):
                with self.subTest(kind=kind, **options):
                    rnn = layers.RNN(getattr(layers, kind + "Cell")(5), return_sequences=True, return_state=True,
                                     **options)
                    layer = getattr(layers, kind)(5, return_sequences=True, return_state=True, **options)
                    rnn.build((None, 5, 4))
                    layer.build((None, 5, 4))
                    layer.set_weights(self.randomize(rnn))
                    for m in (None, mask):
                        a = rnn(self.x, mask=m)
                        b = layer(self.x, mask=m)
                        self.assertEqual(len(a), len(b))
                        for u, v in zip(a, b):
                            np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-6, atol=1e-6)
        layers.clear_session()
        lstm = layers.RNN(layers.LSTMCell(3))
        lstm(self.x)
        self.assertEqual([w.name for w in lstm.weights],
                         ["rnn/lstm_cell/kernel", "rnn/lstm_cell/recurrent_kernel", "rnn/lstm_cell/bias"])

    def test_custom_cell(self):
        cell = MinimalRNNCell(3)
        rnn = layers.RNN(cell, return_sequences=True, return_state=True)
        self.assertIs(rnn.cell, cell)
        self.assertEqual(rnn.state_size, [3])
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]], bool)
        h0 = self.rng.standard_normal((3, 3)).astype(np.float32)
        seq, state = rnn(self.x)
        k, rk = [w.numpy() for w in cell.weights]
        ref_seq, ref_h = minimal_reference(self.x, k, rk)
        np.testing.assert_allclose(seq.numpy(), ref_seq, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(state.numpy(), ref_h, rtol=1e-5, atol=1e-5)
        seq, state = rnn(self.x, initial_state=[h0], mask=mask)
        ref_seq, ref_h = minimal_reference(self.x, k, rk, mask=mask, h0=h0)
        np.testing.assert_allclose(seq.numpy(), ref_seq, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(state.numpy(), ref_h, rtol=1e-5, atol=1e-5)
        self.assertEqual(len(rnn.trainable_weights), 2)
        # the cell alone: Keras's cell(x, states)
        out, new = cell(self.x[:, 0], [kiln.constant(h0)])
        np.testing.assert_allclose(out.numpy(), self.x[:, 0] @ k + h0 @ rk, rtol=1e-5, atol=1e-5)
        self.assertEqual(len(new), 1)
        # gradients through time reach the cell's weights
        with kiln.GradientTape() as tape:
            loss = kiln.ops.sum(rnn(self.x)[0])
        grads = tape.gradient(loss, rnn.trainable_weights)
        self.assertTrue(all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads))

    def test_custom_cell_trains_in_a_model(self):
        model = kiln.Sequential([layers.Input((5, 4)), layers.RNN(MinimalRNNCell(4)), layers.Dense(1)])
        model.compile(optimizer=kiln.optimizers.Adam(0.02), loss="mse")
        y = self.x.sum(axis=(1, 2))[:, None].astype(np.float32)
        x = np.concatenate([self.x] * 4)
        y = np.concatenate([y] * 4)
        first = model.evaluate(x, y, verbose=0)
        model.fit(x, y, epochs=30, batch_size=4, verbose=0)
        self.assertLess(model.evaluate(x, y, verbose=0), first * 0.5)

    def test_stacked_cells(self):
        cells = [layers.LSTMCell(4), layers.SimpleRNNCell(3)]
        rnn = layers.RNN(cells, return_sequences=True, return_state=True)
        out = rnn(self.x)
        self.assertIsInstance(rnn.cell, layers.StackedRNNCells)
        self.assertEqual(rnn.cell.state_size, [[4, 4], 3])
        self.assertEqual(len(out), 3)  # output, then each cell's states
        seq, (h1, c1), (h2,) = out
        first = layers.LSTM(4, return_sequences=True, return_state=True)
        second = layers.SimpleRNN(3, return_sequences=True, return_state=True)
        first.build((None, 5, 4))
        second.build((None, 5, 4))
        first.set_weights(cells[0].get_weights())
        second.set_weights(cells[1].get_weights())
        mid, fh, fc = first(self.x)
        ref, sh = second(mid)
        np.testing.assert_allclose(seq.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h1.numpy(), fh.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c1.numpy(), fc.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h2.numpy(), sh.numpy(), rtol=1e-5, atol=1e-6)
        # compute_output_shape groups the states as Keras's: a shape alone for an int state_size
        self.assertEqual(rnn.compute_output_shape((None, 5, 4)),
                         [(None, 5, 3), [(None, 4), (None, 4)], (None, 3)])
        self.assertEqual(rnn.compute_output_shape((None, 5, 4), [[(None, 4), (None, 4)], (None, 3)]),
                         [(None, 5, 3), [(None, 4), (None, 4)], (None, 3)])
        self.assertEqual(layers.LSTM(2, return_state=True).compute_output_shape((None, 5, 4)),
                         [(None, 2), (None, 2), (None, 2)])
        # initial states given per cell, as Keras nests them
        init = rnn.cell.get_initial_state(3)
        self.assertEqual([len(s) for s in init], [2, 1])
        again = rnn(self.x, initial_state=init)
        np.testing.assert_allclose(again[0].numpy(), seq.numpy(), rtol=1e-6)
        # the stack alone: one step
        y, states = rnn.cell(self.x[:, 0], init)
        self.assertEqual([len(s) for s in states], [2, 1])
        self.assertEqual(tuple(y.shape), (3, 3))

    def test_dropout_masks_hold_for_the_sequence(self):
        # A linear cell without recurrence over an input that repeats: every step's output is the
        # same exactly when the dropout mask is the same at every step (Keras's DropoutRNNCell).
        x = np.repeat(self.rng.standard_normal((2, 1, 6)).astype(np.float32), 4, axis=1)
        for stacked in (False, True):
            with self.subTest(stacked=stacked):
                cell = layers.SimpleRNNCell(5, activation="linear", dropout=0.5, recurrent_initializer="zeros",
                                            seed=3)
                rnn = layers.RNN([cell] if stacked else cell, return_sequences=True)
                y = rnn(x, training=True).numpy()
                for t in range(1, 4):
                    np.testing.assert_array_equal(y[:, t], y[:, 0])
                self.assertFalse(np.allclose(y, rnn(x, training=False).numpy()))

    def test_bidirectional_rnn_of_a_cell(self):
        bi = layers.Bidirectional(layers.RNN(layers.LSTMCell(2), return_state=True, return_sequences=True))
        out = bi(self.x)
        self.assertEqual([tuple(t.shape) for t in out], [(3, 5, 4)] + [(3, 2)] * 4)  # h, c forward then backward
        same = layers.Bidirectional(layers.LSTM(2, return_state=True, return_sequences=True))
        same.build((None, 5, 4))
        same.set_weights(bi.get_weights())
        for a, b in zip(out, same(self.x)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)

    def test_custom_cell_styles(self):
        class PropertyCell(layers.Layer):  # state_size as a property, output_size apart from it
            @property
            def state_size(self):
                return 4

            @property
            def output_size(self):
                return 2

            def build(self, shape):
                self.k = self.add_weight(shape=(shape[-1], 4), name="k")
                self.o = self.add_weight(shape=(4, 2), name="o")

            def call(self, x, states):
                h = kiln.ops.matmul(x, self.k) + states[0]
                return kiln.ops.matmul(h, self.o), [h]

        class OnesCell(layers.Layer):  # its own initial state, as Keras's get_initial_state
            state_size = 3

            def get_initial_state(self, batch_size=None):
                return [kiln.ops.ones((batch_size, 3))]

            def call(self, x, states):
                return states[0], [states[0]]

        out = layers.RNN([PropertyCell(), layers.GRUCell(3)])(self.x)  # the GRU cell built for 2 features
        self.assertEqual(tuple(out.shape), (3, 3))
        with self.assertWarns(UserWarning):  # a model run through C would start it at zeros
            rnn = layers.RNN(OnesCell())
        np.testing.assert_array_equal(rnn(self.x).numpy(), np.ones((3, 3), np.float32))
        np.testing.assert_array_equal(rnn.get_initial_state(2)[0].numpy(), np.ones((2, 3)))
        # the built-in layers are RNNs of their cells, with Keras's attributes
        lstm = layers.LSTM(3, return_sequences=True)
        self.assertIsInstance(lstm, layers.RNN)
        self.assertEqual((lstm.units, lstm.return_sequences, lstm.state_size), (3, True, [3, 3]))
        self.assertIsInstance(lstm.cell, layers.LSTMCell)
        self.assertEqual(len(lstm.get_initial_state(2)), 2)
        # an RNN and its cell of other dtypes: the states in the cell's, the outputs in the RNN's
        self.assertEqual(layers.RNN(layers.LSTMCell(3), dtype="float64")(self.x).dtype, "float64")
        self.assertEqual(layers.RNN(layers.LSTMCell(3, dtype="float64"))(self.x).dtype, "float32")
        self.assertEqual(layers.RNN([layers.SimpleRNNCell(3), layers.GRUCell(2, dtype="float64")])(self.x).dtype,
                         "float32")
        reg = layers.RNN(layers.SimpleRNNCell(2), activity_regularizer="l2")
        reg(self.x)
        self.assertEqual(len(reg.losses), 1)
        self.assertEqual(layers.RNN.from_config(reg.get_config()).get_config(), reg.get_config())

    def test_layers_with_a_state_size_of_their_own(self):
        class Ssm(layers.Layer):  # state_size here is a hyperparameter, not Keras's cell protocol
            def __init__(self, **kw):
                super().__init__(**kw)
                self.state_size = 4

            def call(self, x, y=None):
                return x + y

        class NotACell(layers.Layer):
            state_size = 0

            def call(self, inputs):
                return inputs[0] * inputs[1]

        a = np.ones((2, 4), np.float32)
        np.testing.assert_array_equal(Ssm()(a, a).numpy(), 2 * a)
        np.testing.assert_array_equal(NotACell()([a, a]).numpy(), a)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "state_size"):
            layers.RNN(NotACell())

    def test_mixed_precision(self):
        kiln.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            out = layers.RNN(layers.LSTMCell(3, dtype="float32"))(self.x)  # a float32 cell in a mixed model
            self.assertEqual(out.dtype, "bfloat16")
            out = layers.RNN(MinimalRNNCell(3), return_state=True)(self.x)
            self.assertEqual([t.dtype for t in out], ["bfloat16"] * 2)
        finally:
            kiln.mixed_precision.set_global_policy("float32")
        self.assertEqual(layers.RNN(layers.LSTMCell(3, dtype="mixed_bfloat16"))(self.x).dtype, "float32")

    def test_nested_stack_ending_in_a_custom_cell(self):
        class OutCell(layers.Layer):
            def __init__(self):
                super().__init__()
                self.state_size = 3

            def build(self, shape):
                self.k = self.add_weight(shape=(shape[-1], 3), name="k")
                self.o = self.add_weight(shape=(3, 5), name="o")

            def call(self, x, states):
                h = kiln.ops.matmul(x, self.k) + states[0]
                return kiln.ops.matmul(h, self.o), [h]

        rnn = layers.RNN([layers.StackedRNNCells([layers.LSTMCell(3), OutCell()]), layers.LSTMCell(2)])
        self.assertEqual(tuple(rnn(self.x).shape), (3, 2))

    def test_configs_round_trip(self):
        for cell in (layers.SimpleRNNCell(3, dropout=0.25, seed=1), layers.GRUCell(3, reset_after=False),
                     layers.LSTMCell(3, unit_forget_bias=False)):
            with self.subTest(cls=type(cell).__name__):
                config = cell.get_config()
                self.assertEqual(config["units"], 3)
                again = type(cell).from_config(config)
                self.assertEqual(again.get_config(), config)
        rnn = layers.RNN([layers.GRUCell(2), layers.LSTMCell(3)], return_sequences=True, go_backwards=True)
        config = rnn.get_config()
        self.assertEqual(config["cell"]["class_name"], "StackedRNNCells")
        self.assertTrue(config["go_backwards"])
        again = layers.RNN.from_config(config)
        self.assertEqual(again.get_config(), config)
        again.build((None, 5, 4))
        rnn.build((None, 5, 4))
        again.set_weights(rnn.get_weights())
        np.testing.assert_allclose(again(self.x).numpy(), rnn(self.x).numpy(), rtol=1e-6)
        self.assertEqual(layers.deserialize(layers.serialize(rnn)).get_config(), config)

    def test_errors(self):
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "state_size"):
            layers.RNN(layers.Dense(3))
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "cell"):
            layers.RNN("lstm")
        with self.assertRaises(TypeError):
            layers.LSTMCell(3)(self.x[:, 0])

        class BadCell(MinimalRNNCell):
            def call(self, inputs, states):
                return kiln.ops.matmul(inputs, self.kernel), [inputs]  # a state of the wrong size

        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "state"):
            layers.RNN(BadCell(3))(self.x)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "initial state"):
            layers.RNN(layers.LSTMCell(3))(self.x, initial_state=[np.zeros((3, 2), np.float32)] * 2)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "expected the input"):
            layers.LSTMCell(3)(self.x[:, 0], [np.zeros((3, 3), np.float32)])


if __name__ == "__main__":
    unittest.main()
