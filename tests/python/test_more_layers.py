"""The activation layers (ReLU, LeakyReLU, ELU, Softmax, PReLU), the spatial reshaping layers
(ZeroPadding, Cropping, UpSampling 1D-3D), the noise layers and Identity / Rescaling from Python:
Keras's signatures and defaults, outputs against NumPy, configs that round-trip, gradients, a model
with them trained by fit, errors as Keras's exception types."""
import os
import tempfile
import unittest
import warnings

import numpy as np

import kiln
from kiln import layers

DOC = np.array([-10, -5, 0, 5, 10], np.float32)  # Keras's ReLU docstring example


class ActivationLayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_relu_as_keras_documents(self):
        self.assertEqual(layers.ReLU().name, "re_lu")
        self.assertEqual(layers.ReLU()(DOC).numpy().tolist(), [0, 0, 0, 5, 10])
        self.assertEqual(layers.ReLU(negative_slope=0.5)(DOC).numpy().tolist(), [-5, -2.5, 0, 5, 10])
        self.assertEqual(layers.ReLU(max_value=5.0)(DOC).numpy().tolist(), [0, 0, 0, 5, 5])
        self.assertEqual(layers.ReLU(threshold=5.0)(DOC).numpy().tolist(), [0, 0, 0, 0, 10])
        self.assertEqual(layers.ReLU(6, 0.5, 2)(DOC).numpy().tolist(), [-6, -3.5, -1, 5, 6])
        relu = layers.ReLU(max_value=6)
        c = relu.get_config()
        self.assertEqual((c["max_value"], c["negative_slope"], c["threshold"]), (6.0, 0.0, 0.0))
        self.assertIsNone(layers.ReLU().get_config()["max_value"])
        self.assertEqual(layers.ReLU.from_config(c).get_config()["max_value"], 6.0)
        with self.assertRaisesRegex(ValueError, "ReLU.*max_value cannot be negative"):
            layers.ReLU(max_value=-1)

    def test_leaky_relu_elu_softmax(self):
        np.testing.assert_allclose(layers.LeakyReLU()(DOC).numpy(), np.where(DOC > 0, DOC, 0.3 * DOC), rtol=1e-6)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            leaky = layers.LeakyReLU(alpha=0.1)
        self.assertTrue(any("deprecated" in str(x.message) for x in w))
        self.assertEqual(leaky.get_config()["negative_slope"], 0.1)
        x = np.array([-1.0, -2.0, 3.0], np.float32)
        np.testing.assert_allclose(layers.ELU(alpha=0.5)(x).numpy(), np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-6)

        z = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
        e = np.exp(z - z.max(-1, keepdims=True))
        np.testing.assert_allclose(layers.Softmax()(z).numpy(), e / e.sum(-1, keepdims=True), rtol=1e-6)
        both = layers.Softmax(axis=(1, 2))(z).numpy()
        e2 = np.exp(z - z.max((1, 2), keepdims=True))
        np.testing.assert_allclose(both, e2 / e2.sum((1, 2), keepdims=True), rtol=1e-5)
        self.assertEqual(layers.Softmax(axis=[1, 2]).get_config()["axis"], [1, 2])
        # An attention-style mask: masked entries 0, the others a distribution of their own.
        logits = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
        p = layers.Softmax()(logits, mask=np.array([[True, False, True, False]])).numpy()
        self.assertEqual((p[0, 1], p[0, 3]), (0.0, 0.0))
        np.testing.assert_allclose(p[0, [0, 2]], np.exp([1, 3]) / np.exp([1, 3]).sum(), rtol=1e-6)
        # Keras: a non-bool mask means > 0.5; a mask that broadcasts (as [B, 1, T] attention masks do)
        # is taken as such.
        soft = layers.Softmax()(logits, mask=np.array([[1.0, 0.3, 0.51, 0.0]], np.float32)).numpy()
        np.testing.assert_array_equal(soft, p)
        scores = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
        narrow = np.array([[[1, 0, 1, 1]], [[0, 1, 1, 0]]], bool)
        np.testing.assert_array_equal(layers.Softmax()(scores, mask=narrow).numpy(),
                                      layers.Softmax()(scores, mask=np.broadcast_to(narrow, (2, 3, 4))).numpy())
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "broadcastable"):
            layers.Softmax()(scores, mask=np.ones((2, 3), bool))
        # as Keras's attention: softmax under a broadcast mask, then dropout
        probs = layers.Softmax()(kiln.constant(scores), mask=narrow)
        self.assertEqual(tuple(layers.Dropout(0.1)(probs, training=True).shape), (2, 3, 4))

    def test_prelu_trains_its_alpha(self):
        prelu = layers.PReLU(alpha_initializer=kiln.initializers.Constant(0.25), shared_axes=[1, 2])
        x = np.random.default_rng(2).uniform(-2, 2, (2, 3, 4, 5)).astype(np.float32)
        np.testing.assert_allclose(prelu(x).numpy(), np.where(x > 0, x, 0.25 * x), rtol=1e-6)
        self.assertEqual(prelu.weights[0].shape, (1, 1, 5))
        self.assertTrue(prelu.weights[0].name.endswith("alpha"))
        with kiln.GradientTape() as tape:
            y = kiln.reduce_sum(prelu(x))
        g = tape.gradient(y, prelu.trainable_weights)[0].numpy()
        np.testing.assert_allclose(g.reshape(-1), np.minimum(x, 0).sum((0, 1, 2)), rtol=1e-5)
        self.assertEqual(prelu.get_config()["shared_axes"], [1, 2])
        self.assertEqual(layers.PReLU(shared_axes=1).get_config()["shared_axes"], [1])


class SpatialLayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        self.img = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)

    def test_padding_cropping_up_sampling_2d_against_numpy(self):
        x = self.img
        np.testing.assert_array_equal(layers.ZeroPadding2D(((1, 2), (0, 3)))(x).numpy(),
                                      np.pad(x, ((0, 0), (1, 2), (0, 3), (0, 0))))
        np.testing.assert_array_equal(layers.ZeroPadding2D(2)(x).numpy(), np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))))
        np.testing.assert_array_equal(layers.Cropping2D(((1, 0), (1, 2)))(x).numpy(), x[:, 1:, 1:2, :])
        np.testing.assert_array_equal(layers.UpSampling2D((2, 3))(x).numpy(), x.repeat(2, 1).repeat(3, 2))
        chw = np.transpose(x, (0, 3, 1, 2))
        np.testing.assert_array_equal(layers.UpSampling2D(2, data_format="channels_first")(chw).numpy(),
                                      chw.repeat(2, 2).repeat(2, 3))
        np.testing.assert_array_equal(layers.ZeroPadding2D((1, 0), data_format="channels_first")(chw).numpy(),
                                      np.pad(chw, ((0, 0), (0, 0), (1, 1), (0, 0))))
        c = layers.ZeroPadding2D(2).get_config()
        self.assertEqual((c["padding"], c["data_format"]), ([[2, 2], [2, 2]], "channels_last"))
        self.assertEqual(layers.Cropping2D().get_config()["cropping"], [[0, 0], [0, 0]])
        self.assertEqual(layers.UpSampling2D().get_config()["size"], [2, 2])
        self.assertEqual(layers.UpSampling2D.from_config(layers.UpSampling2D(3).get_config()).get_config()["size"], [3, 3])

    def test_resizing_and_bilinear_up_sampling(self):
        # tf.image.resize's half-pixel bilinear and nearest: against NumPy, written out per axis.
        def axis_taps(n, out, bilinear):
            scale = np.float32(n) / np.float32(out)
            src = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale
            if not bilinear:
                i = np.minimum(np.floor(src).astype(int), n - 1)
                return i, i, np.zeros(out, np.float32)
            src = src - np.float32(0.5)
            f = np.floor(src)
            return np.maximum(f, 0).astype(int), np.minimum(np.ceil(src), n - 1).astype(int), (src - f).astype(np.float32)

        def ref(x, oh, ow, bilinear=True):
            lo, hi, t = axis_taps(x.shape[2], ow, bilinear)
            x = x[:, :, lo] + (x[:, :, hi] - x[:, :, lo]) * t[None, None, :, None]
            lo, hi, t = axis_taps(x.shape[1], oh, bilinear)
            return x[:, lo] + (x[:, hi] - x[:, lo]) * t[None, :, None, None]

        x = np.random.default_rng(5).normal(size=(2, 5, 7, 3)).astype(np.float32)
        for oh, ow in ((10, 14), (3, 4), (1, 9), (5, 7)):
            np.testing.assert_allclose(layers.Resizing(oh, ow)(x).numpy(), ref(x, oh, ow), rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(layers.Resizing(oh, ow, interpolation="nearest")(x).numpy(),
                                          ref(x, oh, ow, False))
            np.testing.assert_allclose(kiln.image.resize(x, (oh, ow)).numpy(), ref(x, oh, ow), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(layers.UpSampling2D((2, 3), interpolation="bilinear")(x).numpy(), ref(x, 10, 21),
                                   rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(layers.Resizing(3, 3, crop_to_aspect_ratio=True)(x).numpy(),
                                   ref(x[:, :, 1:6], 3, 3), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(layers.Resizing(7, 7, pad_to_aspect_ratio=True, fill_value=2.0)(x).numpy(),
                                   np.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)), constant_values=2.0), rtol=1e-6)
        u8 = (np.arange(16, dtype=np.uint8) * 16).reshape(1, 4, 4, 1)
        y8 = layers.Resizing(3, 3)(u8).numpy()
        self.assertEqual(y8.dtype, np.uint8)
        np.testing.assert_array_equal(y8, np.clip(np.round(ref(u8.astype(np.float32), 3, 3)), 0, 255))
        c = layers.Resizing(4, 5).get_config()
        self.assertEqual({k: c[k] for k in ("height", "width", "interpolation", "crop_to_aspect_ratio", "fill_value")},
                         {"height": 4, "width": 5, "interpolation": "bilinear", "crop_to_aspect_ratio": False,
                          "fill_value": 0.0})
        self.assertEqual(layers.Resizing.from_config(c).get_config()["width"], 5)
        with kiln.GradientTape() as tape:
            xt = kiln.constant(x)
            tape.watch(xt)
            loss = kiln.reduce_sum(layers.Resizing(3, 4)(xt))
        self.assertEqual(tape.gradient(loss, xt).shape, x.shape)
        with self.assertRaisesRegex(kiln.UnimplementedError, "interpolation 'bicubic'"):
            layers.Resizing(2, 2, interpolation="bicubic")
        with self.assertRaisesRegex(kiln.UnimplementedError, "antialias"):
            kiln.image.resize(x, (2, 2), antialias=True)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected rank 4"):
            layers.Resizing(2, 2)(np.ones((3, 3), np.float32))

    def test_one_and_three_axes(self):
        s = np.arange(8, dtype=np.float32).reshape(1, 4, 2)
        np.testing.assert_array_equal(layers.ZeroPadding1D((1, 2))(s).numpy(), np.pad(s, ((0, 0), (1, 2), (0, 0))))
        np.testing.assert_array_equal(layers.Cropping1D()(s).numpy(), s[:, 1:3])
        np.testing.assert_array_equal(layers.UpSampling1D(3)(s).numpy(), s.repeat(3, 1))
        self.assertEqual(layers.UpSampling1D(3).get_config()["size"], 3)
        v = np.random.default_rng(3).normal(size=(1, 2, 3, 4, 2)).astype(np.float32)
        np.testing.assert_array_equal(layers.ZeroPadding3D()(v).numpy(), np.pad(v, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0))))
        np.testing.assert_array_equal(layers.Cropping3D(((0, 0), 1, (1, 2)))(v).numpy(), v[:, :, 1:2, 1:2])
        np.testing.assert_array_equal(layers.UpSampling3D((1, 2, 1))(v).numpy(), v.repeat(2, 2))

    def test_unknown_spatial_dims(self):
        model = kiln.Sequential([layers.Input((None, None, 2)), layers.ZeroPadding2D(1), layers.Cropping2D(2)])
        x = np.ones((1, 5, 6, 2), np.float32)
        self.assertEqual(model.predict(x, verbose=0).shape, (1, 3, 4, 2))
        with tempfile.TemporaryDirectory() as d:  # the save's call on zeros stands in longer sizes
            model.save(os.path.join(d, "m"))
            np.testing.assert_array_equal(kiln.models.load_model(os.path.join(d, "m")).predict(x, verbose=0),
                                          model.predict(x, verbose=0))
        self.assertEqual(kiln.Sequential([layers.Input((None, 4)), layers.Cropping1D()])(np.ones((2, 5, 4), np.float32))
                         .shape, (2, 3, 4))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "Cropping2D.*smaller than"):
            layers.Cropping2D(2)(self.img)
        with self.assertRaisesRegex(ValueError, "ZeroPadding2D.*cannot be negative"):
            layers.ZeroPadding2D(-1)
        with self.assertRaisesRegex(ValueError, "zero_padding2d.*rank 4"):
            layers.ZeroPadding2D()(self.img[0])
        with self.assertRaises(kiln.UnimplementedError):
            layers.UpSampling2D(interpolation="bicubic")
        with self.assertRaisesRegex(ValueError, "data_format"):
            layers.Cropping2D(data_format="NCHW")
        with self.assertRaises(TypeError):
            layers.Cropping1D(1, data_format="channels_last")  # Keras's Cropping1D has none


class NoiseAndScalingLayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_noise_only_in_training(self):
        x = np.full((64, 8, 8, 4), 2.0, np.float32)
        for layer in (layers.GaussianNoise(0.5, seed=1), layers.GaussianDropout(0.2), layers.SpatialDropout2D(0.5)):
            np.testing.assert_array_equal(layer(x).numpy(), x)
            self.assertFalse(np.array_equal(layer(x, training=True).numpy(), x))
        n = layers.GaussianNoise(0.5)(x, training=True).numpy()
        self.assertAlmostEqual(float(n.mean()), 2.0, delta=0.02)
        self.assertAlmostEqual(float(n.std()), 0.5, delta=0.02)
        d = layers.SpatialDropout2D(0.5, data_format="channels_first")(x.reshape(64, 4, 8, 8), training=True).numpy()
        maps = d.reshape(64, 4, -1)  # channels first: each (sample, channel) map is one draw
        self.assertTrue(np.all(maps == maps[:, :, :1]))
        self.assertTrue(set(np.unique(d)) <= {0.0, 4.0})
        s1 = layers.SpatialDropout1D(0.5)(x.reshape(64, 64, 4), training=True).numpy()
        self.assertTrue(np.all(s1 == s1[:, :1, :]))
        self.assertEqual(layers.GaussianDropout(0.3, seed=4).get_config()["seed"], 4)
        # AlphaDropout: a * x + b kept, a * alpha' + b dropped; a standard normal keeps mean 0, variance 1.
        z = np.random.default_rng(1).normal(size=(200, 100)).astype(np.float32)
        ad = layers.AlphaDropout(0.2, seed=3)
        np.testing.assert_array_equal(ad(z).numpy(), z)
        y = ad(z, training=True).numpy()
        alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        a = ((1 - 0.2) * (1 + 0.2 * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * 0.2
        dropped = np.isclose(y, a * alpha_p + b, atol=1e-5)
        np.testing.assert_allclose(y[~dropped], a * z[~dropped] + b, rtol=1e-5, atol=1e-5)
        self.assertAlmostEqual(float(dropped.mean()), 0.2, delta=0.01)
        self.assertAlmostEqual(float(y.mean()), 0.0, delta=0.02)
        self.assertAlmostEqual(float(y.var()), 1.0, delta=0.03)
        self.assertEqual(layers.AlphaDropout(0.1, noise_shape=(None, 1), seed=2).get_config()["noise_shape"], [None, 1])
        rows = layers.AlphaDropout(0.5, noise_shape=(None, 1))(np.ones((50, 4), np.float32), training=True).numpy()
        self.assertTrue(np.all(rows == rows[:, :1]))
        with self.assertRaisesRegex(ValueError, r"rate must be in \[0, 1\)"):
            layers.SpatialDropout3D(1.0)

    def test_category_encoding_as_keras_documents(self):
        one_hot = layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")
        np.testing.assert_array_equal(one_hot([3, 2, 0, 1]).numpy(), np.eye(4, dtype=np.float32)[[3, 2, 0, 1]])
        np.testing.assert_array_equal(one_hot(np.array([[3], [1]])).numpy(), np.eye(4, dtype=np.float32)[[3, 1]])
        multi = layers.CategoryEncoding(num_tokens=4, output_mode="multi_hot")
        np.testing.assert_array_equal(multi([[0, 1], [0, 0], [1, 2], [3, 1]]).numpy(),
                                      [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]])
        np.testing.assert_array_equal(multi([0, 3, 3]).numpy(), [1, 0, 0, 1])  # rank 1: one sample
        count = layers.CategoryEncoding(num_tokens=4, output_mode="count")
        np.testing.assert_array_equal(count([[0, 0, 3]]).numpy(), [[2, 0, 0, 1]])
        w = np.array([[.1, .2], [.1, .1], [.2, .3], [.4, .2]])
        np.testing.assert_allclose(count([[0, 1], [0, 0], [1, 2], [3, 1]], count_weights=w).numpy(),
                                   [[.1, .2, 0, 0], [.2, 0, 0, 0], [0, .2, .3, 0], [0, .2, 0, .4]])
        self.assertEqual(count.get_config()["output_mode"], "count")
        self.assertEqual(layers.CategoryEncoding(3, output_mode="binary").get_config()["output_mode"], "multi_hot")
        self.assertEqual(tuple(one_hot.compute_output_shape((None, 1))), (None, 4))
        self.assertEqual(tuple(multi.compute_output_shape((None, 5))), (None, 4))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"token id 4 at flat index 1 is out of range"):
            multi([[0, 4]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "count_weights is used only with output_mode 'count'"):
            multi([[0, 1]], count_weights=[[1.0, 1.0]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "num_tokens must be set"):
            layers.CategoryEncoding()
        # Float ids are not rounded to the layer's compute dtype first (Keras converts no inputs here),
        # and integer count_weights count in the compute dtype.
        hot = layers.CategoryEncoding(1000, dtype="mixed_bfloat16")(np.array([257.0, 300.0, 999.0], np.float32))
        self.assertEqual(np.flatnonzero(hot.numpy().astype(np.float32)).tolist(), [257, 300, 999])
        counted = count([[0, 1]], count_weights=np.array([[2, 3]], np.int32))
        self.assertEqual(counted.dtype, kiln.float32)
        np.testing.assert_array_equal(counted.numpy(), [[2, 3, 0, 0]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "noise_shape has -2"):
            layers.AlphaDropout(0.5, noise_shape=(-2, 4))

    def test_identity_and_rescaling(self):
        x = np.random.default_rng(5).normal(size=(2, 3)).astype(np.float32)
        np.testing.assert_array_equal(layers.Identity()(x).numpy(), x)
        u8 = np.array([[0, 51, 128, 255]], np.uint8)
        y = layers.Rescaling(1.0 / 255)(kiln.constant(u8))
        self.assertEqual(y.dtype, kiln.float32)
        np.testing.assert_array_equal(y.numpy(), u8.astype(np.float32) * np.float32(1.0 / 255))
        np.testing.assert_array_equal(layers.Rescaling(2.0, offset=-1.0)(x).numpy(), x * 2 - 1)
        self.assertEqual(layers.Rescaling(np.array(0.5)).get_config()["scale"], 0.5)
        with self.assertRaisesRegex(ValueError, "1-D lists"):
            layers.Rescaling(np.ones((2, 2)))
        per_channel = layers.Rescaling(np.array([1.0, 10.0]), offset=[0.0, 1.0])
        np.testing.assert_array_equal(per_channel(np.array([[1, 2], [3, 4]], np.float32)).numpy(), [[1, 21], [3, 41]])
        self.assertEqual(per_channel.get_config()["scale"], [1.0, 10.0])


def _double(x):
    return x * 2.0


def _same_shape(shape):
    return shape


@kiln.saving.register_keras_serializable(package="MoreLayersTest")
def _triple(x):
    return x * 3.0


class LambdaTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_call_arguments_training_and_mask(self):
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        lam = layers.Lambda(_double)
        self.assertEqual(lam.name, "lambda")
        np.testing.assert_array_equal(lam(x).numpy(), x * 2)
        np.testing.assert_array_equal(layers.Lambda(lambda t, k: t * k, arguments={"k": 3.0})(x).numpy(), x * 3)
        seen = []
        layers.Lambda(lambda t, training=None: seen.append(training) or t)(x, training=True)
        self.assertEqual(seen, [True])
        out = layers.Lambda(lambda t: t, mask=lambda t, m: kiln.not_equal(t, 0.0))(x)
        np.testing.assert_array_equal(out._keras_mask.numpy(), x != 0)
        with self.assertRaises(TypeError):
            layers.Lambda(3)

    def test_registered_function_and_unnamed_callables(self):
        lam = layers.Lambda(_triple)
        self.assertEqual(lam.get_config()["function"]["registered_name"], "MoreLayersTest>_triple")
        again = layers.Lambda.from_config(lam.get_config())
        self.assertIs(again.function, _triple)
        self.assertEqual(layers.Lambda(np.tanh).get_config()["function"]["config"], "tanh")  # a ufunc, by name
        import functools
        import math
        kiln.saving.register_keras_serializable(package="MoreLayersTest")(math.sqrt)  # takes no attributes
        self.assertEqual(kiln.saving.get_registered_name(math.sqrt), "MoreLayersTest>sqrt")
        partial = layers.Lambda(functools.partial(np.multiply, 2.0))
        self.assertEqual(partial.get_config()["function"]["class_name"], "__lambda__")
        with self.assertRaisesRegex(ValueError, "without a name"):
            layers.Lambda.from_config(partial.get_config())
        # A function in custom_objects hides a layer class of its name for the scope only.
        with kiln.saving.custom_object_scope({"Identity": _double}):
            self.assertIs(kiln.saving.get_registered_object("Identity", kiln.saving._ACTIVE), _double)
        self.assertIsInstance(layers.deserialize(layers.serialize(layers.Identity())), layers.Identity)

    def test_trains_saves_and_loads_with_custom_objects(self):
        kiln.random.set_seed(1)
        model = kiln.Sequential([layers.Input((3,)), layers.Dense(4), layers.Lambda(_double), layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        x = np.random.default_rng(0).uniform(size=(16, 3)).astype(np.float32)
        model.fit(x, x[:, :1], epochs=1, verbose=0)
        cfg = model.layers[1].get_config()["function"]
        self.assertEqual((cfg["class_name"], cfg["config"]), ("function", "_double"))
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m"))
            with self.assertRaisesRegex(ValueError, r"'_double'.*custom_objects"):
                kiln.models.load_model(os.path.join(d, "m"))
            loaded = kiln.models.load_model(os.path.join(d, "m"), custom_objects={"_double": _double})
            np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
            self.assertIsInstance(loaded.layers[1], layers.Lambda)
            shaped = kiln.Sequential([layers.Input((3,)), layers.Lambda(_double, output_shape=_same_shape)])
            shaped.save(os.path.join(d, "s"))  # a function output_shape is saved by name, as the function
            again = kiln.models.load_model(os.path.join(d, "s"), custom_objects={"_double": _double,
                                                                                 "_same_shape": _same_shape})
            self.assertIs(again.layers[0]._output_shape, _same_shape)
            anonymous = kiln.Sequential([layers.Input((3,)), layers.Lambda(lambda t: t + 1.0)])
            anonymous.save(os.path.join(d, "a"))
            with self.assertRaisesRegex(ValueError, "lambda"):
                kiln.models.load_model(os.path.join(d, "a"))


class KerasActivationsAndUtilsTest(unittest.TestCase):
    def test_activations_against_numpy_and_the_layers(self):
        act = kiln.keras.activations
        x = np.linspace(-4, 4, 17, dtype=np.float32).reshape(1, 17)
        xd = x.astype(np.float64)
        sig = 1 / (1 + np.exp(-xd))
        softplus = np.log1p(np.exp(xd))
        want = {"relu": np.maximum(xd, 0), "relu6": np.clip(xd, 0, 6), "sigmoid": sig, "tanh": np.tanh(xd),
                "elu": np.where(xd > 0, xd, np.expm1(xd)), "leaky_relu": np.where(xd > 0, xd, 0.2 * xd),
                "softplus": softplus, "softsign": xd / (1 + np.abs(xd)), "silu": xd * sig, "swish": xd * sig,
                "exponential": np.exp(xd), "hard_sigmoid": np.clip(xd + 3, 0, 6) / 6,
                "mish": xd * np.tanh(softplus), "linear": xd,
                "softmax": np.exp(xd) / np.exp(xd).sum(-1, keepdims=True)}
        for name, ref in want.items():
            np.testing.assert_allclose(getattr(act, name)(x).numpy(), ref, rtol=2e-6, atol=1e-6, err_msg=name)
            self.assertIs(act.get(name), getattr(act, name))
            self.assertEqual(act.serialize(getattr(act, name)), "silu" if name == "swish" else name)  # Keras 3's
        for kwargs in ({"max_value": 6.0, "negative_slope": 0.5, "threshold": 2.0}, {"max_value": 3.0},
                       {"negative_slope": 0.1}, {"threshold": 1.0}):
            np.testing.assert_array_equal(act.relu(DOC, **kwargs).numpy(), layers.ReLU(**kwargs)(DOC).numpy())
        # Keras 3's newer activations: as functions (with their arguments) and by name in a layer.
        tanh = np.tanh(xd)
        newer = {"celu": np.where(xd > 0, xd, np.expm1(xd)), "hard_shrink": np.where(np.abs(xd) > 0.5, xd, 0),
                 "soft_shrink": np.where(xd > 0.5, xd - 0.5, np.where(xd < -0.5, xd + 0.5, 0)),
                 "hard_silu": xd * np.clip(xd + 3, 0, 6) / 6, "hard_swish": xd * np.clip(xd + 3, 0, 6) / 6,
                 "hard_tanh": np.clip(xd, -1, 1), "log_sigmoid": -np.log1p(np.exp(-xd)),
                 "sparse_plus": np.where(xd <= -1, 0, np.where(xd < 1, (xd + 1) ** 2 / 4, xd)),
                 "sparse_sigmoid": np.where(xd <= -1, 0, np.where(xd >= 1, 1, (xd + 1) / 2)),
                 "squareplus": (xd + np.sqrt(xd * xd + 4)) / 2, "tanh_shrink": xd - tanh,
                 "glu": xd[:, :8] / (1 + np.exp(-xd[:, 8:16]))}
        for name, ref in newer.items():
            xin = x[:, :16] if name == "glu" else x
            np.testing.assert_allclose(getattr(act, name)(xin).numpy(), ref, rtol=2e-6, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(layers.Activation(name)(xin).numpy(), ref, rtol=2e-6, atol=1e-6, err_msg=name)
            self.assertEqual(act.serialize(getattr(act, name)), "hard_silu" if name == "hard_swish" else name)
        np.testing.assert_allclose(act.celu(x, alpha=2.0).numpy(), np.where(xd > 0, xd, 2 * np.expm1(xd / 2)),
                                   rtol=2e-6, atol=1e-6)
        np.testing.assert_array_equal(act.hard_shrink(x, threshold=2.0).numpy(), np.where(np.abs(x) > 2, x, 0))
        np.testing.assert_allclose(act.soft_shrink(x, 1.0).numpy(), np.sign(x) * np.maximum(np.abs(x) - 1, 0))
        np.testing.assert_allclose(act.squareplus(x, b=1).numpy(), (xd + np.sqrt(xd * xd + 1)) / 2, rtol=2e-6)
        np.testing.assert_array_equal(act.threshold(x, 1.0, -5.0).numpy(), np.where(x > 1, x, -5))
        np.testing.assert_allclose(act.glu(x[:, :16].T, axis=0).numpy(), newer["glu"].T, rtol=2e-6)
        with self.assertRaisesRegex(ValueError, "even size"):
            act.glu(x)
        with self.assertRaisesRegex(ValueError, "even size"):
            layers.Activation("glu")(x)
        self.assertEqual(layers.Dense(2, activation="hard_silu")(x[:, :3]).shape, (1, 2))
        # keras.layers.Dot: Keras's docstring example and the cosine proximity
        dx, dy = np.arange(10, dtype=np.float32).reshape(1, 5, 2), np.arange(10, 20, dtype=np.float32).reshape(1, 2, 5)
        np.testing.assert_array_equal(layers.Dot(axes=(1, 2))([dx, dy]).numpy(), [[[260, 360], [320, 445]]])
        a, b = np.array([[1, 2], [3, 4]], np.float32), np.array([[3, 4], [0, 1]], np.float32)
        cos = layers.Dot(axes=1, normalize=True)([a, b]).numpy()
        self.assertEqual(cos.shape, (2, 1))
        np.testing.assert_allclose(cos[:, 0], [11 / np.sqrt(5) / 5, 0.8], rtol=1e-6)
        np.testing.assert_array_equal(layers.dot([a, b], axes=-1).numpy(), [[11], [4]])
        np.testing.assert_array_equal(layers.dot([a, b]).numpy(), [[11], [4]])  # Keras's default axes=-1
        np.testing.assert_allclose(layers.dot([a, b], normalize=True).numpy(), cos, rtol=1e-6)
        self.assertEqual(layers.Dot(axes=[1, 2]).get_config()["axes"], [1, 2])
        with self.assertRaisesRegex(ValueError, "batch axis 0"):
            layers.Dot(axes=0)([a, b])
        # keras.layers.GroupNormalization against Keras 3's formula in NumPy
        g = np.random.default_rng(5).standard_normal((2, 3, 6)).astype(np.float32)
        gn = layers.GroupNormalization(groups=3, epsilon=0.01)
        out = gn(g).numpy()
        grouped = g.astype(np.float64).reshape(2, 3, 3, 2)
        mean = grouped.mean(axis=(1, 3), keepdims=True)
        var = grouped.var(axis=(1, 3), keepdims=True)
        np.testing.assert_allclose(out, ((grouped - mean) / np.sqrt(var + 0.01)).reshape(2, 3, 6), rtol=1e-5, atol=1e-5)
        self.assertEqual(len(gn.trainable_weights), 2)
        self.assertEqual(layers.GroupNormalization(groups=-1).get_config()["groups"], -1)
        inst = layers.GroupNormalization(groups=-1)
        inst(g)
        self.assertEqual(inst.get_config()["groups"], 6)  # Keras sets it at build
        with self.assertRaisesRegex(ValueError, "do not divide"):
            layers.GroupNormalization(groups=4)(g)
        with self.assertRaisesRegex(ValueError, "groups must be an int"):
            layers.GroupNormalization(groups=1.5)
        # Embedding's activity regularizer through the constructor (Keras passes it to the base Layer)
        emb = layers.Embedding(3, 2, embeddings_initializer="ones", activity_regularizer="l1")
        emb(np.array([[0, 1, 2]], np.int32))
        self.assertAlmostEqual(float(emb.losses[0].numpy()), 0.01 * 6, places=6)
        # keras.layers.UnitNormalization
        rows = np.array([[3, 4], [0, 0]], np.float32)
        np.testing.assert_allclose(layers.UnitNormalization()(rows).numpy(), [[0.6, 0.8], [0, 0]], rtol=1e-7)
        unit = layers.UnitNormalization(axis=[0, 1])
        self.assertEqual(unit.get_config()["axis"], [0, 1])
        self.assertIsInstance(layers.deserialize(layers.serialize(unit)), layers.UnitNormalization)
        np.testing.assert_allclose(unit(rows).numpy(), [[0.6, 0.8], [0, 0]], rtol=1e-7)
        self.assertIs(act.get(None), act.linear)
        dense = layers.Dense(3, activation=act.gelu)
        self.assertEqual(dense.get_config()["activation"], "gelu")
        with self.assertRaisesRegex(ValueError, "unknown activation 'nope'"):
            act.get("nope")

    def test_clip_by_norm_and_global_norm_as_tensorflow(self):
        a, b = np.array([3, 4], np.float32), np.array([12], np.float32)
        self.assertEqual(float(kiln.linalg.global_norm([a, None, b]).numpy()), 13.0)
        clipped, norm = kiln.clip_by_global_norm([a, None, b], 6.5)
        self.assertEqual(float(norm.numpy()), 13.0)
        self.assertIsNone(clipped[1])
        np.testing.assert_array_equal(clipped[0].numpy(), [1.5, 2])
        np.testing.assert_array_equal(clipped[2].numpy(), [6])
        np.testing.assert_array_equal(kiln.clip_by_global_norm([a], 20)[0][0].numpy(), a)
        self.assertTrue(np.all(np.isnan(kiln.clip_by_global_norm([a], 1, use_norm=np.float32(np.inf))[0][0].numpy())))
        rows = np.array([[3, 4], [0, 0], [0.3, 0.4]], np.float32)
        np.testing.assert_allclose(kiln.clip_by_norm(rows, 1, axes=[1]).numpy(), [[0.6, 0.8], [0, 0], [0.3, 0.4]],
                                   rtol=1e-7)
        # In a GradientTape loop, as TF's guides clip.
        w = kiln.Variable(np.array([1.0, -2.0], np.float32))
        with kiln.GradientTape() as tape:
            loss = kiln.reduce_sum(w * w) * 10.0
        grads, _ = kiln.clip_by_global_norm(tape.gradient(loss, [w]), 1.0)
        self.assertAlmostEqual(float(kiln.linalg.global_norm(grads).numpy()), 1.0, places=6)
        with self.assertRaises(ValueError):
            kiln.linalg.global_norm([None])

    def test_function_shape_and_rank(self):
        @kiln.function
        def step(x):
            return x * 2.0

        @kiln.function(jit_compile=True, reduce_retracing=True)
        def other(x):
            return x + 1.0

        self.assertEqual(step(kiln.constant(2.0)).numpy(), 4.0)
        self.assertEqual(other(kiln.constant(2.0)).numpy(), 3.0)
        x = np.zeros((2, 3, 4), np.float32)
        s = kiln.shape(x)
        self.assertEqual((s.dtype, s.numpy().tolist()), (kiln.int32, [2, 3, 4]))
        self.assertEqual(kiln.shape(x, out_type="int64").dtype, kiln.int64)
        self.assertEqual(int(kiln.rank(x).numpy()), 3)

    def test_to_categorical_and_set_random_seed(self):
        utils = kiln.keras.utils
        np.testing.assert_array_equal(utils.to_categorical([0, 2, 1]), np.eye(3, dtype=np.float32)[[0, 2, 1]])
        got = utils.to_categorical(np.array([[1], [3]]), num_classes=5)
        self.assertEqual((got.shape, got.dtype), ((2, 5), np.float32))
        self.assertEqual(got.argmax(-1).tolist(), [1, 3])
        with self.assertRaisesRegex(ValueError, r"\[0, 2\)"):
            utils.to_categorical([0, 2], num_classes=2)
        utils.set_random_seed(7)
        a = kiln.random.normal((4,)).numpy()
        utils.set_random_seed(7)
        np.testing.assert_array_equal(kiln.random.normal((4,)).numpy(), a)


class WeightAttributesTest(unittest.TestCase):
    def test_builtin_layers_name_their_weights_as_keras(self):
        layers.clear_session()
        dense = layers.Dense(3)
        with self.assertRaisesRegex(AttributeError, "kernel.*once the layer is built"):
            dense.kernel  # noqa: B018 - Keras: no kernel before the build
        model = kiln.Sequential([layers.Input((2,)), dense, layers.BatchNormalization(), layers.PReLU(),
                                 layers.Embedding(5, 2)])
        self.assertIs(dense.kernel, dense.weights[0])
        self.assertEqual((dense.kernel.shape, dense.bias.shape), ((2, 3), (3,)))
        dense.kernel.assign(np.ones((2, 3), np.float32))
        np.testing.assert_array_equal(dense.get_weights()[0], np.ones((2, 3)))
        bn, prelu, emb = model.layers[1:]
        self.assertEqual([bn.gamma.name, bn.moving_variance.name],
                         ["sequential/batch_normalization/gamma", "sequential/batch_normalization/moving_variance"])
        self.assertEqual((prelu.alpha.shape, emb.embeddings.shape), ((3,), (5, 2)))
        with self.assertRaises(AttributeError):
            dense.gamma  # noqa: B018 - another layer's weight
        self.assertFalse(hasattr(dense, "no_such_weight"))
        mha = layers.MultiHeadAttention(2, 4)
        x = np.ones((1, 3, 4), np.float32)
        mha(x, x)
        self.assertFalse(hasattr(mha, "kernel"))  # its sub-layers' weights are theirs


class ModelWithTheNewLayersTest(unittest.TestCase):
    def test_fit_save_and_load(self):
        layers.clear_session()
        kiln.random.set_seed(4)
        model = kiln.Sequential([
            layers.Input((6, 6, 1)), layers.Rescaling(1 / 4.0), layers.ZeroPadding2D(), layers.Conv2D(4, 3),
            layers.PReLU(shared_axes=[1, 2]), layers.SpatialDropout2D(0.2), layers.Cropping2D(1), layers.UpSampling2D(),
            layers.GaussianNoise(0.05), layers.Flatten(), layers.Dense(8), layers.LeakyReLU(), layers.Dense(3),
            layers.Softmax()])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(6)
        x = rng.uniform(0, 4, (32, 6, 6, 1)).astype(np.float32)
        y = (x.reshape(32, -1).mean(1) * 3 / 4).astype(np.int32) % 3
        alpha = [w for w in model.weights if w.name.endswith("alpha")][0]
        before = alpha.numpy().copy()
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        self.assertFalse(np.array_equal(alpha.numpy(), before))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m")
            model.save(path)
            loaded = kiln.models.load_model(path)
            np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
            self.assertEqual([type(l).__name__ for l in loaded.layers], [type(l).__name__ for l in model.layers])


if __name__ == "__main__":
    unittest.main()
