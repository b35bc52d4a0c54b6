"""keras.layers.SimpleRNN, GRU and LSTM from Python: outputs against a NumPy transcription of Keras 3's
cells and backend rnn (masks, go_backwards, return_state, initial_state), weight names and shapes,
configs that round-trip, gradients through time, training by fit, and errors."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference(kind, x, weights, units, mask=None, go_backwards=False, h0=None, c0=None, reset_after=True,
              zero_output_for_mask=False):
    """Keras 3's cell step and backend rnn in float64: (outputs in processing order, last, states)."""
    k, rk = weights[0].astype(np.float64), weights[1].astype(np.float64)
    b = weights[2].astype(np.float64) if len(weights) > 2 else None
    batch, steps, _ = x.shape
    h = np.zeros((batch, units)) if h0 is None else h0.astype(np.float64)
    c = np.zeros((batch, units)) if c0 is None else c0.astype(np.float64)
    outs = []
    prev = np.zeros((batch, units))  # Keras's backend rnn: a masked first step outputs zeros
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    for t in order:
        xt = x[:, t].astype(np.float64)
        if kind == "SimpleRNN":
            o = np.tanh(xt @ k + (b if b is not None else 0) + h @ rk)
            nh, nc = o, c
        elif kind == "LSTM":
            z = xt @ k + h @ rk + (b if b is not None else 0)
            i, f, g, og = np.split(z, 4, axis=1)
            nc = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            nh = sigmoid(og) * np.tanh(nc)
            o = nh
        else:
            if reset_after:
                bi, br = (b[0], b[1]) if b is not None else (0, 0)
                xz, xr, xh = np.split(xt @ k + bi, 3, axis=1)
                rz, rr, rh = np.split(h @ rk + br, 3, axis=1)
                zg, rg = sigmoid(xz + rz), sigmoid(xr + rr)
                hh = np.tanh(xh + rg * rh)
            else:
                xz, xr, xh = np.split(xt @ k + (b if b is not None else 0), 3, axis=1)
                u = units
                zg = sigmoid(xz + h @ rk[:, :u])
                rg = sigmoid(xr + h @ rk[:, u:2 * u])
                hh = np.tanh(xh + (rg * h) @ rk[:, 2 * u:])
            nh = zg * h + (1 - zg) * hh
            o, nc = nh, c
        if mask is not None:
            m = mask[:, t:t + 1]
            o = np.where(m, o, 0 if zero_output_for_mask else prev)
            nh, nc = np.where(m, nh, h), np.where(m, nc, c)
        h, c, prev = nh, nc, o
        outs.append(o)
    return np.stack(outs, axis=1), outs[-1], h, c


class RecurrentTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        self.rng = np.random.default_rng(3)
        self.x = self.rng.standard_normal((3, 5, 4)).astype(np.float32)

    def random_weights(self, layer):
        ws = [self.rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in layer.get_weights()]
        layer.set_weights(ws)
        return ws

    def test_outputs_as_keras(self):
        for kind in ("SimpleRNN", "GRU", "LSTM"):
            for options in ({}, {"go_backwards": True}, {"use_bias": False}, {"reset_after": False}):
                if "reset_after" in options and kind != "GRU":
                    continue
                with self.subTest(kind=kind, **options):
                    layer = getattr(layers, kind)(6, return_sequences=True, **options)
                    layer.build((None, 5, 4))
                    ws = self.random_weights(layer)
                    seq, _, _, _ = reference(kind, self.x, ws, 6, go_backwards=options.get("go_backwards", False),
                                             reset_after=options.get("reset_after", True))
                    np.testing.assert_allclose(layer(self.x).numpy(), seq, rtol=2e-5, atol=2e-6)

    def test_weights_as_keras(self):
        lstm = layers.LSTM(3)
        lstm(self.x)
        self.assertEqual([w.name for w in lstm.weights],
                         ["lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias"])
        self.assertEqual([tuple(w.shape) for w in lstm.weights], [(4, 12), (3, 12), (12,)])
        bias = lstm.get_weights()[2]  # unit_forget_bias: the forget gate's bias starts at one
        np.testing.assert_array_equal(bias, [0] * 3 + [1] * 3 + [0] * 6)
        rk = lstm.get_weights()[1]  # orthogonal recurrent kernel: orthonormal rows
        np.testing.assert_allclose(rk @ rk.T, np.eye(3), atol=1e-5)
        gru = layers.GRU(2)
        gru(self.x)
        self.assertEqual([tuple(w.shape) for w in gru.weights], [(4, 6), (2, 6), (2, 6)])
        self.assertEqual(gru.weights[0].name, "gru/gru_cell/kernel")
        gru_before = layers.GRU(2, reset_after=False)
        gru_before(self.x)
        self.assertEqual(tuple(gru_before.weights[2].shape), (6,))
        # TF's checkpoint keys: the cell is an edge of the layer
        model = kiln.Sequential([layers.Input((5, 4)), layers.LSTM(3)])
        with tempfile.TemporaryDirectory() as d:
            model.save_weights(os.path.join(d, "w"))
            keys = dict(kiln.train.list_variables(os.path.join(d, "w")))
        self.assertEqual(keys["layer_with_weights-0/cell/recurrent_kernel/.ATTRIBUTES/VARIABLE_VALUE"], [3, 12])
        rnn = layers.SimpleRNN(2)
        rnn(self.x)
        self.assertEqual([tuple(w.shape) for w in rnn.weights], [(4, 2), (2, 2), (2,)])
        self.assertEqual(rnn.weights[0].name, "simple_rnn/simple_rnn_cell/kernel")

    def test_masks_states_and_initial_state(self):
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]], bool)
        for kind in ("SimpleRNN", "GRU", "LSTM"):
            with self.subTest(kind=kind):
                layer = getattr(layers, kind)(6, return_sequences=True, return_state=True)
                layer.build((None, 5, 4))
                ws = self.random_weights(layer)
                h0 = self.rng.standard_normal((3, 6)).astype(np.float32)
                c0 = self.rng.standard_normal((3, 6)).astype(np.float32)
                init = [h0, c0] if kind == "LSTM" else [h0]
                out = layer(self.x, initial_state=init, mask=mask)
                seq, _, h, c = reference(kind, self.x, ws, 6, mask=mask, h0=h0, c0=c0 if kind == "LSTM" else None)
                self.assertEqual(len(out), 3 if kind == "LSTM" else 2)
                np.testing.assert_allclose(out[0].numpy(), seq, rtol=2e-5, atol=2e-6)
                np.testing.assert_allclose(out[1].numpy(), h, rtol=2e-5, atol=2e-6)
                if kind == "LSTM":
                    np.testing.assert_allclose(out[2].numpy(), c, rtol=2e-5, atol=2e-6)
                np.testing.assert_array_equal(out[0]._keras_mask.numpy(), mask)  # return_sequences keeps it
                last = getattr(layers, kind)(6, zero_output_for_mask=True, return_sequences=True)
                last.build((None, 5, 4))
                last.set_weights(ws)
                seq0, _, _, _ = reference(kind, self.x, ws, 6, mask=mask, zero_output_for_mask=True)
                np.testing.assert_allclose(last(self.x, mask=mask).numpy(), seq0, rtol=2e-5, atol=2e-6)

    def test_embedding_mask_zero_in_a_model_trains(self):
        kiln.keras.utils.set_random_seed(1)
        tokens = self.rng.integers(1, 20, (64, 7)).astype(np.int32)
        tokens[:, 5:] = 0  # padding: the masked steps keep the state
        labels = (tokens[:, 0] > 10).astype(np.int32)
        model = kiln.Sequential([layers.Embedding(20, 8, mask_zero=True), layers.LSTM(8, return_sequences=True),
                                 layers.GRU(8, dropout=0.1, recurrent_dropout=0.1), layers.Dense(2)])
        model.compile(optimizer=kiln.optimizers.Adam(0.02),
                      loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        history = model.fit(tokens, labels, epochs=8, batch_size=16, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        self.assertGreater(history.history["accuracy"][-1], 0.9)
        # the padded steps change nothing: the same tokens without padding steps predict the same
        np.testing.assert_allclose(model.predict(tokens[:, :5], verbose=0), model.predict(tokens, verbose=0),
                                   rtol=1e-5, atol=1e-6)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model")
            model.save(path)
            again = kiln.models.load_model(path)
            np.testing.assert_allclose(again.predict(tokens, verbose=0), model.predict(tokens, verbose=0), rtol=1e-6)

    def test_gradients_through_time(self):
        layer = layers.SimpleRNN(2, use_bias=False)
        x = np.array([[[1.0], [2.0]]], np.float32)
        layer.build((None, 2, 1))
        layer.set_weights([np.array([[0.5, -0.25]], np.float32), np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)])
        with kiln.GradientTape() as tape:
            y = kiln.ops.reduce_sum(layer(x))
        gk, gr = [g.numpy() for g in tape.gradient(y, layer.trainable_weights)]

        def f(k, r):
            return reference("SimpleRNN", x, [k, r], 2)[1].sum()
        k0, r0 = [w.astype(np.float64) for w in layer.get_weights()]
        eps = 1e-6
        for w, g, name in ((k0, gk, "kernel"), (r0, gr, "recurrent")):
            num = np.zeros_like(w)
            for idx in np.ndindex(*w.shape):
                wp, wm = w.copy(), w.copy()
                wp[idx] += eps
                wm[idx] -= eps
                args_p = (wp, r0) if name == "kernel" else (k0, wp)
                args_m = (wm, r0) if name == "kernel" else (k0, wm)
                num[idx] = (f(*args_p) - f(*args_m)) / (2 * eps)
            np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-5)

    def test_bidirectional_as_keras(self):
        mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
        for kind in ("GRU", "LSTM"):
            with self.subTest(kind=kind):
                bi = layers.Bidirectional(getattr(layers, kind)(3, return_sequences=True))
                bi.build((None, 5, 4))
                ws = self.random_weights(bi)
                prefix = "bidirectional" if kind == "GRU" else "bidirectional_1"
                self.assertEqual(bi.weights[0].name, "%s/forward_%s/%s_cell/kernel" % (prefix, kind.lower(), kind.lower()))
                self.assertEqual(bi.weights[3].name, "%s/backward_%s/%s_cell/kernel" % (prefix, kind.lower(), kind.lower()))
                for m in (None, mask):
                    fwd = reference(kind, self.x, ws[:3], 3, mask=m, zero_output_for_mask=True)[0]
                    bwd = reference(kind, self.x, ws[3:], 3, mask=m, go_backwards=True, zero_output_for_mask=True)[0]
                    out = bi(self.x, mask=m)
                    np.testing.assert_allclose(out.numpy(), np.concatenate([fwd, bwd[:, ::-1]], -1), rtol=2e-5,
                                               atol=2e-6)
                    if m is not None:
                        np.testing.assert_array_equal(out._keras_mask.numpy(), m)
        last = layers.Bidirectional(layers.SimpleRNN(2), merge_mode="sum")
        last.build((None, 5, 4))
        ws = self.random_weights(last)
        want = reference("SimpleRNN", self.x, ws[:3], 2)[1] + reference("SimpleRNN", self.x, ws[3:], 2,
                                                                         go_backwards=True)[1]
        np.testing.assert_allclose(last(self.x).numpy(), want, rtol=2e-5, atol=2e-6)
        both = layers.Bidirectional(layers.LSTM(2, return_state=True), merge_mode=None)
        outs = both(self.x)
        self.assertEqual([tuple(o.shape) for o in outs], [(3, 2)] * 6)  # y, y_rev, forward h, c, backward h, c
        c = both.get_config()
        self.assertIsNone(c["merge_mode"])
        self.assertIsNone(both.merge_mode)  # Keras's attributes
        self.assertEqual((both.forward_layer.name, both.backward_layer.name), ("forward_lstm_1", "backward_lstm_1"))
        mixed = layers.Bidirectional(layers.LSTM(2, return_state=True),
                                     backward_layer=layers.GRU(2, go_backwards=True, return_state=True))
        self.assertEqual(len(mixed(self.x)), 4)  # the output, the LSTM's h and c, the GRU's h
        self.assertEqual(c["layer"]["config"]["name"], "forward_lstm_1")
        self.assertTrue(c["backward_layer"]["config"]["go_backwards"])
        again = layers.Bidirectional.from_config(c)
        self.assertEqual(again.get_config()["layer"]["config"]["name"], "forward_lstm_1")
        with self.assertRaisesRegex(ValueError, "merge_mode"):
            layers.Bidirectional(layers.LSTM(2), merge_mode="max")
        with self.assertRaisesRegex(ValueError, "expected a recurrent layer"):
            layers.Bidirectional(layers.Dense(2))
        # in a model, with Embedding's mask, trained and saved (TF's checkpoint edges)
        kiln.keras.utils.set_random_seed(4)
        tokens = self.rng.integers(1, 9, (32, 6)).astype(np.int32)
        tokens[:16, 4:] = 0
        labels = (tokens[:, 0] > 4).astype(np.int32)
        model = kiln.Sequential([layers.Input((6,), dtype="int32"), layers.Embedding(9, 4, mask_zero=True),
                                 layers.Bidirectional(layers.LSTM(4)), layers.Dense(2)])
        model.compile(optimizer=kiln.optimizers.Adam(0.05),
                      loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(tokens, labels, epochs=6, batch_size=8, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        with tempfile.TemporaryDirectory() as d:
            model.save_weights(os.path.join(d, "w"))
            keys = dict(kiln.train.list_variables(os.path.join(d, "w")))
            self.assertIn("layer_with_weights-1/backward_layer/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE", keys)
            model.save(os.path.join(d, "m"))
            np.testing.assert_allclose(kiln.models.load_model(os.path.join(d, "m")).predict(tokens, verbose=0),
                                       model.predict(tokens, verbose=0), rtol=1e-6)

    def test_time_distributed(self):
        td = layers.TimeDistributed(layers.Dense(2))
        y = td(self.x)
        self.assertEqual(tuple(y.shape), (3, 5, 2))
        k, b = td.get_weights()
        np.testing.assert_allclose(y.numpy(), self.x @ k + b, rtol=1e-5, atol=1e-6)
        self.assertEqual(td.weights[0].name, "time_distributed/dense/kernel")
        self.assertEqual(layers.TimeDistributed.from_config(td.get_config()).get_config()["layer"]["class_name"], "Dense")
        with self.assertRaisesRegex(ValueError, "rank >= 3"):
            td(self.x[0])
        self.assertEqual(td.layer.name, "dense")
        # In training Keras calls the layer once per step: a BatchNormalization normalizes each step apart.
        steps = np.concatenate([np.full((8, 1, 2), m, np.float32) for m in (0.0, 5.0, 10.0)], 1)
        steps += self.rng.standard_normal(steps.shape).astype(np.float32)
        bn = layers.TimeDistributed(layers.BatchNormalization())
        np.testing.assert_allclose(bn(steps, training=True).numpy().mean(axis=(0, 2)), 0, atol=1e-5)
        images = np.ones((2, 3, 5, 5, 1), np.float32)  # a conv over each frame
        self.assertEqual(tuple(layers.TimeDistributed(layers.Conv2D(4, 3))(images).shape), (2, 3, 3, 3, 4))

    def test_dropout_masks_per_gate_with_recurrent_dropout(self):
        # Keras: a recurrent_dropout selects implementation 1, a dropout mask per gate. A GRU of one unit
        # with kernel [[1, 0, 1]] on ones: z = sigmoid(2 m_z), h = (1 - z) tanh(2 m_h); only independent
        # masks for z and h give (1 - sigmoid(0)) tanh(2) = 0.482 (one mask gives 0 or 0.115).
        gru = layers.GRU(1, dropout=0.5, recurrent_dropout=0.5, seed=3)
        gru.build((None, 1, 1))
        gru.set_weights([np.array([[1, 0, 1]], np.float32), np.zeros((1, 3), np.float32), np.zeros((2, 3), np.float32)])
        y = gru(np.ones((256, 1, 1), np.float32), training=True).numpy()
        self.assertTrue(np.any(np.abs(y - 0.5 * np.tanh(2.0)) < 1e-4))
        self.assertTrue(np.all(np.abs(y) < 1e-6) == False)  # noqa: E712
        one = layers.GRU(1, dropout=0.5, seed=3)  # implementation 2: one mask for every gate
        one.build((None, 1, 1))
        one.set_weights(gru.get_weights())
        y1 = one(np.ones((256, 1, 1), np.float32), training=True).numpy()
        self.assertFalse(np.any(np.abs(y1 - 0.5 * np.tanh(2.0)) < 1e-4))
        # inference: no dropout, (1 - sigmoid(1)) tanh(1)
        np.testing.assert_allclose(gru(np.ones((4, 1, 1), np.float32)).numpy(), (1 - 1 / (1 + np.exp(-1))) * np.tanh(1),
                                   rtol=1e-6)

    def test_config_round_trip_and_errors(self):
        lstm = layers.LSTM(4, return_sequences=True, go_backwards=True, dropout=0.2, recurrent_dropout=0.1, seed=3,
                           unit_forget_bias=False)
        c = lstm.get_config()
        for key, value in (("units", 4), ("activation", "tanh"), ("recurrent_activation", "sigmoid"),
                           ("return_sequences", True), ("go_backwards", True), ("dropout", 0.2),
                           ("unit_forget_bias", False), ("seed", 3), ("stateful", False)):
            self.assertEqual(c[key], value, key)
        self.assertEqual(layers.LSTM.from_config(c).get_config(), c)
        self.assertEqual(layers.GRU(2).get_config()["reset_after"], True)
        self.assertNotIn("recurrent_activation", layers.SimpleRNN(2).get_config())
        self.assertNotIn("seed", layers.SimpleRNN(2).get_config())  # as Keras's
        self.assertEqual(layers.SimpleRNN(2, dropout=1.5).get_config()["dropout"], 1.0)  # Keras clamps
        with self.assertRaisesRegex(ValueError, "units must be positive"):
            layers.LSTM(0)
        with self.assertRaisesRegex(kiln.errors.UnimplementedError, "stateful"):
            layers.GRU(2, stateful=True)
        with self.assertRaisesRegex(ValueError, "rank 3"):
            layers.LSTM(2)(self.x[0])
        with self.assertRaisesRegex(ValueError, "initial state 0 has shape"):
            layers.LSTM(2)(self.x, initial_state=[np.zeros((3, 5), np.float32), np.zeros((3, 2), np.float32)])
        with self.assertRaisesRegex(ValueError, "expected the sequences, then optionally 2 initial states"):
            layers.LSTM(2)(self.x, initial_state=[np.zeros((3, 2), np.float32)])
        with self.assertRaisesRegex(ValueError, "0 timesteps"):
            layers.GRU(2)(np.zeros((2, 0, 4), np.float32))
        with self.assertRaisesRegex(TypeError, "unexpected keyword"):
            layers.SimpleRNN(2, reset_after=True)


if __name__ == "__main__":
    unittest.main()
