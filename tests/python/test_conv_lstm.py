"""keras.layers.ConvLSTM1D / 2D / 3D from Python: outputs against a NumPy transcription of Keras 3's
ConvLSTMCell and backend rnn (strides, dilation, padding, masks, go_backwards, initial_state,
return_state), Keras's config, weights, dropout masks held for a call, training by fit, SavedModel and
clone_model round trips, Bidirectional, and errors."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers, models
from kiln.errors import InvalidArgumentError, UnimplementedError


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def conv(x, w, strides, dilation, padding):
    """tf.nn.convolution in float64: x [N, spatial..., C], w [k..., C, O]; 'same' puts the odd pixel after."""
    rank = x.ndim - 2
    ks = w.shape[:rank]
    if padding == "same":
        pads = []
        for i in range(rank):
            n, span = x.shape[1 + i], (ks[i] - 1) * dilation[i] + 1
            total = max((-(-n // strides[i]) - 1) * strides[i] + span - n, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    outs = [(x.shape[1 + i] - (ks[i] - 1) * dilation[i] - 1) // strides[i] + 1 for i in range(rank)]
    y = np.zeros([x.shape[0]] + outs + [w.shape[-1]])
    for idx in np.ndindex(*ks):
        window = [slice(None)] + [slice(idx[i] * dilation[i], idx[i] * dilation[i] + (outs[i] - 1) * strides[i] + 1,
                                        strides[i]) for i in range(rank)]
        y += np.tensordot(x[tuple(window)], w[idx], axes=([x.ndim - 1], [0]))
    return y


def reference(x, weights, filters, strides, dilation, padding, mask=None, go_backwards=False, h0=None, c0=None,
              zero_output_for_mask=False):
    """Keras 3's ConvLSTMCell steps and backend rnn in float64: (outputs in processing order, h, c)."""
    rank = x.ndim - 3
    k, rk = weights[0].astype(np.float64), weights[1].astype(np.float64)
    b = weights[2].astype(np.float64) if len(weights) > 2 else 0
    steps = x.shape[1]
    h = c = prev = None
    outs = []
    for t in (range(steps - 1, -1, -1) if go_backwards else range(steps)):
        zx = conv(x[:, t].astype(np.float64), k, strides, dilation, padding) + b
        if h is None:
            h = np.zeros(zx.shape[:-1] + (filters,)) if h0 is None else h0.astype(np.float64)
            c = np.zeros_like(h) if c0 is None else c0.astype(np.float64)
            prev = np.zeros_like(h)
        z = zx + conv(h, rk, [1] * rank, [1] * rank, "same")
        i, f, g, o = np.split(z, 4, axis=-1)
        nc = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        nh = sigmoid(o) * np.tanh(nc)
        out = nh
        if mask is not None:
            m = mask[:, t].reshape((-1,) + (1,) * (h.ndim - 1))
            out = np.where(m, nh, 0 if zero_output_for_mask else prev)
            nh, nc = np.where(m, nh, h), np.where(m, nc, c)
        h, c, prev = nh, nc, out
        outs.append(out)
    return np.stack(outs, 1), h, c


CLASSES = {1: layers.ConvLSTM1D, 2: layers.ConvLSTM2D, 3: layers.ConvLSTM3D}


class ConvLstmTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_against_keras_math(self):
        rng = np.random.default_rng(0)
        for case in range(24):
            rank = 1 + case % 3
            padding = ("valid", "same")[case // 3 % 2]
            strides, dilation = ((1, 1), (2, 1), (1, 2), (1, 1))[case // 6]
            kernel = 2 + case % 2
            spatial = [7, 6, 5][:rank]
            filters = 1 + case % 4
            go_backwards, use_bias, given = case % 5 == 1, case % 7 != 3, case % 4 == 2
            layer = CLASSES[rank](filters, kernel, strides=strides, dilation_rate=dilation, padding=padding,
                                  use_bias=use_bias, go_backwards=go_backwards, return_sequences=True,
                                  return_state=True)
            x = rng.standard_normal([2, 3] + spatial + [2]).astype(np.float32)
            out_spatial = [-(-n // strides) if padding == "same" else (n - (kernel - 1) * dilation - 1) // strides + 1
                           for n in spatial]
            h0 = rng.standard_normal([2] + out_spatial + [filters]).astype(np.float32) if given else None
            c0 = rng.standard_normal([2] + out_spatial + [filters]).astype(np.float32) if given else None
            mask = rng.random([2, 3]) < 0.7 if case % 3 == 0 else None
            kwargs = {}
            if given:
                kwargs["initial_state"] = [kiln.constant(h0), kiln.constant(c0)]
            if mask is not None:
                kwargs["mask"] = kiln.constant(mask)
            ys, h, c = [np.asarray(t) for t in layer(kiln.constant(x), **kwargs)]
            want = reference(x, layer.get_weights(), filters, [strides] * rank, [dilation] * rank, padding, mask,
                             go_backwards, h0, c0)
            for got, ref in zip((ys, h, c), want):
                np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6, err_msg="case %d" % case)

    def test_config_weights_and_shapes(self):
        layer = layers.ConvLSTM2D(3, (3, 2), padding="same", return_sequences=True)
        config = layer.get_config()
        self.assertEqual(list(config)[3:], [
            "return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask",
            "filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
            "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
            "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
            "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
            "recurrent_dropout", "seed"])
        self.assertEqual(config["kernel_size"], [3, 2])
        self.assertEqual(config["strides"], [1, 1])
        self.assertEqual(config["data_format"], "channels_last")
        self.assertEqual(layers.ConvLSTM2D.from_config(config).get_config(), config)
        self.assertEqual(layer.compute_output_shape((None, 4, 6, 5, 2)), (None, 4, 6, 5, 3))
        y = layer(kiln.constant(np.ones([1, 4, 6, 5, 2], np.float32)))
        self.assertEqual(tuple(y.shape), (1, 4, 6, 5, 3))
        self.assertEqual([w.path for w in layer.weights], ["conv_lstm2d/conv_lstm_cell/kernel",
                                                            "conv_lstm2d/conv_lstm_cell/recurrent_kernel",
                                                            "conv_lstm2d/conv_lstm_cell/bias"])
        self.assertEqual([tuple(w.shape) for w in layer.get_weights()], [(3, 2, 2, 12), (3, 2, 3, 12), (12,)])
        np.testing.assert_array_equal(layer.get_weights()[2], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
        self.assertEqual(layer.count_params(), 3 * 2 * 2 * 12 + 3 * 2 * 3 * 12 + 12)
        states = layers.ConvLSTM1D(2, 3, strides=2, return_state=True)
        self.assertEqual(list(states.compute_output_shape((None, 5, 9, 1))), [(None, 4, 2)] * 3)
        self.assertEqual(list(states.compute_output_shape((None, 5, 9, 1), [(None, 4, 2), (None, 4, 2)])),
                         [(None, 4, 2)] * 3)
        # Keras's attributes: the arguments, and the cell with the weights.
        self.assertEqual((layer.filters, layer.kernel_size, layer.padding, layer.return_sequences), (3, (3, 2), "same",
                                                                                                     True))
        self.assertEqual(layer.cell.name, "conv_lstm_cell")
        self.assertEqual(tuple(layer.cell.kernel.shape), (3, 2, 2, 12))
        with self.assertRaises(TypeError):
            type(layer.cell)()

    def test_dropout_masks_hold_for_a_call(self):
        # Linear gates over a constant input with no recurrence: the cell state of a unit whose gate inputs
        # were dropped is zero at every step exactly when the masks hold for the whole sequence.
        layer = layers.ConvLSTM1D(4, 1, dropout=0.5, recurrent_dropout=0.5, use_bias=False, activation="linear",
                                  recurrent_activation="linear", kernel_initializer="ones",
                                  recurrent_initializer="zeros", return_sequences=True)
        x = kiln.constant(np.ones([3, 5, 6, 1], np.float32))
        y = np.asarray(layer(x, training=True))
        zeros = y == 0
        self.assertTrue(zeros.any() and not zeros.all())
        for t in range(1, 5):
            np.testing.assert_array_equal(zeros[:, t], zeros[:, 0])
        np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(layer(x, training=False)))
        self.assertFalse((np.asarray(layer(x)) == 0).any())

    def test_trains_saves_and_clones(self):
        kiln.keras.utils.set_random_seed(4)
        model = models.Sequential([layers.Input((3, 5, 5, 1)), layers.ConvLSTM2D(2, 3, padding="same"),
                                   layers.Flatten(), layers.Dense(2)])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(5)
        x = rng.standard_normal([8, 3, 5, 5, 1]).astype(np.float32)
        y = (x[:, 0, 2, 2, 0] > 0).astype(np.int32)
        history = model.fit(x, y, epochs=8, batch_size=8, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "conv_lstm")
            model.save(path)
            loaded = models.load_model(path)
            np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)),
                                          np.asarray(model.predict(x, verbose=0)))
        clone = models.clone_model(model)
        self.assertEqual(clone.layers[0].get_config()["filters"], 2)
        clone.set_weights(model.get_weights())
        np.testing.assert_array_equal(np.asarray(clone.predict(x, verbose=0)),
                                      np.asarray(model.predict(x, verbose=0)))

    def test_bidirectional(self):
        x = kiln.constant(np.random.default_rng(6).standard_normal([2, 3, 4, 2]).astype(np.float32))
        bi = layers.Bidirectional(layers.ConvLSTM1D(2, 2, return_sequences=True, return_state=True))
        out = bi(x)
        self.assertEqual([tuple(t.shape) for t in out], [(2, 3, 3, 4)] + [(2, 3, 2)] * 4)
        forward, backward = bi.forward_layer, bi.backward_layer
        want_f = reference(np.asarray(x), forward.get_weights(), 2, [1], [1], "valid")[0]
        want_b = reference(np.asarray(x), backward.get_weights(), 2, [1], [1], "valid", go_backwards=True)[0]
        np.testing.assert_allclose(np.asarray(out[0]), np.concatenate([want_f, want_b[:, ::-1]], -1), rtol=1e-5,
                                   atol=2e-6)

    def test_errors(self):
        x = kiln.constant(np.zeros([2, 3, 5, 1], np.float32))
        with self.assertRaisesRegex(UnimplementedError, "channels_first"):
            layers.ConvLSTM2D(2, 3, data_format="channels_first")
        with self.assertRaisesRegex(UnimplementedError, "stateful"):
            layers.ConvLSTM1D(2, 3, stateful=True)
        with self.assertRaisesRegex(InvalidArgumentError, "dilation_rate"):
            layers.ConvLSTM1D(2, 3, strides=2, dilation_rate=2)
        with self.assertRaisesRegex(InvalidArgumentError, "kernel_size"):
            layers.ConvLSTM2D(2, (3, 3, 3))
        with self.assertRaisesRegex(InvalidArgumentError, "filters"):
            layers.ConvLSTM2D(None, 3)
        with self.assertRaisesRegex(InvalidArgumentError, "filters must be positive and at most"):
            layers.ConvLSTM2D(2**62, 3)
        with self.assertRaisesRegex(UnimplementedError, "float64"):
            layers.ConvLSTM2D(2, 3, dtype="float64")
        with self.assertRaisesRegex(InvalidArgumentError, "too small for a window of 7"):
            layers.ConvLSTM1D(2, 7)(x)
        with self.assertRaisesRegex(InvalidArgumentError, "expected rank 6"):
            layers.ConvLSTM3D(2, 3)(x)
        with self.assertRaisesRegex(InvalidArgumentError, "floating"):
            layers.ConvLSTM1D(2, 3)(kiln.constant(np.zeros([2, 3, 5, 1], np.int32)))
        built = layers.ConvLSTM1D(2, 3)
        built(x)
        with self.assertRaisesRegex(InvalidArgumentError, "built for"):
            built(kiln.constant(np.zeros([2, 3, 6, 1], np.float32)))
        with self.assertRaisesRegex(InvalidArgumentError, "initial state c"):
            built(x, initial_state=[kiln.constant(np.zeros([2, 3, 2], np.float32)),
                                    kiln.constant(np.zeros([2, 4, 2], np.float32))])
        with self.assertRaisesRegex(InvalidArgumentError, "mask"):
            built(x, mask=kiln.constant(np.ones([2, 4], bool)))


if __name__ == "__main__":
    unittest.main()
