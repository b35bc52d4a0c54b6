"""Losses, extra reductions, scans, floor division, indexing, einsum: forward results against NumPy
references (float64), gradients against central differences, and one bad-input case per op."""
import unittest

import kiln

try:
    import numpy as np
except ImportError:  # the reference tests skip without NumPy
    np = None

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


def rand(shape, seed, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype("float32")


def numeric_grad(f, x, eps=1e-2):
    """Central differences of sum(f(x) * w) for a fixed weighting w, in float64 accumulation."""
    x = np.array(x, dtype=np.float32)
    y0 = np.asarray(f(kiln.constant(x)).numpy(), dtype=np.float64)
    w = np.random.default_rng(99).uniform(-1, 1, y0.shape)
    g = np.zeros(x.shape, np.float64)
    for i in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = ((f(kiln.constant(up)).numpy() * w).sum() - (f(kiln.constant(down)).numpy() * w).sum()) / (2 * eps)
    return g, w


class Case(unittest.TestCase):
    def assertClose(self, got, want, rtol=1e-5, atol=1e-6, dtype=None):
        self.assertIsInstance(got, kiln.Tensor)
        want = np.asarray(want)
        self.assertEqual(got.shape, want.shape)
        if dtype:
            self.assertEqual(got.dtype, dtype)
        np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=atol)

    def assertGrad(self, f, x, rtol=2e-2, atol=2e-3):
        want, w = numeric_grad(f, x)
        xt = kiln.constant(np.array(x, dtype=np.float32))
        with kiln.GradientTape() as tape:
            tape.watch(xt)
            y = f(xt)
        got = tape.gradient(y, xt, output_gradients=kiln.constant(w.astype(np.float32)))
        np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=atol)


def np_lse(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m, axis=axis)


@needs_numpy
class LossTest(Case):
    def test_sparse_softmax_cross_entropy(self):
        x = rand((4, 5), 1, -50, 50)
        x[0] = [100, -100, 0, 3, -3]
        y = np.array([0, 4, 2, 1], np.int64)
        want = np_lse(x) - x[np.arange(4), y]
        got = kiln.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)
        self.assertClose(got, want, rtol=1e-6)
        self.assertGreater(got.numpy()[0], 0)  # exp(-100), not rounded to 0
        self.assertGrad(lambda t: kiln.nn.sparse_softmax_cross_entropy_with_logits(y[:3].astype(np.int32), t),
                        rand((3, 5), 2))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"labels\[1\] = 5.*\[0, 5\)"):
            kiln.nn.sparse_softmax_cross_entropy_with_logits(np.array([0, 5, 0, 0]), x)

    def test_softmax_cross_entropy(self):
        x = rand((3, 4), 3, -20, 20)
        z = rand((3, 4), 4, 0, 1)
        z /= z.sum(-1, keepdims=True)
        want = (z * (np_lse(x)[:, None] - x)).sum(-1)
        self.assertClose(kiln.nn.softmax_cross_entropy_with_logits(z, x), want, rtol=1e-5)
        self.assertClose(kiln.nn.softmax_cross_entropy_with_logits(z.T, x.T, axis=0), want, rtol=1e-5)
        self.assertGrad(lambda t: kiln.nn.softmax_cross_entropy_with_logits(z[:2], t), rand((2, 4), 5))
        self.assertGrad(lambda t: kiln.nn.softmax_cross_entropy_with_logits(t, x[:2]), rand((2, 4), 6, 0, 1))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "softmax_cross_entropy_with_logits"):
            kiln.nn.softmax_cross_entropy_with_logits(z[:, :3], x)

    def test_sigmoid_cross_entropy(self):
        x = np.array([-100, 100, 0, 3.5, -20, 1e-3], np.float32)
        z = np.array([1, 0, 0.5, 1, 0, 1], np.float32)
        xd = x.astype(np.float64)
        want = np.maximum(xd, 0) - xd * z + np.log1p(np.exp(-np.abs(xd)))
        self.assertClose(kiln.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), want, rtol=1e-6)
        self.assertGrad(lambda t: kiln.nn.sigmoid_cross_entropy_with_logits(z[:4], t), rand((4,), 7))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "same shape"):
            kiln.nn.sigmoid_cross_entropy_with_logits(z[:2], x)


if __name__ == "__main__":
    unittest.main()
