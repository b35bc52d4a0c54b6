"""Every op of the Python binding, through the C ABI: forward results against NumPy references, gradients
against central finite differences, one bad-input case per op, and Tensor conversion edge cases.

The gradient checks, the error cases and most conversion tests use the standard library only; the
forward references skip when NumPy does not import.
"""
import math
import random
import unittest

import kiln

try:
    import numpy as np
except ImportError:  # the binding works without NumPy; the reference tests skip
    np = None

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


# ---------------------------------------------------------------------------------------------- helpers

def flat(v):
    """A tensor, variable, array, nested list or scalar as a flat list of Python values."""
    if isinstance(v, kiln.Variable):
        v = v.value()
    if hasattr(v, "tolist"):
        v = v.tolist()
    if not isinstance(v, list):
        return [v]
    return [y for x in v for y in flat(x)]


def as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


def num_elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


class Case(unittest.TestCase):
    def assertTensor(self, got, want, dtype=None, rtol=1e-5, atol=1e-6):
        """got is a kiln.Tensor with want's shape, the dtype (default: want's) and values close to want's."""
        want = np.asarray(want)
        self.assertIsInstance(got, kiln.Tensor)
        self.assertEqual(got.shape, want.shape)
        self.assertEqual(got.dtype, dtype or {"float64": "float32"}.get(want.dtype.name, want.dtype.name))
        if got.dtype in ("float32", "bfloat16"):
            np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got.numpy(), want)


def rand(shape, seed, lo=-2.0, hi=2.0, dtype="float32"):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


# ---------------------------------------------------------------------------------- gradient checking

class Arg:
    """A gradient-check input: a shape, and the interval its values come from."""

    def __init__(self, *shape, lo=-1.0, hi=1.0):
        self.shape, self.lo, self.hi = shape, lo, hi


def pos(*shape):
    return Arg(*shape, lo=0.5, hi=2.0)


def make_inputs(args, seed):
    """float32 tensors for args. Inputs sharing an interval draw from one shuffled grid, so no two values
    are equal (no ties for max, min, maximum) and none is within a quarter step of 0 (no relu or abs kink)."""
    args = [a if isinstance(a, Arg) else Arg(*a) for a in args]
    rng = random.Random(seed)
    pools = {}
    for i, a in enumerate(args):
        pools.setdefault((a.lo, a.hi), []).append(i)
    values = [None] * len(args)
    for (lo, hi), members in pools.items():
        n = sum(num_elements(args[i].shape) for i in members)
        grid = [lo + (hi - lo) * (k + 0.25) / n for k in range(n)]
        rng.shuffle(grid)
        for i in members:
            k = num_elements(args[i].shape)
            values[i], grid = grid[:k], grid[k:]
    return [kiln.constant(v, "float32", a.shape) for v, a in zip(values, args)]


def check_gradient(test, fn, args, seed=0, eps=1e-3, atol=1e-3, rtol=1e-2):
    """Tape gradients of sum_k sum(w_k * fn(*inputs)[k]) against central differences, for every element of
    every input. Random weights w_k keep sums like softmax's from hiding a wrong gradient."""
    xs = make_inputs(args, seed)
    rng = random.Random(seed + 1)
    weights = [[rng.choice((-1, 1)) * rng.uniform(0.5, 1.5) for _ in range(y.size)] for y in as_list(fn(*xs))]
    with kiln.GradientTape() as tape:
        tape.watch(xs)
        loss = kiln.constant(0.0)
        for y, w in zip(as_list(fn(*xs)), weights):
            loss = loss + kiln.reduce_sum(y * kiln.constant(w, "float32", y.shape))
    grads = tape.gradient(loss, xs, unconnected_gradients="zero")

    def loss_at(inputs):
        return math.fsum(a * b for y, w in zip(as_list(fn(*inputs)), weights) for a, b in zip(flat(y), w))

    for i, x in enumerate(xs):
        test.assertEqual(grads[i].shape, x.shape)
        base, analytic = flat(x), flat(grads[i])
        for j in range(len(base)):
            ends = []
            for step in (eps, -eps):
                moved = list(base)
                moved[j] += step
                inputs = list(xs)
                inputs[i] = kiln.constant(moved, "float32", x.shape)
                ends.append((flat(inputs[i])[j], loss_at(inputs)))  # the step float32 really took
            numeric = (ends[0][1] - ends[1][1]) / (ends[0][0] - ends[1][0])
            test.assertLess(abs(numeric - analytic[j]), atol + rtol * abs(numeric),
                            "input %d element %d: finite difference %.6g, tape %.6g" % (i, j, numeric, analytic[j]))


# Batch statistics of the inference case, as constants (TF gives them no gradient).
def _bn_inference(x, g, b):
    return kiln.batch_norm(x, g, b, [0.1, -0.2], [0.5, 1.5], training=False, epsilon=1e-3)[0]


# (name, fn, inputs): every differentiable float op, with broadcasting where it applies.
GRAD_CASES = [
    ("add", kiln.add, [(2, 3), (3,)]),
    ("sub", kiln.math.subtract, [(2, 1), (1, 3)]),
    ("mul", kiln.mul, [(2, 3), (2, 1)]),
    ("div", kiln.math.divide, [(2, 3), pos(3)]),
    ("maximum", kiln.maximum, [(2, 3), (3,)]),
    ("minimum", kiln.math.minimum, [(3, 1), (1, 2)]),
    ("pow", kiln.pow, [pos(2, 3), (3,)]),
    ("operators_with_numbers", lambda a, b: (2.0 - a) * b / 3 + a ** 2 - (-b) / 2.0 + 1 + abs(a) + 2 ** b,
     [(2, 3), (2, 3)]),
    ("where", lambda x, y: kiln.where(kiln.constant([[True], [False]]), x, y), [(2, 3), (3,)]),
    ("neg", kiln.neg, [(2, 3)]),
    ("abs", kiln.abs, [(2, 3)]),
    ("exp", kiln.exp, [(2, 3)]),
    ("log", kiln.log, [pos(2, 3)]),
    ("sqrt", kiln.sqrt, [pos(2, 3)]),
    ("rsqrt", kiln.rsqrt, [pos(2, 3)]),
    ("square", kiln.square, [(2, 3)]),
    ("tanh", kiln.tanh, [(2, 3)]),
    ("sigmoid", kiln.sigmoid, [(2, 3)]),
    ("relu", kiln.relu, [(2, 3)]),
    ("softplus", kiln.softplus, [(2, 3)]),
    ("swish", kiln.nn.silu, [(2, 3)]),
    ("gelu_erf", kiln.gelu, [(2, 3)]),
    ("gelu_tanh", lambda x: kiln.nn.gelu(x, approximate=True), [(2, 3)]),
    ("elu", lambda x: kiln.elu(x, alpha=0.7), [(2, 3)]),
    ("leaky_relu", lambda x: kiln.leaky_relu(x, alpha=0.1), [(2, 3)]),
    ("clip_by_value", lambda x: kiln.clip_by_value(x, -0.45, 0.55), [(3, 4)]),
    ("matmul", kiln.matmul, [(2, 3), (3, 4)]),
    ("matmul_transpose_a", lambda a, b: kiln.matmul(a, b, transpose_a=True), [(3, 2), (3, 4)]),
    ("matmul_transpose_b", lambda a, b: kiln.linalg.matmul(a, b, transpose_b=True), [(2, 3), (4, 3)]),
    ("matmul_transpose_both", lambda a, b: kiln.matmul(a, b, True, True), [(3, 2), (1, 3)]),
    ("matmul_broadcast_batch", lambda a, b: a @ b, [(2, 1, 2, 3), (3, 3, 2)]),
    ("sum_all", kiln.reduce_sum, [(2, 3)]),
    ("sum_axis_keepdims", lambda x: kiln.reduce_sum(x, axis=1, keepdims=True), [(2, 3, 2)]),
    ("sum_axes", lambda x: kiln.math.reduce_sum(x, axis=[0, 2]), [(2, 3, 2)]),
    ("mean_axis", lambda x: kiln.reduce_mean(x, axis=-1), [(2, 3)]),
    ("mean_all_keepdims", lambda x: kiln.reduce_mean(x, keepdims=True), [(2, 3)]),
    ("max_axis_keepdims", lambda x: kiln.reduce_max(x, axis=0, keepdims=True), [(3, 2)]),
    ("max_axes", lambda x: kiln.reduce_max(x, axis=(0, 1)), [(2, 3, 2)]),
    ("min_all", kiln.reduce_min, [(2, 3)]),
    ("min_axis", lambda x: kiln.math.reduce_min(x, axis=1), [(2, 3)]),
    ("softmax", kiln.softmax, [(2, 3)]),
    ("softmax_axis0", lambda x: kiln.nn.softmax(x, axis=0), [(3, 2)]),
    ("log_softmax", kiln.log_softmax, [(2, 3)]),
    ("log_softmax_axis1", lambda x: kiln.nn.log_softmax(x, axis=1), [(2, 2, 3)]),
    ("layer_norm", kiln.layer_norm, [(2, 4), (4,), (4,)]),
    ("layer_norm_rank3", lambda x, g, b: kiln.nn.layer_norm(x, g, b, epsilon=1e-5), [(2, 1, 3), (3,), (3,)]),
    # All three outputs: the gradient also flows back through the returned batch mean and variance.
    ("batch_norm_training", lambda x, g, b: kiln.batch_norm(x, g, b, training=True), [(4, 2), (2,), (2,)]),
    ("batch_norm_training_rank4", lambda x, g, b: kiln.nn.batch_norm(x, g, b, training=True)[0],
     [(2, 2, 1, 3), (3,), (3,)]),
    ("batch_norm_inference", _bn_inference, [(3, 2), (2,), (2,)]),
    ("conv2d_valid", lambda x, f: kiln.conv2d(x, f, padding="VALID"), [(1, 4, 3, 2), (2, 2, 2, 3)]),
    ("conv2d_same_stride2", lambda x, f: kiln.conv2d(x, f, strides=2, padding="SAME"), [(2, 5, 4, 1), (3, 3, 1, 2)]),
    ("conv2d_dilated_strided", lambda x, f: kiln.nn.conv2d(x, f, [1, 1, 2, 1], "VALID", dilations=2),
     [(1, 5, 6, 1), (2, 2, 1, 2)]),
    ("conv2d_same_dilated", lambda x, f: kiln.conv2d(x, f, padding="same", dilations=[2, 1]),
     [(1, 4, 4, 2), (2, 3, 2, 1)]),
    ("max_pool2d_valid", lambda x: kiln.max_pool2d(x, 2, 2), [(1, 4, 4, 2)]),
    ("max_pool2d_same", lambda x: kiln.nn.max_pool2d(x, 3, 2, "SAME"), [(2, 5, 5, 1)]),
    ("avg_pool2d_valid", lambda x: kiln.avg_pool2d(x, [2, 3], [1, 2]), [(1, 4, 5, 2)]),
    ("avg_pool2d_same", lambda x: kiln.nn.avg_pool2d(x, 3, 2, "SAME"), [(1, 5, 4, 1)]),
    ("reshape", lambda x: kiln.reshape(x, [3, -1]), [(2, 3)]),
    ("transpose", lambda x: kiln.transpose(x, [1, 2, 0]), [(2, 3, 2)]),
    ("transpose_default", kiln.transpose, [(2, 3)]),
    ("concat", lambda a, b: kiln.concat([a, b], axis=1), [(2, 1), (2, 3)]),
    ("concat_negative_axis", lambda a, b, c: kiln.concat([a, b, c], -2), [(1, 3), (2, 3), (1, 3)]),
    ("split_int", lambda x: kiln.split(x, 3, axis=1), [(2, 6)]),
    ("split_sizes", lambda x: kiln.split(x, [1, -1, 2]), [(5, 2)]),
    ("slice", lambda x: kiln.slice(x, [1, 1], [2, -1]), [(3, 4)]),
    ("stack", lambda a, b: kiln.stack([a, b], axis=1), [(2, 3), (2, 3)]),
    ("expand_dims", lambda x: kiln.expand_dims(x, -1) * kiln.constant([1.0, 2.0]), [(2, 3)]),
    ("squeeze", lambda x: kiln.squeeze(x, [0, 2]), [(1, 3, 1)]),
    ("squeeze_all", kiln.squeeze, [(1, 3, 1)]),
    ("broadcast_to", lambda x: kiln.broadcast_to(x, [2, 3, 3]), [(3, 1)]),
    ("tile", lambda x: kiln.tile(x, [2, 1, 3]), [(1, 2, 2)]),
    ("gather_repeated_indices", lambda p: kiln.gather(p, [3, 0, 3]), [(4, 3)]),
    ("gather_axis1", lambda p: kiln.gather(p, kiln.constant([[2, 0], [1, 1]], "int64"), axis=1), [(2, 3)]),
    # A stateless seed gives the same mask on every evaluation of the check.
    ("dropout", lambda x: kiln.nn.experimental.stateless_dropout(x, 0.5, seed=[7, 1]), [(3, 4)]),
    ("dropout_noise_shape",
     lambda x: kiln.nn.experimental.stateless_dropout(x, 0.5, seed=[7, 2], noise_shape=[3, 1]), [(3, 4)]),
    ("two_layer", lambda x, w, b: kiln.reduce_mean(kiln.tanh(kiln.matmul(x, w) + b) ** 2, axis=0),
     [(3, 2), (2, 4), (4,)]),
]


class GradientTest(unittest.TestCase):
    """One test per entry of GRAD_CASES, plus the ops whose gradient is not a finite difference."""

    def test_stop_gradient(self):
        x = kiln.constant([3.0, -2.0])
        with kiln.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * kiln.stop_gradient(x)
            z = kiln.stop_gradient(x * 2.0)
        self.assertEqual(tape.gradient(y, x).tolist(), [3.0, -2.0])
        self.assertIsNone(tape.gradient(z, x))
        self.assertEqual(tape.gradient(z, x, unconnected_gradients="zero").tolist(), [0.0, 0.0])

    def test_cast_between_floats_passes_the_gradient(self):
        x = kiln.constant([1.5, -0.25, 3.0])
        w = kiln.constant([2.0, -1.0, 0.5])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.reduce_sum(kiln.cast(kiln.cast(x, "bfloat16"), "float32") * w)
        self.assertEqual(tape.gradient(y, x).tolist(), [2.0, -1.0, 0.5])

    def test_integer_and_bool_results_carry_no_gradient(self):
        x = kiln.constant([[0.5, -1.0], [2.0, 0.25]])
        outputs = [lambda: kiln.cast(kiln.cast(x, "int32"), "float32"),
                   lambda: kiln.cast(x > 0.0, "float32"),
                   lambda: kiln.cast(kiln.argmax(x), "float32"),
                   lambda: kiln.one_hot(kiln.argmax(x, axis=0), 3)]
        for make in outputs:
            with kiln.GradientTape() as tape:
                tape.watch(x)
                y = kiln.reduce_sum(make())
            self.assertIsNone(tape.gradient(y, x))

    def test_output_gradients(self):
        x = kiln.constant([1.0, 2.0, 3.0])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.square(x)
        self.assertEqual(tape.gradient(y, x, output_gradients=[1.0, 0.5, -1.0]).tolist(), [2.0, 2.0, -6.0])

    def test_gradient_through_variable_expressions(self):
        w = kiln.Variable([[1.0, -2.0], [0.5, 3.0]], name="w")
        b = kiln.Variable([0.25, -0.75], name="b")
        x = kiln.constant([[1.0, 2.0]])
        with kiln.GradientTape() as tape:
            y = kiln.reduce_sum((x @ w + b) * 2.0 - b / 4) + kiln.reduce_sum(abs(w) ** 2)
        gw, gb = tape.gradient(y, [w, b])
        want_w = [[2 + 2 * 1.0, 2 + 2 * -2.0], [4 + 2 * 0.5, 4 + 2 * 3.0]]  # 2 x^T + 2 w
        self.assertEqual(gw.tolist(), want_w)
        self.assertEqual(gb.tolist(), [1.75, 1.75])


def add_table_tests(cls, prefix, table, check):
    """One test method per table row, named after it, so that each op passes or fails on its own."""
    for name, *row in table:
        def test(self, row=row):
            check(self, *row)
        test.__name__ = "test_%s_%s" % (prefix, name)
        setattr(cls, test.__name__, test)


add_table_tests(GradientTest, "grad", GRAD_CASES, check_gradient)


# ---------------------------------------------------------------------------------------- elementwise

SHAPE_PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((4, 1, 3), (1, 5, 1)), ((), (2, 3)), ((3, 1), (1,)), ((0, 3), (1, 3))]


@needs_numpy
class ElementwiseTest(Case):
    def test_float_binary_broadcasting(self):
        refs = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
                "minimum": np.minimum, "pow": np.power}
        for name, ref in refs.items():
            for sa, sb in SHAPE_PAIRS:
                with self.subTest(op=name, a=sa, b=sb):
                    a, b = rand(sa, 1), rand(sb, 2)
                    if name == "pow":
                        a = (np.abs(a) + 0.1).astype(np.float32)
                    if name == "div":
                        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
                    self.assertTensor(getattr(kiln, name)(a, b), ref(a, b))

    def test_integer_binary(self):
        a = np.array([[7, -7, 0, 5], [-9, 2, 2 ** 31 - 1, -1]])
        b = np.array([2, -3, 1, 4])  # integer division truncates toward zero (x / 0: test_integer_division_by_zero)
        refs = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum,
                "minimum": np.minimum, "div": lambda x, y: np.fix(x / y)}
        for dtype in ("int32", "int64"):
            for name, ref in refs.items():
                with self.subTest(op=name, dtype=dtype):
                    x, y = a.astype(dtype), b.astype(dtype)
                    self.assertTensor(getattr(kiln, name)(x, y), ref(x, y).astype(dtype))

    def test_comparisons(self):
        refs = {"equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
                "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal}
        a = np.array([[0, 1, 2], [2, 1, 0]])
        b = np.array([1, 1, 0])
        for dtype in ("float32", "int32", "int64", "uint8", "bool"):
            for name, ref in refs.items():
                with self.subTest(op=name, dtype=dtype):
                    x, y = a.astype(dtype), b.astype(dtype)
                    self.assertTensor(getattr(kiln, name)(x, y), ref(x, y))
        t = kiln.constant([1.0, 2.0, 3.0])
        self.assertEqual((t < 2.0).tolist(), [True, False, False])
        self.assertEqual((t <= 2).tolist(), [True, True, False])
        self.assertEqual((2.0 < t).tolist(), [False, False, True])
        self.assertEqual((t >= 3).tolist(), [False, False, True])

    def test_logical(self):
        a = np.array([[True, False], [True, True]])
        b = np.array([True, False])
        for name, ref in {"logical_and": np.logical_and, "logical_or": np.logical_or,
                          "logical_xor": np.logical_xor}.items():
            with self.subTest(op=name):
                self.assertTensor(getattr(kiln, name)(a, b), ref(a, b))
        self.assertTensor(kiln.logical_not(a), np.logical_not(a))
        ta, tb = kiln.constant(a), kiln.constant(b)
        self.assertTensor(ta & tb, a & b)
        self.assertTensor(ta | [False, True], a | [False, True])
        self.assertTensor(tb ^ ta, a ^ b)
        self.assertTensor(~ta, ~a)

    def test_unary_float(self):
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        erf = np.vectorize(math.erf)
        k = math.sqrt(2 / math.pi)
        refs = {
            "neg": (np.negative, -3, 3), "abs": (np.abs, -3, 3), "exp": (np.exp, -5, 5), "log": (np.log, 0.01, 50),
            "sqrt": (np.sqrt, 0, 50), "rsqrt": (lambda v: 1 / np.sqrt(v), 0.01, 50), "square": (np.square, -9, 9),
            "tanh": (np.tanh, -30, 30), "sigmoid": (sig, -30, 30), "relu": (lambda v: np.maximum(v, 0), -3, 3),
            "softplus": (lambda v: np.logaddexp(0, v), -30, 30), "swish": (lambda v: v * sig(v), -30, 30),
            "gelu": (lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2))), -6, 6),
        }
        for name, (ref, lo, hi) in refs.items():
            with self.subTest(op=name):
                x = rand((3, 5), 3, lo, hi)
                self.assertTensor(getattr(kiln, name)(x), ref(x.astype(np.float64)), rtol=2e-5, atol=1e-6)
        x = rand((3, 5), 4, -6, 6)
        v = x.astype(np.float64)
        self.assertTensor(kiln.gelu(x, approximate=True), 0.5 * v * (1 + np.tanh(k * (v + 0.044715 * v ** 3))),
                          rtol=2e-5)
        self.assertTensor(kiln.elu(x), np.where(v > 0, v, np.expm1(v)), rtol=2e-5, atol=1e-6)
        self.assertTensor(kiln.nn.elu(x, alpha=0.5), np.where(v > 0, v, 0.5 * np.expm1(v)), rtol=2e-5, atol=1e-6)
        self.assertTensor(kiln.leaky_relu(x), np.where(v > 0, v, 0.2 * v))
        self.assertTensor(kiln.nn.leaky_relu(x, alpha=0.01), np.where(v > 0, v, 0.01 * v))

    def test_relu_keeps_negative_zero_and_nan(self):
        # TF's relu is max(x, 0), which returns x unless x < 0: -0 and NaN pass through.
        x = np.array([-0.0, 0.0, np.nan, -np.inf, -1e-45, 2.0] * 7, dtype=np.float32)
        for f in (kiln.nn.relu, kiln.nn.relu6):
            for dtype in ("float32", "float64"):
                with self.subTest(op=f.__name__, dtype=dtype):
                    y = np.asarray(f(x.astype(dtype)))
                    self.assertEqual(np.signbit(y[:2]).tolist(), [True, False])
                    self.assertTrue(np.isnan(y[2]))
                    self.assertEqual(y[3:6].tolist(), [0.0, 0.0, 2.0])
                    self.assertFalse(np.signbit(y[3:5]).any())

    def test_unary_integer(self):
        for dtype in ("int32", "int64"):
            x = np.array([[-3, 0, 5], [7, -1, 2]], dtype=dtype)
            for name, ref in {"neg": np.negative, "abs": np.abs, "square": np.square}.items():
                with self.subTest(op=name, dtype=dtype):
                    self.assertTensor(getattr(kiln, name)(x), ref(x))
            self.assertTensor(-kiln.constant(x), -x)
            self.assertTensor(abs(kiln.constant(x)), np.abs(x))

    def test_where_broadcasts_three_ways(self):
        cond = np.array([[True, False, True]])
        for dtype in ("float32", "int32", "int64", "uint8", "bool"):
            with self.subTest(dtype=dtype):
                x = np.array([[1], [0]], dtype=dtype)
                y = np.array(2).astype(dtype)
                self.assertTensor(kiln.where(cond, x, y), np.where(cond, x, y))
        x = rand((2, 3), 5)
        self.assertTensor(kiln.where(x > 0, x, 0.0), np.where(x > 0, x, 0.0).astype(np.float32))

    def test_clip_by_value(self):
        x = np.array([[-2.0, -0.5, 0.0], [0.5, 1.0, 3.0]], dtype=np.float32)
        self.assertTensor(kiln.clip_by_value(x, -0.5, 1.0), np.clip(x, -0.5, 1.0))
        self.assertTensor(kiln.clip_by_value(x, 0.25, 0.25), np.full_like(x, 0.25))


def bf16_round(values):
    """float32 values rounded to bfloat16 (nearest, ties to even), as float32."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(values), np.float32("nan"), out)


def cast_reference(x, src, dst):
    """kiln's cast rules, TensorFlow's on x86-64: float -> int truncates, and NaN, inf and values past
    int32 (int64 for int64) give INT32_MIN (INT64_MIN); uint8 is the int32 result's low byte;
    integers wrap, bool is x != 0, bfloat16 rounds to nearest even."""
    if dst == "bool":
        return x != 0
    if dst in ("float32", "bfloat16"):
        f = x.astype(np.float32)
        return bf16_round(f) if dst == "bfloat16" else f
    if src in ("float32", "bfloat16"):
        f = x.astype(np.float64)
        with np.errstate(invalid="ignore"):
            if dst == "int64":
                valid, indefinite = (f >= -2.0 ** 63) & (f < 2.0 ** 63), -2 ** 63
            else:
                valid, indefinite = (f > -2.0 ** 31 - 1) & (f < 2.0 ** 31), -2 ** 31
        t = np.where(valid, np.trunc(np.where(valid, f, 0.0)), indefinite).astype(np.int64)
        return (t % 256).astype(np.uint8) if dst == "uint8" else t.astype(dst)
    return x.astype(dst)


CAST_SOURCES = {
    "float32": [-3.7, -1.0, -0.5, 0.0, 0.5, 1.5, 2.5, 255.9, 300.0, 1e10, -1e10, 3.14159, 1.00390625, float("nan"),
                float("inf"), -float("inf"), 2147483520.0, 2.0 ** 31, -2.0 ** 31, 1e19],
    "bfloat16": [-3.5, -1.0, 0.0, 0.5, 1.5, 256.0, 3.140625, 3e9, -3e9],
    "int32": [-70000, -129, -1, 0, 1, 127, 128, 255, 256, 65537, 2 ** 31 - 1, -2 ** 31],
    "int64": [-2 ** 40, -1, 0, 1, 300, 2 ** 33 + 5, 2 ** 63 - 1],
    "uint8": [0, 1, 127, 128, 255],
    "bool": [True, False, True],
}
DTYPES = list(CAST_SOURCES)


@needs_numpy
class CastTest(Case):
    def test_every_dtype_pair(self):
        for src, values in CAST_SOURCES.items():
            x = kiln.constant(values, src)
            self.assertEqual(x.dtype, src)
            xs = x.numpy()  # bfloat16 as float32, holding the rounded values
            for dst in DTYPES:
                with self.subTest(src=src, dst=dst):
                    got = kiln.cast(x, dst)
                    self.assertEqual(got.dtype, dst)
                    self.assertEqual(got.shape, x.shape)
                    np.testing.assert_array_equal(got.numpy(), cast_reference(xs, src, dst))

    def test_bfloat16_rounds_to_nearest_even(self):
        # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0);
        # 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: it goes up; one float32 ulp above
        # the first tie rounds up.
        x = kiln.constant([1.00390625, 1.01171875, 1.00390625 + 2 ** -23, -2.5, 65504.0])
        np.testing.assert_array_equal(kiln.cast(x, "bfloat16").numpy(),
                                      [1.0, 1.015625, 1.0078125, -2.5, 65536.0])

    def test_dtype_spellings(self):
        x = kiln.constant([1.7, -2.2])
        for spelling in ("int32", kiln.int32, int, np.int32, np.dtype("int32"), 3):
            with self.subTest(dtype=spelling):
                self.assertEqual(kiln.cast(x, spelling).tolist(), [1, -2])
        self.assertEqual(kiln.cast(x, bool).dtype, "bool")
        self.assertEqual(kiln.cast(x, float).dtype, "float32")


# ------------------------------------------------------------------------------ matmul and reductions

@needs_numpy
class MatmulTest(Case):
    CASES = [((2, 3), (3, 4), False, False), ((5, 3), (3, 1), False, False), ((3, 2), (3, 4), True, False),
             ((2, 3), (4, 3), False, True), ((3, 2), (5, 3), True, True), ((2, 3, 4), (2, 4, 5), False, False),
             ((2, 1, 3, 4), (3, 4, 2), False, False), ((1, 3, 4), (2, 2, 4), False, True),
             ((3, 4), (2, 4, 3), False, False), ((1, 0), (0, 3), False, False)]

    def test_against_numpy(self):
        for sa, sb, ta, tb in self.CASES:
            with self.subTest(a=sa, b=sb, transpose_a=ta, transpose_b=tb):
                a, b = rand(sa, 1), rand(sb, 2)
                want = np.matmul(a.swapaxes(-1, -2) if ta else a, b.swapaxes(-1, -2) if tb else b)
                self.assertTensor(kiln.matmul(a, b, transpose_a=ta, transpose_b=tb), want, rtol=1e-5, atol=1e-5)

    def test_operator_and_bfloat16(self):
        a, b = rand((3, 4), 3), rand((4, 5), 4)
        self.assertTensor(kiln.constant(a) @ b, a @ b, rtol=1e-5, atol=1e-5)
        self.assertTensor(a @ kiln.constant(b), a @ b, rtol=1e-5, atol=1e-5)
        ab, bb = kiln.cast(kiln.constant(a), "bfloat16"), kiln.cast(kiln.constant(b), "bfloat16")
        want = bf16_round(a).astype(np.float64) @ bf16_round(b).astype(np.float64)
        self.assertTensor(ab @ bb, want, dtype="bfloat16", rtol=1e-2, atol=1e-2)


@needs_numpy
class ReduceTest(Case):
    AXES = [None, 0, -1, [0, 2], (1,), [2, 0, 1]]

    def test_float(self):
        x = rand((2, 3, 4), 1)
        refs = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}
        for name, ref in refs.items():
            for axis in self.AXES:
                for keepdims in (False, True):
                    with self.subTest(op=name, axis=axis, keepdims=keepdims):
                        want = ref(x.astype(np.float64), axis=None if axis is None else tuple(as_list(axis)),
                                   keepdims=keepdims)
                        got = getattr(kiln, "reduce_" + name)(x, axis=axis, keepdims=keepdims)
                        self.assertTensor(got, want, rtol=1e-5, atol=1e-6)

    def test_integer_and_bfloat16(self):
        x = np.array([[3, -7, 2], [5, 0, -1]])
        for dtype in ("int32", "int64"):
            for name, ref in {"sum": np.sum, "max": np.max, "min": np.min}.items():
                for axis in (None, 0, 1):
                    with self.subTest(op=name, dtype=dtype, axis=axis):
                        self.assertTensor(getattr(kiln, name)(x.astype(dtype), axis), ref(x, axis).astype(dtype))
        y = rand((3, 5), 2)
        b = kiln.cast(kiln.constant(y), "bfloat16")
        yb = bf16_round(y).astype(np.float64)
        for name, ref in {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}.items():
            with self.subTest(op=name, dtype="bfloat16"):
                self.assertTensor(getattr(kiln, name)(b, axis=1), ref(yb, axis=1), dtype="bfloat16", rtol=1e-2,
                                  atol=1e-2)

    def test_empty_axis_list_reduces_nothing(self):
        x = rand((2, 3), 4)
        for op in (kiln.reduce_sum, kiln.reduce_mean, kiln.reduce_max, kiln.reduce_min):
            with self.subTest(op=op.__name__):
                self.assertTensor(op(x, axis=[]), x)
                self.assertTensor(op(x, axis=(), keepdims=True), x)

    def test_empty(self):
        e = kiln.zeros([2, 0])
        self.assertTensor(kiln.reduce_sum(e, axis=1), np.zeros(2, np.float32))
        self.assertTensor(kiln.reduce_max(e, axis=1), np.full(2, -np.inf, np.float32))
        self.assertTensor(kiln.reduce_min(e), np.float32(np.inf))
        self.assertTensor(kiln.reduce_sum(kiln.zeros([0, 3]), axis=0, keepdims=True), np.zeros((1, 3), np.float32))
        self.assertTensor(kiln.reduce_max(kiln.zeros([0], "int32")), np.int32(np.iinfo(np.int32).min))

    def test_argmax(self):
        x = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, 0.0], [2.0, 5.0, -4.0]], dtype=np.float32)
        for axis in (0, 1, -1):
            with self.subTest(axis=axis):
                self.assertTensor(kiln.argmax(x, axis), np.argmax(x, axis))  # ties: the first index
        y = rand((2, 3, 4), 3)
        self.assertTensor(kiln.math.argmax(y, axis=1), np.argmax(y, 1))
        self.assertTensor(kiln.argmax(kiln.constant([[4, 9, 9]], "int64"), -1), np.array([1]))
        self.assertTensor(kiln.argmax(x.astype("int32"), 0), np.argmax(x, 0))
        self.assertTensor(kiln.argmax(kiln.cast(kiln.constant(x), "bfloat16"), -1), np.argmax(x, -1))


# ------------------------------------------------------------------------------------ neural network

@needs_numpy
class SoftmaxTest(Case):
    def test_against_numpy(self):
        x32 = rand((2, 3, 4), 1, -5, 5).astype(np.float32)
        x = x32.astype(np.float64)
        for axis in (-1, 0, 1, 2):
            with self.subTest(axis=axis):
                shifted = x - x.max(axis=axis, keepdims=True)
                log_sm = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
                self.assertTensor(kiln.softmax(x32, axis), np.exp(log_sm), rtol=1e-5, atol=1e-7)
                self.assertTensor(kiln.nn.log_softmax(x32, axis=axis), log_sm, rtol=1e-5, atol=1e-6)

    def test_large_logits_are_stable(self):
        x = kiln.constant([[1000.0, 1000.0, -1000.0], [-1e30, 0.0, 1e30]])
        self.assertTensor(kiln.softmax(x), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
        self.assertTensor(kiln.softmax(x, axis=0), [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        lsm = kiln.log_softmax(x).numpy()
        self.assertTrue(np.all(np.isfinite(lsm[0])))
        np.testing.assert_allclose(lsm[0], [-math.log(2), -math.log(2), -2000 - math.log(2)], rtol=1e-6, atol=1e-4)


class LogSoftmaxPrecisionTest(unittest.TestCase):
    # log_softmax must compute (x - max) - log(sum), as TF does: x - (max + log(sum)) rounds
    # log(sum) to the float32 step of the largest logit (-0.6875 instead of -log 2 for [1e6, 1e6, 0]).
    def test_log_sum_is_not_rounded_to_the_largest_logit(self):
        for axis, x in ((-1, [[1e6, 1e6, 0.0]]), (0, [[1e6], [1e6], [0.0]])):
            with self.subTest(axis=axis):
                got = flat(kiln.log_softmax(kiln.constant(x), axis=axis))
                self.assertAlmostEqual(got[0], -math.log(2), places=5)
                self.assertAlmostEqual(got[1], -math.log(2), places=5)


@needs_numpy
class NormTest(Case):
    def test_layer_norm(self):
        for shape, eps in (((3, 5), 1e-3), ((2, 3, 4), 1e-5), ((4,), 0.0)):
            with self.subTest(shape=shape, epsilon=eps):
                x, g, b = rand(shape, 1), rand(shape[-1:], 2), rand(shape[-1:], 3)
                v = x.astype(np.float64)
                m = v.mean(-1, keepdims=True)
                want = (v - m) / np.sqrt(((v - m) ** 2).mean(-1, keepdims=True) + eps) * g + b
                self.assertTensor(kiln.layer_norm(x, g, b, epsilon=eps), want, rtol=1e-4, atol=1e-5)

    def test_batch_norm_training(self):
        for shape in ((4, 3), (2, 3, 2, 3)):
            with self.subTest(shape=shape):
                x, g, b = rand(shape, 1), rand(shape[-1:], 2), rand(shape[-1:], 3)
                axes = tuple(range(len(shape) - 1))
                v = x.astype(np.float64)
                m, var = v.mean(axes), v.var(axes)  # biased variance, as TF's batch statistics
                y, mean, variance = kiln.batch_norm(x, g, b, training=True, epsilon=1e-3)
                self.assertTensor(y, (v - m) / np.sqrt(var + 1e-3) * g + b, rtol=1e-4, atol=1e-5)
                self.assertTensor(mean, m, rtol=1e-5, atol=1e-6)
                self.assertTensor(variance, var, rtol=1e-5, atol=1e-6)
        # Statistics given while training are checked but not used.
        y2, m2, _ = kiln.batch_norm(x, g, b, np.zeros(3, np.float32), np.ones(3, np.float32), training=True)
        self.assertTensor(m2, m, rtol=1e-5, atol=1e-6)

    def test_batch_norm_inference(self):
        x, g, b = rand((2, 2, 3), 1), rand((3,), 2), rand((3,), 3)
        m, var = rand((3,), 4), rand((3,), 5, 0.5, 2.0)
        y, mean, variance = kiln.nn.batch_norm(x, g, b, m, var, training=False, epsilon=1e-2)
        self.assertTensor(y, (x.astype(np.float64) - m) / np.sqrt(var.astype(np.float64) + 1e-2) * g + b,
                          rtol=1e-4, atol=1e-5)
        self.assertTensor(mean, m)
        self.assertTensor(variance, var)


def window_geometry(size, k, stride, dilation, padding):
    """TF's output size and leading padding along one axis."""
    span = (k - 1) * dilation + 1
    if padding == "VALID":
        return (size - span) // stride + 1, 0
    out = -(-size // stride)
    return out, max((out - 1) * stride + span - size, 0) // 2


def window_taps(x_shape, k, strides, dilations, padding):
    """For each output position (i, j): the list of (tap_h, tap_w, row, col) inside the input."""
    (oh, top), (ow, left) = [window_geometry(x_shape[1 + a], k[a], strides[a], dilations[a], padding)
                             for a in (0, 1)]
    for i in range(oh):
        for j in range(ow):
            taps = [(a, b, i * strides[0] - top + a * dilations[0], j * strides[1] - left + b * dilations[1])
                    for a in range(k[0]) for b in range(k[1])]
            yield i, j, oh, ow, [t for t in taps if 0 <= t[2] < x_shape[1] and 0 <= t[3] < x_shape[2]]


def conv2d_reference(x, f, strides, dilations, padding):
    y = None
    for i, j, oh, ow, taps in window_taps(x.shape, f.shape[:2], strides, dilations, padding):
        if y is None:
            y = np.zeros((x.shape[0], oh, ow, f.shape[3]))
        for a, b, r, c in taps:
            y[:, i, j, :] += x[:, r, c, :].astype(np.float64) @ f[a, b]
    return y


def pool_reference(x, ksize, strides, padding, kind):
    y = None
    for i, j, oh, ow, taps in window_taps(x.shape, ksize, strides, (1, 1), padding):
        if y is None:
            y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
        window = np.stack([x[:, r, c, :] for _, _, r, c in taps])
        y[:, i, j, :] = window.max(0) if kind == "max" else window.astype(np.float64).mean(0)  # padding excluded
    return y


@needs_numpy
class ConvPoolTest(Case):
    CONV = [((1, 5, 5, 1), (3, 3, 1, 1), (1, 1), (1, 1), "VALID"),
            ((2, 5, 7, 3), (3, 2, 3, 4), (1, 1), (1, 1), "SAME"),
            ((1, 7, 6, 2), (3, 3, 2, 3), (2, 2), (1, 1), "SAME"),
            ((1, 7, 6, 2), (3, 3, 2, 3), (2, 3), (1, 1), "VALID"),
            ((1, 7, 7, 1), (2, 3, 1, 2), (1, 1), (2, 2), "VALID"),
            ((2, 6, 5, 2), (3, 2, 2, 1), (2, 1), (2, 3), "SAME"),
            ((1, 1, 1, 3), (1, 1, 3, 2), (1, 1), (1, 1), "SAME")]
    POOL = [((1, 4, 4, 1), (2, 2), (2, 2), "VALID"), ((2, 5, 5, 3), (3, 3), (2, 2), "SAME"),
            ((1, 5, 7, 2), (2, 3), (1, 2), "VALID"), ((1, 6, 5, 1), (3, 2), (3, 1), "SAME"),
            ((1, 3, 3, 2), (3, 3), (1, 1), "SAME")]

    def test_conv2d(self):
        for xs, fs, strides, dilations, padding in self.CONV:
            with self.subTest(x=xs, filter=fs, strides=strides, dilations=dilations, padding=padding):
                x, f = rand(xs, 1), rand(fs, 2)
                self.assertTensor(kiln.conv2d(x, f, strides, padding, dilations),
                                  conv2d_reference(x, f, strides, dilations, padding), rtol=1e-4, atol=1e-5)
        x, f = rand((1, 5, 5, 2), 3), rand((3, 3, 2, 1), 4)  # TF's [1, h, w, 1] forms
        self.assertTensor(kiln.nn.conv2d(x, f, strides=[1, 2, 2, 1], padding="SAME", dilations=[1, 1, 1, 1]),
                          conv2d_reference(x, f, (2, 2), (1, 1), "SAME"), rtol=1e-4, atol=1e-5)

    def test_options_structs(self):
        import ctypes
        from kiln import _lib, ops
        o = ops.Conv2dOptions()
        kiln.errors.check(_lib.lib.kiln_conv2d_options_init(ctypes.byref(o), ctypes.sizeof(o)))
        self.assertEqual((o.struct_size, list(o.strides), list(o.dilations), o.padding),
                         (ctypes.sizeof(o), [1, 1], [1, 1], 0))
        p = ops.Pool2dOptions()
        kiln.errors.check(_lib.lib.kiln_pool2d_options_init(ctypes.byref(p), ctypes.sizeof(p)))
        self.assertEqual((list(p.ksize), list(p.strides), p.padding), ([2, 2], [2, 2], 0))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "struct_size is 4"):
            kiln.errors.check(_lib.lib.kiln_conv2d_options_init(ctypes.byref(o), 4))

    def test_pools(self):
        for xs, ksize, strides, padding in self.POOL:
            for kind, op in (("max", kiln.max_pool2d), ("avg", kiln.nn.avg_pool2d)):
                with self.subTest(kind=kind, x=xs, ksize=ksize, strides=strides, padding=padding):
                    x = rand(xs, 5)
                    self.assertTensor(op(x, ksize, strides, padding),
                                      pool_reference(x, ksize, strides, padding, kind), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------ shape and indexing

@needs_numpy
class ShapeOpsTest(Case):
    def inputs(self, shape):
        base = np.arange(num_elements(shape)).reshape(shape)
        return [base.astype(np.float32) - 2.5, base.astype(np.int32), base % 3 == 0, base.astype(np.int64)]

    def test_reshape_transpose_expand_squeeze(self):
        for x in self.inputs((2, 3, 4)):
            with self.subTest(dtype=x.dtype):
                self.assertTensor(kiln.reshape(x, [4, -1]), x.reshape(4, -1))
                self.assertTensor(kiln.reshape(x, (24,)), x.reshape(24))
                self.assertTensor(kiln.transpose(x), x.T)
                self.assertTensor(kiln.transpose(x, [2, 0, 1]), x.transpose(2, 0, 1))
                self.assertTensor(kiln.expand_dims(x, 1), np.expand_dims(x, 1))
                self.assertTensor(kiln.expand_dims(x, -1), np.expand_dims(x, -1))
                y = x.reshape(1, 2, 1, 12, 1)
                self.assertTensor(kiln.squeeze(y), y.squeeze())
                self.assertTensor(kiln.squeeze(y, [0, -1]), y.squeeze((0, 4)))
                self.assertTensor(kiln.squeeze(y, 2), y.squeeze(2))
        self.assertTensor(kiln.reshape(kiln.constant(5.0), [1, 1]), np.full((1, 1), 5.0, np.float32))
        self.assertTensor(kiln.reshape(kiln.zeros([0, 3]), [3, 0, 5]), np.zeros((3, 0, 5), np.float32))

    def test_concat_split_stack(self):
        for a in self.inputs((2, 3)):
            with self.subTest(dtype=a.dtype):
                b = a[:, :1]
                self.assertTensor(kiln.concat([a, b], axis=1), np.concatenate([a, b], 1))
                self.assertTensor(kiln.concat([a, a[:1], a], 0), np.concatenate([a, a[:1], a], 0))
                self.assertTensor(kiln.concat([a], -1), a)
                for got, want in zip(kiln.split(a, 3, axis=1), np.split(a, 3, 1)):
                    self.assertTensor(got, want)
                parts = kiln.split(a, [1, -1, 0], axis=-1)
                for got, want in zip(parts, [a[:, :1], a[:, 1:], a[:, 3:]]):
                    self.assertTensor(got, want)
                self.assertEqual(len(parts), 3)
                self.assertTensor(kiln.stack([a, a * 0 if a.dtype != bool else a], axis=-1),
                                  np.stack([a, a * 0 if a.dtype != bool else a], -1))
                self.assertTensor(kiln.stack([a, a, a], axis=1), np.stack([a, a, a], 1))
        self.assertTensor(kiln.stack([1.0, 2.0]), np.array([1.0, 2.0], np.float32))  # scalars

    def test_slice_broadcast_tile(self):
        for x in self.inputs((3, 4, 2)):
            with self.subTest(dtype=x.dtype):
                self.assertTensor(kiln.slice(x, [1, 0, 1], [2, -1, 1]), x[1:3, :, 1:2])
                self.assertTensor(kiln.slice(x, [0, 4, 0], [3, 0, 2]), x[:, 4:4, :])
                self.assertTensor(kiln.broadcast_to(x[:, :1], [2, 3, 5, 2]), np.broadcast_to(x[:, :1], (2, 3, 5, 2)))
                self.assertTensor(kiln.tile(x, [2, 1, 3]), np.tile(x, (2, 1, 3)))
                self.assertTensor(kiln.tile(x, [1, 0, 1]), np.tile(x, (1, 0, 1)))
        self.assertTensor(kiln.broadcast_to(3, [2, 2]), np.full((2, 2), 3, np.int32))

    def test_gather(self):
        for params in self.inputs((4, 3)):
            with self.subTest(dtype=params.dtype):
                self.assertTensor(kiln.gather(params, [3, 0, 3]), params[[3, 0, 3]])
                idx = np.array([[2, 0], [1, 1]], dtype=np.int64)
                self.assertTensor(kiln.gather(params, idx, axis=1), np.take(params, idx, axis=1))
                self.assertTensor(kiln.gather(params, kiln.constant(1), axis=-1), params[:, 1])
                self.assertTensor(kiln.gather(params, kiln.zeros([0], "int32")), params[:0])

    def test_one_hot(self):
        idx = np.array([[0, 2], [3, 1]])
        want = np.eye(4, dtype=np.float32)[idx]
        self.assertTensor(kiln.one_hot(idx.astype("int32"), 4), want)
        self.assertTensor(kiln.one_hot(idx.astype("int64"), 4, on_value=5.0, off_value=-1.0), want * 6 - 1)
        # Out-of-range indices give a row of off_value, as in TF.
        self.assertTensor(kiln.one_hot([1, 3, -1], 3), [[0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype="float32")
        self.assertTensor(kiln.one_hot([0, 1], 0), np.zeros((2, 0), np.float32))


@needs_numpy
class DropoutTest(Case):
    def test_inverted_dropout(self):
        x = kiln.ones([100, 100])
        kiln.set_seed(3)
        y = kiln.nn.dropout(x, 0.3, seed=5).numpy()
        kept = y != 0
        np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
        self.assertAlmostEqual(kept.mean(), 0.7, delta=0.03)
        # TF2: the next call with the seed draws another mask; the sequence repeats after set_seed.
        self.assertFalse(np.array_equal(kiln.dropout(x, 0.3, seed=5).numpy(), y))
        kiln.set_seed(3)
        np.testing.assert_array_equal(kiln.dropout(x, 0.3, seed=5).numpy(), y)
        self.assertFalse(np.array_equal(kiln.dropout(x, 0.3, seed=6).numpy(), y))
        self.assertTensor(kiln.dropout(x, 0.3, training=False), np.ones((100, 100), np.float32))
        self.assertTensor(kiln.dropout(x, 0.0), np.ones((100, 100), np.float32))

    def test_unseeded_follows_the_global_seed(self):
        kiln.set_seed(11)
        a = [kiln.dropout(kiln.ones([50]), 0.5).numpy() for _ in range(2)]
        kiln.set_seed(11)
        b = [kiln.dropout(kiln.ones([50]), 0.5).numpy() for _ in range(2)]
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        self.assertFalse(np.array_equal(a[0], a[1]))


@needs_numpy
class EmptyTensorTest(Case):
    def test_ops_on_empty_tensors(self):
        f32 = np.float32
        e, ones4, zeros4 = np.zeros((0, 3), f32), np.ones(4, f32), np.zeros(4, f32)
        cases = [
            ("add", lambda: kiln.add(e, 1.0), e),
            ("matmul", lambda: kiln.matmul(np.zeros((0, 2, 3), f32), np.ones((3, 4), f32)), np.zeros((0, 2, 4))),
            ("conv2d_batch", lambda: kiln.conv2d(np.zeros((0, 3, 3, 1), f32), np.ones((2, 2, 1, 2), f32)),
             np.zeros((0, 2, 2, 2))),
            ("conv2d_channels", lambda: kiln.conv2d(np.zeros((1, 3, 3, 0), f32), np.zeros((2, 2, 0, 2), f32)),
             np.zeros((1, 2, 2, 2))),
            ("softmax_rows", lambda: kiln.softmax(e), e),
            ("softmax_axis", lambda: kiln.log_softmax(np.zeros((2, 0), f32)), np.zeros((2, 0))),
            ("layer_norm", lambda: kiln.layer_norm(np.zeros((0, 4), f32), ones4, zeros4), np.zeros((0, 4))),
            ("batch_norm", lambda: kiln.batch_norm(np.zeros((0, 4), f32), ones4, zeros4, zeros4, ones4)[0],
             np.zeros((0, 4))),
            ("max_pool2d", lambda: kiln.max_pool2d(np.zeros((0, 2, 2, 1), f32), 2, 2), np.zeros((0, 1, 1, 1))),
            ("avg_pool2d", lambda: kiln.avg_pool2d(np.zeros((0, 2, 2, 1), f32), 2, 2), np.zeros((0, 1, 1, 1))),
            ("one_hot", lambda: kiln.one_hot(np.zeros(0, np.int32), 3), np.zeros((0, 3))),
            ("transpose", lambda: kiln.transpose(e), e.T),
            ("tile", lambda: kiln.tile(e, [3, 1]), e),
            ("concat", lambda: kiln.concat([np.zeros((2, 0), f32), np.ones((2, 1), f32)], 1), np.ones((2, 1))),
            ("split", lambda: kiln.split(e, 3, axis=1)[0], np.zeros((0, 1))),
            ("argmax", lambda: kiln.argmax(e, -1), np.zeros(0, np.int64)),
            ("where", lambda: kiln.where(np.zeros(0, bool), np.zeros(0, f32), 1.0), np.zeros(0)),
            ("dropout", lambda: kiln.dropout(np.zeros(0, f32), 0.5), np.zeros(0)),
            ("broadcast_to", lambda: kiln.broadcast_to(1.0, [0, 3]), e),
            ("gather", lambda: kiln.gather(e, np.zeros(0, np.int64)), e),
            ("random_uniform", lambda: kiln.random_uniform([0, 3]), e),
        ]
        for name, fn, want in cases:
            with self.subTest(op=name):
                self.assertTensor(fn(), want)
        self.assertEqual(kiln.cast(e, "bfloat16").shape, (0, 3))

    def test_gradient_of_empty_tensor(self):
        x = kiln.zeros([0, 3])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.reduce_sum(kiln.tanh(x) * 2.0)
        self.assertEqual(y.item(), 0.0)
        self.assertEqual(tape.gradient(y, x).shape, (0, 3))


# ------------------------------------------------------------------------------------ creation and random

@needs_numpy
class CreationTest(Case):
    def test_zeros_ones_fill_like(self):
        for dtype in DTYPES:
            with self.subTest(dtype=dtype):
                npdt = "float32" if dtype == "bfloat16" else dtype
                self.assertTensor(kiln.zeros([2, 3], dtype), np.zeros((2, 3), npdt), dtype=dtype)
                self.assertTensor(kiln.ones((3,), dtype), np.ones(3, npdt), dtype=dtype)
                self.assertTensor(kiln.fill([2, 1], 2, dtype), np.full((2, 1), 2, npdt), dtype=dtype)
                t = kiln.fill([1, 2], 1, dtype)
                self.assertTensor(kiln.zeros_like(t), np.zeros((1, 2), npdt), dtype=dtype)
                self.assertTensor(kiln.ones_like(t), np.ones((1, 2), npdt), dtype=dtype)
        self.assertTensor(kiln.zeros(3), np.zeros(3, np.float32))
        self.assertTensor(kiln.ones(kiln.constant([2, 1])), np.ones((2, 1), np.float32))  # a shape tensor
        self.assertTensor(kiln.ones([]), np.float32(1))
        self.assertTensor(kiln.zeros([2, 0]), np.zeros((2, 0), np.float32))
        # tf.fill takes its dtype from the value.
        self.assertTensor(kiln.fill([2], 7), np.full(2, 7, np.int32))
        self.assertTensor(kiln.fill([2], 0.5), np.full(2, 0.5, np.float32))
        self.assertTensor(kiln.fill([2], True), np.full(2, True))
        self.assertTensor(kiln.fill([2], -1.5, "bfloat16"), np.full(2, -1.5, np.float32), dtype="bfloat16")
        self.assertTensor(kiln.zeros_like([[1, 2]]), np.zeros((1, 2), np.int32))

    def test_range(self):
        self.assertTensor(kiln.range(5), np.arange(5, dtype=np.int32))
        self.assertTensor(kiln.range(2, 11, 3), np.arange(2, 11, 3, dtype=np.int32))
        self.assertTensor(kiln.range(10, 0, -3), np.arange(10, 0, -3, dtype=np.int32))
        self.assertTensor(kiln.range(0, 1, 0.25), np.arange(0, 1, 0.25, dtype=np.float32))
        self.assertTensor(kiln.range(1.5, -1.0, -0.5), np.arange(1.5, -1.0, -0.5, dtype=np.float32))
        self.assertTensor(kiln.range(3, dtype="int64"), np.arange(3, dtype=np.int64))
        self.assertTensor(kiln.range(4, dtype="float32"), np.arange(4, dtype=np.float32))
        self.assertTensor(kiln.range(2, 2), np.zeros(0, np.int32))

    def test_range_infers_the_dtype_of_its_arguments(self):
        # tf.range: the widest of the arguments' dtypes; a tensor's (or NumPy scalar's) own, int32 for a
        # Python int, float32 for a Python float.
        self.assertTensor(kiln.range(kiln.constant(3, "int64")), np.arange(3, dtype=np.int64))
        self.assertTensor(kiln.range(1, kiln.constant(6, "int64"), 2), np.arange(1, 6, 2, dtype=np.int64))
        self.assertTensor(kiln.range(kiln.constant(3)), np.arange(3, dtype=np.int32))
        self.assertTensor(kiln.range(kiln.Variable(2)), np.arange(2, dtype=np.int32))
        self.assertTensor(kiln.range(kiln.constant(2, "int64"), 3, 0.5), np.arange(2, 3, 0.5, dtype=np.float32))
        self.assertTensor(kiln.range(np.int64(3)), np.arange(3, dtype=np.int64))
        self.assertTensor(kiln.range(np.float64(1.5)), np.arange(1.5, dtype=np.float64), dtype="float64")
        self.assertTensor(kiln.range(kiln.constant(4, "int64"), dtype="int32"), np.arange(4, dtype=np.int32))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"range: delta has shape \(2,\); expected a scalar"):
            kiln.range(0, 4, kiln.constant([1, 2]))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "range: an argument is uint8; expected one of int32"):
            kiln.range(kiln.constant(3, "uint8"))


@needs_numpy
class RandomTest(Case):
    def test_distributions(self):
        u = kiln.random_uniform([200, 100], -2.0, 3.0, seed=1).numpy()
        self.assertEqual(u.dtype, np.float32)
        self.assertTrue(u.min() >= -2.0 and u.max() < 3.0)
        self.assertAlmostEqual(u.mean(), 0.5, delta=0.05)
        n = kiln.random.normal([200, 100], mean=1.0, stddev=2.0, seed=2).numpy()
        self.assertAlmostEqual(n.mean(), 1.0, delta=0.05)
        self.assertAlmostEqual(n.std(), 2.0, delta=0.05)
        t = kiln.random.truncated_normal([200, 100], mean=-1.0, stddev=0.5, seed=3).numpy()
        self.assertTrue(np.all(np.abs(t + 1.0) <= 1.0 + 1e-6))  # re-drawn beyond two stddevs
        self.assertAlmostEqual(t.mean(), -1.0, delta=0.02)
        self.assertAlmostEqual(t.std(), 0.5 * 0.8796, delta=0.02)  # the std of a normal cut at 2 sigma
        self.assertEqual(kiln.random.uniform([0, 3], seed=1).shape, (0, 3))
        self.assertTensor(kiln.random_normal([3], 4.0, 0.0, seed=1), np.full(3, 4.0, np.float32))

    def test_seeded_determinism(self):
        for fn in (kiln.random_uniform, kiln.random_normal, kiln.truncated_normal):
            with self.subTest(op=fn.__name__):
                kiln.set_seed(2)
                a, b, c = fn([4, 3], seed=9).numpy(), fn([4, 3], seed=9).numpy(), fn([4, 3], seed=10).numpy()
                self.assertFalse(np.array_equal(a, b))  # TF2: each call with op seed 9 advances its counter
                self.assertFalse(np.array_equal(a, c))
                kiln.set_seed(2)
                np.testing.assert_array_equal(fn([4, 3], seed=9).numpy(), a)  # and repeats after set_seed
                np.testing.assert_array_equal(fn([4, 3], seed=9).numpy(), b)
                kiln.set_seed(5)
                first = [fn([6]).numpy() for _ in range(2)]
                kiln.set_seed(5)
                again = [fn([6]).numpy() for _ in range(2)]
                np.testing.assert_array_equal(first, again)
                self.assertFalse(np.array_equal(first[0], first[1]))
                kiln.set_seed(6)
                self.assertFalse(np.array_equal(fn([6]).numpy(), first[0]))


# ------------------------------------------------------------------------------------------ namespaces

class NamespaceTest(unittest.TestCase):
    def test_aliases_are_the_ops(self):
        k = kiln
        expected = [
            (k.nn, dict(relu=k.relu, gelu=k.gelu, sigmoid=k.sigmoid, tanh=k.tanh, softplus=k.softplus, elu=k.elu,
                       leaky_relu=k.leaky_relu, swish=k.swish, silu=k.swish, softmax=k.softmax,
                       log_softmax=k.log_softmax, dropout=k.dropout, conv2d=k.conv2d, max_pool2d=k.max_pool2d,
                        avg_pool2d=k.avg_pool2d, layer_norm=k.layer_norm, batch_norm=k.batch_norm)),
            (k.math, dict(add=k.add, subtract=k.sub, multiply=k.mul, divide=k.truediv, maximum=k.maximum,
                         minimum=k.minimum, pow=k.pow, negative=k.neg, abs=k.abs, exp=k.exp, log=k.log,
                         sqrt=k.sqrt, rsqrt=k.rsqrt, square=k.square, tanh=k.tanh, sigmoid=k.sigmoid,
                         equal=k.equal, not_equal=k.not_equal, greater=k.greater, greater_equal=k.greater_equal,
                         less=k.less, less_equal=k.less_equal, logical_and=k.logical_and,
                         logical_or=k.logical_or, logical_xor=k.logical_xor, logical_not=k.logical_not,
                         reduce_sum=k.sum, reduce_mean=k.mean, reduce_max=k.max, reduce_min=k.min,
                          argmax=k.argmax, softplus=k.softplus)),
            (k.linalg, dict(matmul=k.matmul)),
        ]
        for ns, names in expected:
            for name, fn in names.items():
                self.assertIs(getattr(ns, name), fn, name)
        for a, b in ((k.subtract, k.sub), (k.multiply, k.mul), (k.divide, k.truediv), (k.negative, k.neg),
                     (k.reduce_sum, k.sum), (k.reduce_mean, k.mean), (k.reduce_max, k.max), (k.reduce_min, k.min),
                     (k.convert_to_tensor(1.0).dtype, "float32")):
            self.assertEqual(a, b)

    def test_random_namespace_passes_arguments(self):
        # Each pair starts from set_seed, so both calls are the first with op seed 4.
        kiln.set_seed(8)
        a = flat(kiln.random.uniform([3], minval=1.0, maxval=2.0, seed=4))
        kiln.set_seed(8)
        self.assertEqual(a, flat(kiln.random_uniform([3], 1.0, 2.0, seed=4)))
        kiln.set_seed(8)
        a = flat(kiln.random.normal([3], mean=1.0, stddev=3.0, seed=4))
        kiln.set_seed(8)
        self.assertEqual(a, flat(kiln.random_normal([3], 1.0, 3.0, seed=4)))
        kiln.set_seed(8)
        a = flat(kiln.random.truncated_normal([3], mean=-1.0, stddev=0.5, seed=4))
        kiln.set_seed(8)
        self.assertEqual(a, flat(kiln.truncated_normal([3], -1.0, 0.5, seed=4)))
        kiln.random.set_seed(3)
        a = flat(kiln.random.normal([2]))
        kiln.set_seed(3)
        self.assertEqual(a, flat(kiln.random_normal([2])))

    @needs_numpy
    def test_random_uniform_dtypes(self):
        # TF's signature: uniform(shape, minval=0, maxval=None, dtype=float32, seed=None).
        kiln.set_seed(2)
        a = kiln.random.uniform([50], -1, 1, "float32", 9).numpy()
        kiln.set_seed(2)
        self.assertEqual(a.tobytes(), kiln.random_uniform([50], -1.0, 1.0, seed=9).numpy().tobytes())
        d = kiln.random.uniform([2000], 3, 5, dtype="float64").numpy()
        self.assertEqual(d.dtype, np.float64)
        self.assertTrue(((d >= 3) & (d < 5)).all())
        self.assertGreater((d.astype(np.float32).astype(np.float64) != d).sum(), 1990)
        b = kiln.random.uniform([1000], dtype="bfloat16")
        self.assertEqual(b.dtype, "bfloat16")
        bf = kiln.cast(b, "float32").numpy()
        self.assertTrue(((bf >= 0) & (bf < 1) & (bf * 256 == np.floor(bf * 256))).all())
        i = kiln.random.uniform([3000], -2, 3, dtype="int32").numpy()
        self.assertEqual(i.dtype, np.int32)
        self.assertEqual(sorted(set(i.tolist())), [-2, -1, 0, 1, 2])
        j = kiln.random.uniform([3000], minval=2**40, maxval=2**40 + 3, dtype=np.int64).numpy()
        self.assertEqual(sorted(set(j.tolist())), [2**40, 2**40 + 1, 2**40 + 2])
        s1 = kiln.random.stateless_uniform([400], seed=[5, 6], minval=0, maxval=9, dtype="int64").numpy()
        s2 = kiln.random.stateless_uniform([400], seed=[5, 6], minval=0, maxval=9, dtype="int64").numpy()
        self.assertEqual(s1.tolist(), s2.tolist())
        self.assertTrue(((s1 >= 0) & (s1 < 9)).all())
        f1 = kiln.random.stateless_uniform([40], seed=[5, 6], dtype="float64").numpy()
        self.assertEqual(f1.tobytes(), kiln.random.stateless_uniform([40], seed=[5, 6], dtype="float64").numpy().tobytes())
        with self.assertRaisesRegex(ValueError, "maxval is required for integer dtype int32"):
            kiln.random.uniform([2], dtype="int32")
        with self.assertRaisesRegex(TypeError, "minval is 0.5; expected an integer"):
            kiln.random.uniform([2], 0.5, 4, dtype="int64")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "minval 3 is not less than maxval 3"):
            kiln.random.uniform([2], 3, 3, dtype="int64")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "dtype is uint8; expected float32"):
            kiln.random.uniform([2], dtype="uint8")


# ------------------------------------------------------------------------------------------ conversion

class ConversionTest(Case):
    def test_scalars(self):
        for value, dtype in ((3, "int32"), (2.5, "float32"), (True, "bool"), (2 ** 40, "int64"), (-2 ** 31, "int32")):
            with self.subTest(value=value):
                t = kiln.constant(value)
                self.assertEqual((t.shape, t.dtype, t.ndim, t.size), ((), dtype, 0, 1))
                self.assertEqual(t.item(), value)
                self.assertEqual(t.tolist(), value)
        self.assertEqual(float(kiln.constant(2.5)), 2.5)
        self.assertEqual(int(kiln.constant(7, "int64")), 7)
        self.assertTrue(bool(kiln.constant(True)))
        self.assertEqual(kiln.constant(3.0, shape=[2, 2]).tolist(), [[3.0, 3.0], [3.0, 3.0]])
        with self.assertRaises(TypeError):
            len(kiln.constant(1.0))

    def test_empty(self):
        e = kiln.constant([])
        self.assertEqual((e.shape, e.dtype, e.size, e.tolist()), ((0,), "float32", 0, []))
        self.assertEqual(kiln.zeros([3, 0]).tolist(), [[], [], []])
        self.assertEqual(kiln.zeros([2, 0, 3], "int32").tolist(), [[], []])
        self.assertEqual(kiln.constant([[], []]).shape, (2, 0))
        self.assertEqual(kiln.constant([[], []], "int64").tolist(), [[], []])
        self.assertEqual((kiln.zeros([0, 4]) + 1.0).shape, (0, 4))
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.constant([]).item()

    def test_bool_int64_uint8(self):
        b = kiln.constant([[True, False], [False, True]])
        self.assertEqual((b.dtype, b.tolist()), ("bool", [[True, False], [False, True]]))
        self.assertEqual(kiln.constant([1, 0, 2], "bool").tolist(), [True, False, True])
        i = kiln.constant([2 ** 40, -3])
        self.assertEqual((i.dtype, i.tolist()), ("int64", [2 ** 40, -3]))
        self.assertEqual((i + 1).dtype, "int64")
        self.assertEqual((i * 2).tolist(), [2 ** 41, -6])
        self.assertEqual(kiln.constant([1, 2], "int64").tolist(), [1, 2])
        self.assertEqual(kiln.constant([0, 255], "uint8").tolist(), [0, 255])

    def test_bfloat16_round_trip(self):
        exact = [1.0, -2.5, 3.140625, 0.0, 65536.0, 1e-38]
        t = kiln.constant(exact, "bfloat16")
        self.assertEqual(t.dtype, "bfloat16")
        self.assertEqual(t.tolist()[:5], exact[:5])
        self.assertEqual(kiln.cast(kiln.cast(t, "float32"), "bfloat16").tolist(), t.tolist())
        self.assertEqual(kiln.constant([3.14159], "bfloat16").tolist(), [3.140625])
        self.assertEqual(kiln.constant(1.5, "bfloat16").item(), 1.5)

    def test_nested_lists_and_tuples(self):
        t = kiln.constant(([1, 2], (3, 4), [5, 6]))
        self.assertEqual((t.shape, t.dtype), ((3, 2), "int32"))
        self.assertEqual(kiln.constant([[1, 2.5]]).dtype, "float32")
        self.assertEqual(kiln.constant([[[1.0]], [[2.0]]]).shape, (2, 1, 1))
        self.assertEqual(kiln.constant([[1, 2], [3, 4]], "float32").tolist(), [[1.0, 2.0], [3.0, 4.0]])
        for ragged in ([[1, 2], [3]], [[1], 2], [[[1]], [[1, 2]]]):
            with self.assertRaises(kiln.InvalidArgumentError):
                kiln.constant(ragged)

    def test_operators_with_python_numbers_follow_the_tensor_dtype(self):
        for dtype in ("float32", "int32", "int64"):
            t = kiln.constant([1, 2, 4], dtype)
            py = float if dtype == "float32" else int
            cases = [(t + 2, [3, 4, 6]), (2 + t, [3, 4, 6]), (t - 1, [0, 1, 3]), (10 - t, [9, 8, 6]),
                     (t * 3, [3, 6, 12]), (3 * t, [3, 6, 12]), (-t, [-1, -2, -4]), (abs(-t), [1, 2, 4])]
            for k, (got, want) in enumerate(cases):
                with self.subTest(dtype=dtype, case=k):
                    self.assertEqual(got.dtype, dtype)
                    self.assertEqual(got.tolist(), [py(w) for w in want])
            # `/` is TF's truediv: int32 and int64 divide as float64.
            for got, want in ((t / 2, [0.5, 1, 2]), (8 / t, [8, 4, 2])):
                with self.subTest(dtype=dtype, op="truediv"):
                    self.assertEqual(got.dtype, "float64" if dtype != "float32" else "float32")
                    self.assertEqual(got.tolist(), want)
            self.assertEqual((t > 1).tolist(), [False, True, True])
            self.assertEqual((1 < t).tolist(), [False, True, True])
        f = kiln.constant([1.0, 2.0])
        self.assertEqual((f ** 2).tolist(), [1.0, 4.0])
        self.assertEqual((2 ** f).tolist(), [2.0, 4.0])
        self.assertEqual((f + [1, 2]).tolist(), [2.0, 4.0])  # an int list takes the tensor's float dtype
        self.assertEqual(kiln.add(1.5, 2).tolist(), 3.5)  # both Python numbers: the first decides, as TF
        self.assertEqual(kiln.add(kiln.constant(2, "int64"), 3.0).dtype, "int64")  # an integral float is fine
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.constant([1, 2]) + 1.5  # never silently truncated
        with self.assertRaises(kiln.InvalidArgumentError):
            f + kiln.constant([1, 2])  # two tensors must agree

    @needs_numpy
    def test_numpy_arrays(self):
        a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
        views = {"transposed": a.T, "strided": a[:, ::2, 1::2], "reversed": a[::-1, :, ::-1],
                 "fortran": np.asfortranarray(a), "byteswapped": a.astype(">f4"),
                 "broadcast": np.broadcast_to(a[:1], (3, 3, 4))}
        for name, view in views.items():
            with self.subTest(view=name):
                t = kiln.constant(view)
                self.assertEqual(t.dtype, "float32" if name == "byteswapped" else "float64")  # as tf.constant
                np.testing.assert_array_equal(t.numpy(), view)
        for value, dtype, shape in ((np.float32(2.5), "float32", ()), (np.array(3), "int64", ()),
                                    (np.int32(4), "int32", ()), (np.bool_(True), "bool", ()),
                                    (np.zeros((0, 2), np.uint8), "uint8", (0, 2)),
                                    (np.array([[True, False]]), "bool", (1, 2))):
            with self.subTest(value=repr(value)):
                t = kiln.constant(value)
                self.assertEqual((t.dtype, t.shape), (dtype, shape))
                np.testing.assert_array_equal(t.numpy(), value)
                np.testing.assert_array_equal(np.asarray(t), value)
        self.assertEqual(kiln.constant(np.arange(6), shape=[2, 3]).shape, (2, 3))
        self.assertEqual(kiln.constant(np.arange(3), "bfloat16").tolist(), [0.0, 1.0, 2.0])
        with self.assertRaises(TypeError):  # as tf.constant: a float array does not convert to an integer dtype
            kiln.constant(np.array([1.7]), "int32")
        b = kiln.cast(kiln.constant([1.5]), "bfloat16")
        self.assertEqual((b.numpy().dtype, b.numpy().tolist()), (np.float32, [1.5]))
        t = kiln.constant([1.0, 2.0])
        product = np.ones(2) * t  # NumPy defers to the Tensor's operators
        self.assertIsInstance(product, kiln.Tensor)
        self.assertEqual((product.dtype, product.tolist()), ("float32", [1.0, 2.0]))
        self.assertEqual((t + np.array([1.0, 1.0])).dtype, "float32")
        self.assertEqual(np.asarray(t, dtype=np.int64).dtype, np.int64)
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.constant(np.zeros(2, np.float16))

    def test_variables_in_expressions(self):
        v = kiln.Variable([1.0, -2.0], name="v")
        w = kiln.Variable([2.0, 4.0])
        self.assertEqual((v + 1).tolist(), [2.0, -1.0])
        self.assertEqual((1 - v).tolist(), [0.0, 3.0])
        self.assertEqual((v * w).tolist(), [2.0, -8.0])
        self.assertEqual((w / v).tolist(), [2.0, -2.0])
        self.assertEqual((2 / w).tolist(), [1.0, 0.5])
        self.assertEqual((v ** 2).tolist(), [1.0, 4.0])
        self.assertEqual((2 ** v).tolist(), [2.0, 0.25])
        self.assertEqual((-v).tolist(), [-1.0, 2.0])
        self.assertEqual(abs(v).tolist(), [1.0, 2.0])
        self.assertEqual((v < 0).tolist(), [False, True])
        self.assertEqual((v >= w).tolist(), [False, False])
        self.assertEqual(kiln.add(v, w).tolist(), [3.0, 2.0])
        self.assertEqual(kiln.reduce_sum(v).item(), -1.0)
        self.assertEqual(kiln.constant(v).tolist(), [1.0, -2.0])
        m = kiln.Variable([[1.0, 2.0]])
        self.assertEqual((m @ kiln.constant([[1.0], [1.0]])).tolist(), [[3.0]])
        self.assertEqual((kiln.constant([[1.0], [1.0]]) @ m).tolist(), [[1.0, 2.0], [1.0, 2.0]])
        self.assertEqual(float(kiln.Variable(2.5)), 2.5)
        flags = kiln.Variable([True, False])
        self.assertEqual((flags & [True, True]).tolist(), [True, False])
        self.assertEqual((~flags).tolist(), [False, True])
        v.assign([0, 3])  # a Python int list takes the variable's float dtype
        self.assertEqual((v.dtype, flat(v)), ("float32", [0.0, 3.0]))
        v.assign_add([1, 1])
        v.assign_sub(kiln.constant([0.5, 0.5]))
        self.assertEqual(flat(v), [0.5, 3.5])


# ---------------------------------------------------------------------------------------------- errors

def z(*shape, dtype="float32"):
    return kiln.zeros(shape, dtype)


def _non_persistent_tape():
    x = kiln.constant([1.0])
    with kiln.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.gradient(y, x)
    tape.gradient(y, x)


IA = kiln.InvalidArgumentError
# (name, fn, exception, parts of the message): each names the op and what was wrong with the input.
ERROR_CASES = [
    ("add", lambda: kiln.add(z(2, 3), z(3, 2)), IA, ["add", "[2, 3]", "[3, 2]"]),
    ("sub", lambda: kiln.sub(z(2), z(2, dtype="int32")), IA, ["sub", "float32[2]", "int32[2]"]),
    ("mul", lambda: z(2, dtype="bool") * z(2, dtype="bool"), IA, ["mul", "bool[2]"]),
    ("div", lambda: z(4) / z(3), IA, ["div", "[4]", "[3]"]),
    ("maximum", lambda: kiln.maximum(z(3, dtype="uint8"), z(3, dtype="uint8")), IA, ["maximum", "uint8[3]"]),
    ("minimum", lambda: kiln.minimum(z(2, 2), z(3)), IA, ["minimum", "[2, 2]", "[3]"]),
    ("pow", lambda: z(2, dtype="bool") ** kiln.constant([True, False]), IA, ["pow", "bool[2]"]),
    ("equal", lambda: kiln.equal(z(2), z(3)), IA, ["equal", "[2]", "[3]"]),
    ("not_equal", lambda: kiln.not_equal(z(2), z(2, dtype="int64")), IA, ["not_equal", "int64[2]"]),
    ("greater", lambda: z(2, 3) > z(2), IA, ["greater", "[2, 3]", "[2]"]),
    ("greater_equal", lambda: z(2, 3) >= z(4), IA, ["greater_equal", "[2, 3]", "[4]"]),
    ("less", lambda: z(1, 3) < z(2, 2), IA, ["less", "[1, 3]", "[2, 2]"]),
    ("less_equal", lambda: z(2) <= z(2, dtype="uint8"), IA, ["less_equal", "uint8[2]"]),
    ("logical_and", lambda: kiln.logical_and(z(2), z(2)), IA, ["logical_and", "float32[2]"]),
    ("logical_or", lambda: z(2, dtype="int32") | z(2, dtype="int32"), IA, ["logical_or", "int32[2]"]),
    ("logical_xor", lambda: kiln.logical_xor(z(2, dtype="bool"), z(3, dtype="bool")), IA, ["logical_xor", "[3]"]),
    ("logical_not", lambda: ~z(2), IA, ["logical_not", "float32[2]"]),
    ("neg", lambda: -z(2, dtype="bool"), IA, ["neg", "bool[2]"]),
    ("abs", lambda: abs(z(2, dtype="uint8")), IA, ["abs", "uint8[2]"]),
    ("exp", lambda: kiln.exp(z(2, dtype="int32")), IA, ["exp", "int32[2]"]),
    ("log", lambda: kiln.log(z(2, dtype="int64")), IA, ["log", "int64[2]"]),
    ("sqrt", lambda: kiln.sqrt(z(1, 2, dtype="int32")), IA, ["sqrt", "int32[1, 2]"]),
    ("rsqrt", lambda: kiln.rsqrt(z(2, dtype="bool")), IA, ["rsqrt", "bool[2]"]),
    ("square", lambda: kiln.square(z(2, dtype="bool")), IA, ["square", "bool[2]"]),
    ("tanh", lambda: kiln.tanh(z(3, dtype="int32")), IA, ["tanh", "int32[3]"]),
    ("sigmoid", lambda: kiln.sigmoid(z(2, dtype="uint8")), IA, ["sigmoid", "uint8[2]"]),
    ("relu", lambda: kiln.nn.relu(z(2, dtype="uint8")), IA, ["relu", "uint8[2]"]),
    ("softplus", lambda: kiln.softplus(z(2, dtype="int64")), IA, ["softplus", "int64[2]"]),
    ("swish", lambda: kiln.swish(z(2, dtype="int32")), IA, ["swish", "int32[2]"]),
    ("gelu", lambda: kiln.gelu(z(2, dtype="uint8")), IA, ["gelu", "uint8[2]"]),
    ("elu", lambda: kiln.elu(z(2, dtype="int32")), IA, ["elu", "int32[2]"]),
    ("elu_alpha", lambda: kiln.elu(z(2), alpha=float("inf")), IA, ["elu", "alpha", "inf"]),
    ("leaky_relu", lambda: kiln.leaky_relu(z(2, dtype="int32")), IA, ["leaky_relu", "int32[2]"]),
    ("where", lambda: kiln.where(z(2), z(2), z(2)), IA, ["where", "float32[2]", "bool"]),
    ("where_dtypes", lambda: kiln.where(kiln.constant([True]), z(2), z(2, dtype="int32")), IA,
     ["where", "int32[2]"]),
    ("cast", lambda: kiln.cast(z(2), "complex64"), IA, ["cast", "complex64"]),
    # stop_gradient, zeros_like and ones_like accept every tensor; only the conversion of their input can fail.
    ("stop_gradient", lambda: kiln.stop_gradient([[1.0], [2.0, 3.0]]), IA, ["constant", "ragged"]),
    ("zeros_like", lambda: kiln.zeros_like("abc"), IA, ["constant", "abc"]),
    ("ones_like", lambda: kiln.ones_like([[1], [2, 3]]), IA, ["constant", "ragged"]),
    ("matmul", lambda: z(2, 3) @ z(2, 3), IA, ["matmul", "float32[2, 3]", "inner"]),
    ("matmul_rank", lambda: kiln.matmul(z(2), z(2, 2)), IA, ["matmul", "float32[2]", "rank"]),
    ("matmul_batch", lambda: kiln.matmul(z(2, 2, 3), z(3, 3, 2)), IA, ["matmul", "[2, 2, 3]", "[3, 3, 2]"]),
    ("matmul_dtype", lambda: kiln.matmul(z(2, 2, dtype="uint8"), z(2, 2, dtype="uint8")), IA,
     ["matmul", "uint8[2, 2]"]),
    ("matmul_mixed", lambda: kiln.matmul(z(2, 2, dtype="int32"), z(2, 2)), IA, ["matmul", "different dtypes"]),
    ("sum", lambda: kiln.reduce_sum(z(2, dtype="bool")), IA, ["sum", "bool[2]"]),
    ("sum_axis", lambda: kiln.reduce_sum(z(2, 3), axis=2), IA, ["sum", "axis 2", "rank 2"]),
    ("sum_repeated_axis", lambda: kiln.reduce_sum(z(2, 3), axis=[0, -2]), IA, ["sum", "float32[2, 3]"]),
    ("mean", lambda: kiln.reduce_mean(z(2, dtype="bool")), IA, ["mean", "bool[2]"]),
    ("pow_negative_integer", lambda: kiln.pow(kiln.constant([2]), -1), IA, ["pow", "negative integer powers"]),
    ("clip_integer_bound", lambda: kiln.clip_by_value(kiln.constant([2]), 0.5, 3), IA,
     ["clip_by_value", "clip_value_min", "whole number"]),
    ("max", lambda: kiln.reduce_max(z(2, dtype="uint8")), IA, ["max", "uint8[2]"]),
    ("min", lambda: kiln.reduce_min(z(2, dtype="bool")), IA, ["min", "bool[2]"]),
    ("argmax", lambda: kiln.argmax(z(2, 0), 1), IA, ["argmax", "float32[2, 0]"]),
    ("softmax", lambda: kiln.softmax(kiln.constant(1.0)), IA, ["softmax", "float32[]"]),
    ("log_softmax", lambda: kiln.log_softmax(z(2, dtype="int32")), IA, ["log_softmax", "int32[2]"]),
    ("layer_norm", lambda: kiln.layer_norm(z(2, 4), z(3), z(4)), IA, ["layer_norm", "float32[3]", "float32[2, 4]"]),
    ("batch_norm", lambda: kiln.batch_norm(z(2, 3), z(3), z(3), z(2), z(3)), IA,
     ["batch_norm", "float32[2]", "float32[2, 3]"]),
    ("batch_norm_inference_without_statistics", lambda: kiln.batch_norm(z(2, 3), z(3), z(3)), IA,
     ["batch_norm", "mean"]),
    ("conv2d", lambda: kiln.conv2d(z(1, 3, 3, 2), z(2, 2, 3, 1)), IA, ["conv2d", "[1, 3, 3, 2]", "[2, 2, 3, 1]"]),
    ("conv2d_rank", lambda: kiln.conv2d(z(3, 3, 2), z(2, 2, 2, 1)), IA, ["conv2d", "[3, 3, 2]"]),
    ("conv2d_padding", lambda: kiln.conv2d(z(1, 3, 3, 1), z(1, 1, 1, 1), padding="FULL"), IA, ["conv2d", "FULL"]),
    ("conv2d_strides", lambda: kiln.conv2d(z(1, 3, 3, 1), z(1, 1, 1, 1), strides=[1, 2, 3]), IA,
     ["conv2d", "strides"]),
    ("max_pool2d", lambda: kiln.max_pool2d(z(1, 2, 2, 1), 3, 1), IA, ["max_pool2d", "[1, 2, 2, 1]"]),
    ("avg_pool2d", lambda: kiln.avg_pool2d(z(2, 2, 1), 1, 1), IA, ["avg_pool2d", "[2, 2, 1]"]),
    ("reshape", lambda: kiln.reshape(z(2, 3), [4, 2]), IA, ["reshape", "float32[2, 3]", "[4, 2]"]),
    ("transpose", lambda: kiln.transpose(z(2, 3), [0, 0]), IA, ["transpose", "[0, 0]", "float32[2, 3]"]),
    ("concat", lambda: kiln.concat([z(2, 3), z(3, 3)], 1), IA, ["concat", "float32[3, 3]", "float32[2, 3]"]),
    ("split", lambda: kiln.split(z(5, 2), 2), IA, ["split", "float32[5, 2]"]),
    ("split_sizes", lambda: kiln.split(z(5, 2), [2, 2]), IA, ["split", "[2, 2]", "float32[5, 2]"]),
    ("slice", lambda: kiln.slice(z(3, 4), [1, 1], [3, 1]), IA, ["slice", "[3, 4]"]),
    ("stack", lambda: kiln.stack([z(2), z(3)]), IA, ["stack", "float32[3]", "float32[2]"]),
    ("expand_dims", lambda: kiln.expand_dims(z(2), 3), IA, ["expand_dims", "float32[2]"]),
    ("squeeze", lambda: kiln.squeeze(z(2, 1), 0), IA, ["squeeze", "float32[2, 1]"]),
    ("broadcast_to", lambda: kiln.broadcast_to(z(2, 3), [3, 3]), IA, ["broadcast_to", "float32[2, 3]", "[3, 3]"]),
    ("tile", lambda: kiln.tile(z(2, 3), [2]), IA, ["tile", "float32[2, 3]"]),
    ("gather", lambda: kiln.gather(z(3, 2), [0, 5]), IA, ["gather", "[3, 2]", "5"]),
    ("gather_indices_dtype", lambda: kiln.gather(z(3, 2), z(1)), IA, ["gather", "float32[1]"]),
    ("one_hot", lambda: kiln.one_hot(z(2), 3), IA, ["one_hot", "float32[2]"]),
    ("one_hot_depth", lambda: kiln.one_hot([0, 1], -1), IA, ["one_hot", "int32[2]", "depth"]),
    ("dropout", lambda: kiln.dropout(z(2), 1.0), IA, ["dropout", "float32[2]"]),
    ("zeros", lambda: kiln.zeros([2], "complex64"), IA, ["zeros", "complex64"]),
    ("ones", lambda: kiln.ones([2], "float16"), IA, ["ones", "float16"]),
    ("fill", lambda: kiln.fill([2], 1.0, "string"), IA, ["fill", "string"]),
    ("range", lambda: kiln.range(0, 1, 0), IA, ["range", "delta"]),
    ("range_dtype", lambda: kiln.range(5, dtype="bool"), IA, ["range", "bool"]),
    ("range_direction", lambda: kiln.range(5, 0), IA, ["range", "5", "0"]),
    ("random_uniform", lambda: kiln.random.uniform([3], 2.0, 1.0), IA, ["random_uniform", "[3]"]),
    ("random_normal", lambda: kiln.random.normal([2], 0.0, -1.0), IA, ["random_normal", "[2]"]),
    ("truncated_normal", lambda: kiln.truncated_normal([2], 0.0, -1.0), IA, ["truncated_normal", "[2]"]),
    ("variable_assign", lambda: kiln.Variable([1.0, 2.0], name="v").assign([1.0, 2.0, 3.0]), IA,
     ["assign", "'v'", "float32[3]", "float32[2]"]),
    ("constant_shape", lambda: kiln.constant([1.0, 2.0, 3.0], shape=[2, 2]), IA, ["constant", "[2, 2]"]),
    ("constant_dtype", lambda: kiln.constant([1.0], "complex64"), IA, ["constant", "complex64"]),
    ("fraction_into_integer_tensor", lambda: z(2, dtype="int32") + 1.5, IA, ["1.5", "int32"]),
    ("non_persistent_tape", _non_persistent_tape, kiln.FailedPreconditionError, ["persistent"]),
]


class ErrorTest(unittest.TestCase):
    """One test per entry of ERROR_CASES."""

    def test_error_classes(self):
        self.assertTrue(issubclass(kiln.InvalidArgumentError, ValueError))
        self.assertTrue(issubclass(kiln.InvalidArgumentError, kiln.KilnError))
        try:
            kiln.add(z(2), z(3))
        except kiln.KilnError as e:
            self.assertEqual(e.code, 1)
            self.assertEqual(e.message, str(e))

    # Errors from building a shape name the entry point and the shape as given.
    def test_negative_dim_names_the_op(self):
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            kiln.zeros([2, -1])
        self.assertIn("zeros", str(cm.exception))
        self.assertIn("[2, -1]", str(cm.exception))


def check_error(test, fn, exc, parts):
    with test.assertRaises(exc) as cm:
        fn()
    for part in parts:
        test.assertIn(part, str(cm.exception))


add_table_tests(ErrorTest, "error", ERROR_CASES, check_error)



# ------------------------------------------------------------------------- indexing and padding (TF semantics)

_I_ND = [[1, 2], [0, 0], [1, 2]]  # K = 2 into [2, 3, ...], one row repeated
INDEX_GRAD_CASES = [
    ("gather_batch_dims", lambda p: kiln.gather(p, kiln.constant([[2, 0, 2], [1, 1, 0]]), axis=1, batch_dims=1),
     [(2, 3, 2)]),
    ("gather_batch_dims_default_axis", lambda p: kiln.gather(p, kiln.constant([[2, 0], [1, 1]]), batch_dims=1),
     [(2, 3)]),
    ("gather_nd", lambda p: kiln.gather_nd(p, _I_ND), [(2, 3, 2)]),
    ("gather_nd_batch_dims", lambda p: kiln.gather_nd(p, [[[1], [1]], [[0], [2]]], batch_dims=1), [(2, 3, 2)]),
    ("scatter_nd_duplicates", lambda u: kiln.scatter_nd(_I_ND, u, [2, 3, 2]), [(3, 2)]),
    ("tensor_scatter_nd_add", lambda t, u: kiln.tensor_scatter_nd_add(t, _I_ND, u), [(2, 3), (3,)]),
    ("boolean_mask", lambda x: kiln.boolean_mask(x, [True, False, True]), [(3, 2)]),
    ("boolean_mask_axis1", lambda x: kiln.boolean_mask(x, [[True, False], [True, True]], axis=1), [(2, 2, 2, 1)]),
    ("pad_constant", lambda x: kiln.pad(x, [[1, 0], [2, 1]], constant_values=2.0), [(2, 3)]),
    ("pad_reflect", lambda x: kiln.pad(x, [[2, 1], [1, 3]], "REFLECT"), [(3, 4)]),
    ("pad_symmetric", lambda x: kiln.pad(x, [[2, 2], [0, 3]], mode="symmetric"), [(2, 3)]),
]
add_table_tests(GradientTest, "grad", INDEX_GRAD_CASES, check_gradient)


def _gather_batched(params, idx, axis, batch_dims):
    if batch_dims == 0:
        return np.take(params, idx, axis=axis)
    return np.stack([_gather_batched(p, i, axis - 1, batch_dims - 1) for p, i in zip(params, idx)])


def _one_hot(idx, depth, on, off, axis):
    idx = np.asarray(idx)
    hot = (idx[..., None] == np.arange(depth)).astype(np.float64)
    return np.moveaxis(hot * (on - off) + off, -1, axis if axis >= 0 else -1)


@needs_numpy
class IndexingTest(Case):
    def test_gather_batch_dims(self):
        params = rand((2, 3, 4, 2), 1)
        idx = np.random.default_rng(2).integers(0, 4, (2, 3, 5))
        for axis, batch_dims in ((2, 2), (2, 1), (3, 1), (1, 1), (2, 0)):
            i = idx if batch_dims == 2 or axis == 2 else idx[:, 0] % params.shape[axis]
            i = i % params.shape[axis]
            with self.subTest(axis=axis, batch_dims=batch_dims):
                self.assertTensor(kiln.gather(params, i, axis=axis, batch_dims=batch_dims),
                                  _gather_batched(params, i, axis, batch_dims))
        self.assertTensor(kiln.gather(params, idx[:, :, 0] % 3, axis=1, batch_dims=-1),
                          _gather_batched(params, idx[:, :, 0] % 3, 1, 1))

    def test_gather_nd_scatter_nd(self):
        params = rand((3, 4, 2), 3)
        idx = np.array([[[2, 3], [0, 1]], [[1, 1], [2, 3]]])
        self.assertTensor(kiln.gather_nd(params, idx), params[tuple(np.moveaxis(idx, -1, 0))])
        self.assertTensor(kiln.gather_nd(params, idx[..., :1].astype(np.int32)), params[idx[..., 0]])
        b = np.array([[1], [3], [0]])
        self.assertTensor(kiln.gather_nd(params, b, batch_dims=1), np.stack([params[k, b[k, 0]] for k in range(3)]))
        upd = rand((2, 2, 2), 4)
        want = np.zeros((3, 4, 2), np.float32)
        np.add.at(want, tuple(np.moveaxis(idx, -1, 0)), upd)
        self.assertTensor(kiln.scatter_nd(idx, upd, [3, 4, 2]), want)
        self.assertTensor(kiln.tensor_scatter_nd_add(params, idx, upd), params + want)

    def test_boolean_mask(self):
        x = rand((3, 4, 2), 5)
        m = np.array([True, False, True, True])
        self.assertTensor(kiln.boolean_mask(x, m, axis=1), x[:, m])
        m2 = np.random.default_rng(6).random((3, 4)) > 0.5
        self.assertTensor(kiln.boolean_mask(x, m2), x[m2])
        self.assertTensor(kiln.boolean_mask(np.arange(4), [False] * 4), np.zeros(0, np.int64))

    def test_one_hot(self):
        idx = np.array([[0, 3], [2, -1]])
        for axis in (-1, 0, 1, 2):
            with self.subTest(axis=axis):
                self.assertTensor(kiln.one_hot(idx, 4, axis=axis), _one_hot(idx, 4, 1, 0, axis))
        self.assertTensor(kiln.one_hot(idx, 3, on_value=5, off_value=-1), _one_hot(idx, 3, 5, -1, -1).astype(np.int32))
        self.assertTensor(kiln.one_hot(idx, 3, dtype="int64", axis=0), _one_hot(idx, 3, 1, 0, 0).astype(np.int64))
        self.assertTensor(kiln.one_hot([1], 2, dtype="bool"), np.array([[False, True]]))

    def test_pad(self):
        x = rand((3, 4), 7)
        for mode, np_mode in (("CONSTANT", "constant"), ("REFLECT", "reflect"), ("SYMMETRIC", "symmetric")):
            for p in ([[1, 2], [0, 3]], [[2, 0], [3, 1]], [[0, 0], [0, 0]]):
                with self.subTest(mode=mode, paddings=p):
                    kw = {"constant_values": 1.5} if mode == "CONSTANT" else {}
                    self.assertTensor(kiln.pad(x, p, mode, **kw), np.pad(x, p, np_mode, **kw))
        big = rand((200, 300), 8)  # above the parallel threshold
        self.assertTensor(kiln.pad(big, [[3, 2], [1, 4]], "REFLECT"), np.pad(big, [[3, 2], [1, 4]], "reflect"))
        i = np.arange(6, dtype=np.int64).reshape(2, 3)
        self.assertTensor(kiln.pad(i, [[0, 1], [1, 1]], constant_values=-9),
                          np.pad(i, [[0, 1], [1, 1]], constant_values=-9))


INDEX_ERROR_CASES = [
    ("gather_batch_dims", lambda: kiln.gather(z(2, 3), kiln.zeros([3, 1], "int32"), axis=1, batch_dims=1), IA,
     ["gather", "differ in batch dim 0"]),
    ("gather_nd", lambda: kiln.gather_nd(z(2, 3), [[2, 0]]), IA, ["gather_nd", "out of range for dim 0"]),
    ("scatter_nd", lambda: kiln.scatter_nd([[0]], [1.0, 2.0], [3]), IA, ["scatter_nd", "expected updates of shape [1]"]),
    ("tensor_scatter_nd_add", lambda: kiln.tensor_scatter_nd_add(z(3), [[3]], [1.0]), IA,
     ["tensor_scatter_nd_add", "out of range"]),
    ("boolean_mask", lambda: kiln.boolean_mask(z(3, 2), [True, False]), IA, ["boolean_mask", "does not match"]),
    ("one_hot_axis", lambda: kiln.one_hot([0, 1], 3, axis=2), IA, ["one_hot", "axis 2"]),
    ("one_hot_value", lambda: kiln.one_hot([0, 1], 3, on_value=1e12, dtype="int32"), IA, ["one_hot", "int32"]),
    ("pad", lambda: kiln.pad(z(2, 3), [[0, 0], [3, 0]], "REFLECT"), IA, ["pad", "REFLECT", "<= 2 (dim - 1)"]),
    ("pad_pairs", lambda: kiln.pad(z(2, 3), [[0, 0]]), IA, ["pad", "num_dims is 1"]),
    ("pad_mode", lambda: kiln.pad(z(2), [[1, 1]], "EDGE"), IA, ["pad", "EDGE"]),
]
add_table_tests(ErrorTest, "error", INDEX_ERROR_CASES, check_error)


# ------------------------------------------------------------------ convolutions beside conv2d (TF semantics)

CONV_VARIANT_GRAD_CASES = [
    ("depthwise_conv2d_same", lambda x, f: kiln.nn.depthwise_conv2d(x, f, [1, 1, 1, 1], "SAME"),
     [(1, 4, 3, 2), (2, 2, 2, 2)]),
    ("depthwise_conv2d_valid_strided_dilated", lambda x, f: kiln.nn.depthwise_conv2d(x, f, 2, "VALID", dilations=1),
     [(1, 5, 5, 2), (3, 2, 2, 1)]),
    ("conv2d_transpose_same", lambda x, f: kiln.nn.conv2d_transpose(x, f, [1, 4, 5, 2], strides=2),
     [(1, 2, 3, 3), (3, 3, 2, 3)]),
    ("conv2d_transpose_valid", lambda x, f: kiln.nn.conv2d_transpose(x, f, [2, 4, 4, 1], 1, "VALID"),
     [(2, 3, 3, 2), (2, 2, 1, 2)]),
    ("conv1d", lambda x, f: kiln.nn.conv1d(x, f, stride=2, padding="SAME"), [(2, 5, 2), (3, 2, 2)]),
    ("conv1d_dilated", lambda x, f: kiln.nn.conv1d(x, f, 1, "VALID", dilations=2), [(1, 6, 1), (2, 1, 3)]),
]
add_table_tests(GradientTest, "grad", CONV_VARIANT_GRAD_CASES, check_gradient)


@needs_numpy
class ConvVariantTest(Case):
    def test_depthwise_conv2d(self):
        for xs, fs, strides, dilations, padding in [((2, 5, 6, 3), (3, 3, 3, 2), (1, 1), (1, 1), "SAME"),
                                                   ((1, 7, 6, 2), (2, 3, 2, 1), (2, 1), (1, 2), "VALID"),
                                                   ((1, 6, 6, 4), (3, 3, 4, 3), (2, 2), (1, 1), "SAME")]:
            with self.subTest(x=xs, filter=fs, strides=strides, dilations=dilations, padding=padding):
                x, f = rand(xs, 1), rand(fs, 2)
                want = np.concatenate([conv2d_reference(x[..., c:c + 1], f[:, :, c:c + 1, :], strides, dilations,
                                                        padding) for c in range(xs[3])], axis=-1)
                self.assertTensor(kiln.nn.depthwise_conv2d(x, f, strides, padding, dilations), want,
                                  rtol=1e-4, atol=1e-5)

    def test_conv2d_transpose_is_the_adjoint_of_conv2d(self):
        for xs, fs, out, strides, padding in [((1, 3, 3, 2), (3, 3, 4, 2), (1, 6, 6, 4), (2, 2), "SAME"),
                                              ((2, 2, 3, 1), (2, 2, 3, 1), (2, 5, 7, 3), (2, 2), "VALID"),
                                              ((1, 3, 2, 2), (3, 2, 1, 2), (1, 5, 5, 1), (2, 3), "SAME")]:
            with self.subTest(x=xs, filter=fs, output_shape=out, strides=strides, padding=padding):
                x, f = rand(xs, 3), rand(fs, 4)
                # The Jacobian of u -> conv2d(u, f) over u of output_shape, applied transposed to x.
                cols = []
                for k in range(int(np.prod(out))):
                    e = np.zeros(int(np.prod(out)))
                    e[k] = 1
                    cols.append(conv2d_reference(e.reshape(out), f, strides, (1, 1), padding).ravel())
                want = (np.stack(cols) @ x.astype(np.float64).ravel()).reshape(out)
                self.assertTensor(kiln.nn.conv2d_transpose(x, f, out, strides, padding), want, rtol=1e-4, atol=1e-5)

    def test_conv1d(self):
        x, f = rand((2, 9, 3), 5), rand((3, 3, 4), 6)
        for stride, dilation, padding in ((1, 1, "VALID"), (2, 1, "SAME"), (1, 2, "SAME"), (3, 2, "VALID")):
            with self.subTest(stride=stride, dilation=dilation, padding=padding):
                want = conv2d_reference(x[:, None], f[None], (1, stride), (1, dilation), padding)[:, 0]
                self.assertTensor(kiln.nn.conv1d(x, f, stride, padding, dilation), want, rtol=1e-4, atol=1e-5)
        self.assertTensor(kiln.conv1d(x, f, [1, 2, 1], "VALID"), conv2d_reference(x[:, None], f[None], (1, 2),
                                                                                 (1, 1), "VALID")[:, 0],
                          rtol=1e-4, atol=1e-5)


CONV_VARIANT_ERROR_CASES = [
    ("depthwise_conv2d", lambda: kiln.nn.depthwise_conv2d(z(1, 3, 3, 2), z(2, 2, 3, 1)), IA,
     ["depthwise_conv2d", "[1, 3, 3, 2]", "[2, 2, 3, 1]"]),
    ("conv2d_transpose", lambda: kiln.nn.conv2d_transpose(z(1, 2, 2, 1), z(2, 2, 1, 1), [1, 5, 5, 1], 2), IA,
     ["conv2d_transpose", "[1, 5, 5, 1]", "not x's 2x2"]),
    ("conv1d", lambda: kiln.nn.conv1d(z(1, 4, 2), z(2, 3, 1)), IA, ["conv1d", "[2, 3, 1]"]),
    ("conv1d_stride", lambda: kiln.nn.conv1d(z(1, 4, 2), z(2, 2, 1), stride=[1, 2]), IA, ["conv1d", "stride"]),
]
add_table_tests(ErrorTest, "error", CONV_VARIANT_ERROR_CASES, check_error)


# ------------------------------------------------------------- layer_norm over trailing axes (Keras axis=[-2, -1])

LAYER_NORM_AXES_GRAD_CASES = [
    ("layer_norm_axes", lambda x, g, b: kiln.layer_norm(x, g, b, axis=[-2, -1]), [(2, 2, 3), (2, 3), (2, 3)]),
    ("layer_norm_axes_unordered", lambda x, g, b: kiln.nn.layer_norm(x, g, b, 1e-2, [3, 1, 2]),
     [(2, 1, 2, 2), (1, 2, 2), (1, 2, 2)]),
]
add_table_tests(GradientTest, "grad", LAYER_NORM_AXES_GRAD_CASES, check_gradient)


@needs_numpy
class LayerNormAxesTest(Case):
    def test_against_numpy(self):
        x, g, b = rand((3, 4, 5), 1), rand((4, 5), 2), rand((4, 5), 3)
        mean = x.astype(np.float64).mean(axis=(1, 2), keepdims=True)
        var = x.astype(np.float64).var(axis=(1, 2), keepdims=True)
        want = (x - mean) / np.sqrt(var + 1e-3) * g + b
        self.assertTensor(kiln.layer_norm(x, g, b, axis=[-2, -1]), want, rtol=1e-4, atol=1e-5)
        self.assertTensor(kiln.layer_norm(x, g[0], b[0], axis=-1),
                          (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3) * g[0] + b[0],
                          rtol=1e-4, atol=1e-5)


add_table_tests(ErrorTest, "error", [
    ("layer_norm_axes", lambda: kiln.layer_norm(z(2, 3, 4), z(3, 4), z(3, 4), axis=[0, 2]), IA,
     ["layer_norm", "axes [0, 2]", "trailing"]),
    ("layer_norm_axes_gamma", lambda: kiln.layer_norm(z(2, 3, 4), z(12), z(3, 4), axis=[1, 2]), IA,
     ["layer_norm", "float32[12]", "[3, 4]"]),
], check_error)

if __name__ == "__main__":
    unittest.main()
