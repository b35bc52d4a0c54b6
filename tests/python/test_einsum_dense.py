"""keras.layers.EinsumDense from Python: Keras 3's kernel and bias shapes for each equation form
(plain, ellipsis on the left, on the right), outputs and gradients against np.einsum, the kernel
initializer's fans along the kernel's input and output axes (Keras 3.15), configs, errors, and a
model that trains and comes back from its config and weights."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers


def run(layer, x):
    return layer(kiln.constant(x)).numpy()


class EinsumDenseTest(unittest.TestCase):
    def test_keras_docstring_examples(self):
        for eq, out, shape, kernel, want in (("ab,bc->ac", 64, (32,), (32, 64), (None, 64)),
                                             ("abc,cd->abd", (None, 64), (32, 128), (128, 64), (None, 32, 64)),
                                             ("...b,bc->...c", 64, (32, 128), (128, 64), (None, 32, 64))):
            with self.subTest(eq):
                layer = layers.EinsumDense(eq, output_shape=out, bias_axes=eq[-1])
                self.assertEqual(tuple(layer.compute_output_shape((None,) + shape)), want)
                layer.build((None,) + shape)
                self.assertEqual(tuple(layer.kernel.shape), kernel)
                self.assertEqual(tuple(layer.bias.shape), (64,))

    def test_outputs_and_bias_shapes_match_numpy(self):
        rng = np.random.RandomState(0)
        cases = [  # equation, input shape, output_shape, bias_axes, kernel shape, bias shape, compute_output_shape
            ("ab,bc->ac", (3, 4), 5, "c", (4, 5), (5,), (None, 5)),
            ("abc,cd->abd", (2, 3, 4), (3, 6), None, (4, 6), None, (None, 3, 6)),
            ("abc,cde->abde", (2, 3, 4), (3, 2, 5), "de", (4, 2, 5), (2, 5), (None, 3, 2, 5)),  # MHA's query
            ("abc,cde->abde", (2, 3, 4), (None, 2, 5), "d", (4, 2, 5), (2, 1), (None, 3, 2, 5)),
            ("abcd,cde->abe", (2, 3, 2, 5), (3, 4), "e", (2, 5, 4), (4,), (None, 3, 4)),  # its output projection
            ("...b,bc->...c", (2, 3, 2, 4), 6, "c", (4, 6), (6,), (None, 3, 2, 6)),
            ("ab...,bc->ac...", (2, 4, 3, 2), 5, "c", (4, 5), (5, 1, 1), (None, 5, 3, 2)),  # ellipsis on the right
        ]
        for eq, in_shape, out, bias_axes, kernel_shape, bias_shape, out_shape in cases:
            with self.subTest(eq=eq, bias_axes=bias_axes, out=out):
                x = rng.normal(size=in_shape).astype(np.float32)
                layer = layers.EinsumDense(eq, out, bias_axes=bias_axes, activation="tanh",
                                           bias_initializer="random_normal")
                y = run(layer, x)
                self.assertEqual(tuple(layer.kernel.shape), kernel_shape)
                k = layer.kernel.numpy().astype(np.float64)
                want = np.einsum(eq, x.astype(np.float64), k)
                if bias_axes is None:
                    self.assertFalse(any(w.name.endswith("bias") for w in layer.weights))
                    self.assertIsNone(layer.bias)  # Keras's self.bias = None
                else:
                    self.assertEqual(tuple(layer.bias.shape), bias_shape)
                    want = want + layer.bias.numpy()
                np.testing.assert_allclose(y, np.tanh(want), rtol=1e-5, atol=1e-6)
                self.assertEqual(tuple(layer.compute_output_shape((None,) + in_shape[1:])), out_shape)
                self.assertEqual(y.shape[1:], out_shape[1:])

    def test_gradients_match_numpy(self):
        rng = np.random.RandomState(1)
        x = rng.normal(size=(2, 3, 4)).astype(np.float32)
        layer = layers.EinsumDense("abc,cde->abde", (3, 2, 5), bias_axes="de")
        xt = kiln.constant(x)
        with kiln.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            loss = kiln.reduce_sum(y * y)
        dx, dk, db = tape.gradient(loss, [xt, layer.kernel, layer.bias])
        k = layer.kernel.numpy().astype(np.float64)
        yv = np.einsum("abc,cde->abde", x, k) + layer.bias.numpy()
        g = 2 * yv
        np.testing.assert_allclose(dx.numpy(), np.einsum("abde,cde->abc", g, k), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dk.numpy(), np.einsum("abc,abde->cde", x, g), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(db.numpy(), g.sum((0, 1)), rtol=1e-4, atol=1e-5)

    def test_kernel_fans_along_its_input_and_output_axes(self):
        # VarianceScaling(fan_in, uniform): limit sqrt(3 / fan_in), fan_in = 64 (the input axis),
        # not 8 * 64 as compute_fans of the shape alone would give.
        init = kiln.keras.initializers.VarianceScaling(scale=1.0, mode="fan_in", distribution="uniform", seed=3)
        layer = layers.EinsumDense("abc,cde->abde", (4, 8, 16), kernel_initializer=init)
        layer.build((None, 4, 64))
        k = layer.kernel.numpy()
        self.assertLessEqual(np.abs(k).max(), np.sqrt(3 / 64))
        self.assertGreater(np.abs(k).max(), 0.9 * np.sqrt(3 / 64))
        # The layer's config keeps the initializer as given (no axes), as Keras's.
        self.assertNotIn("input_axes", layer.get_config()["kernel_initializer"]["config"])
        # An initializer given its axes keeps them, and they round-trip through its config.
        own = kiln.keras.initializers.VarianceScaling(mode="fan_in", distribution="uniform", seed=3,
                                                      input_axes=[0, 1], output_axes=[2])
        self.assertEqual(own.get_config()["input_axes"], [0, 1])
        # MultiHeadAttention's projections are EinsumDense kernels [D, H, K]: fans D and H * K.
        mha = layers.MultiHeadAttention(num_heads=8, key_dim=16, kernel_initializer=init)
        mha(kiln.constant(np.zeros((1, 2, 64), np.float32)), kiln.constant(np.zeros((1, 2, 64), np.float32)))
        q = [w for w in mha.weights if "query" in w.name and w.name.endswith("kernel")][0].numpy()
        self.assertEqual(q.shape, (64, 8, 16))
        self.assertGreater(np.abs(q).max(), 0.9 * np.sqrt(3 / 64))

    def test_config_round_trip_and_keras_keys(self):
        layer = layers.EinsumDense("abc,cd->abd", (None, 6), bias_axes="d", activation="relu", name="proj")
        c = layer.get_config()
        self.assertEqual([k for k in c if k not in ("name", "trainable", "dtype")][:5],
                         ["output_shape", "equation", "activation", "bias_axes", "kernel_initializer"])
        self.assertEqual(c["output_shape"], [None, 6])
        self.assertEqual(c["bias_axes"], "d")
        again = layers.EinsumDense.from_config(c)
        self.assertEqual(again.get_config(), c)
        self.assertEqual(layers.deserialize(layers.serialize(layer)).get_config(), c)
        self.assertEqual(layers.EinsumDense("ab,bc->ac", 3).get_config()["output_shape"], [3])

    def test_errors_name_the_layer_and_what_was_expected(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "not of a form EinsumDense takes"):
            layers.EinsumDense("ab->b", 3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "output_shape has 2 dims.*needs 1"):
            layers.EinsumDense("ab,bc->ac", (3, 4)).build((None, 5))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "output axis 'z'"):
            layers.EinsumDense("ab,bc->az", 3).build((None, 5))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "unknown size"):
            layers.EinsumDense("ab,bc->ac", (None,)).build((None, 5))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "bias axis 'q'"):
            layers.EinsumDense("ab,bc->ac", 3, bias_axes="q").build((None, 5))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "differ at the shared axis 'b'"):
            layers.EinsumDense("abc,cd->abd", (7, 3)).build((None, 4, 5))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "has rank 2"):
            layers.EinsumDense("abc,cd->abd", (None, 3)).build((None, 5))
        layer = layers.EinsumDense("ab,bc->ac", 3)
        layer.build((None, 5))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "EinsumDense.*needs a kernel of \\[4, 3\\]"):
            layer(kiln.constant(np.zeros((2, 4), np.float32)))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected a positive size"):
            layers.EinsumDense("ab,bc->ac", -1)
        # compute_output_shape answers where a build could not (the weights' sizes unknown), as Keras's.
        self.assertEqual(tuple(layers.EinsumDense("ab,bc->ac", 4).compute_output_shape((None, None))), (None, 4))
        self.assertEqual(tuple(layers.EinsumDense("ab,bc->ac", 4, bias_axes="ac").compute_output_shape((None, 5))),
                         (None, 4))

    def test_a_model_trains_and_comes_back(self):
        kiln.set_seed(2)
        rng = np.random.RandomState(2)
        x = rng.normal(size=(32, 5, 4)).astype(np.float32)
        y = x.sum(-1, keepdims=True) * np.ones((1, 1, 3), np.float32)
        model = kiln.keras.Sequential([layers.Input((5, 4)),
                                       layers.EinsumDense("abc,cd->abd", (None, 3), bias_axes="d")])
        model.compile(optimizer=kiln.keras.optimizers.Adam(0.05), loss="mse")
        hist = model.fit(x, y, epochs=5, batch_size=8, verbose=0).history["loss"]
        self.assertLess(hist[-1], hist[0])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ckpt")
            model.save_weights(path)
            clone = kiln.keras.Sequential.from_config(model.get_config())
            clone.load_weights(path)
            np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


if __name__ == "__main__":
    unittest.main()
