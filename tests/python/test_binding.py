"""Tests of the Python binding (ctypes over the C API): every test here is also an ABI test."""
import gc
import threading
import unittest

import kiln

try:
    import numpy as np
except ImportError:  # the binding works without NumPy; those tests skip
    np = None


def close(a, b, tol=1e-5):
    return all(abs(x - y) <= tol * (1 + abs(y)) for x, y in zip(a, b))


def flat(t):
    v = t.tolist() if hasattr(t, "tolist") else t
    out = []

    def walk(x):
        if isinstance(x, list):
            for y in x:
                walk(y)
        else:
            out.append(x)
    walk(v)
    return out


class TensorTest(unittest.TestCase):
    def test_constant_from_lists(self):
        t = kiln.constant([[1, 2, 3], [4, 5, 6]], dtype="float32")
        self.assertEqual(t.shape, (2, 3))
        self.assertEqual(t.dtype, "float32")
        self.assertEqual(t.tolist(), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        self.assertEqual(kiln.constant(7).dtype, "int32")
        self.assertEqual(kiln.constant(True).dtype, "bool")
        self.assertEqual(kiln.constant(2.5).item(), 2.5)

    def test_ragged_and_bad_dtype(self):
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.constant([[1, 2], [3]])
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.constant([1.0], dtype="complex64")

    @unittest.skipIf(np is None, "numpy not importable")
    def test_numpy_round_trip(self):
        a = np.arange(12, dtype=np.float32).reshape(3, 4)
        t = kiln.constant(a)
        self.assertTrue(np.array_equal(t.numpy(), a))
        self.assertTrue(np.array_equal(np.asarray(t), a))
        i = kiln.constant(np.array([1, 2], dtype=np.int64))
        self.assertEqual(i.dtype, "int64")
        b = kiln.cast(kiln.constant([1.0, 1.00390625, 3.14159]), "bfloat16")
        self.assertEqual(b.dtype, "bfloat16")
        self.assertTrue(np.allclose(b.numpy(), [1.0, 1.0, 3.140625]))

    def test_operators_broadcast(self):
        a = kiln.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        b = kiln.constant([10.0, 20.0, 30.0])
        c = (a + b) * 2 - a / 1.0
        self.assertEqual(c.shape, (2, 3))
        self.assertEqual(flat(c), [(x + y) * 2 - x for x, y in zip([1, 2, 3, 4, 5, 6], [10, 20, 30] * 2)])
        self.assertEqual(flat(-a)[0], -1.0)
        self.assertEqual(flat(a > 3.0), [False, False, False, True, True, True])

    def test_shape_error_names_shapes(self):
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            kiln.add(kiln.zeros([2, 3]), kiln.zeros([3, 2]))
        self.assertIn("[2, 3]", str(cm.exception))
        self.assertIn("[3, 2]", str(cm.exception))

    def test_matmul_and_reductions(self):
        a = kiln.constant([[1.0, 2.0], [3.0, 4.0]])
        b = kiln.constant([[5.0, 6.0], [7.0, 8.0]])
        self.assertEqual((a @ b).tolist(), [[19.0, 22.0], [43.0, 50.0]])
        self.assertEqual(kiln.reduce_sum(a).item(), 10.0)
        self.assertEqual(kiln.reduce_mean(a, axis=0).tolist(), [2.0, 3.0])
        self.assertEqual(kiln.reduce_max(a, axis=1, keepdims=True).shape, (2, 1))
        self.assertEqual(kiln.argmax(b, axis=0).tolist(), [1, 1])

    def test_nn_namespace(self):
        x = kiln.constant([[-1.0, 0.5, 2.0]])
        self.assertEqual(kiln.nn.relu(x).tolist(), [[0.0, 0.5, 2.0]])
        s = kiln.nn.softmax(x)
        self.assertAlmostEqual(sum(flat(s)), 1.0, places=5)

    def test_split_concat_stack(self):
        x = kiln.reshape(kiln.range(12, dtype="float32"), [3, 4])
        parts = kiln.split(x, [1, 3], axis=1)
        self.assertEqual([p.shape for p in parts], [(3, 1), (3, 3)])
        self.assertEqual(kiln.concat(parts, axis=1).tolist(), x.tolist())
        self.assertEqual(kiln.stack([x, x]).shape, (2, 3, 4))
        self.assertEqual(len(kiln.split(x, 2, axis=1)), 2)

    def test_random_is_seeded(self):
        kiln.set_seed(42)
        a = flat(kiln.random.normal([5]))
        kiln.set_seed(42)
        b = flat(kiln.random.normal([5]))
        self.assertEqual(a, b)
        self.assertNotEqual(a, flat(kiln.random.normal([5])))

    def test_tensor_freed(self):
        before = kiln.primitive_cache_stats()
        for _ in range(100):
            t = kiln.ones([8, 8]) + 1.0
        del t
        gc.collect()
        self.assertGreaterEqual(kiln.primitive_cache_stats()["hits"], before["hits"])


class TapeTest(unittest.TestCase):
    def test_gradient_of_square(self):
        x = kiln.constant([1.0, 2.0, 3.0])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.reduce_sum(x * x)
        self.assertEqual(tape.gradient(y, x).tolist(), [2.0, 4.0, 6.0])

    def test_variables_watched_automatically(self):
        w = kiln.Variable([[1.0, 2.0], [3.0, 4.0]], name="w")
        b = kiln.Variable([0.5, -0.5], name="b")
        frozen = kiln.Variable([1.0, 1.0], trainable=False)
        x = kiln.constant([[1.0, 1.0]])
        with kiln.GradientTape() as tape:
            y = kiln.reduce_sum(kiln.matmul(x, w) + b + frozen)
        gw, gb, gf = tape.gradient(y, [w, b, frozen])
        self.assertEqual(gw.tolist(), [[1.0, 1.0], [1.0, 1.0]])
        self.assertEqual(gb.tolist(), [1.0, 1.0])
        self.assertIsNone(gf)

    def test_second_order(self):
        x = kiln.constant([-1.0, 0.5, 2.0])
        with kiln.GradientTape() as outer:
            outer.watch(x)
            with kiln.GradientTape() as inner:
                inner.watch(x)
                y = x * x * x
            dy = inner.gradient(y, x)
        d2y = outer.gradient(dy, x)
        self.assertTrue(close(flat(dy), [3 * v * v for v in [-1.0, 0.5, 2.0]]))
        self.assertTrue(close(flat(d2y), [6 * v for v in [-1.0, 0.5, 2.0]]))

    def test_persistent_and_unconnected(self):
        x = kiln.constant([1.0, 2.0])
        z = kiln.constant([3.0])
        with kiln.GradientTape(persistent=True) as tape:
            tape.watch([x, z])
            y = x * x
        self.assertEqual(tape.gradient(y, x).tolist(), [2.0, 4.0])
        self.assertIsNone(tape.gradient(y, z))
        self.assertEqual(tape.gradient(y, z, unconnected_gradients="zero").tolist(), [0.0])

    def test_non_persistent_second_call_fails(self):
        x = kiln.constant([1.0])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        tape.gradient(y, x)
        with self.assertRaises(kiln.FailedPreconditionError):
            tape.gradient(y, x)

    def test_jacobian_batch_jacobian_reset_and_stop_recording(self):
        x = kiln.constant([[1.0, -2.0], [3.0, 0.5]])
        v = kiln.Variable([2.0, 3.0])
        u = kiln.constant([1.0])
        with kiln.GradientTape(persistent=True) as tape:
            tape.watch([x, u])
            y = x * x * v  # y[i, k] = x[i, k]^2 v[k]
            with tape.stop_recording():
                ignored = x * 2.0
            z = x * 3.0
        j = tape.jacobian(y, x)
        self.assertEqual(j.shape, (2, 2, 2, 2))
        xs, vs = [1.0, -2.0, 3.0, 0.5], [2.0, 3.0]
        flat_j = flat(j)
        for a in range(4):
            for b in range(4):
                self.assertAlmostEqual(flat_j[a * 4 + b], 2 * xs[a] * vs[a % 2] if a == b else 0.0)
        got = tape.jacobian(y, {"v": v, "u": u})  # the sources' structure; None where unconnected
        self.assertEqual(got["v"].shape, (2, 2, 2))
        self.assertAlmostEqual(flat(got["v"])[3 * 2 + 1], 0.25)
        self.assertIsNone(got["u"])
        self.assertEqual(tape.jacobian(y, u, unconnected_gradients="zero").shape, (2, 2, 1))
        bj = tape.batch_jacobian(y, x)
        self.assertEqual(bj.shape, (2, 2, 2))
        self.assertAlmostEqual(flat(bj)[7], 2 * 0.5 * 3.0)
        self.assertIsNone(tape.gradient(ignored, x))
        self.assertEqual(tape.gradient(z, x).tolist(), [[3.0, 3.0], [3.0, 3.0]])
        with self.assertRaises(kiln.InvalidArgumentError):
            tape.batch_jacobian(y, kiln.constant([1.0, 2.0, 3.0]))
        with self.assertRaises(RuntimeError):  # outside the `with` block the tape is not recording
            with tape.stop_recording():
                pass
        tape.reset()
        self.assertIsNone(tape.gradient(z, x))
        once = kiln.GradientTape()
        with once:
            once.watch(x)
            w = x * x
        once.jacobian(w, x)
        with self.assertRaises(kiln.FailedPreconditionError):
            once.jacobian(w, x)

    def test_stop_gradient(self):
        x = kiln.constant([3.0])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = x * kiln.stop_gradient(x)
        self.assertEqual(tape.gradient(y, x).tolist(), [3.0])

    def test_tape_other_thread(self):
        with kiln.GradientTape() as tape:
            pass
        errors = []

        def use():
            try:
                tape.watch(kiln.constant([1.0]))
            except kiln.FailedPreconditionError as e:
                errors.append(e)
        t = threading.Thread(target=use)
        t.start()
        t.join()
        self.assertEqual(len(errors), 1)

    def test_two_layer_network_gradient_matches_finite_differences(self):
        kiln.set_seed(3)
        x = kiln.random.normal([4, 3], seed=1)
        target = kiln.random.normal([4, 2], seed=2)
        params = [kiln.Variable(kiln.random.normal(s, stddev=0.5, seed=10 + i))
                  for i, s in enumerate([[3, 5], [5], [5, 2], [2]])]

        def loss_of(p):
            h = kiln.tanh(kiln.matmul(x, p[0]) + p[1])
            return kiln.reduce_mean(kiln.square(kiln.matmul(h, p[2]) + p[3] - target))

        with kiln.GradientTape() as tape:
            loss = loss_of(params)
        grads = tape.gradient(loss, params)
        eps = 1e-2
        for k, v in enumerate(params):
            base = flat(v.value())
            shape = v.shape
            analytic = flat(grads[k])
            for i in range(len(base)):
                vals = []
                for sign in (1, -1):
                    pert = list(base)
                    pert[i] += sign * eps
                    p = [q.value() for q in params]
                    p[k] = kiln.reshape(kiln.constant(pert), shape)
                    vals.append(loss_of(p).item())
                numeric = (vals[0] - vals[1]) / (2 * eps)
                self.assertLess(abs(numeric - analytic[i]), 2e-3 + 2e-2 * abs(numeric), (k, i))


class VariableTest(unittest.TestCase):
    def test_assign_ops(self):
        v = kiln.Variable([1.0, 2.0], name="v")
        before = v.value()
        v.assign_add([1.0, 1.0])
        v.assign_sub(kiln.constant([0.5, 0.5]))
        self.assertEqual(flat(v.value()), [1.5, 2.5])
        self.assertEqual(flat(before), [1.0, 2.0])
        v.assign([0.0, 0.0])
        self.assertEqual(flat(v.value()), [0.0, 0.0])
        self.assertEqual(v.name, "v")
        with self.assertRaises(kiln.InvalidArgumentError):
            v.assign([1.0, 2.0, 3.0])

    def test_update_in_place(self):
        import struct
        v = kiln.Variable([1.0, 2.0], name="v")
        held = v.value()

        def triple(dst, src):
            a, b = struct.unpack("<2f", bytes(src))
            dst[:] = struct.pack("<2f", 3 * a, 3 * b)
        v.update_in_place(triple)
        self.assertEqual(flat(v.value()), [3.0, 6.0])
        self.assertEqual(flat(held), [1.0, 2.0])

        def broken(dst, src):
            raise ValueError("no")
        with self.assertRaises(ValueError):
            v.update_in_place(broken)


class LibraryTest(unittest.TestCase):
    def test_version_and_threads(self):
        self.assertTrue(kiln.__version__)
        self.assertEqual(kiln.abi_version(), 1)
        n = kiln.get_num_threads()
        kiln.set_num_threads(1)
        self.assertEqual(kiln.get_num_threads(), 1)
        kiln.set_num_threads(n)
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.set_num_threads(0)

    def test_primitive_cache_steady(self):
        a = kiln.random.uniform([64, 64], seed=1)
        kiln.matmul(a, a)
        misses = kiln.primitive_cache_stats()["misses"]
        for _ in range(200):
            kiln.matmul(a, a)
        self.assertEqual(kiln.primitive_cache_stats()["misses"], misses)


if __name__ == "__main__":
    unittest.main()


class AbiTableTest(unittest.TestCase):
    """The binding's ctypes table is kept by hand: every C function must be in it, with its argument count."""

    def test_every_c_function_has_a_signature(self):
        import os
        import re
        from kiln import _lib
        inc = os.path.join(os.path.dirname(__file__), "..", "..", "include", "kiln")
        declared = {}
        for name in sorted(os.listdir(inc)):
            if not name.endswith(".h"):
                continue
            text = open(os.path.join(inc, name), encoding="utf-8").read()
            for m in re.finditer(r"KILN_API[^;(]*?\b(kiln_\w+)\s*\(([^)]*)\)\s*;", text):
                args = m.group(2).strip()
                declared[m.group(1)] = 0 if args in ("", "void") else args.count(",") + 1
        self.assertGreater(len(declared), 100)
        missing = sorted(set(declared) - set(_lib._SIGS))
        self.assertEqual(missing, [], "C functions without a ctypes signature in bindings/python/kiln/_lib.py")
        extra = sorted(set(_lib._SIGS) - set(declared))
        self.assertEqual(extra, [], "ctypes signatures for functions no header declares")
        wrong = sorted(n for n, (_, args) in _lib._SIGS.items() if len(args) != declared[n])
        self.assertEqual(wrong, [], "ctypes signatures whose argument count differs from the header")


class StatusTest(unittest.TestCase):
    def test_status_create_round_trips_code_and_message(self):
        from kiln import _lib
        with self.assertRaises(kiln.errors.DataLossError) as cm:
            kiln.errors.check(_lib.lib.kiln_status_create(5, "bad crc in 'x.index'".encode()))
        self.assertIn("bad crc in 'x.index'", str(cm.exception))
        with self.assertRaises(kiln.errors.InvalidArgumentError) as cm:
            kiln.errors.check(_lib.lib.kiln_status_create(0, b"ok"))
        self.assertIn("is not an error code", str(cm.exception))
