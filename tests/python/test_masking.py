"""Keras masking from Python: outputs carry _keras_mask, a layer picks up its input's _keras_mask or
an explicit mask=, Embedding(mask_zero) through Dense/Dropout/LayerNormalization and Sequential,
MultiHeadAttention with padding masks, GlobalAveragePooling1D, merge layers, compute_mask,
supports_masking, Masking, Python subclasses that read (call(mask=...)) and make (compute_mask)
masks, and bad masks as errors naming the layer."""
import threading
import unittest

import numpy as np

import kiln
from kiln import layers

IDS = np.array([[3, 1, 0, 0], [2, 5, 4, 0]], np.int32)
IDS_MASK = IDS != 0


def mask_of(t):
    m = getattr(t, "_keras_mask", None)
    return None if m is None else m.numpy()


class MaskedSum(layers.Layer):
    """Reads its mask: the masked sum over the steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs, mask=None):
        self.seen.append(mask is not None)
        x = inputs.numpy()
        if mask is not None:
            x = x * mask.numpy()[..., None]
        return kiln.constant(x.sum(axis=1))


class ZeroStepMask(layers.Layer):
    """Makes a mask: a step with any nonzero feature is valid (Keras's Masking(0))."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_mask(self, inputs, mask=None):
        return kiln.constant(np.any(inputs.numpy() != 0, axis=-1))


class MaskingTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_embedding_mask_zero(self):
        e = layers.Embedding(6, 4, mask_zero=True)
        self.assertTrue(e.supports_masking)
        y = e(IDS)
        np.testing.assert_array_equal(mask_of(y), IDS_MASK)
        np.testing.assert_array_equal(e.compute_mask(IDS).numpy(), IDS_MASK)
        self.assertEqual(e.weights[0].shape, (6, 4))  # input_dim counts index 0
        self.assertIsNone(mask_of(layers.Embedding(6, 4)(IDS)))
        self.assertFalse(layers.Embedding(6, 4).supports_masking)

    def test_mask_flows_layer_to_layer_and_through_sequential(self):
        e = layers.Embedding(6, 4, mask_zero=True)
        x = e(IDS)
        for layer in (layers.Dense(5), layers.Dropout(0.5), layers.LayerNormalization()):
            self.assertTrue(layer.supports_masking)
            x = layer(x, training=True)
            np.testing.assert_array_equal(mask_of(x), IDS_MASK)
        seq = kiln.Sequential([layers.Embedding(6, 4, mask_zero=True), layers.Dense(5), layers.Dropout(0.5),
                               layers.LayerNormalization()])
        y = seq(IDS, training=True)
        self.assertEqual(y.shape, (2, 4, 5))
        np.testing.assert_array_equal(mask_of(y), IDS_MASK)
        # A layer without masking support ends the mask.
        self.assertIsNone(mask_of(layers.Flatten()(x)))

    def test_loss_and_metrics_leave_masked_steps_out(self):
        # Keras's Loss.__call__ and MeanMetricWrapper read y_pred's _keras_mask: the model predicts
        # 2.0 everywhere, the targets make an error of 4 on the valid steps and 0 on the padding.
        m = kiln.Sequential([layers.Input((4,), dtype="int32"),
                             layers.Embedding(6, 2, mask_zero=True, embeddings_initializer="ones"),
                             layers.Dense(1, kernel_initializer="ones")])
        y = np.where(IDS_MASK[..., None], 0.0, 2.0).astype(np.float32)
        out = m(IDS)
        np.testing.assert_array_equal(mask_of(out), IDS_MASK)
        self.assertAlmostEqual(float(kiln.losses.MeanSquaredError()(y, out)), 4.0, places=5)
        # Setting the attribute, as in Keras, changes what the loss sees: every step counts.
        out._keras_mask = np.ones((2, 4), bool)
        self.assertAlmostEqual(float(kiln.losses.MeanSquaredError()(y, out)), 20.0 / 8, places=5)
        out._keras_mask = None
        self.assertIsNone(out._keras_mask)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "does not fit tensor"):
            out._keras_mask = np.ones((3,), bool)
        m.compile(optimizer=kiln.optimizers.SGD(0.0), loss="mse", metrics=["mae"])
        loss, mae = m.evaluate(IDS, y, verbose=0)
        self.assertAlmostEqual(loss, 4.0, places=5)
        self.assertAlmostEqual(mae, 2.0, places=5)
        self.assertIsNone(kiln.constant([1.0])._keras_mask)

    def test_crossentropy_reads_the_logits_of_sigmoid_and_softmax_outputs(self):
        x = np.array([[30.0], [-30.0], [2.0]], np.float32)
        y = np.array([[0.0], [1.0], [1.0]], np.float32)
        m = kiln.Sequential([layers.Input((1,)), layers.Dense(1, activation="sigmoid", kernel_initializer="ones")])
        m.compile(optimizer=kiln.optimizers.SGD(0.0), loss="binary_crossentropy")
        z, t = x[:, 0].astype(np.float64), y[:, 0]
        want = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
        self.assertAlmostEqual(m.evaluate(x, y, verbose=0), want, places=3)
        with kiln.GradientTape() as tape:
            loss = kiln.losses.BinaryCrossentropy()(y, m(x))
        g = tape.gradient(loss, m.trainable_variables)[0].numpy().ravel()
        self.assertAlmostEqual(float(g[0]), np.mean((1 / (1 + np.exp(-z)) - t) * z), places=3)
        m2 = kiln.Sequential([layers.Input((2,)), layers.Dense(2, activation="softmax")])
        m2.set_weights([np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
        m2.compile(optimizer=kiln.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
        self.assertAlmostEqual(m2.evaluate(np.array([[40.0, 0.0]], np.float32), np.array([1]), verbose=0), 40.0,
                               places=3)

    def test_explicit_mask_wins_over_keras_mask(self):
        d = layers.Dense(2)
        x = kiln.constant(np.ones((2, 4, 3), np.float32))
        m = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], bool)
        np.testing.assert_array_equal(mask_of(d(x, mask=m)), m)
        y = layers.Embedding(6, 3, mask_zero=True)(IDS)
        np.testing.assert_array_equal(mask_of(d(y, mask=m)), m)
        np.testing.assert_array_equal(d.compute_mask(y, mask=m).numpy(), m)
        self.assertIsNone(d.compute_mask(y))

    def test_attention_padding_mask_equals_explicit_mask(self):
        x = layers.Embedding(6, 4, mask_zero=True)(IDS)
        mha = layers.MultiHeadAttention(2, 3, bias_initializer="random_uniform")
        self.assertTrue(mha.supports_masking)
        out, scores = mha(x, x, return_attention_scores=True)
        explicit = IDS_MASK[:, :, None] & IDS_MASK[:, None, :]
        want, want_scores = mha(x.numpy(), x.numpy(), attention_mask=explicit, return_attention_scores=True)
        np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scores.numpy(), want_scores.numpy(), rtol=1e-5, atol=1e-7)
        # Masked keys get zero scores; the output keeps the query mask, the scores have none.
        s = scores.numpy()
        self.assertTrue(np.all(s[np.broadcast_to(~IDS_MASK[:, None, None, :], s.shape)] == 0))
        np.testing.assert_array_equal(mask_of(out), IDS_MASK)
        self.assertIsNone(mask_of(scores))
        # Keras's keywords: query_mask and value_mask.
        q = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4)).astype(np.float32)
        out2 = mha(q, q, query_mask=IDS_MASK, value_mask=IDS_MASK)
        want2 = mha(q, q, attention_mask=explicit)
        np.testing.assert_allclose(out2.numpy(), want2.numpy(), rtol=1e-5, atol=1e-6)

    def test_global_average_pooling_1d_masked_mean(self):
        x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
        gap = layers.GlobalAveragePooling1D()
        y = gap(x, mask=IDS_MASK)
        want = np.stack([x[b][IDS_MASK[b]].mean(axis=0) for b in range(2)])
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)
        self.assertIsNone(mask_of(y))
        np.testing.assert_allclose(gap(x).numpy(), x.mean(axis=1), rtol=1e-6)

    def test_merge_masks(self):
        a = kiln.constant(np.ones((2, 4, 3), np.float32))
        m1 = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool)
        m2 = np.array([[1, 0, 0, 1], [1, 1, 1, 0]], bool)
        # Keras 3: the OR of the masks, and none unless every input has one.
        y = layers.Add()([a, a], mask=[m1, m2])
        np.testing.assert_array_equal(mask_of(y), m1 | m2)
        y = layers.Multiply()([a, a], mask=[m1, None])
        self.assertIsNone(mask_of(y))
        self.assertIsNone(mask_of(layers.Average()([a, a])))
        # Picked up from the inputs' _keras_mask.
        e = layers.Embedding(6, 3, mask_zero=True)
        xe = e(IDS)
        self.assertIsNone(mask_of(layers.add([xe, a])))
        np.testing.assert_array_equal(mask_of(layers.add([xe, xe])), IDS_MASK)
        y = layers.Concatenate(axis=1)([xe, a], mask=[IDS_MASK, m2])
        np.testing.assert_array_equal(mask_of(y), np.concatenate([IDS_MASK, m2], axis=1))

    def test_masking_layer(self):
        x = np.array([[[1, 2], [0, 0], [3, 0]]], np.float32)
        y = layers.Masking()(x)
        np.testing.assert_array_equal(mask_of(y), [[True, False, True]])
        np.testing.assert_array_equal(y.numpy(), x)
        self.assertEqual(layers.Masking(mask_value=-1.0).get_config()["mask_value"], -1.0)

    def test_custom_layers_read_and_make_masks(self):
        maker, reader = ZeroStepMask(), MaskedSum()
        self.assertTrue(maker.supports_masking)
        self.assertFalse(reader.supports_masking)
        x = np.array([[[1, 2], [0, 0], [3, 4]]], np.float32)
        y = maker(x)
        np.testing.assert_array_equal(mask_of(y), [[True, False, True]])
        np.testing.assert_array_equal(maker.compute_mask(kiln.constant(x)).numpy(), [[True, False, True]])
        # The reader gets the maker's mask from y._keras_mask and leaves step 1 out.
        xs = kiln.constant(np.array([[[1, 2], [5, 6], [3, 4]]], np.float32))
        np.testing.assert_allclose(reader(xs, mask=mask_of(y)).numpy(), [[4, 6]])
        self.assertEqual(reader.seen[-1], True)
        np.testing.assert_allclose(reader(xs).numpy(), [[9, 12]])
        self.assertEqual(reader.seen[-1], False)
        # In a Sequential, the mask reaches the reader through C.
        seq = kiln.Sequential([ZeroStepMask(), MaskedSum()])
        np.testing.assert_allclose(seq(x).numpy(), [[4, 6]])
        # A layer's default compute_mask follows supports_masking.
        reader.supports_masking = True
        self.assertTrue(reader.supports_masking)
        np.testing.assert_array_equal(reader.compute_mask(xs, mask=IDS_MASK[:1, :3]), IDS_MASK[:1, :3])

    def test_model_subclass_keeps_inner_masks(self):
        class Encoder(kiln.Model):
            def __init__(self):
                super().__init__()
                self.embed = layers.Embedding(6, 4, mask_zero=True)
                self.dense = layers.Dense(3)

            def call(self, ids):
                return self.dense(self.embed(ids))

        class Pool(kiln.Model):
            def __init__(self):
                super().__init__()
                self.pool = layers.GlobalAveragePooling1D()

            def call(self, x):
                return self.pool(x)  # x carries the mask it was called with

        enc = Encoder()
        y = enc(IDS)
        np.testing.assert_array_equal(mask_of(y), IDS_MASK)
        pooled = Pool()(y)
        want = layers.GlobalAveragePooling1D()(y.numpy(), mask=IDS_MASK)
        np.testing.assert_allclose(pooled.numpy(), want.numpy(), rtol=1e-6)

    def test_bad_masks(self):
        d = layers.Dense(2, name="proj")
        x = np.ones((2, 3, 4), np.float32)
        with self.assertRaisesRegex(kiln.InvalidArgumentError,
                                    r"layer 'proj' \(Dense\): mask 0 has shape \[2, 4\]; expected the leading dims "
                                    r"of input 0's shape \[2, 3, 4\]"):
            d(x, mask=np.ones((2, 4), bool))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'proj' \(Dense\): got 2 masks for 1 inputs"):
            d(x, mask=[np.ones((2, 3), bool), None])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "got 1 masks for 2 inputs"):
            layers.Add()([x, x], mask=[np.ones((2, 3), bool)])

    def test_masked_calls_from_threads(self):
        e = layers.Embedding(6, 4, mask_zero=True)
        mha = layers.MultiHeadAttention(2, 3)
        ids = [IDS, np.array([[1, 0, 0, 0], [2, 2, 0, 0]], np.int32)]
        want = [mha(e(i), e(i)).numpy() for i in ids]
        errors = []

        def run(k):
            for n in range(10):
                j = (k + n) % 2
                x = e(ids[j])
                y = mha(x, x)
                if not np.array_equal(y.numpy(), want[j]) or not np.array_equal(mask_of(y), ids[j] != 0):
                    errors.append((k, n))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


if __name__ == "__main__":
    unittest.main()
