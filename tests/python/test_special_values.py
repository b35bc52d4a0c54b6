"""Issue 5 section 1 through the Python binding: the same answer at every size (NaN, +-inf, +-0, denormals,
precision) on both sides of the 32768-element threshold, exact int64 fill/range, integer division by zero,
and the unary ops log1p, expm1, floor, round, sign, sin, cos, relu6 and selu against float64 references.
"""
import math
import unittest

import kiln

try:
    import numpy as np
except ImportError:
    np = None

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")

SIZES = (7, 40000)  # below and above the 32768-element threshold
NAN, INF = float("nan"), float("inf")


def full(n, v):
    return kiln.constant(np.full(n, v, np.float32))


@needs_numpy
class SameAnswerAtEverySizeTest(unittest.TestCase):
    def test_the_issues_examples(self):
        for n in SIZES:
            with self.subTest(n=n):
                self.assertTrue(np.isnan(kiln.exp(full(n, NAN)).numpy()).all())
                self.assertTrue(np.isnan(kiln.relu(full(n, NAN)).numpy()).all())
                self.assertTrue(np.isnan(kiln.clip_by_value(full(n, NAN), -0.5, 1.25).numpy()).all())
                self.assertTrue((kiln.log(full(n, 1.0)).numpy() == 0).all())
                sp = kiln.softplus(full(n, -20.0)).numpy()
                self.assertTrue((sp > 0).all())
                np.testing.assert_allclose(sp, math.log1p(math.exp(-20.0)), rtol=1e-6)
                np.testing.assert_allclose(kiln.log(full(n, 1e-45)).numpy(), math.log(2.0 ** -149), rtol=1e-6)
                self.assertTrue((kiln.relu(full(n, -INF)).numpy() == 0).all())
                self.assertTrue(np.isnan(kiln.rsqrt(full(n, -INF)).numpy()).all())
                self.assertTrue((kiln.rsqrt(full(n, -0.0)).numpy() == -INF).all())
                self.assertTrue((kiln.rsqrt(full(n, 0.0)).numpy() == INF).all())
                for op in (kiln.maximum, kiln.minimum):
                    self.assertTrue(np.isnan(op(full(n, NAN), full(n, 1.0)).numpy()).all())
                    self.assertTrue(np.isnan(op(full(n, 1.0), full(n, NAN)).numpy()).all())

    def test_log_precision_on_large_tensors(self):
        x = np.linspace(0.5, 2.0, 40000, dtype=np.float32)
        got = kiln.log(kiln.constant(x)).numpy().astype(np.float64)
        self.assertLess(np.max(np.abs(got - np.log(x.astype(np.float64)))), 1.2e-7)

    def test_reduce_max_and_min_propagate_nan(self):
        for n in (3, 40001):
            x = np.ones(n, np.float32)
            x[n // 2] = NAN
            self.assertTrue(math.isnan(kiln.reduce_max(kiln.constant(x)).numpy()))
            self.assertTrue(math.isnan(kiln.reduce_min(kiln.constant(x)).numpy()))

    def test_softmax_row_with_nan_is_nan_and_confident_log_softmax_is_accurate(self):
        for rows in (1, 12000):
            x = np.tile(np.array([[1.0, NAN, 2.0]], np.float32), (rows, 1))
            self.assertTrue(np.isnan(kiln.softmax(kiln.constant(x)).numpy()).all())
            self.assertTrue(np.isnan(kiln.log_softmax(kiln.constant(x)).numpy()).all())
        logits = np.random.default_rng(3).normal(0, 1, (4000, 10)).astype(np.float32)
        logits[:, 3] += 16.0  # a confident top class
        want = logits.astype(np.float64)
        want = want - want.max(1, keepdims=True)
        want = want - np.log(np.exp(want).sum(1, keepdims=True))
        got = kiln.log_softmax(kiln.constant(logits)).numpy()
        self.assertLess(np.max(np.abs(got[:, 3] - want[:, 3])), 1.5e-7)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)

    def test_exact_gelu_keeps_its_tail(self):
        for n in SIZES:
            for v in (-4.0, -5.0, -6.0, -10.0):
                want = 0.5 * v * math.erfc(-v / math.sqrt(2.0))
                got = float(kiln.gelu(full(n, v), approximate=False).numpy()[-1])
                self.assertAlmostEqual(got / want, 1.0, delta=1e-6, msg="gelu(%g) at size %d" % (v, n))

    def test_tanh_gelu_gradient_is_finite_at_the_largest_floats(self):
        for n in SIZES:
            x = kiln.constant(np.tile(np.array([3e38, -3e38], np.float32), n // 2 + 1))
            with kiln.GradientTape() as tape:
                tape.watch(x)
                y = kiln.reduce_sum(kiln.gelu(x, approximate=True))
            g = tape.gradient(y, x).numpy()
            self.assertEqual(g[0], 1.0)
            self.assertEqual(g[1], 0.0)

    def test_same_bits_with_one_and_two_threads(self):
        x = kiln.constant(np.random.default_rng(5).normal(0, 4, 40003).astype(np.float32))
        outs = []
        for t in (1, 2):
            kiln.set_num_threads(t)
            outs.append([kiln.exp(x).numpy(), kiln.gelu(x).numpy(), kiln.softmax(kiln.reshape(x, [1, 40003])).numpy(),
                         kiln.reduce_sum(x).numpy()])
        for a, b in zip(*outs):
            np.testing.assert_array_equal(a, b)


class MaxPoolSecondOrderTest(unittest.TestCase):
    def test_second_order_gradient(self):
        # g = d/dx [max(x) * sum(x)] = onehot(argmax) * sum(x) + max(x); sum(g) = sum(x) + 4 max(x).
        x = kiln.constant([1.0, 2.0, 3.0, 4.0], shape=[1, 2, 2, 1])
        with kiln.GradientTape() as outer:
            outer.watch(x)
            with kiln.GradientTape() as inner:
                inner.watch(x)
                y = kiln.max_pool2d(x, 2, 2) * kiln.reduce_sum(x)
            g = inner.gradient(y, x)
        self.assertEqual(g.numpy().ravel().tolist() if np is not None else None,
                         [4.0, 4.0, 4.0, 14.0] if np is not None else None)
        self.assertEqual(outer.gradient(g, x).tolist(), [[[[1.0], [1.0]], [[1.0], [5.0]]]])


class IntegerTest(unittest.TestCase):
    def test_int64_fill_and_range_are_exact(self):
        self.assertEqual(kiln.range(2 ** 60, 2 ** 60 + 3, 1, "int64").tolist(), [2 ** 60, 2 ** 60 + 1, 2 ** 60 + 2])
        self.assertEqual(kiln.fill([1], 2 ** 60 + 1, "int64").tolist(), [2 ** 60 + 1])
        self.assertEqual(kiln.range(5, -1, -2).tolist(), [5, 3, 1])

    def test_unrepresentable_values_are_invalid_argument(self):
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.fill([1], 2 ** 40, "int32")
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.fill([1], float("nan"), "int32")
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.range(0.0, float("inf"), 1.0, "int64")
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.fill([1], 2 ** 70, "int64")  # beyond int64: the double path refuses it too

    def test_integer_division_by_zero_raises(self):
        for n in SIZES:
            for dtype in ("int32", "int64"):
                a = kiln.fill([n], 7, dtype)
                b = kiln.fill([n], 0, dtype)
                with self.assertRaisesRegex(kiln.InvalidArgumentError, "div"):
                    kiln.div(a, b)


@needs_numpy
class MoreUnaryOpsTest(unittest.TestCase):
    SCALE, ALPHA = 1.0507009873554805, 1.6732632423543772
    REFS = {
        "log1p": (np.log1p, lambda x: 1 / (1 + x)),
        "expm1": (np.expm1, np.exp),
        "floor": (np.floor, None),  # no gradient, as TF's: tape.gradient gives None
        "round": (np.round, None),  # NumPy rounds half to even too
        "sign": (np.sign, lambda x: 0 * x),
        "sin": (np.sin, np.cos),
        "cos": (np.cos, lambda x: -np.sin(x)),
        "relu6": (lambda x: np.clip(x, 0, 6), lambda x: ((x > 0) & (x < 6)).astype(np.float64)),
        "selu": (lambda x: np.where(x > 0, 1.0507009873554805 * x, 1.0507009873554805 * 1.6732632423543772 * np.expm1(x)),
                 # TF's SeluGrad selects on selu(x) < 0: scale at 0
                 lambda x: np.where(x >= 0, 1.0507009873554805, 1.0507009873554805 * 1.6732632423543772 * np.exp(x))),
    }

    def test_forward_against_float64_and_gradient(self):
        x = np.array([-0.9, -0.5, -0.25, 0.0, 0.5, 1.5, 2.5, 3.3, 6.5, 7.0], np.float32)
        for name, (ref, dref) in self.REFS.items():
            with self.subTest(op=name):
                op = getattr(kiln, name)
                t = kiln.constant(x)
                with kiln.GradientTape() as tape:
                    tape.watch(t)
                    y = op(t)
                    s = kiln.reduce_sum(y)
                np.testing.assert_allclose(y.numpy(), ref(x.astype(np.float64)), rtol=2e-7, atol=1e-7)
                if dref is None:
                    self.assertIsNone(tape.gradient(s, t))
                else:
                    np.testing.assert_allclose(tape.gradient(s, t).numpy(), dref(x.astype(np.float64)), rtol=1e-6,
                                               atol=1e-7)
                if name in ("round", "sign", "relu6"):  # defined for integers too, as TF's
                    self.assertEqual(op(kiln.constant([-7, 2, 9])).tolist(), [int(v) for v in ref(np.array([-7, 2, 9]))])
                else:
                    with self.assertRaises(kiln.InvalidArgumentError):
                        op(kiln.constant([1, 2]))

    def test_gradient_against_finite_differences(self):
        x = np.array([-0.7, -0.3, 0.4, 1.1, 2.3], np.float64)
        eps = 1e-3
        for name in ("log1p", "expm1", "sin", "cos", "relu6", "selu"):
            with self.subTest(op=name):
                op = getattr(kiln, name)
                t = kiln.constant(x.astype(np.float32))
                with kiln.GradientTape() as tape:
                    tape.watch(t)
                    s = kiln.reduce_sum(op(t))
                g = tape.gradient(s, t).numpy()
                up = op(kiln.constant((x + eps).astype(np.float32))).numpy().astype(np.float64)
                down = op(kiln.constant((x - eps).astype(np.float32))).numpy().astype(np.float64)
                np.testing.assert_allclose(g, (up - down) / (2 * eps), rtol=2e-2, atol=2e-3)

    def test_special_values_at_every_size(self):
        special = np.array([NAN, INF, -INF, 0.0, -0.0, 1e-40, -1e-45, 3e38, -3e38, 0.5, -0.5, 2.5], np.float32)
        for name in self.REFS:
            op = getattr(kiln, name)
            base = op(kiln.constant(special)).numpy()
            for n in SIZES:
                got = op(kiln.constant(np.resize(special, n))).numpy()
                np.testing.assert_array_equal(got, np.resize(base, n), err_msg=name)
        self.assertEqual(np.signbit(kiln.round(kiln.constant([-0.5, -0.0])).numpy()).tolist(), [True, True])
        self.assertTrue(np.isnan(kiln.sign(kiln.constant([NAN])).numpy()[0]))
        self.assertEqual(kiln.round(kiln.constant([0.5, 1.5, 2.5, -2.5])).tolist(), [0.0, 2.0, 2.0, -2.0])
        self.assertEqual(float(kiln.log1p(kiln.constant([3e38])).numpy()[0]), np.float32(math.log1p(3e38)))

    def test_tf_kernel_edge_cases(self):
        # argmax / argmin never pick a NaN (TF's kernel: from (0, lowest), strictly greater replaces).
        self.assertEqual(int(kiln.argmax(kiln.constant([NAN, 1.0, 2.0]))), 2)
        self.assertEqual(int(kiln.math.argmin(kiln.constant([NAN, 1.0, 2.0]))), 1)
        m = kiln.constant([[NAN, 1, 2], [0, NAN, 2], [5, 1, NAN]])
        self.assertEqual(kiln.argmax(m, axis=0).numpy().tolist(), [2, 0, 0])
        # sqrt's and rsqrt's gradients are 0 where the incoming gradient is 0 (TF's SqrtGrad).
        x = kiln.constant([0.0, 4.0])
        for op, want in ((kiln.sqrt, [0.0, 0.25]), (kiln.math.rsqrt, [0.0, -0.0625])):
            with kiln.GradientTape() as tape:
                tape.watch(x)
                y = kiln.where(x > 0, op(x), kiln.zeros_like(x))
            self.assertEqual(tape.gradient(y, x).numpy().tolist(), want)
        # clip_by_value is maximum(minimum(x, max), min): min when min > max, NaN for a NaN bound.
        c = kiln.constant([0.0, 1.5, 3.0])
        self.assertEqual(kiln.clip_by_value(c, 2.0, 1.0).numpy().tolist(), [2.0, 2.0, 2.0])
        self.assertTrue(np.isnan(kiln.clip_by_value(c, NAN, 1.0).numpy()).all())
        # sin and cos do not depend on the neighbours' magnitude.
        small = np.linspace(-100, 100, 64).astype(np.float32)
        mixed = small.copy()
        mixed[::3] = 1e30
        for op in (kiln.sin, kiln.cos):
            a, b = op(kiln.constant(small)).numpy(), op(kiln.constant(mixed)).numpy()
            keep = np.arange(64) % 3 != 0
            np.testing.assert_array_equal(a[keep], b[keep])

    def test_namespaces(self):
        self.assertIs(kiln.math.log1p, kiln.log1p)
        self.assertIs(kiln.math.round, kiln.round)
        self.assertIs(kiln.nn.relu6, kiln.relu6)
        self.assertIs(kiln.nn.selu, kiln.selu)


if __name__ == "__main__":
    unittest.main()
