"""Where the December semantics probes found kiln apart from Keras 3 (TensorFlow backend), each case now
as Keras computes it: merge layers' masks (OR, and Maximum / Minimum / Multiply over the valid entries
only), masked statistics that select instead of multiplying (a NaN at a masked step stays out),
LayerNormalization's rms_scaling and RMSNormalization, configs Keras writes today (synchronized,
quantization_config, use_gate), LeakyReLU(0) as TF's LeakyRelu, Reshape of an empty batch,
MultiHeadAttention masks of fewer axes or per head, the sparse crossentropy's axis, top-k accuracy as
TF's in_top_k (non-finite rows and out-of-range labels miss) with from_sorted_ids, -0.0 ranking below
+0.0 in the accuracy metrics' argmax, and AUC's PRGAIN curve."""
import unittest

import numpy as np

import kiln
from kiln import layers, losses, metrics
from kiln.errors import InvalidArgumentError, UnimplementedError

F = np.float32


def masked(x, mask):
    t = kiln.constant(np.asarray(x, F))
    t._keras_mask = kiln.constant(np.asarray(mask, bool))
    return t


class MergeMaskTest(unittest.TestCase):
    def setUp(self):
        self.a = masked(np.array([1, 5, 2, 7], F).reshape(1, 4, 1), [[1, 1, 0, 0]])
        self.b = masked(np.array([3, 4, 9, 6], F).reshape(1, 4, 1), [[1, 0, 1, 0]])

    def test_values_over_valid_entries(self):
        # positions: both valid, only a, only b, neither (Keras 3's _apply_merge_op_and_or_mask / Multiply)
        np.testing.assert_array_equal(layers.Maximum()([self.a, self.b]).numpy().ravel(), [3, 5, 9, 7])
        np.testing.assert_array_equal(layers.Minimum()([self.a, self.b]).numpy().ravel(), [1, 5, 9, 7])
        np.testing.assert_array_equal(layers.Multiply()([self.a, self.b]).numpy().ravel(), [3, 5, 9, 0])
        np.testing.assert_array_equal(layers.Add()([self.a, self.b]).numpy().ravel(), [4, 9, 11, 13])

    def test_output_mask_is_the_or_and_none_without_every_mask(self):
        out = layers.Add()([self.a, self.b])
        np.testing.assert_array_equal(out._keras_mask.numpy(), [[True, True, True, False]])
        plain = kiln.constant(np.ones((1, 4, 1), F))
        self.assertIsNone(getattr(layers.Add()([self.a, plain]), "_keras_mask", None))


class MaskedStatisticsTest(unittest.TestCase):
    def test_global_average_pooling_skips_nan_at_masked_steps(self):
        x = np.ones((1, 4, 2), F)
        x[0, 3] = np.nan
        y = layers.GlobalAveragePooling1D()(kiln.constant(x), mask=kiln.constant(np.array([[1, 1, 1, 0]], bool)))
        np.testing.assert_array_equal(y.numpy(), [[1, 1]])

    def test_global_average_pooling_of_ints_is_float32(self):
        y = layers.GlobalAveragePooling1D()(kiln.constant(np.arange(4, dtype=np.int32).reshape(1, 4, 1)))
        self.assertEqual(y.dtype, kiln.float32)
        self.assertEqual(float(y.numpy().ravel()[0]), 1.5)

    def test_batch_normalization_masked_moments_skip_nan(self):
        x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(F)
        x[1, 3] = np.nan
        m = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
        bn = layers.BatchNormalization()
        y = bn(kiln.constant(x), training=True, mask=kiln.constant(m)).numpy()
        valid = x[m]
        mean, var = valid.mean(0), valid.var(0)
        np.testing.assert_allclose(y[m], (valid - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
        self.assertTrue(np.all(np.isfinite(bn.moving_mean.numpy())))


class NormalizationConfigTest(unittest.TestCase):
    def test_rms_normalization(self):
        x = np.random.default_rng(1).normal(size=(3, 5)).astype(F)
        layer = layers.RMSNormalization()
        y = layer(kiln.constant(x)).numpy()
        np.testing.assert_allclose(y, x / np.sqrt(np.mean(x * x, -1, keepdims=True) + 1e-6), rtol=1e-5)
        self.assertEqual([w.name.split("/")[-1].split(":")[0] for w in layer.weights], ["scale"])
        self.assertEqual(layer.get_config()["epsilon"], 1e-6)
        back = layers.deserialize(layers.serialize(layer))
        self.assertEqual(type(back).__name__, "RMSNormalization")

    def test_layer_normalization_rms_scaling(self):
        # Keras's deprecated rms_scaling: x * rsqrt(var + eps) * gamma, gamma only (no beta).
        x = np.random.default_rng(2).normal(size=(2, 6)).astype(F) + 3
        layer = layers.LayerNormalization(rms_scaling=True)
        y = layer(kiln.constant(x)).numpy()
        np.testing.assert_allclose(y, x / np.sqrt(x.var(-1, keepdims=True) + 1e-3), rtol=1e-5)
        self.assertEqual(len(layer.weights), 1)
        self.assertTrue(layer.get_config()["rms_scaling"])
        self.assertFalse(layers.LayerNormalization().get_config()["rms_scaling"])

    def test_constructors_take_their_own_configs(self):
        for layer in (layers.BatchNormalization(beta_regularizer="l2", synchronized=True),
                      layers.LayerNormalization(gamma_regularizer="l2")):
            c = layer.get_config()
            self.assertEqual(type(layer)(**c).get_config(), c)
        self.assertTrue(layers.BatchNormalization(synchronized=True).get_config()["synchronized"])
        with self.assertRaisesRegex(UnimplementedError, "constraint"):
            layers.deserialize({"class_name": "LayerNormalization", "config": {"beta_constraint": {
                "class_name": "NonNeg", "config": {}}}})
        with self.assertRaisesRegex(UnimplementedError, "renorm"):
            layers.BatchNormalization(renorm=True)

    def test_current_keras_config_keys(self):
        dense = layers.deserialize({"class_name": "Dense", "config": {"units": 2, "quantization_config": None}})
        self.assertEqual(dense.get_config()["units"], 2)
        with self.assertRaisesRegex(UnimplementedError, "lora_rank"):
            layers.deserialize({"class_name": "Dense", "config": {"units": 2, "lora_rank": 4}})
        layers.deserialize({"class_name": "MultiHeadAttention", "config": {
            "num_heads": 2, "key_dim": 4, "use_gate": False, "sliding_window": None}})
        gated = layers.deserialize({"class_name": "MultiHeadAttention", "config": {
            "num_heads": 2, "key_dim": 4, "use_gate": True, "sliding_window": 3}})
        self.assertEqual((gated.get_config()["use_gate"], gated.get_config()["sliding_window"]), (True, 3))
        with self.assertRaisesRegex(UnimplementedError, "flash_attention"):
            layers.deserialize({"class_name": "MultiHeadAttention", "config": {
                "num_heads": 2, "key_dim": 4, "flash_attention": True}})

    def test_reshape_of_an_empty_batch(self):
        self.assertEqual(tuple(layers.Reshape((-1,))(np.zeros((0, 3, 4), F)).shape), (0, 12))
        self.assertEqual(tuple(layers.Reshape((2, -1))(np.zeros((0, 3, 4), F)).shape), (0, 2, 6))

    def test_leaky_relu_with_zero_slope_is_tf_leaky_relu(self):
        y = layers.LeakyReLU(negative_slope=0.0)(kiln.constant(np.array([-np.inf, -1.0, 2.0], F))).numpy()
        self.assertTrue(np.isnan(y[0]))
        self.assertEqual((y[1], np.signbit(y[1])), (0.0, True))
        self.assertEqual(y[2], 2.0)


class WorkflowTest(unittest.TestCase):
    def test_functional_api_attempts_say_so(self):
        with self.assertRaisesRegex(UnimplementedError, "no functional API"):
            layers.Dense(2)(layers.Input(shape=(3,)))
        with self.assertRaisesRegex(UnimplementedError, "no functional API"):
            kiln.keras.Model(inputs=kiln.keras.Input(shape=(3,)), outputs=None)

    def test_keras_backend_settings(self):
        backend = kiln.keras.backend
        self.assertEqual((backend.floatx(), backend.epsilon(), backend.image_data_format()),
                         ("float32", 1e-7, "channels_last"))
        backend.set_floatx("float32")
        with self.assertRaisesRegex(UnimplementedError, "set_floatx.*float64"):
            backend.set_floatx("float64")
        self.assertIs(kiln.TensorSpec, kiln.data.TensorSpec)

    def test_learning_rate_assign_and_backend_values(self):
        # Keras 3's optimizer.learning_rate.assign, and Keras 2's backend get_value / set_value.
        opt = kiln.keras.optimizers.Adam(1e-3)
        lr = opt.learning_rate
        self.assertEqual((float(lr), lr.numpy()), (1e-3, 1e-3))
        lr.assign(5e-4)
        self.assertEqual(opt.learning_rate, 5e-4)
        self.assertEqual(float(lr), 1e-3)  # a value read before keeps its number
        kiln.keras.backend.set_value(opt.learning_rate, 2e-4)
        self.assertAlmostEqual(kiln.keras.backend.get_value(opt.learning_rate), 2e-4)
        v = kiln.Variable(np.ones(2, F))
        kiln.keras.backend.set_value(v, np.full(2, 3, F))
        np.testing.assert_array_equal(kiln.keras.backend.get_value(v), [3, 3])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "no assign"):
            kiln.keras.backend.set_value(0.5, 1.0)
        # In a callback, the Keras-guide way to decay the rate by hand.
        model = kiln.Sequential([layers.Dense(1)])
        model.compile(optimizer=kiln.keras.optimizers.SGD(0.1), loss="mse")

        class Halve(kiln.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                self.model.optimizer.learning_rate.assign(self.model.optimizer.learning_rate * 0.5)
        model.fit(np.zeros((4, 2), F), np.zeros((4, 1), F), epochs=2, verbose=0, callbacks=[Halve()])
        self.assertAlmostEqual(model.optimizer.learning_rate, 0.025)

    def test_history_model(self):
        model = kiln.Sequential([layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(np.zeros((4, 2), F), np.zeros((4, 1), F), epochs=1, verbose=0)
        self.assertIs(history.model, model)


class AttentionMaskBroadcastTest(unittest.TestCase):
    def test_masks_of_fewer_axes_and_per_head(self):
        rng = np.random.default_rng(3)
        q, v = rng.normal(size=(2, 3, 4)).astype(F), rng.normal(size=(2, 5, 4)).astype(F)
        mha = layers.MultiHeadAttention(num_heads=2, key_dim=3)
        ts = rng.random((3, 5)) > 0.4
        ts[:, 0] = True
        full = mha(q, v, attention_mask=np.broadcast_to(ts, (2, 3, 5))).numpy()
        np.testing.assert_allclose(mha(q, v, attention_mask=ts).numpy(), full, rtol=1e-6, atol=1e-7)
        heads = np.stack([np.broadcast_to(ts, (2, 3, 5)), np.ones((2, 3, 5), bool)], axis=1)  # [B, heads, T, S]
        out, scores = mha(q, v, attention_mask=heads, return_attention_scores=True)
        scores = scores.numpy()
        self.assertEqual(scores.shape, (2, 2, 3, 5))
        self.assertTrue(np.all(scores[:, 0][~np.broadcast_to(ts, (2, 3, 5))] == 0))
        self.assertTrue(np.all(scores[:, 1] > 0))
        with self.assertRaisesRegex(InvalidArgumentError, "attention_mask has shape"):
            mha(q, v, attention_mask=np.ones((2, 3, 3, 5), bool))  # 3 heads for a 2-head layer

    def test_rms_normalization_autocasts_under_mixed_precision(self):
        # Keras's RMSNormalization rounds its input to the compute dtype (bfloat16) first.
        x = (np.random.default_rng(4).normal(size=(2, 8)) * 3 + 1).astype(F)
        y = layers.RMSNormalization(dtype="mixed_bfloat16")(kiln.constant(x))
        self.assertEqual(y.dtype, kiln.bfloat16)
        xb = kiln.cast(kiln.cast(kiln.constant(x), "bfloat16"), "float32").numpy()
        want = xb / np.sqrt(np.mean(xb * xb, -1, keepdims=True) + 1e-6)
        np.testing.assert_allclose(kiln.cast(y, "float32").numpy(), want, rtol=8e-3)


class LossMetricTest(unittest.TestCase):
    def test_sparse_crossentropy_axis(self):
        c = {"name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": True,
             "ignore_class": None, "axis": -1}
        loss = losses.deserialize({"class_name": "SparseCategoricalCrossentropy", "config": c})
        self.assertEqual(loss.get_config()["axis"], -1)
        logits = np.array([[2.0, 0.5, -1.0]], F)
        self.assertAlmostEqual(float(loss(np.array([0]), logits).numpy()),
                               float(-np.log(np.exp(2.0) / np.exp(logits).sum())), places=5)
        self.assertAlmostEqual(float(losses.SparseCategoricalCrossentropy(from_logits=True, axis=1)(
            np.array([0]), logits).numpy()), float(loss(np.array([0]), logits).numpy()), places=6)
        with self.assertRaisesRegex(InvalidArgumentError, "axis"):
            losses.SparseCategoricalCrossentropy(axis=0)(np.array([0]), logits)
        # The metric takes the same axis (Keras's passes it to the same function).
        m = metrics.SparseCategoricalCrossentropy(from_logits=True, axis=1)
        self.assertAlmostEqual(float(m(np.array([0]), logits).numpy()), float(loss(np.array([0]), logits).numpy()),
                               places=6)
        self.assertEqual(m.get_config()["axis"], 1)

    def test_scalar_loss_with_per_sample_weights(self):
        # Rank-1 inputs give one loss value, which Keras broadcasts against per-sample weights.
        got = losses.MeanSquaredError()(np.ones(5, F), np.zeros(5, F), sample_weight=np.arange(5, dtype=F))
        self.assertAlmostEqual(float(got.numpy()), 2.0, places=6)

    def test_top_k_as_tf_in_top_k(self):
        m = metrics.SparseTopKCategoricalAccuracy(k=1)
        self.assertEqual(float(m(np.array([1]), np.array([[np.nan, 1, 0, 0]], F)).numpy()), 0.0)
        m = metrics.SparseTopKCategoricalAccuracy(k=2)
        # an out-of-range label misses instead of raising; a finite row still counts
        self.assertEqual(float(m(np.array([4, 0]), np.array([[0, 1, 0, 0], [1, 0, 0, 0]], F)).numpy()), 0.5)
        # k = 0: every row misses, as TF's in_top_k and Keras's slice of sorted ids
        for sorted_ids in (False, True):
            m = metrics.SparseTopKCategoricalAccuracy(k=0, from_sorted_ids=sorted_ids)
            self.assertEqual(float(m(np.array([1]), np.array([[0, 1, 2]], F)).numpy()), 0.0)

    def test_top_k_from_sorted_ids(self):
        m = metrics.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
        self.assertTrue(m.get_config()["from_sorted_ids"])
        self.assertNotIn("from_sorted_ids", metrics.SparseTopKCategoricalAccuracy().get_config())
        ids = np.array([[7, 3, 1], [2, 0, 7], [5, 5, 9]], np.int32)
        self.assertAlmostEqual(float(m(np.array([3, 7, 5]), ids).numpy()), 2 / 3, places=6)
        back = metrics.deserialize(metrics.serialize(m))
        self.assertTrue(back.get_config()["from_sorted_ids"])

    def test_negative_zero_ranks_below_positive_zero(self):
        p = np.array([[-0.0, 0.0, -1.0]], F)
        self.assertEqual(float(metrics.SparseCategoricalAccuracy()(np.array([1]), p).numpy()), 1.0)
        self.assertEqual(float(metrics.CategoricalAccuracy()(np.array([[0, 1, 0]], F), p).numpy()), 1.0)

    def test_auc_prgain(self):
        y = np.array([1, 0, 1, 1, 0, 0, 1, 0], F)
        p = np.array([0.9, 0.8, 0.7, 0.35, 0.3, 0.6, 0.2, 0.1], F)
        m = metrics.AUC(num_thresholds=7, curve="PRGAIN")
        got = float(m(y, p).numpy())
        eps = 1e-7
        th = np.array([(i + 1) / 6 for i in range(5)], F)
        th = np.concatenate([[-eps], th, [1 + eps]])
        pos = p[None, :] > th[:, None]
        tp = (pos & (y == 1)).sum(1).astype(float)
        fp = (pos & (y == 0)).sum(1).astype(float)
        fn = (~pos & (y == 1)).sum(1).astype(float)
        tn = (~pos & (y == 0)).sum(1).astype(float)

        def div(a, b):
            return np.where(b == 0, 0.0, a / np.where(b == 0, 1, b))
        scale = div(tp + fn, tn + fp)
        rg = np.maximum(np.where(tp == 0, 0.0, 1 - scale * div(fn, tp)), 0.0)
        pg = np.where(tp == 0, 1.0, 1 - scale * div(fp, tp))
        want = np.sum((rg[:-1] - rg[1:]) * (pg[:-1] + pg[1:]) / 2)
        self.assertAlmostEqual(got, want, places=5)
        self.assertEqual(metrics.deserialize(metrics.serialize(m)).get_config()["curve"], "PRGAIN")


if __name__ == "__main__":
    unittest.main()
