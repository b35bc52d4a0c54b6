"""keras.layers.SpectralNormalization from Python: a training call against a NumPy model of Keras's power
iteration (the kernel and vector_u assigned), inference leaving them, the largest singular value going to
1 over calls for Dense, Conv2D and Embedding, Keras's weight order, the gradient of the wrapped layer,
configs, a model that fits, saves and loads, and errors."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers


def normalize(a):
    return a / np.sqrt(max((a * a).sum(), 1e-14))


def keras_step(kernel, u, iterations):
    w = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    for _ in range(iterations):
        v = normalize(u @ w.T)
        u = normalize(v @ w)
    sigma = ((v @ w) @ u.T).item()
    return kernel / sigma, u


class SpectralNormalizationTest(unittest.TestCase):
    def test_training_call_matches_keras(self):
        rng = np.random.default_rng(3)
        x = rng.normal(size=(4, 5)).astype(np.float32)
        for iterations in (1, 3):
            sn = layers.SpectralNormalization(layers.Dense(3), power_iterations=iterations)
            first = sn(x).numpy()
            self.assertEqual([w.name for w in sn.weights], [sn.name + "/vector_u"] + [w.name for w in sn.layer.weights])
            self.assertEqual([w.trainable for w in sn.weights], [False, True, True])
            kernel, u = sn.layer.kernel.numpy(), sn.weights[0].numpy().astype(np.float64)
            np.testing.assert_array_equal(sn(x).numpy(), first)  # inference: nothing assigned
            np.testing.assert_array_equal(sn.layer.kernel.numpy(), kernel)
            want_kernel, want_u = keras_step(kernel, u, iterations)
            y = sn(x, training=True).numpy()
            np.testing.assert_allclose(sn.layer.kernel.numpy(), want_kernel, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(sn.weights[0].numpy(), want_u, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(y, x @ want_kernel, rtol=1e-4, atol=1e-5)

    def test_singular_value_goes_to_one(self):
        rng = np.random.default_rng(4)
        cases = [(layers.Dense(6), rng.normal(size=(2, 7)).astype(np.float32), "kernel"),
                 (layers.Conv2D(4, 3), rng.normal(size=(1, 5, 5, 2)).astype(np.float32), "kernel"),
                 (layers.Embedding(9, 4), np.array([[1, 2, 8]], np.int32), "embeddings")]
        for inner, x, attr in cases:
            sn = layers.SpectralNormalization(inner)
            for _ in range(60):
                y = sn(x, training=True)
            kernel = getattr(sn.layer, attr).numpy()
            top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
            self.assertAlmostEqual(top, 1.0, places=4)
            self.assertEqual(y.dtype, kiln.float32)

    def test_gradient_fit_save_and_load(self):
        sn = layers.SpectralNormalization(layers.Dense(2))
        x = np.ones((1, 3), np.float32)
        sn(x)
        with kiln.GradientTape() as tape:
            y = kiln.reduce_sum(sn(x, training=True))
        grads = tape.gradient(y, sn.trainable_weights)
        np.testing.assert_allclose(grads[0].numpy(), np.ones((3, 2)), atol=1e-6)  # the Dense's own gradient
        model = kiln.models.Sequential([layers.Input((4,)), layers.SpectralNormalization(layers.Dense(8)),
                                        layers.ReLU(), layers.Dense(2)])
        model.compile("adam", kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
        data = np.random.default_rng(5).normal(size=(32, 4)).astype(np.float32)
        labels = (data[:, 0] > 0).astype(np.int32)
        self.assertEqual(len(model.fit(data, labels, epochs=2, batch_size=8, verbose=0).history["loss"]), 2)
        before = model.predict(data, verbose=0)
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m"))
            loaded = kiln.models.load_model(os.path.join(d, "m"))
        np.testing.assert_array_equal(loaded.predict(data, verbose=0), before)
        config = sn.get_config()
        self.assertEqual((config["power_iterations"], config["layer"]["class_name"]), (1, "Dense"))
        self.assertEqual(layers.SpectralNormalization.from_config(config).get_config(), config)

    def test_errors(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "power_iterations"):
            layers.SpectralNormalization(layers.Dense(2), power_iterations=0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "power_iterations"):
            layers.SpectralNormalization(layers.Dense(2), power_iterations=1.5)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "no weight 'kernel' nor 'embeddings'"):
            layers.SpectralNormalization(layers.Dropout(0.5))(np.ones((1, 2), np.float32), training=True)
        with self.assertRaises(kiln.InvalidArgumentError):
            layers.SpectralNormalization("dense")
        built = layers.Dense(2)
        built(np.ones((1, 3), np.float32))
        with self.assertWarnsRegex(UserWarning, "copy of layer 'dense.*not carried over"):
            layers.SpectralNormalization(built)


if __name__ == "__main__":
    unittest.main()
