"""keras.layers.Normalization from Python: Keras's docstring examples, adapt() over arrays,
datasets and iterables of batches (merged batch by batch as Keras merges them), given mean and
variance, invert, configs and SavedModels that keep the adapted state, gradients, and errors."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers
from kiln.data import Dataset


class NormalizationTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_keras_docstring_examples(self):
        layer = layers.Normalization(axis=None)
        layer.adapt(np.array([1., 2., 3., 4., 5.], np.float32))
        np.testing.assert_allclose(layer(np.array([1., 2., 3.], np.float32)).numpy(),
                                   [-1.4142135, -0.70710677, 0.], rtol=1e-6)
        data = np.array([[0., 7., 4.], [2., 9., 6.], [0., 7., 4.], [2., 9., 6.]], np.float32)
        layer = layers.Normalization(axis=-1)
        layer.adapt(data)
        np.testing.assert_allclose(layer(np.array([[0., 7., 4.]], np.float32)).numpy(), [[-1., -1., -1.]])
        given = layers.Normalization(mean=3., variance=2.)
        np.testing.assert_allclose(given(np.array([[1.], [2.], [3.]], np.float32)).numpy(),
                                   [[-1.4142135], [-0.70710677], [0.]], rtol=1e-6)
        inv = layers.Normalization(axis=-1, invert=True)
        inv.adapt(data)
        np.testing.assert_allclose(inv(np.array([[1., 2., 3.]], np.float32)).numpy(), [[2., 10., 8.]])

    def test_weights_and_name(self):
        layer = layers.Normalization()
        self.assertEqual(layer.name, "normalization")
        x = np.random.default_rng(0).normal(3, 2, size=(50, 4)).astype(np.float32)
        layer.adapt(x)
        names = [v.name for v in layer.weights]
        self.assertEqual(names, ["normalization/mean", "normalization/variance", "normalization/count"])
        self.assertEqual(layer.trainable_weights, [])
        np.testing.assert_allclose(layer.mean.numpy(), x.mean(0), rtol=1e-5)
        np.testing.assert_allclose(layer.variance.numpy(), x.var(0), rtol=1e-5)
        self.assertEqual(layer.count.numpy(), 50)
        self.assertEqual(layer.count.dtype, "int64")
        np.testing.assert_allclose(layer(x).numpy(), (x - x.mean(0)) / x.std(0), rtol=1e-4, atol=1e-5)

    def test_batches_merge_as_one(self):
        rng = np.random.default_rng(1)
        x = rng.normal(5, 3, size=(103, 2, 3)).astype(np.float32)
        whole = layers.Normalization(axis=(1, -1))
        whole.adapt(x)
        np.testing.assert_allclose(whole.mean.numpy(), x.astype(np.float64).mean(0), rtol=1e-6)
        np.testing.assert_allclose(whole.variance.numpy(), x.astype(np.float64).var(0), rtol=1e-5)
        ds = Dataset.from_tensor_slices((x, np.zeros(103, np.float32))).batch(10)  # (x, y): x is read
        batched = layers.Normalization(axis=(1, 2))
        batched.adapt(ds)
        np.testing.assert_allclose(batched.mean.numpy(), whole.mean.numpy(), rtol=1e-6)
        np.testing.assert_allclose(batched.variance.numpy(), whole.variance.numpy(), rtol=1e-5)
        self.assertEqual(batched.count.numpy(), 103)
        listed = layers.Normalization(axis=[1, 2])
        listed.adapt([x[:40], x[40:41], x[41:]])
        np.testing.assert_allclose(listed.variance.numpy(), whole.variance.numpy(), rtol=1e-5)
        gen = layers.Normalization(axis=[1, 2])
        gen.adapt(x[i:i + 7] for i in range(0, 103, 7))
        np.testing.assert_allclose(gen.mean.numpy(), whole.mean.numpy(), rtol=1e-6)
        cut = layers.Normalization(axis=[1, 2])
        cut.adapt(x, batch_size=16, steps=2)  # tf.keras 2's arguments: the first 32 rows
        np.testing.assert_allclose(cut.mean.numpy(), x[:32].mean(0), rtol=1e-5)
        # adapt again starts over
        whole.adapt(x[:5])
        np.testing.assert_allclose(whole.mean.numpy(), x[:5].mean(0), rtol=1e-5)
        self.assertEqual(whole.count.numpy(), 5)

    def test_integers_and_kept_axes(self):
        layer = layers.Normalization(axis=None)
        layer.adapt(np.arange(10, dtype=np.int32).reshape(5, 2))
        self.assertEqual(layer.mean.numpy().shape, ())
        self.assertAlmostEqual(float(layer.mean.numpy()), 4.5)
        self.assertAlmostEqual(float(layer.variance.numpy()), 8.25, places=5)
        out = layer(np.array([[4, 5]], np.int32))
        self.assertEqual(out.dtype, "float32")
        np.testing.assert_allclose(out.numpy(), [[-0.5 / np.sqrt(8.25), 0.5 / np.sqrt(8.25)]], rtol=1e-6)
        per_row = layers.Normalization(axis=0)  # Keras: batched scalars with axis=-1 keep each index
        per_row.adapt(np.array([[1., 3.], [2., 2.]], np.float32))
        np.testing.assert_allclose(per_row.mean.numpy(), [2., 2.])
        np.testing.assert_allclose(per_row.variance.numpy(), [1., 0.])
        # a zero variance divides by Keras's epsilon, not by zero
        np.testing.assert_allclose(per_row(np.array([[2., 2.], [2., 3.]], np.float32)).numpy(), [[0., 0.], [0., 1e7]])

    def test_given_mean_broadcasts_from_the_right(self):
        x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        layer = layers.Normalization(axis=(1, 2), mean=[1., 2., 3., 4.], variance=[4., 4., 4., 4.])
        np.testing.assert_allclose(layer(x).numpy(), (x - np.array([1., 2., 3., 4.])) / 2.)
        self.assertEqual(layer.weights, [])
        c = layer.get_config()
        self.assertEqual((c["axis"], c["mean"], c["variance"], c["invert"]), ([1, 2], [1., 2., 3., 4.], [4.] * 4, False))
        again = layers.Normalization.from_config(c)
        np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())
        nested = layers.Normalization(axis=(1, 2), mean=np.ones((3, 1)), variance=np.ones((3, 1)))
        self.assertEqual(nested.get_config()["mean"], [[1.], [1.], [1.]])
        np.testing.assert_allclose(nested(x).numpy(), x - 1)
        self.assertEqual(layers.Normalization().get_config()["mean"], None)
        self.assertEqual(layers.Normalization(axis=None).get_config()["axis"], [])

    def test_in_a_model_saved_and_loaded(self):
        rng = np.random.default_rng(2)
        x = rng.normal(10, 4, size=(64, 3)).astype(np.float32)
        y = (x[:, :1] > 10).astype(np.float32)
        norm = layers.Normalization()
        norm.adapt(x)
        model = kiln.Sequential([layers.Input((3,)), norm, layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        np.testing.assert_allclose(norm.mean.numpy(), x.mean(0), rtol=1e-5)  # fit leaves it alone
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m"))
            loaded = kiln.models.load_model(os.path.join(d, "m"))
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
        np.testing.assert_array_equal(loaded.layers[0].mean.numpy(), norm.mean.numpy())

    def test_gradient_and_mask(self):
        layer = layers.Normalization(mean=1., variance=4.)
        x = kiln.constant([[1., 3.]])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.reduce_sum(layer(x))
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[0.5, 0.5]])
        self.assertTrue(layer.supports_masking)

    def test_python_errors_in_the_data_come_out_as_themselves(self):
        def bad_map(x):
            raise KeyError("bad map")
        ds = Dataset.from_tensor_slices(np.ones((4, 2), np.float32)).batch(2).map(bad_map)
        before = len(kiln.errors.PENDING)
        with self.assertRaisesRegex(KeyError, "bad map"):
            layers.Normalization().adapt(ds)

        def gen():
            yield np.ones((2, 2), np.float32)
            raise KeyError("bad generator")
        with self.assertRaisesRegex(KeyError, "bad generator"):
            layers.Normalization().adapt(gen())
        self.assertEqual(len(kiln.errors.PENDING), before)  # nothing left waiting

    def test_variables_as_given_values(self):
        adapted = layers.Normalization()
        adapted.adapt(np.array([[1., 2.], [3., 4.]], np.float32))
        copy = layers.Normalization(mean=adapted.mean, variance=adapted.variance)
        x = np.array([[0., 1.]], np.float32)
        np.testing.assert_array_equal(copy(x).numpy(), adapted(x).numpy())

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "both mean and variance"):
            layers.Normalization(mean=1.)
        with self.assertRaisesRegex(ValueError, "same shape"):
            layers.Normalization(mean=[1., 2.], variance=1.)
        with self.assertRaisesRegex(ValueError, "rank of mean"):
            layers.Normalization(axis=-1, mean=[[1.]], variance=[[1.]])
        with self.assertRaisesRegex(ValueError, "ragged"):
            layers.Normalization(axis=(1, 2), mean=[[1., 2.], [3.]], variance=[[1., 2.], [3.]])
        with self.assertRaisesRegex(ValueError, "does not broadcast"):
            layers.Normalization(mean=[1., 2.], variance=[1., 1.])(np.ones((2, 3), np.float32))
        with self.assertRaisesRegex(ValueError, "out of range"):
            layers.Normalization(axis=2).adapt(np.ones((4, 2), np.float32))
        with self.assertRaisesRegex(ValueError, "twice"):
            layers.Normalization(axis=(1, -1)).adapt(np.ones((4, 2), np.float32))
        with self.assertRaisesRegex(kiln.errors.FailedPreconditionError, "given mean and variance"):
            layers.Normalization(mean=1., variance=1.).adapt(np.ones((4, 2), np.float32))
        layer = layers.Normalization()
        layer.adapt(np.ones((4, 2), np.float32))
        before = layer.mean.numpy().copy()
        with self.assertRaisesRegex(ValueError, r"batch of shape \(4, 3\).*built for, \(None, 2\)"):
            layer.adapt(np.ones((4, 3), np.float32))
        with self.assertRaisesRegex(ValueError, "rank 3"):
            layer.adapt([np.zeros((4, 2), np.float32), np.ones((4, 2, 1), np.float32)])
        np.testing.assert_array_equal(layer.mean.numpy(), before)  # a failed adapt changes nothing
        with self.assertRaisesRegex(ValueError, "no batches"):
            layers.Normalization().adapt([])
        with self.assertRaisesRegex(ValueError, "no values"):
            layers.Normalization().adapt(np.ones((0, 2), np.float32))
        with self.assertRaisesRegex(TypeError, "unsupported data"):
            layers.Normalization().adapt("abc")
        dense = layers.Dense(2, name="d")  # held: its handle must outlive the call
        with self.assertRaisesRegex(ValueError, r"Dense\) has no adapt"):
            from kiln import _lib
            from kiln.errors import call_c
            call_c(_lib.lib.kiln_layer_adapt, dense._handle(), kiln.constant([[1.]]))


if __name__ == "__main__":
    unittest.main()
