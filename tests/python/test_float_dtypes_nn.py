"""float64 and bfloat16 for matmul, reductions, scans, softmax, the norms, floor division, einsum and the
fused losses, through the Python binding: float64 against NumPy (longdouble where it matters) on both
sides of the kernels' size thresholds, bfloat16 softmax and norms equal to the rounded float32 result,
float64 gradients against central differences, and dtype errors."""
import unittest

import kiln

try:
    import numpy as np
except ImportError:  # the reference tests skip without NumPy
    np = None

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


def rand(shape, seed, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape)


def f64(x):
    return kiln.constant(x, kiln.float64)


def bf16_bits(t):
    """A bfloat16 tensor's values as float32 (exact), for bitwise comparison."""
    return np.asarray(t.numpy(), dtype=np.float32)


@needs_numpy
class Float64Ops(unittest.TestCase):
    def close(self, got, want, rtol=1e-13, atol=1e-13):
        self.assertEqual(got.dtype, kiln.float64)
        np.testing.assert_allclose(got.numpy(), np.asarray(want, dtype=np.float64), rtol=rtol, atol=atol)

    def test_matmul_and_einsum(self):
        for (m, k, n) in ((3, 5, 4), (64, 300, 70)):
            a, b = rand((m, k), 1), rand((n, k), 2)
            want = (a.astype(np.longdouble) @ b.T.astype(np.longdouble)).astype(np.float64)
            self.close(kiln.matmul(f64(a), f64(b), transpose_b=True), want)
            self.close(kiln.einsum("ik,jk->ij", f64(a), f64(b)), want)

    def test_reductions_and_scans(self):
        for shape in ((3, 5, 4), (40, 37, 23)):
            x = rand(shape, 3)
            for axis in (0, 1, 2):
                self.close(kiln.reduce_sum(f64(x), axis=axis), x.astype(np.longdouble).sum(axis=axis), rtol=1e-12)
                self.close(kiln.reduce_mean(f64(x), axis=axis), x.astype(np.longdouble).mean(axis=axis), rtol=1e-12)
                self.close(kiln.reduce_max(f64(x), axis=axis), x.max(axis=axis), rtol=0, atol=0)
                np.testing.assert_array_equal(kiln.argmax(f64(x), axis).numpy(), x.argmax(axis=axis))
                np.testing.assert_array_equal(kiln.argmin(f64(x), axis).numpy(), x.argmin(axis=axis))
                self.close(kiln.cumsum(f64(x), axis), np.cumsum(x.astype(np.longdouble), axis=axis), rtol=1e-12)
        x = rand((40, 1000), 4, 0.9, 1.1)
        self.close(kiln.reduce_prod(f64(x), axis=1), x.astype(np.longdouble).prod(axis=1), rtol=1e-12)
        v, i = kiln.top_k(f64(x), 3)
        np.testing.assert_array_equal(v.numpy(), -np.sort(-x, axis=1)[:, :3])
        # bfloat16 too (through float32, exact), and its reductions carry gradients in bfloat16.
        xb = kiln.cast(kiln.constant(x[:3, :8].astype(np.float32)), kiln.bfloat16)
        v, i = kiln.top_k(xb, 2)
        self.assertEqual(v.dtype, kiln.bfloat16)
        xr = kiln.cast(xb, kiln.float32).numpy()
        np.testing.assert_array_equal(kiln.cast(v, kiln.float32).numpy(), -np.sort(-xr, axis=1)[:, :2])
        for fn in (lambda t: kiln.reduce_mean(t, axis=1), lambda t: kiln.reduce_max(t, axis=1),
                   lambda t: kiln.reduce_min(t), lambda t: kiln.top_k(t, 2)[0]):
            with kiln.GradientTape() as tape:
                tape.watch(xb)
                loss = kiln.reduce_sum(kiln.cast(fn(xb), kiln.float32))
            g = tape.gradient(loss, xb)
            self.assertIsNotNone(g)
            self.assertEqual(g.dtype, kiln.bfloat16)

    def test_softmax_norms_losses(self):
        for shape in ((3, 7), (40, 1000)):
            x = rand(shape, 5, -20, 20)
            xl = x.astype(np.longdouble)
            lse = np.log(np.exp(xl - xl.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)) + xl.max(axis=1, keepdims=True)
            self.close(kiln.softmax(f64(x)), np.exp(xl - lse))
            self.close(kiln.log_softmax(f64(x)), xl - lse, rtol=1e-13, atol=1e-12)
            labels = np.arange(shape[0]) % shape[1]
            self.close(kiln.nn.sparse_softmax_cross_entropy_with_logits(kiln.constant(labels, kiln.int32), f64(x)),
                       (lse[:, 0] - xl[np.arange(shape[0]), labels]), rtol=1e-12)
            z = rand(shape, 6, 0, 1)
            self.close(kiln.nn.sigmoid_cross_entropy_with_logits(f64(z), f64(x)),
                       np.maximum(xl, 0) - xl * z + np.log1p(np.exp(-np.abs(xl))), rtol=1e-13)
            g, b = rand(shape[1:], 7), rand(shape[1:], 8)
            mu, var = xl.mean(axis=1, keepdims=True), xl.var(axis=1, keepdims=True)
            eps = np.longdouble(np.float32(1e-3))
            self.close(kiln.layer_norm(f64(x), f64(g), f64(b)), (xl - mu) / np.sqrt(var + eps) * g + b, rtol=1e-12,
                       atol=1e-12)
            y, m, v = kiln.batch_norm(f64(x), f64(g), f64(b), training=True)
            self.close(m, xl.mean(axis=0), rtol=1e-12)
            self.close(y, (xl - xl.mean(axis=0)) / np.sqrt(xl.var(axis=0) + eps) * g + b, rtol=1e-12, atol=1e-12)

    def test_floordiv_floormod(self):
        a, b = np.array([7.0, -7.0, 7.5, -0.5]), np.array([2.0, 2.0, -2.0, 0.25])
        self.close(kiln.floordiv(f64(a), f64(b)), np.floor_divide(a, b), rtol=0, atol=0)
        self.close(kiln.math.floormod(f64(a), f64(b)), np.mod(a, b), rtol=0, atol=0)

    def test_gradients_central_differences(self):
        def check(f, xs, h=1e-5, tol=1e-7):
            srcs = [f64(x) for x in xs]
            w = rand(f(*srcs).shape, 99, -1, 1)
            with kiln.GradientTape() as tape:
                for s in srcs:
                    tape.watch(s)
                y = f(*srcs)
            grads = tape.gradient(y, srcs, output_gradients=f64(w))
            for k, x in enumerate(xs):
                self.assertEqual(grads[k].dtype, kiln.float64)
                num = np.zeros_like(x)
                for i in np.ndindex(*x.shape):
                    up, down = [np.array(v) for v in xs], [np.array(v) for v in xs]
                    up[k][i] += h
                    down[k][i] -= h
                    fu = (f(*[f64(v) for v in up]).numpy() * w).sum()
                    fd = (f(*[f64(v) for v in down]).numpy() * w).sum()
                    num[i] = (fu - fd) / (2 * h)
                np.testing.assert_allclose(grads[k].numpy(), num, rtol=tol, atol=tol)

        check(lambda a, b: kiln.matmul(a, b), [rand((3, 4), 10), rand((4, 2), 11)])
        check(lambda x, g, b: kiln.layer_norm(x, g, b), [rand((3, 5), 12), rand((5,), 13), rand((5,), 14)])
        check(lambda x, g, b: kiln.batch_norm(x, g, b, training=True)[0], [rand((4, 3), 15), rand((3,), 16),
                                                                          rand((3,), 17)])
        check(lambda x: kiln.nn.sparse_softmax_cross_entropy_with_logits(kiln.constant([0, 3, 1], kiln.int32), x),
              [rand((3, 4), 18)])
        check(lambda x: kiln.cumsum(x, 1, reverse=True), [rand((2, 5), 19)])


@needs_numpy
class BFloat16SoftmaxAndNorms(unittest.TestCase):
    def same(self, got, want_f32):
        self.assertEqual(got.dtype, kiln.bfloat16)
        np.testing.assert_array_equal(bf16_bits(got), bf16_bits(kiln.cast(want_f32, kiln.bfloat16)))

    def test_rounded_float32_result(self):
        for shape in ((3, 8), (300, 130)):
            xb = kiln.cast(kiln.constant(rand(shape, 20, -4, 4).astype(np.float32)), kiln.bfloat16)
            x32 = kiln.cast(xb, kiln.float32)
            for axis in (0, -1):
                self.same(kiln.softmax(xb, axis), kiln.softmax(x32, axis))
                self.same(kiln.log_softmax(xb, axis), kiln.log_softmax(x32, axis))
            self.same(kiln.l2_normalize(xb, axis=1), kiln.l2_normalize(x32, axis=1))
            g32 = kiln.constant(rand(shape[1:], 21).astype(np.float32))
            b32 = kiln.constant(rand(shape[1:], 22).astype(np.float32))
            gb, bb = kiln.cast(g32, kiln.bfloat16), kiln.cast(b32, kiln.bfloat16)
            gr, br = kiln.cast(gb, kiln.float32), kiln.cast(bb, kiln.float32)
            self.same(kiln.layer_norm(xb, gb, bb), kiln.layer_norm(x32, gr, br))
            self.same(kiln.layer_norm(xb, g32, b32), kiln.layer_norm(x32, g32, b32))
            y, m, v = kiln.batch_norm(xb, gb, bb, training=True)
            self.assertEqual(m.dtype, kiln.float32)  # as TF's FusedBatchNormV3
            self.same(y, kiln.batch_norm(x32, gr, br, training=True)[0])

    def test_window_ops_cross_entropies_and_moments(self):
        # bfloat16 operands: the float32 op on their values, rounded once, with bfloat16 gradients.
        bf = lambda a: kiln.cast(kiln.constant(a.astype(np.float32)), kiln.bfloat16)  # noqa: E731
        f32 = lambda t: kiln.cast(t, kiln.float32)  # noqa: E731
        x4, f4, x5, f5 = bf(rand((2, 5, 4, 3), 30)), bf(rand((3, 2, 3, 2), 31)), bf(rand((1, 3, 4, 3, 2), 32)), \
            bf(rand((2, 2, 2, 2, 3), 33))
        logits, labels = bf(rand((4, 5), 34)), kiln.constant(np.array([0, 4, 2, 1], np.int32))
        cases = [(lambda a, b: kiln.nn.conv2d(a, b, 2, "SAME"), (x4, f4)),
                 (lambda a, b: kiln.nn.depthwise_conv2d(a, b, 1, "VALID"), (x4, f4)),
                 (lambda a: kiln.nn.max_pool2d(a, 2, 1, "SAME"), (x4,)),
                 (lambda a: kiln.nn.avg_pool2d(a, 3, 2, "SAME"), (x4,)),
                 (lambda a, b: kiln.nn.conv3d(a, b, (1, 2, 1), "SAME"), (x5, f5)),
                 (lambda a: kiln.nn.max_pool3d(a, 2, 1, "SAME"), (x5,)),
                 (lambda a: kiln.nn.avg_pool3d(a, 2, 1, "SAME"), (x5,)),
                 (lambda a: kiln.nn.sparse_softmax_cross_entropy_with_logits(labels, a), (logits,))]
        for fn, args in cases:
            self.same(fn(*args), fn(*[f32(a) for a in args]))
            with kiln.GradientTape() as tape:
                for a in args:
                    tape.watch(a)
                loss = kiln.reduce_sum(f32(fn(*args)))
            for g in tape.gradient(loss, list(args)):
                self.assertEqual(g.dtype, kiln.bfloat16)
        m, v = kiln.nn.moments(x4, axes=[0, 1, 2])
        self.assertEqual((m.dtype, v.dtype), (kiln.bfloat16, kiln.bfloat16))

    def test_scans_products_and_floor_division(self):
        """The ops TF registers bfloat16 for: computed in float32 and rounded once."""
        xb = kiln.cast(kiln.constant(rand((4, 6), 23, 0.5, 2).astype(np.float32)), kiln.bfloat16)
        yb = kiln.cast(kiln.constant(rand((4, 6), 24, -3, 3).astype(np.float32)), kiln.bfloat16)
        x32, y32 = kiln.cast(xb, kiln.float32), kiln.cast(yb, kiln.float32)
        self.same(kiln.cumsum(xb, 1), kiln.cumsum(x32, 1))
        self.same(kiln.cumprod(xb, 0, exclusive=True), kiln.cumprod(x32, 0, exclusive=True))
        self.same(kiln.reduce_prod(xb, axis=1), kiln.reduce_prod(x32, axis=1))
        self.same(kiln.reduce_logsumexp(yb, axis=0), kiln.reduce_logsumexp(x32 * 0 + y32, axis=0))
        self.same(kiln.floordiv(yb, xb), kiln.floordiv(y32, x32))
        self.same(kiln.floormod(yb, xb), kiln.floormod(y32, x32))
        self.same(kiln.einsum("ij,kj->ik", xb, yb), kiln.einsum("ij,kj->ik", x32, y32))
        prior = kiln.mixed_precision.global_policy()
        kiln.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            out = kiln.layers.Dot(axes=1, normalize=True)([x32, y32])
            self.assertEqual(out.dtype, kiln.bfloat16)
            self.assertEqual(tuple(out.shape), (4, 1))
        finally:
            kiln.mixed_precision.set_global_policy(prior)
        with kiln.GradientTape() as tape:
            tape.watch(xb)
            z = kiln.reduce_sum(kiln.cast(kiln.reduce_prod(xb, axis=1), kiln.float32))
        self.assertEqual(tape.gradient(z, xb).dtype, kiln.bfloat16)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "floordiv"):
            kiln.floordiv(yb, x32)


class DtypeErrors(unittest.TestCase):
    def test_errors_name_op_and_dtypes(self):
        x64 = kiln.constant([[1.0, 2.0], [3.0, 4.0]], kiln.float64)
        x32 = kiln.constant([[1.0, 2.0], [3.0, 4.0]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "matmul.*float64.*float32"):
            kiln.matmul(x64, x32)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "softmax: argument 'x' is int32"):
            kiln.softmax(kiln.constant([1, 2], kiln.int32))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "layer_norm: argument 'gamma'.*expected float64"):
            kiln.layer_norm(x64, kiln.constant([1.0, 1.0]), kiln.constant([0.0, 0.0], kiln.float64))


if __name__ == "__main__":
    unittest.main()
