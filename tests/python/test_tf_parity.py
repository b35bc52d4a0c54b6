"""TF 2 / Keras parity of the Python binding (the audit's findings): argmax/argmin's default axis,
tf.constant's conversions, GradientTape's nested sources and watch, Variable operators and names,
scatter_nd's dtype, positional initializer arguments, Layer.get_weights / set_weights,
Tensor.shape's TensorShape methods, and clear errors for wrong arguments."""
import unittest

import numpy as np

import kiln


class ArgMaxTest(unittest.TestCase):
    x = [[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]

    def test_default_axis_is_zero(self):
        x = kiln.constant(self.x)
        self.assertEqual(kiln.argmax(x).numpy().tolist(), [0, 1, 1])  # tf.argmax(x): axis None means 0
        self.assertEqual(kiln.argmin(x).numpy().tolist(), [1, 0, 0])
        self.assertEqual(kiln.math.argmax(x, axis=None).numpy().tolist(), [0, 1, 1])
        self.assertEqual(kiln.math.argmin(x, axis=None).numpy().tolist(), [1, 0, 0])
        self.assertEqual(kiln.argmax(x, -1).numpy().tolist(), [0, 1])
        self.assertEqual(kiln.argmax(x, np.int64(1)).numpy().tolist(), [0, 1])
        self.assertEqual(kiln.argmax(x, kiln.constant(1)).numpy().tolist(), [0, 1])
        self.assertEqual(kiln.argmax(x).dtype, "int64")
        self.assertEqual(kiln.argmax(x, output_type="int32").dtype, "int32")
        self.assertEqual(kiln.argmin(x, output_type=kiln.int32).dtype, "int32")

    def test_non_integer_axis(self):
        x = kiln.constant(self.x)
        for fn in (kiln.argmax, kiln.argmin):
            for axis in ("a", 1.5, [0]):
                with self.subTest(fn=fn.__name__, axis=axis):
                    with self.assertRaisesRegex(TypeError, "axis"):
                        fn(x, axis)


class ConstantTest(unittest.TestCase):
    def test_float_to_integer_dtype_raises(self):
        for value in ([1.9, -1.9], [2.0], 2.0, np.float32(1.0), np.array([1.5]), np.array([2.0]), [[1, 2.5]]):
            for dtype in ("int32", "int64", "uint8"):
                with self.subTest(value=value, dtype=dtype):
                    with self.assertRaises(TypeError):
                        kiln.constant(value, dtype=dtype)
        self.assertEqual(kiln.constant([1, 2], "int64").numpy().tolist(), [1, 2])
        self.assertEqual(kiln.constant([1, 2], "float32").dtype, "float32")
        self.assertEqual(kiln.constant(np.array([1, 2]), "float32").dtype, "float32")
        # Operators still take an integer-valued Python float beside an integer tensor.
        self.assertEqual((kiln.constant([1, 2]) + 2.0).numpy().tolist(), [3, 4])

    def test_tensor_with_shape_reshapes(self):
        t = kiln.constant([1.0, 2.0, 3.0, 4.0])
        self.assertEqual(kiln.constant(t, shape=[2, 2]).numpy().tolist(), [[1.0, 2.0], [3.0, 4.0]])
        self.assertEqual(kiln.constant(kiln.Variable([1.0, 2.0, 3.0, 4.0]), shape=[2, 2]).shape, (2, 2))
        self.assertEqual(kiln.constant(kiln.constant(5), shape=[2]).numpy().tolist(), [5, 5])  # one value fills
        self.assertEqual(kiln.constant(np.arange(4.0), shape=[2, 2]).shape, (2, 2))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"\[2, 2\]"):
            kiln.constant(kiln.constant([1.0, 2.0, 3.0]), shape=[2, 2])

    def test_list_of_tensors_and_arrays_stacks(self):
        a = kiln.constant([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
        self.assertEqual((a.shape, a.dtype), ((2, 2), "float64"))  # NumPy's float64 kept, as tf.constant
        b = kiln.constant([kiln.constant([1.0, 2.0]), kiln.constant([3.0, 4.0])])
        self.assertEqual((b.shape, b.dtype, b.numpy().tolist()), ((2, 2), "float32", [[1.0, 2.0], [3.0, 4.0]]))
        c = kiln.constant([kiln.Variable([1.0, 2.0]), [3.0, 4.0]])
        self.assertEqual(c.numpy().tolist(), [[1.0, 2.0], [3.0, 4.0]])
        d = kiln.constant([[kiln.constant(1.0), kiln.constant(2.0)]])
        self.assertEqual(d.shape, (1, 2))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "shape"):
            kiln.constant([kiln.constant([1.0]), kiln.constant([1.0, 2.0])])


class GradientTapeTest(unittest.TestCase):
    def test_nested_sources_keep_their_structure(self):
        x = kiln.constant(2.0)
        v = kiln.Variable(3.0)
        with kiln.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x * v
        g = tape.gradient(y, [[x], [x]])
        self.assertIsInstance(g, list)
        self.assertEqual([[float(t) for t in row] for row in g], [[12.0], [12.0]])
        g = tape.gradient(y, {"x": x, "v": (v, [x])})
        self.assertEqual(set(g), {"x", "v"})
        self.assertIsInstance(g["v"], tuple)
        self.assertIsInstance(g["v"][1], list)
        self.assertEqual((float(g["x"]), float(g["v"][0]), float(g["v"][1][0])), (12.0, 4.0, 12.0))
        self.assertEqual(float(tape.gradient(y, x)), 12.0)
        self.assertIsInstance(tape.gradient(y, (x, v)), tuple)

    def test_watch_rejects_non_tensors(self):
        for value in (np.float32(2.0), 2.0, np.array([1.0]), "x"):
            with self.subTest(value=value):
                with kiln.GradientTape() as tape:
                    with self.assertRaises(ValueError):
                        tape.watch(value)
        with kiln.GradientTape() as tape:
            tape.watch({"a": kiln.constant(1.0), "b": [kiln.Variable(2.0)]})  # nests of tensors are fine


class VariableTest(unittest.TestCase):
    def test_comparisons_are_elementwise(self):
        v = kiln.Variable([1.0, 2.0])
        eq, ne = v == 1.0, v != 1.0
        self.assertIsInstance(eq, kiln.Tensor)
        self.assertEqual(eq.numpy().tolist(), [True, False])
        self.assertEqual(ne.numpy().tolist(), [False, True])
        self.assertEqual((v == kiln.constant([1.0, 2.0])).numpy().tolist(), [True, True])
        self.assertIs(v == None, False)  # noqa: E711 - TF: comparing with None is False
        self.assertEqual({v: 1}[v], 1)  # still usable as a dict key (by identity)
        self.assertIs(v.ref().deref(), v)

    def test_numpy_defers_to_variable(self):
        v = kiln.Variable([1.0, 2.0])
        for out in (np.ones(2) + v, np.ones(2) * v, np.ones(2, np.float32) - v):
            self.assertIsInstance(out, kiln.Tensor)
        self.assertEqual((np.ones(2) + v).numpy().tolist(), [2.0, 3.0])
        self.assertIsInstance(np.ones(2) + kiln.constant([1.0, 2.0]), kiln.Tensor)  # as for Tensor

    def test_names(self):
        self.assertEqual(kiln.Variable(1.0, name=None).name, kiln.Variable(1.0).name)
        self.assertEqual(kiln.Variable(1.0).name, "Variable")
        self.assertEqual(kiln.Variable(1.0, name=b"w\xc3\xa9").name, "w\u00e9")
        self.assertEqual(kiln.Variable(1.0, name="w").name, "w")


class ScatterTest(unittest.TestCase):
    def test_scatter_nd_dtype_follows_updates(self):
        t = kiln.scatter_nd([[0], [2], [2]], [5, 7, 1], [4])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("int32", [5, 0, 8, 0]))
        t = kiln.scatter_nd([[0], [2]], [5.0, 7.0], [4])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("float32", [5.0, 0.0, 7.0, 0.0]))
        t = kiln.scatter_nd([[1]], np.array([3], np.int64), [2])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("int64", [0, 3]))
        t = kiln.tensor_scatter_nd_add([1, 2, 3], [[0]], [5])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("int32", [6, 2, 3]))
        t = kiln.tensor_scatter_nd_add([1.0, 2.0, 3.0], [[0]], [5])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("float32", [6.0, 2.0, 3.0]))

    def test_integer_sums_are_exact_and_wrap_as_tf(self):
        big = 2**53 + 1  # not a float64: a float64 detour would round it
        t = kiln.scatter_nd([[1], [1]], np.array([big, 2], np.int64), [3])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("int64", [0, big + 2, 0]))
        t = kiln.scatter_nd([[0], [0]], np.array([2**31 - 1, 3], np.int32), [2])
        self.assertEqual(t.numpy().tolist(), [-2**31 + 2, 0])
        t = kiln.tensor_scatter_nd_add(np.array([2**63 - 1, 0], np.int64), [[0]], np.array([1], np.int64))
        self.assertEqual(t.numpy().tolist(), [-2**63, 0])
        t = kiln.scatter_nd([[0], [0]], np.array([200, 100], np.uint8), [2])
        self.assertEqual((t.dtype, t.numpy().tolist()), ("uint8", [44, 0]))


class InitializerTest(unittest.TestCase):
    def test_positional_arguments_in_keras_order(self):
        init = kiln.initializers
        self.assertEqual(init.Constant(1.0).get_config(), {"value": 1.0})
        self.assertEqual(init.RandomNormal(0.0, 0.1).get_config(), {"mean": 0.0, "stddev": 0.1, "seed": None})
        self.assertEqual(init.RandomUniform(-1.0, 1.0, 3).get_config(), {"minval": -1.0, "maxval": 1.0, "seed": 3})
        self.assertEqual(init.TruncatedNormal(1.0, 2.0).get_config()["stddev"], 2.0)
        self.assertEqual(init.GlorotUniform(42).get_config(), {"seed": 42})
        self.assertEqual(init.HeNormal(7).get_config(), {"seed": 7})
        self.assertEqual(init.Orthogonal(2.0, 1).get_config(), {"gain": 2.0, "seed": 1})
        self.assertEqual(init.VarianceScaling(2.0, "fan_avg", "uniform", 5).get_config(),
                         {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform", "seed": 5})
        self.assertEqual(init.Constant(2.0)([2]).numpy().tolist(), [2.0, 2.0])
        a, b = init.GlorotUniform(42)([3, 3]), init.GlorotUniform(seed=42)([3, 3])
        self.assertEqual(a.numpy().tolist(), b.numpy().tolist())
        with self.assertRaises(TypeError):
            init.Zeros(1)
        with self.assertRaises(TypeError):
            init.Constant(1.0, value=2.0)
        with self.assertRaises(TypeError):
            init.GlorotUniform(1, [0], [1], 2)
        # Keras 3.15's fan axes follow the seed, and stay out of the config unless given.
        self.assertEqual(init.GlorotUniform(1, [0], [1]).get_config(),
                         {"seed": 1, "input_axes": [0], "output_axes": [1]})
        self.assertEqual(init.GlorotUniform(1).get_config(), {"seed": 1})
        # Keras stores the distribution lower-cased, with its legacy "normal" as "truncated_normal".
        self.assertEqual(init.VarianceScaling(distribution="Normal").get_config()["distribution"], "truncated_normal")
        self.assertEqual(init.VarianceScaling(distribution="UNIFORM").get_config()["distribution"], "uniform")


class WeightsTest(unittest.TestCase):
    def test_get_and_set_weights(self):
        m = kiln.Sequential([kiln.layers.Dense(2), kiln.layers.Dense(1)])
        m.build((None, 3))
        w = m.get_weights()
        self.assertEqual([a.shape for a in w], [(3, 2), (2,), (2, 1), (1,)])
        self.assertTrue(all(isinstance(a, np.ndarray) for a in w))
        new = [np.full(a.shape, i + 1.0) for i, a in enumerate(w)]
        m.set_weights(new)
        for got, want in zip(m.get_weights(), new):
            np.testing.assert_array_equal(got, want)
        d = m.layers[0]
        self.assertEqual(len(d.get_weights()), 2)
        d.set_weights([kiln.zeros([3, 2]), [0.5, 0.5]])
        np.testing.assert_array_equal(d.get_weights()[1], [0.5, 0.5])

    def test_set_weights_checks(self):
        d = kiln.layers.Dense(2)
        d.build((None, 3))
        with self.assertRaisesRegex(ValueError, "2 weights"):
            d.set_weights([np.ones((3, 2))])
        with self.assertRaisesRegex(ValueError, "kernel"):
            d.set_weights([np.ones((3, 3)), np.ones(2)])
        before = d.get_weights()
        with self.assertRaisesRegex(ValueError, "bias"):
            d.set_weights([np.ones((3, 2)), np.ones(3)])
        np.testing.assert_array_equal(d.get_weights()[0], before[0])  # nothing assigned


class ShapeTest(unittest.TestCase):
    def test_tensor_shape(self):
        s = kiln.ones([2, 3]).shape
        self.assertEqual(s, (2, 3))
        self.assertEqual(s, [2, 3])
        self.assertEqual(s.as_list(), [2, 3])
        self.assertEqual((s.rank, s.ndims, s.num_elements()), (2, 2, 6))
        self.assertIsInstance(s, tuple)
        self.assertEqual(kiln.constant(1.0).shape.as_list(), [])
        self.assertEqual(kiln.Variable([1.0]).shape.as_list(), [1])
        self.assertEqual(repr(s), "(2, 3)")
        self.assertEqual(kiln.TensorShape([None, 2]).num_elements(), None)


class ArgumentMessageTest(unittest.TestCase):
    def test_pad_paddings(self):
        with self.assertRaisesRegex(ValueError, r"paddings must be \[\[before, after\]"):
            kiln.pad(kiln.ones([2, 2]), [1, 1])

    def test_axis_not_an_integer(self):
        x = kiln.ones([2, 2])
        for fn in (kiln.reduce_sum, kiln.reduce_mean, kiln.reduce_max, kiln.math.reduce_prod, kiln.softmax,
                   kiln.nn.log_softmax, kiln.math.cumsum):
            with self.subTest(fn=fn.__name__):
                with self.assertRaisesRegex(TypeError, "axis must be an integer"):
                    fn(x, axis="a")
        self.assertEqual(kiln.reduce_sum(x, axis=[]).shape, (2, 2))
        self.assertEqual(kiln.reduce_sum(x, axis=np.int32(0)).numpy().tolist(), [2.0, 2.0])

    def test_dataset_zip_non_dataset(self):
        with self.assertRaisesRegex(TypeError, "element 1 .*expected a kiln.data.Dataset"):
            kiln.data.Dataset.zip((kiln.data.Dataset.range(3), 5))

    def test_fit_python_generator(self):
        m = kiln.Sequential([kiln.layers.Dense(1)])
        m.compile("sgd", "mse")

        def gen():
            yield np.ones((2, 3), np.float32), np.ones((2, 1), np.float32)
        with self.assertRaisesRegex(TypeError, "from_generator"):
            m.fit(gen(), epochs=1, verbose=0)
        with self.assertRaisesRegex(TypeError, "from_generator"):
            m.predict(gen(), verbose=0)


if __name__ == "__main__":
    unittest.main()


class SecondAuditTest(unittest.TestCase):
    """An outside sweep's findings against TF's semantics (2026-12-04)."""

    def test_mean_divides_the_sum_by_the_count(self):
        for dtype in (np.float32, np.float64):
            self.assertEqual(kiln.reduce_mean(kiln.constant(np.full(7, 3.0, dtype))).numpy(), 3.0)
            mean, variance = kiln.moments(kiln.constant(np.full(7, 1e6, dtype)), [0])
            self.assertEqual((mean.numpy(), variance.numpy()), (1e6, 0.0))
        x = np.random.RandomState(1).uniform(-2, 3, (5, 13)).astype(np.float32)
        sums = kiln.reduce_sum(kiln.constant(x), axis=1).numpy()
        np.testing.assert_array_equal(kiln.reduce_mean(kiln.constant(x), axis=1).numpy(), sums / np.float32(13))

    def test_float_range_is_sized_in_its_dtype(self):
        self.assertEqual(kiln.range(1, 2.2, 0.2).shape, (6,))  # TF: ceil(1.2f / 0.2f) = 6; the limit excluded
        self.assertEqual(kiln.range(0.1, 0.4, 0.1).shape, (3,))
        self.assertEqual(kiln.range(0, 1e-5, 1e-6).shape, (10,))
        want, v = [], np.float32(0.1)
        for _ in range(4):
            want.append(v)
            v = np.float32(v + np.float32(0.1))
        np.testing.assert_array_equal(kiln.range(0.1, 0.45, 0.1).numpy(), np.array(want, np.float32))

    def test_empty_axes_reduce_nothing(self):
        x = kiln.constant(np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]], np.float32))
        mean, variance = kiln.moments(x, axes=[])
        np.testing.assert_array_equal(mean.numpy(), x.numpy())
        np.testing.assert_array_equal(variance.numpy(), np.zeros((2, 3), np.float32))
        np.testing.assert_array_equal(kiln.l2_normalize(x, axis=[]).numpy(), np.sign(x.numpy()))
        bf16 = kiln.l2_normalize(kiln.cast(x, "bfloat16"), axis=[])
        self.assertEqual(bf16.dtype, "bfloat16")
        np.testing.assert_array_equal(kiln.cast(bf16, "float32").numpy(), np.sign(x.numpy()))
        self.assertEqual(kiln.moments(x, axes=[0])[0].shape, (3,))  # a non-empty list still reduces

    def test_layer_norm_refuses_an_empty_axis_list(self):
        # the C API reads no axes as the last axis; from Python an empty list is refused, as by Keras's layer
        x = kiln.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
        for axis in ([], ()):
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "layer_norm: axis must name at least one"):
                kiln.layer_norm(x, kiln.ones([3]), kiln.zeros([3]), axis=axis)
        self.assertEqual(kiln.layer_norm(x, kiln.ones([3]), kiln.zeros([3]), axis=[-1]).shape, (2, 3))

    def test_integers_beyond_int64_are_refused(self):
        x = kiln.constant([[1.0, 2.0], [3.0, 4.0]])
        for f in (lambda: kiln.zeros([2 ** 64 + 3]), lambda: kiln.argmax(x, 2 ** 64 + 1),
                  lambda: kiln.top_k(x, 2 ** 64 + 1), lambda: kiln.softmax(x, 2 ** 63)):
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "int64 cannot hold"):
                f()
        with self.assertRaisesRegex(TypeError, "shape must be a list of integers"):
            kiln.zeros([2.5])

    def test_arguments_are_checked(self):
        x = kiln.constant([[1.0, 2.0], [3.0, 4.0]])
        for fn in (kiln.argmax, kiln.argmin):
            for bad in ("float32", "bool", "uint8"):
                with self.assertRaisesRegex(TypeError, "output_type %s .*int32 or int64" % bad):
                    fn(x, 1, output_type=bad)
        with self.assertRaisesRegex(TypeError, "top_k: k must be an integer"):
            kiln.top_k(x, 1.7)
        with self.assertRaisesRegex(TypeError, "elu: alpha must be a number"):
            kiln.elu(x, None)
        with self.assertRaisesRegex(TypeError, "leaky_relu: alpha must be a number"):
            kiln.leaky_relu(x, "a")
        with self.assertRaisesRegex(TypeError, "clip_by_value: clip_value_min must be a number"):
            kiln.clip_by_value(x, None, 1)

    def test_clip_by_value_takes_tensor_bounds(self):
        x = np.array([[0.5, 2.5, 9.0], [-1.0, np.nan, 4.0]], np.float32)
        low = np.array([1.0, 2.0, 3.0], np.float32)
        high = np.array([[2.0], [3.5]], np.float32)
        got = kiln.clip_by_value(kiln.constant(x), kiln.constant(low), kiln.constant(high)).numpy()
        np.testing.assert_array_equal(got, np.maximum(np.minimum(x, high), low))
        np.testing.assert_array_equal(kiln.clip_by_value(kiln.constant(x), kiln.constant(1.0), 3.0).numpy(),
                                      np.clip(x, 1.0, 3.0))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "clip_by_value: bounds"):
            kiln.clip_by_value(kiln.constant(low), kiln.constant(x), 5.0)  # broadcasts x beyond its shape
        # NumPy arrays and lists as bounds; integer bounds exact past 2**24; the gradient reaches the
        # bounds as TF's minimum and maximum give it (a tie goes to x).
        np.testing.assert_array_equal(kiln.clip_by_value(x, low, high).numpy(), np.maximum(np.minimum(x, high), low))
        np.testing.assert_array_equal(kiln.clip_by_value(x, [1.0, 2.0, 3.0], 3.0).numpy(),
                                      np.clip(x, [1.0, 2.0, 3.0], 3.0))
        x64 = np.array([0.05, 0.5, 0.95])  # float64 bounds stay float64, as TF converts them to x's dtype
        self.assertEqual(kiln.clip_by_value(x64, 0.1, 0.9).numpy().tolist(), [0.1, 0.5, 0.9])
        big = np.array([2 ** 40, -7, 16777217], np.int64)
        got = kiln.clip_by_value(big, np.array([0, 0, 16777217], np.int64), np.array([2 ** 40 - 1], np.int64))
        self.assertEqual(got.numpy().tolist(), [2 ** 40 - 1, 0, 16777217])
        v, lo, hi = kiln.Variable([0.5, 2.0, 9.0]), kiln.Variable([1.0, 2.0, 0.0]), kiln.Variable(3.0)
        with kiln.GradientTape() as tape:
            y = kiln.reduce_sum(kiln.clip_by_value(v, lo, hi) * kiln.constant([1.0, 10.0, 100.0]))
        gv, glo, ghi = tape.gradient(y, [v, lo, hi])
        self.assertEqual(gv.numpy().tolist(), [0.0, 10.0, 0.0])
        self.assertEqual(glo.numpy().tolist(), [1.0, 0.0, 0.0])
        self.assertEqual(ghi.numpy().tolist(), 100.0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "clip_value_min' is float64.*expected x's dtype float32"):
            kiln.clip_by_value(x, kiln.constant(low, "float64"), 3.0)  # a tensor keeps its dtype
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "clip_value_max' is int64.*expected x's dtype int32"):
            kiln.clip_by_value(kiln.constant([1, 2]), 0, np.array([1, 2], np.int64))

    def test_sign_of_zero_is_plus_zero(self):
        for dtype in ("float32", "float64", "bfloat16"):
            y = kiln.cast(kiln.sign(kiln.cast(kiln.constant(np.array([-0.0, 0.0, -3.0, np.nan], np.float64)),
                                              dtype)), "float64").numpy()
            self.assertFalse(np.signbit(y[0]), dtype)
            self.assertEqual(y[1:3].tolist(), [0.0, -1.0])
            self.assertTrue(np.isnan(y[3]))

    def test_ints_beyond_int32_infer_int64(self):
        r = kiln.range(2 ** 53, 2 ** 53 + 3)
        self.assertEqual((r.dtype, r.numpy().tolist()), ("int64", [2 ** 53, 2 ** 53 + 1, 2 ** 53 + 2]))
        f = kiln.fill([2], 2 ** 40)
        self.assertEqual((f.dtype, f.numpy().tolist()), ("int64", [2 ** 40, 2 ** 40]))
        self.assertEqual(kiln.range(5).dtype, "int32")
        self.assertEqual(kiln.range(-2 ** 31, -2 ** 31 + 2).dtype, "int32")
        self.assertEqual(kiln.fill([1], 7).dtype, "int32")
        self.assertEqual(kiln.range(0, 2 ** 31, 2 ** 30).dtype, "int64")
