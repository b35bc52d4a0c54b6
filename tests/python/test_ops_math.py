"""Losses, extra reductions, scans, floor division, indexing, einsum: forward results against NumPy
references (float64), gradients against central differences, and one bad-input case per op."""
import itertools
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

    def test_softmax_along_any_axis_has_the_same_bits(self):
        """softmax/log_softmax along axis 0 give the bits of the same values laid out along the last axis."""
        x = rand((17, 70), 12, -30, 30)
        x[1, 0] = -np.inf
        for fn in (kiln.nn.softmax, kiln.nn.log_softmax):
            np.testing.assert_array_equal(fn(x, axis=0).numpy(), fn(np.ascontiguousarray(x.T), axis=-1).numpy().T)

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
        # TF's sum(labels * (lse - x)) over every class: a zero label times an infinite or NaN term
        # is NaN (rows: -inf logit under a zero label; NaN logit, all labels zero; finite).
        special = np.array([[-np.inf, 0, 1], [np.nan, 0, 1], [-np.inf, 0, 1]], np.float32)
        labels = np.array([[0, 1, 0], [0, 0, 0], [1, 0, 0]], np.float32)
        got = kiln.nn.softmax_cross_entropy_with_logits(labels, special).numpy()
        self.assertTrue(np.isnan(got[0]) and np.isnan(got[1]) and got[2] == np.inf, got)

    def test_sigmoid_cross_entropy(self):
        x = np.array([-100, 100, 0, 3.5, -20, 1e-3], np.float32)
        z = np.array([1, 0, 0.5, 1, 0, 1], np.float32)
        xd = x.astype(np.float64)
        want = np.maximum(xd, 0) - xd * z + np.log1p(np.exp(-np.abs(xd)))
        self.assertClose(kiln.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), want, rtol=1e-6)
        self.assertGrad(lambda t: kiln.nn.sigmoid_cross_entropy_with_logits(z[:4], t), rand((4,), 7))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "same shape"):
            kiln.nn.sigmoid_cross_entropy_with_logits(z[:2], x)

    def test_ctc_loss(self):
        """tf.nn.ctc_loss with dense labels against enumerating every path of the used frames."""
        def enumerated(x, label, blank):
            p = np.exp(x - np_lse(x)[:, None])
            total = 0.0
            for path in itertools.product(range(x.shape[1]), repeat=x.shape[0]):
                merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
                if [c for c in merged if c != blank] == list(label):
                    total += np.prod(p[np.arange(x.shape[0]), list(path)])
            with np.errstate(divide="ignore"):
                return -np.log(total)

        x = rand((3, 5, 3), 8, -3, 3).astype(np.float64)  # [batch, frames, classes]
        labels = np.array([[2, 2, 9], [1, 0, 0], [1, 2, 1]], np.int64)
        label_length, logit_length = [2, 0, 3], [5, 4, 2]
        for blank, labels_b in ((0, labels), (-1, labels - 1)):  # blank last: labels shift down
            b0 = blank % 3
            want = [enumerated(x[i, :logit_length[i]], labels_b[i, :label_length[i]], b0) for i in range(3)]
            got = kiln.nn.ctc_loss(labels_b, x, label_length, logit_length, logits_time_major=False,
                                   blank_index=blank if blank else None)
            self.assertTrue(np.isinf(want[2]))  # three labels cannot fit two frames
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
            self.assertEqual(got.dtype, kiln.float64)
            tm = kiln.nn.ctc_loss(labels_b, np.ascontiguousarray(x.transpose(1, 0, 2)), label_length,
                                  logit_length, blank_index=blank)
            np.testing.assert_array_equal(tm.numpy(), got.numpy())
        possible = np.array([[2, 2], [1, 0]], np.int32)
        self.assertGrad(lambda t: kiln.nn.ctc_loss(possible, t, [2, 1], [4, 3], logits_time_major=False),
                        rand((2, 4, 3), 9))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"labels\[1, 0\] = 0 is the blank index"):
            kiln.nn.ctc_loss(np.array([[1], [0]]), x[:2], [1, 1], [5, 5], logits_time_major=False)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "ctc_loss: label_length is None"):
            kiln.nn.ctc_loss(labels, x, None, logit_length)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"logit_length\[0\] = 6 is out of range"):
            kiln.nn.ctc_loss(labels, x, label_length, [6, 1, 1], logits_time_major=False)

    def test_keras_ops_ctc(self):
        """keras.ops.ctc_loss (batch-major, float targets truncated) and keras.ops.ctc_decode."""
        ops = kiln.keras.ops
        x = rand((2, 4, 3), 10).astype(np.float64)
        np.testing.assert_array_equal(
            ops.ctc_loss(np.array([[1.0, 2.0], [2.0, 0.0]]), x, [2, 1], [4, 3]).numpy(),
            kiln.nn.ctc_loss(np.array([[1, 2], [2, 0]]), x, [2, 1], [4, 3], logits_time_major=False).numpy())
        # Greedy: each frame's largest logit (the first of ties); repeats merged, blanks dropped.
        logits = np.array([[[0, 2, 1], [0, 3, 1], [4, 1, 2], [0, 5, 1], [0, 0, 6]],
                           [[7, 7, 0], [7, 7, 0], [9, 9, 9], [9, 9, 9], [9, 9, 9]]], np.float32)
        paths, scores = ops.ctc_decode(logits, [5, 2])
        np.testing.assert_array_equal(paths.numpy(), [[[1, 1, 2, -1, -1], [-1, -1, -1, -1, -1]]])
        np.testing.assert_array_equal(scores.numpy(), [[-20], [-14]])
        self.assertEqual(paths.dtype, kiln.int32)
        paths, _ = ops.ctc_decode(logits, [5, 2], merge_repeated=False, mask_index=None)  # blank: class 2
        np.testing.assert_array_equal(paths.numpy(), [[[1, 1, 0, 1, -1], [0, 0, -1, -1, -1]]])
        # Beam search without pruning: the most probable labellings with their log-probabilities.
        def log_p(label):
            return -kiln.nn.ctc_loss(np.array([list(label) or [1]]), x[:1], [len(label)], [4],
                                     logits_time_major=False).numpy()[0]
        ranked = sorted((log_p(l), l) for n in range(5) for l in itertools.product((1, 2), repeat=n))[::-1]
        ranked = [r for r in ranked if np.isfinite(r[0])]
        paths, scores = ops.ctc_decode(x[:1], [4], strategy="beam_search", beam_width=64, top_paths=3)
        self.assertEqual(paths.shape, (3, 1, 4))
        for p in range(3):
            self.assertEqual(tuple(v for v in paths.numpy()[p, 0] if v >= 0), ranked[p][1])
            self.assertAlmostEqual(scores.numpy()[0, p], ranked[p][0], places=12)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "1 <= top_paths <= beam_width"):
            ops.ctc_decode(x, [4, 4], strategy="beam_search", beam_width=2, top_paths=3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "strategy 'beam' is not one of"):
            ops.ctc_decode(x, [4, 4], strategy="beam")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "ctc_decode: inputs and sequence_lengths"):
            ops.ctc_decode(x, None)


if __name__ == "__main__":
    unittest.main()


@needs_numpy
class ReduceScanTest(Case):
    def test_reduce_prod_any_all(self):
        x = rand((3, 4), 10, 0.5, 1.5)
        x[1, 2] = 0
        self.assertClose(kiln.math.reduce_prod(x, axis=1), np.prod(x.astype(np.float64), axis=1), rtol=1e-6)
        self.assertClose(kiln.reduce_prod(x, axis=[0, 1], keepdims=True), np.prod(x, keepdims=True), rtol=1e-5)
        self.assertGrad(lambda t: kiln.reduce_prod(t, axis=0), rand((3, 2), 11))
        self.assertEqual(kiln.reduce_prod(np.array([2, 3], np.int32)).numpy(), 6)
        b = np.array([[True, False], [True, True]])
        self.assertClose(kiln.reduce_any(b, axis=1), b.any(1), dtype="bool")
        self.assertClose(kiln.math.reduce_all(b, axis=1), b.all(1), dtype="bool")
        self.assertClose(kiln.reduce_all(b, axis=[]), b, dtype="bool")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "reduce_any: argument 'x' is float32"):
            kiln.reduce_any(x)

    def test_reduce_logsumexp_and_argmin(self):
        x = rand((3, 5), 12, -50, 50)
        x[2] = -np.inf
        self.assertClose(kiln.reduce_logsumexp(x, axis=1), np_lse(x, 1), rtol=1e-6)
        self.assertEqual(kiln.reduce_logsumexp(x, axis=1).numpy()[2], -np.inf)
        self.assertGrad(lambda t: kiln.reduce_logsumexp(t, axis=-1), rand((2, 4), 13))
        y = rand((4, 6), 14)
        self.assertClose(kiln.argmin(y, axis=0), np.argmin(y, axis=0), dtype="int64")
        self.assertClose(kiln.math.argmin(y, -1), np.argmin(y, axis=-1), dtype="int64")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "argmin"):
            kiln.argmin(y, axis=2)

    def test_moments_l2_normalize_bias_add(self):
        x = rand((4, 3, 2), 15)
        mean, var = kiln.nn.moments(x, axes=[0, 1])
        self.assertClose(mean, x.astype(np.float64).mean(axis=(0, 1)), rtol=1e-5)
        self.assertClose(var, x.astype(np.float64).var(axis=(0, 1)), rtol=1e-5)
        self.assertEqual(kiln.nn.moments(x, [1], keepdims=True)[1].shape, (4, 1, 2))
        self.assertGrad(lambda t: kiln.nn.moments(t, [0])[1], rand((4, 2), 16))
        xd = x.astype(np.float64)
        self.assertClose(kiln.math.l2_normalize(x, axis=-1), xd / np.sqrt((xd ** 2).sum(-1, keepdims=True)))
        self.assertClose(kiln.nn.l2_normalize(x), xd / np.sqrt((xd ** 2).sum()))
        self.assertGrad(lambda t: kiln.math.l2_normalize(t, axis=1), rand((2, 3), 17))
        b = rand((2,), 18)
        self.assertClose(kiln.nn.bias_add(x, b), xd + b)
        self.assertGrad(lambda t: kiln.nn.bias_add(x[:2, :2], t), b)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "bias_add"):
            kiln.nn.bias_add(x, rand((3,), 19))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "data_format"):
            kiln.nn.bias_add(x, b, data_format="NCHW")

    def test_cumsum(self):
        x = rand((3, 4), 20)
        xd = x.astype(np.float64)
        self.assertClose(kiln.math.cumsum(x, axis=1), np.cumsum(xd, axis=1))
        self.assertClose(kiln.cumsum(x, axis=0, reverse=True), np.cumsum(xd[::-1], axis=0)[::-1])
        ex = np.concatenate([np.zeros((3, 1)), np.cumsum(xd, axis=1)[:, :-1]], axis=1)
        self.assertClose(kiln.cumsum(x, axis=1, exclusive=True), ex)
        self.assertGrad(lambda t: kiln.cumsum(t, axis=1, exclusive=True), rand((2, 3), 21))
        self.assertClose(kiln.cumsum(np.array([1, 2, 3], np.int64)), np.array([1, 3, 6]), dtype="int64")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "cumsum"):
            kiln.cumsum(x, axis=3)

    def test_cumprod_and_the_prod_gradient(self):
        x = rand((3, 4), 22, 0.5, 1.5)
        xd = x.astype(np.float64)
        self.assertClose(kiln.math.cumprod(x, axis=1), np.cumprod(xd, axis=1))
        self.assertClose(kiln.cumprod(x, axis=0, reverse=True), np.cumprod(xd[::-1], axis=0)[::-1])
        ex = np.concatenate([np.ones((3, 1)), np.cumprod(xd, axis=1)[:, :-1]], axis=1)
        self.assertClose(kiln.cumprod(x, axis=1, exclusive=True), ex)
        self.assertGrad(lambda t: kiln.cumprod(t, axis=1, exclusive=True), rand((2, 3), 23))
        self.assertClose(kiln.cumprod(np.array([2, 3, 4], np.int64)), np.array([2, 6, 24]), dtype="int64")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "cumprod"):
            kiln.cumprod(x, axis=3)
        # reduce_prod's gradient is the product of the others (TF's), also beside NaN, inf and overflow
        for values, want in (([np.nan, 2, 3], [6, np.nan, np.nan]), ([1e30, 1e30, 0], [0, 0, np.inf]),
                             ([np.inf, 2, 0], [0, np.nan, np.inf])):
            v = kiln.constant(np.array(values, np.float32))
            with kiln.GradientTape() as tape:
                tape.watch(v)
                y = kiln.reduce_prod(v)
            np.testing.assert_array_equal(tape.gradient(y, v).numpy(), np.array(want, np.float32))

    def test_long_sums_keep_precision(self):
        x = np.full((3, 1 << 20), 0.1, np.float32)
        want = np.float64(np.float32(0.1)) * (1 << 20)
        np.testing.assert_allclose(kiln.reduce_sum(x, axis=1).numpy(), [want] * 3, rtol=1e-5)
        np.testing.assert_allclose(kiln.reduce_mean(x).numpy(), np.float32(0.1), rtol=1e-5)
        # Along the leading axis too (a column sum adds its rows in a tree of blocks as well).
        np.testing.assert_allclose(kiln.reduce_sum(x.T, axis=0).numpy(), [want] * 3, rtol=1e-5)
        np.testing.assert_allclose(kiln.reduce_mean(x.reshape(1 << 19, 2, 3), axis=0).numpy(),
                                   np.full((2, 3), np.float32(0.1)), rtol=1e-5)

    def test_top_k(self):
        x = np.array([[1, 3, 3, -1, 2], [5, 5, 5, 0, 7]], np.float32)
        r = kiln.math.top_k(x, k=3)
        self.assertClose(r.values, [[3, 3, 2], [7, 5, 5]])
        self.assertClose(r.indices, np.array([[1, 2, 4], [4, 0, 1]], np.int32), dtype="int32")
        values, indices = kiln.nn.top_k(x, 1)
        self.assertClose(indices, np.array([[1], [4]], np.int32))
        y = rand((3, 7), 22)
        ref = -np.sort(-y, axis=1)[:, :4]
        self.assertClose(kiln.top_k(y, 4).values, ref)
        self.assertGrad(lambda t: kiln.top_k(t, 2).values, rand((2, 5), 23))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "top_k: k is 9"):
            kiln.top_k(y, 9)


class OperatorTest(Case):
    """Python operators as TF2: // and % floor, / is truediv, == and != elementwise, indexing."""

    def test_floordiv_floormod_follow_python(self):
        for dtype in ("int32", "int64", "float32"):
            xs = [-7, -6, -1, 0, 1, 5, 7] if dtype != "float32" else [-7.5, -6.0, -0.5, 0.0, 1.25, 5.0, 7.5]
            for y in (-3, -2, 2, 3):
                x = kiln.constant(xs, dtype)
                with self.subTest(dtype=dtype, y=y):
                    self.assertEqual((x // y).tolist(), [v // y for v in xs])
                    self.assertEqual((x % y).tolist(), [v % y for v in xs])
                    self.assertEqual((x // y).dtype, dtype)
        self.assertEqual((17 // kiln.constant([5, -5])).tolist(), [3, -4])
        self.assertEqual((17 % kiln.constant([5, -5])).tolist(), [2, -3])
        self.assertEqual(kiln.math.floormod(kiln.constant([-1.0]), 3.0).tolist(), [2.0])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "integer division by zero"):
            kiln.constant([1, 2]) // 0
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "integer division by zero"):
            kiln.constant([1, 2]) % kiln.constant([1, 0])

    def test_floormod_gradient(self):
        x = kiln.constant([0.3, -0.7, 2.2])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.reduce_sum(x % 0.9)
        self.assertEqual(tape.gradient(y, x).tolist(), [1.0, 1.0, 1.0])

    def test_truediv_gives_float_for_integers(self):
        q = kiln.constant([1, 2, 7]) / kiln.constant([2, 4, 2])
        self.assertEqual(q.dtype, "float64")  # as TF: int32 / int32 is float64
        self.assertEqual(q.tolist(), [0.5, 0.5, 3.5])
        self.assertEqual((kiln.constant([3], "int64") / 2).tolist(), [1.5])
        self.assertEqual(kiln.math.truediv(7, kiln.constant([2])).tolist(), [3.5])
        self.assertEqual((kiln.constant([1.0]) / 4).dtype, "float32")
        v = kiln.Variable(kiln.constant([4.0, 6.0]))
        self.assertEqual((v / 2).tolist(), [2.0, 3.0])
        self.assertEqual((v // 4).tolist(), [1.0, 1.0])
        self.assertEqual(v[1].tolist(), 6.0)

    def test_equality_is_elementwise_and_tensors_unhashable(self):
        a = kiln.constant([1, 2, 3])
        eq = a == kiln.constant([1, 0, 3])
        self.assertEqual((eq.dtype, eq.tolist()), ("bool", [True, False, True]))
        self.assertEqual((a != 2).tolist(), [True, False, True])
        self.assertEqual((2 == a).tolist(), [False, True, False])
        self.assertIs(a == None, False)  # noqa: E711 (TF: comparing with None is False)
        self.assertIs(a != None, True)  # noqa: E711
        self.assertEqual((a == kiln.constant([1, 2])).tolist(), False)  # incompatible shapes: a False scalar
        self.assertEqual((a != kiln.constant([1, 2])).tolist(), True)
        self.assertFalse(a == "text")  # not a tensor value: identity, as for any object
        with self.assertRaisesRegex(TypeError, "unhashable.*ref()"):
            hash(a)
        with self.assertRaises(TypeError):
            {a: 1}
        d = {a.ref(): 1}
        self.assertEqual(d[a.ref()], 1)
        self.assertIs(a.ref().deref(), a)
        self.assertNotEqual(a.ref(), kiln.constant([1, 2, 3]).ref())
        with self.assertRaises(kiln.InvalidArgumentError):
            a == kiln.constant([1.0, 2.0, 3.0])  # two tensors must agree in dtype, as TF

    @needs_numpy
    def test_getitem_matches_numpy(self):
        x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
        t = kiln.constant(x)
        keys = [0, -1, (1, 2), (1, -2, 3), slice(1, 4), slice(None, None, 2), slice(None, None, -1),
                slice(4, 0, -2), slice(-3, None), slice(10, 20), (Ellipsis, 1), (Ellipsis, slice(None, None, -2)),
                (None, 0), (0, None, slice(1, 3), None), (slice(None), None, Ellipsis, -1), (1, Ellipsis),
                (slice(None), slice(None, None, 3), slice(1, None, 2)), np.int64(1), Ellipsis, (),
                (slice(0, 0),), (slice(None), 4, slice(3, None, -1))]
        for key in keys:
            with self.subTest(key=key):
                self.assertClose(t[key], x[key])
        self.assertClose(t[kiln.constant(1)], x[1])
        self.assertEqual([r.shape for r in t], [(5, 4), (5, 4)])  # iteration goes row by row
        self.assertEqual(kiln.constant(3.0)[()].tolist(), 3.0)
        with self.assertRaises(IndexError):
            t[2]
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "index -6 is out of range for dim 1 of size 5"):
            t[0, -6]
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "4 indices"):
            t[0, 0, 0, 0]
        with self.assertRaisesRegex(TypeError, "valid indices"):
            t[1.5]
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "Ellipsis"):
            t[..., 0, ...]

    @needs_numpy
    def test_getitem_gradient(self):
        x = rand((4, 5), 30)
        self.assertGrad(lambda t: t[1:, ::-2], x)
        self.assertGrad(lambda t: t[None, -1, 1:4] * 2.0, x)
        self.assertGrad(lambda t: t[..., 3], x)
        xt = kiln.constant(x)
        with kiln.GradientTape() as tape:
            tape.watch(xt)
            y = kiln.reduce_sum(xt[::3, 2])
        want = np.zeros_like(x)
        want[::3, 2] = 1
        np.testing.assert_array_equal(tape.gradient(y, xt).numpy(), want)


@needs_numpy
class IntegerOpsTest(unittest.TestCase):
    """The integer forms TF registers: sign, relu, relu6, round, clip_by_value, pow, reduce_mean, matmul."""

    def test_unary(self):
        for dtype in ("int32", "int64"):
            x = kiln.constant([-9, -1, 0, 3, 8], dtype)
            with self.subTest(dtype=dtype):
                self.assertEqual(kiln.sign(x).tolist(), [-1, -1, 0, 1, 1])
                self.assertEqual(kiln.nn.relu(x).tolist(), [0, 0, 0, 3, 8])
                self.assertEqual(kiln.nn.relu6(x).tolist(), [0, 0, 0, 3, 6])
                self.assertEqual(kiln.round(x).tolist(), [-9, -1, 0, 3, 8])
                self.assertEqual(kiln.clip_by_value(x, -2, 4).tolist(), [-2, -1, 0, 3, 4])
                for y in (kiln.sign(x), kiln.nn.relu(x), kiln.clip_by_value(x, -2, 4)):
                    self.assertEqual(y.dtype, dtype)
        # Bounds in x's dtype exactly, as TF: the extremes, and values a float32 would round.
        big = kiln.constant([20000000, -5, 2 ** 40], "int64")
        self.assertEqual(kiln.clip_by_value(big, -2 ** 63, 2 ** 63 - 1).tolist(), [20000000, -5, 2 ** 40])
        self.assertEqual(kiln.clip_by_value(big, 0, 2 ** 40 - 1).tolist(), [20000000, 0, 2 ** 40 - 1])
        small = kiln.constant([20000000, 1])
        self.assertEqual(kiln.clip_by_value(small, -2 ** 31, 2 ** 31 - 1).tolist(), [20000000, 1])
        self.assertEqual(kiln.clip_by_value(small, kiln.constant(3), 16777217.0).tolist(), [16777217, 3])
        for bad in (2 ** 31, 0.5, float("nan"), float("inf")):
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "clip_value_max.*whole number.*int32"):
                kiln.clip_by_value(small, 0, bad)

    def test_pow_wraps_and_refuses_negative_exponents(self):
        b = kiln.constant([0, -2, 3, 7])
        self.assertEqual(kiln.pow(b, kiln.constant([0, 3, 4, 1])).tolist(), [1, -8, 81, 7])
        self.assertEqual((b ** 2).tolist(), [0, 4, 9, 49])
        self.assertEqual((b ** 2).dtype, "int32")
        # 3^21 = 10460353203 wraps to 10460353203 - 2^33.
        self.assertEqual(kiln.pow(kiln.constant([3]), 21).tolist(), [10460353203 - 2 ** 33])
        self.assertEqual(kiln.pow(kiln.constant([3], "int64"), 21).tolist(), [10460353203])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "negative integer powers"):
            kiln.pow(b, kiln.constant([1, 1, -1, 1]))
        # An empty result runs no kernel, so nothing is refused (TF's BinaryOp returns first).
        self.assertEqual(kiln.pow(kiln.zeros([0], "int32"), kiln.constant([-1])).shape, (0,))

    def test_reduce_mean_truncates_toward_zero(self):
        x = kiln.constant([[-3, 0, 5], [2, -7, 1]])
        self.assertEqual(kiln.reduce_mean(x).tolist(), 0)
        self.assertEqual(kiln.reduce_mean(x, axis=1).tolist(), [0, -1])
        self.assertEqual(kiln.reduce_mean(x, axis=0, keepdims=True).tolist(), [[0, -3, 3]])
        self.assertEqual(kiln.reduce_mean(x).dtype, "int32")
        self.assertEqual(kiln.reduce_mean(kiln.zeros([0], "int64")).tolist(), 0)

    def test_matmul(self):
        a = kiln.constant([[1, 2, 3], [4, 5, 6]])
        b = kiln.constant([[1, -1], [0, 2], [7, 1]])
        want = [[22, 6], [46, 12]]
        self.assertEqual((a @ b).tolist(), want)
        self.assertEqual(kiln.matmul(a, kiln.transpose(b), transpose_b=True).tolist(), want)
        self.assertEqual(kiln.matmul(kiln.transpose(a), b, transpose_a=True).tolist(), want)
        big = kiln.constant([[2 ** 62, 2 ** 62]], "int64")
        self.assertEqual(kiln.matmul(big, kiln.constant([[2], [2]], "int64")).tolist(), [[0]])  # 2^64 wraps
        self.assertEqual((a @ b).dtype, "int32")
        self.assertEqual(kiln.einsum("ij,jk->ik", a, b).tolist(), want)
        self.assertEqual(kiln.einsum("ij->j", a).tolist(), [5, 7, 9])
        if np is not None:
            rng = np.random.default_rng(5)
            x, y = rng.integers(-50, 50, (3, 17, 40)), rng.integers(-50, 50, (40, 23))
            np.testing.assert_array_equal(kiln.matmul(x, y).numpy(), x @ y)


class EinsumTest(Case):
    CASES = [("bqhd,bkhd->bhqk", [(2, 3, 2, 4), (2, 5, 2, 4)]), ("bhqk,bkhd->bqhd", [(2, 2, 3, 5), (2, 5, 2, 4)]),
             ("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
             ("...ij,...jk->...ik", [(2, 2, 3, 4), (4, 5)]), ("...ij,...jk->...ik", [(1, 3, 4), (3, 4, 2)]),
             ("ij->ji", [(3, 4)]), ("ij->i", [(3, 4)]), ("ij,jk", [(3, 4), (4, 2)]), ("i,j->ij", [(3,), (2,)]),
             ("...i->...", [(2, 3, 4)]), ("bij,jk->bki", [(2, 3, 4), (4, 5)])]

    def test_matches_numpy(self):
        for k, (eq, shapes) in enumerate(self.CASES):
            ins = [rand(s, 40 + k + i) for i, s in enumerate(shapes)]
            with self.subTest(eq=eq):
                want = np.einsum(eq, *[x.astype(np.float64) for x in ins])
                self.assertClose(kiln.einsum(eq, *ins), want, rtol=1e-5, atol=1e-5)
        self.assertClose(kiln.linalg.einsum("ij->ji", [np.eye(2, dtype=np.float32)]), np.eye(2))

    def test_gradients(self):
        q, kk = rand((1, 2, 2, 3), 50), rand((1, 3, 2, 3), 51)
        self.assertGrad(lambda t: kiln.einsum("bqhd,bkhd->bhqk", t, kk), q)
        self.assertGrad(lambda t: kiln.einsum("bqhd,bkhd->bhqk", q, t), kk)
        self.assertGrad(lambda t: kiln.einsum("...ij,...jk->...ik", t, rand((3, 2), 52)), rand((2, 2, 3), 53))

    def test_errors(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "gives label j sizes 3 and 5"):
            kiln.einsum("ij,jk->ik", rand((2, 3), 1), rand((5, 2), 2))
        with self.assertRaisesRegex(kiln.UnimplementedError, "diagonal"):
            kiln.einsum("ii->i", rand((2, 2), 3))
