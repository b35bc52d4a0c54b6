"""float64 and bfloat16 through the elementwise ops from Python: NumPy float64 arrays stay float64 (as
tf.constant), Python numbers take a tensor's dtype, `/` promotes int32 and int64 to float64 as TF, float64
results against NumPy, bfloat16 results as float32 rounded once, and float64 gradients against central
differences."""
import math
import unittest

import kiln

try:
    import numpy as np
except ImportError:  # the NumPy tests skip without it
    np = None

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


def bf16_round(x):
    """float32 -> nearest-even bfloat16, as float32 (NaN stays NaN)."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), r)


class ConversionTest(unittest.TestCase):
    def test_python_values(self):
        self.assertEqual(kiln.constant([1.5, 2.0]).dtype, "float32")  # Python floats stay float32, as TF
        self.assertEqual(kiln.constant([0.1], kiln.float64).tolist(), [0.1])
        x = kiln.constant([1.0, 2.0], "float64")
        y = x * 0.1 + 1
        self.assertEqual(y.dtype, "float64")
        self.assertEqual(y.tolist(), [1.0 * 0.1 + 1, 2.0 * 0.1 + 1])
        self.assertEqual((2.0 - kiln.cast(x, kiln.bfloat16)).dtype, "bfloat16")

    def test_truediv_promotes_integers(self):
        q = kiln.constant([1, 7]) / kiln.constant([2, 2])
        self.assertEqual(q.dtype, "float64")
        self.assertEqual(q.tolist(), [0.5, 3.5])
        self.assertEqual((kiln.constant(1) / kiln.constant(2)).tolist(), 0.5)
        self.assertEqual((kiln.constant([9], "int64") / 2).dtype, "float64")
        self.assertEqual((kiln.constant([3], "uint8") / kiln.constant([4], "uint8")).dtype, "float32")
        self.assertEqual(kiln.math.truediv(kiln.constant([1.0]), 4.0).dtype, "float32")
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            kiln.constant([True]) / kiln.constant([True])
        self.assertIn("truediv", str(cm.exception))

    def test_mixed_dtypes_are_errors(self):
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            kiln.constant([1.0]) + kiln.constant([1.0], "float64")
        self.assertIn("add", str(cm.exception))
        self.assertIn("float64", str(cm.exception))

    def test_creation(self):
        self.assertEqual(kiln.fill([2], 0.1, dtype="float64").tolist(), [0.1, 0.1])
        self.assertEqual(kiln.range(0, 1, 0.25, dtype="float64").tolist(), [0.0, 0.25, 0.5, 0.75])
        x = kiln.constant([1.0, 2.0], "float64")
        self.assertEqual(kiln.zeros_like(x).dtype, "float64")
        self.assertEqual(kiln.ones_like(x).dtype, "float64")
        self.assertEqual(kiln.where(kiln.constant([True, False]), x, kiln.zeros_like(x)).tolist(), [1.0, 0.0])


@needs_numpy
class NumPyTest(unittest.TestCase):
    UNARY = {
        "exp": (np.exp, -5, 5), "log": (np.log, 0.1, 5), "sqrt": (np.sqrt, 0, 5), "tanh": (np.tanh, -3, 3),
        "sigmoid": (lambda v: 1 / (1 + np.exp(-v)), -5, 5), "relu": (lambda v: np.maximum(v, 0), -2, 2),
        "softplus": (lambda v: np.log1p(np.exp(v)), -5, 5), "sin": (np.sin, -4, 4), "cos": (np.cos, -4, 4),
        "log1p": (np.log1p, -0.5, 3), "expm1": (np.expm1, -2, 2), "floor": (np.floor, -3, 3),
        "round": (np.round, -3, 3), "sign": (np.sign, -2, 2), "abs": (np.abs, -2, 2), "square": (np.square, -2, 2),
        "gelu": (np.vectorize(lambda v: 0.5 * v * math.erfc(-v / math.sqrt(2))), -4, 4),
    }

    def test_numpy_float64_stays_float64(self):
        a = np.array([0.1, 0.2])
        t = kiln.constant(a)
        self.assertEqual(t.dtype, "float64")
        np.testing.assert_array_equal(t.numpy(), a)
        self.assertEqual((kiln.constant([1.0]) + np.array([0.5])).dtype, "float32")  # takes the tensor's dtype

    def test_unary_float64_against_numpy(self):
        rng = np.random.default_rng(1)
        for name, (ref, lo, hi) in self.UNARY.items():
            with self.subTest(op=name):
                x = rng.uniform(lo, hi, 50)
                got = getattr(kiln, name)(x)
                self.assertEqual(got.dtype, "float64")
                np.testing.assert_allclose(got.numpy(), ref(x), rtol=1e-14, atol=1e-300)

    def test_unary_bfloat16_is_float32_rounded_once(self):
        rng = np.random.default_rng(2)
        for name, (_, lo, hi) in self.UNARY.items():
            with self.subTest(op=name):
                x = kiln.cast(kiln.constant(rng.uniform(lo, hi, 40).astype(np.float32)), kiln.bfloat16)
                got = getattr(kiln, name)(x)
                self.assertEqual(got.dtype, "bfloat16")
                want = getattr(kiln, name)(kiln.cast(x, kiln.float32)).numpy()
                np.testing.assert_array_equal(got.numpy(), bf16_round(want))

    def test_binary_float64_and_bfloat16(self):
        rng = np.random.default_rng(3)
        a, b = rng.uniform(0.5, 2, (3, 4)), rng.uniform(-2, 2, (4,))
        refs = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
                "minimum": np.minimum, "pow": np.power, "divide": np.divide}
        ops = {"add": kiln.add, "subtract": kiln.subtract, "multiply": kiln.multiply, "maximum": kiln.maximum,
               "minimum": kiln.minimum, "pow": kiln.pow, "divide": lambda x, y: x / y}
        for name, ref in refs.items():
            with self.subTest(op=name):
                got = ops[name](kiln.constant(a), kiln.constant(b))
                self.assertEqual(got.dtype, "float64")
                np.testing.assert_allclose(got.numpy(), ref(a, b), rtol=1e-15)
                ab, bb = kiln.cast(kiln.constant(a), kiln.bfloat16), kiln.cast(kiln.constant(b), kiln.bfloat16)
                gb = ops[name](ab, bb)
                self.assertEqual(gb.dtype, "bfloat16")
                want = ops[name](kiln.cast(ab, kiln.float32), kiln.cast(bb, kiln.float32)).numpy()
                np.testing.assert_array_equal(gb.numpy(), bf16_round(want))
        self.assertEqual((kiln.constant(a) > kiln.constant(b)).numpy().tolist(), (a > b).tolist())

    def test_float64_gradients_against_central_differences(self):
        # Same-shape operands: a broadcast operand's gradient goes through sum_to_shape, which takes float64
        # with the reductions.
        three = kiln.constant(np.full(6, 3.0))
        fns = {"tanh": kiln.tanh, "sigmoid": kiln.sigmoid, "gelu": kiln.gelu, "softplus": kiln.softplus,
               "elu": kiln.nn.elu, "swish": kiln.swish, "sin": kiln.sin,
               "mul_div": lambda v: v * v / (v + three), "pow": lambda v: kiln.pow(v + three, v),
               "maximum": lambda v: kiln.maximum(v, kiln.sin(v))}
        x = np.random.default_rng(4).uniform(-2, 2, 6) + 1 / 128
        w = np.random.default_rng(5).uniform(-1, 1, 6)
        eps = 1e-6
        for name, f in fns.items():
            with self.subTest(op=name):
                xt = kiln.constant(x)
                with kiln.GradientTape() as tape:
                    tape.watch(xt)
                    y = f(xt)
                got = tape.gradient(y, xt, output_gradients=w)
                self.assertEqual(got.dtype, "float64")
                want = np.zeros_like(x)
                for i in range(x.size):
                    up, down = x.copy(), x.copy()
                    up[i] += eps
                    down[i] -= eps
                    want[i] = ((f(kiln.constant(up)).numpy() - f(kiln.constant(down)).numpy()) * w).sum() / (2 * eps)
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-7, atol=1e-8)


if __name__ == "__main__":
    unittest.main()
