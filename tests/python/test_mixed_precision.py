"""kiln.mixed_precision (also kiln.keras.mixed_precision): DTypePolicy, the global policy, a layer's
dtype_policy / compute_dtype / variable_dtype, the dtype="float32" override, a mixed_bfloat16 model
trained with a GradientTape and Adam (float32 weights, gradients and slots; the loss falls),
close to float32, a custom layer reading its weight in bfloat16 inside call, the policy in
get_config / from_config, and bad names."""
import unittest

import numpy as np

import kiln
from kiln import mixed_precision


class MixedPrecisionTest(unittest.TestCase):
    def setUp(self):
        self.saved = mixed_precision.global_policy()

    def tearDown(self):
        mixed_precision.set_global_policy(self.saved)

    def test_policies(self):
        self.assertIs(kiln.keras.mixed_precision, mixed_precision)
        self.assertEqual(mixed_precision.global_policy().name, "float32")
        p = mixed_precision.DTypePolicy("mixed_bfloat16")
        self.assertEqual((p.name, p.compute_dtype, p.variable_dtype), ("mixed_bfloat16", "bfloat16", "float32"))
        self.assertEqual(repr(p), '<DTypePolicy "mixed_bfloat16">')
        self.assertEqual(mixed_precision.Policy("float64").compute_dtype, "float64")
        self.assertEqual(mixed_precision.DTypePolicy.from_config(p.get_config()), p)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "mixed_bfloat16") as cm:
            mixed_precision.set_global_policy("mixed_bf16")
        self.assertIn("'mixed_bf16'", str(cm.exception))
        with self.assertRaises(kiln.UnimplementedError):
            mixed_precision.DTypePolicy("mixed_float16")
        with self.assertRaises(TypeError):
            mixed_precision.DTypePolicy(3)
        self.assertEqual(mixed_precision.global_policy().name, "float32")  # unchanged by the failures

    def test_fit_trains_every_layer_through_dropout_padding_and_pooling(self):
        # Each of these once broke mixed_bfloat16 training: Dropout refused bfloat16, and ZeroPadding and
        # the global poolings recorded no bfloat16 gradient, so the layers before them never moved.
        mixed_precision.set_global_policy("mixed_bfloat16")
        L = kiln.layers
        for pool in (L.GlobalAveragePooling1D(), L.GlobalMaxPooling1D()):
            model = kiln.keras.Sequential([
                L.Input((6, 3)), L.Dense(8, activation="relu"), L.Dropout(0.2), L.ZeroPadding1D(1),
                L.Conv1D(4, 3), L.SpatialDropout1D(0.2), pool, L.Dense(2)])
            model.compile(optimizer=kiln.keras.optimizers.SGD(0.1), loss="mse")
            before = [w.numpy().copy() for w in model.trainable_weights]
            rng = np.random.RandomState(0)
            model.fit(rng.normal(size=(16, 6, 3)).astype(np.float32), rng.normal(size=(16, 2)).astype(np.float32),
                      epochs=1, batch_size=8, verbose=0)
            for b, w in zip(before, model.trainable_weights):
                self.assertFalse(np.array_equal(b, w.numpy()), "%s with %s" % (w.name, pool.name))
        x = kiln.cast(kiln.constant(np.arange(6, dtype=np.float32).reshape(2, 3)), kiln.bfloat16)
        with kiln.GradientTape() as tape:
            tape.watch(x)
            loss = kiln.reduce_sum(kiln.cast(kiln.pad(x, [[1, 0], [2, 1]], mode="REFLECT"), kiln.float32))
        g = tape.gradient(loss, x)
        self.assertEqual(g.dtype, kiln.bfloat16)
        np.testing.assert_array_equal(kiln.cast(g, kiln.float32).numpy(), [[1, 3, 2], [2, 6, 4]])  # cells read
        self.assertEqual(kiln.dropout(x, 0.5, training=True).dtype, kiln.bfloat16)

    def test_global_policy_and_layer_dtypes(self):
        before = kiln.layers.Dense(2)
        mixed_precision.set_global_policy(mixed_precision.Policy("mixed_bfloat16"))
        self.assertEqual(mixed_precision.global_policy(), mixed_precision.DTypePolicy("mixed_bfloat16"))
        self.assertEqual(mixed_precision.DTypePolicy().name, "mixed_bfloat16")  # None: the global one
        after = kiln.layers.Dense(2)
        f32 = kiln.layers.Dense(2, dtype="float32")
        by_obj = kiln.layers.Dense(2, dtype=mixed_precision.DTypePolicy("float64"))
        self.assertEqual(before.dtype_policy.name, "float32")
        self.assertEqual(after.dtype_policy.name, "mixed_bfloat16")
        self.assertEqual((after.compute_dtype, after.variable_dtype, after.dtype), ("bfloat16", "float32", "float32"))
        self.assertEqual(f32.compute_dtype, "float32")
        self.assertEqual(by_obj.compute_dtype, "float64")
        y = after(np.ones((3, 4), np.float32))
        self.assertEqual(y.dtype, "bfloat16")
        self.assertTrue(all(v.dtype == "float32" for v in after.variables))
        self.assertEqual(f32(y).dtype, "float32")  # the float32 layer casts its bf16 input
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.layers.Dense(2, dtype="mixed_half")

    def _model(self):
        return kiln.Sequential([kiln.layers.Dense(8, activation="tanh"), kiln.layers.Dense(1, dtype="float32")])

    def test_training_keeps_float32_state(self):
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (16, 4)).astype(np.float32)
        y = x.sum(axis=1, keepdims=True)
        mixed_precision.set_global_policy("mixed_bfloat16")
        model = self._model()
        mixed_precision.set_global_policy("float32")
        self.assertEqual(model.dtype_policy.name, "mixed_bfloat16")
        opt = kiln.optimizers.Adam(learning_rate=0.02)
        losses = []
        for _ in range(30):
            with kiln.GradientTape() as tape:
                pred = model(x, training=True)
                loss = kiln.reduce_mean(kiln.square(kiln.cast(pred, "float32") - y))
            grads = tape.gradient(loss, model.trainable_variables)
            self.assertTrue(all(g.dtype == "float32" for g in grads))
            opt.apply_gradients(zip(grads, model.trainable_variables))
            losses.append(float(loss.numpy()))
        self.assertLess(losses[-1], 0.5 * losses[0])
        for v in model.trainable_variables:
            self.assertEqual(v.dtype, "float32")
            self.assertEqual(opt.get_slot(v, "momentum").dtype, "float32")
            self.assertEqual(opt.get_slot(v, "velocity").dtype, "float32")

    def test_close_to_float32(self):
        x = np.random.default_rng(1).uniform(-1, 1, (5, 4)).astype(np.float32)
        mixed_precision.set_global_policy("mixed_bfloat16")
        mixed = kiln.layers.Dense(6, activation="relu")
        mixed_precision.set_global_policy("float32")
        ref = kiln.layers.Dense(6, activation="relu")
        got = mixed(x)
        ref.build((None, 4))
        for a, b in zip(ref.variables, mixed.variables):
            a.assign(b.numpy())
        want = ref(x).numpy()
        np.testing.assert_allclose(kiln.cast(got, "float32").numpy(), want, rtol=2e-2, atol=2e-2)

    def test_config_round_trip(self):
        mixed_precision.set_global_policy("mixed_bfloat16")
        d = kiln.layers.Dense(3)
        mixed_precision.set_global_policy("float32")
        cfg = d.get_config()
        self.assertEqual(cfg["dtype"]["class_name"], "DTypePolicy")
        self.assertEqual(cfg["dtype"]["config"], {"name": "mixed_bfloat16"})
        again = kiln.layers.Dense.from_config(cfg)
        self.assertEqual(again.dtype_policy.name, "mixed_bfloat16")
        # Keras 3's dict is accepted as dtype=, as is the plain name.
        self.assertEqual(kiln.layers.Dense(3, dtype=cfg["dtype"]).compute_dtype, "bfloat16")
        self.assertEqual(kiln.layers.Dense(3).get_config()["dtype"], "float32")

    def test_custom_layer(self):
        class Scale(kiln.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

            def call(self, inputs):
                self.seen = self.w.value().dtype  # inside call: cast to the compute dtype
                return inputs * self.w

        mixed_precision.set_global_policy("mixed_bfloat16")
        s = Scale()
        self.assertEqual(s.dtype_policy.name, "mixed_bfloat16")
        y = s(np.ones((2, 3), np.float32))
        self.assertEqual(y.dtype, "bfloat16")
        self.assertEqual(s.seen, "bfloat16")
        self.assertEqual(s.w.dtype, "float32")
        self.assertEqual(s.w.value().dtype, "float32")  # outside call: the variable's own dtype
        self.assertEqual(s.get_config()["dtype"], "mixed_bfloat16")


if __name__ == "__main__":
    unittest.main()
