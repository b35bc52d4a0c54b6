"""Variable identity and tape.gradient with variables and lists of targets."""
import gc
import unittest

import numpy as np

import kiln
from kiln.errors import FailedPreconditionError, InvalidArgumentError


def arr(t):
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


class VariableIdentityTest(unittest.TestCase):
    def test_copies_initial_value_and_has_own_id(self):
        t = kiln.constant([1.0, 2.0])
        v1, v2 = kiln.Variable(t), kiln.Variable(t)
        self.assertNotEqual(v1._unique_id, v2._unique_id)
        uid = v1._unique_id
        v1.assign_add([1.0, 1.0])
        self.assertEqual(v1._unique_id, uid)
        np.testing.assert_array_equal(arr(t), [1, 2])
        np.testing.assert_array_equal(arr(v2), [1, 2])
        with kiln.GradientTape() as tape:
            loss = kiln.reduce_sum(v1 * 3.0) + kiln.reduce_sum(v2 * 5.0)
        g1, g2 = tape.gradient(loss, [v1, v2])
        np.testing.assert_array_equal(arr(g1), [3, 3])
        np.testing.assert_array_equal(arr(g2), [5, 5])

    def test_watched_variables(self):
        a, b = kiln.Variable([1.0], name="a"), kiln.Variable([2.0], name="b")
        frozen = kiln.Variable([3.0], name="frozen", trainable=False)
        with kiln.GradientTape() as tape:
            tape.watch(b)
            y = a * 3.0 + frozen * 2.0  # a read: watched after b; frozen is not trainable
        watched = tape.watched_variables()
        self.assertEqual([v._unique_id for v in watched], [b._unique_id, a._unique_id])
        self.assertEqual([v.name for v in watched], ["b", "a"])
        watched[1].assign_add([1.0])  # the same variable as a
        np.testing.assert_array_equal(arr(a), [2.0])
        del watched
        self.assertEqual(len(tape.watched_variables()), 2)
        tape.reset()
        self.assertEqual(tape.watched_variables(), [])
        with kiln.GradientTape(watch_accessed_variables=False) as explicit_only:
            y = a * 3.0
        self.assertEqual(explicit_only.watched_variables(), [])
        self.assertEqual(kiln.GradientTape().watched_variables(), [])  # never entered
        del y

    def test_one_python_object_per_variable(self):
        # The subclassing guide's check, layer.weights == [layer.w, layer.b]: the same objects, as in TF.
        class Linear(kiln.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones")
                self.b = self.add_weight(shape=(2,), initializer="zeros")

            def call(self, x):
                return kiln.matmul(x, self.w) + self.b

        layer = Linear()
        layer(kiln.ones((1, 3)))
        self.assertTrue(layer.weights == [layer.w, layer.b])
        self.assertIs(layer.weights[0], layer.w)
        self.assertIs(layer.trainable_weights[1], layer.b)
        self.assertIs(layer.variables[1], layer.trainable_variables[1])
        opt = kiln.optimizers.SGD(0.1, momentum=0.9)
        opt.apply_gradients(zip([kiln.ones((3, 2)), kiln.ones((2,))], layer.trainable_weights))
        self.assertIs(opt.get_slot(layer.w, "momentum"), opt.variables[1])
        with kiln.GradientTape() as tape:
            tape.watch(layer.w)
        self.assertIs(tape.watched_variables()[0], layer.w)

    def test_ref_is_per_variable(self):
        dense = kiln.layers.Dense(2)
        dense.build((None, 3))
        kernel_ref = dense.weights[0].ref()
        self.assertEqual(dense.weights[0].ref(), kernel_ref)  # TF: ref() of the same variable are equal
        self.assertEqual(hash(dense.weights[0].ref()), hash(kernel_ref))
        self.assertNotEqual(dense.weights[1].ref(), kernel_ref)
        self.assertEqual({kernel_ref: "kernel"}[dense.weights[0].ref()], "kernel")
        self.assertIs(kernel_ref.deref(), dense.weights[0])
        v = kiln.Variable(1.0)
        self.assertNotEqual(v.ref(), kernel_ref)
        self.assertNotEqual(v.ref(), v.value().ref())  # a tensor's reference is to the tensor object

    def test_variable_dies_with_its_last_wrapper(self):
        # One object per variable must not keep variables alive: a tape does not, so it shows
        # whether the handles are freed.
        with kiln.GradientTape() as tape:
            v = kiln.Variable([1.0])
            tape.watch(v)
            again = tape.watched_variables()[0]
        self.assertIs(again, v)
        del v, again
        gc.collect()  # whatever cycle still holds a wrapper (a traceback, a test runner's frame)
        self.assertEqual(tape.watched_variables(), [])
        dense = kiln.layers.Dense(2)
        dense.build((None, 3))
        with kiln.GradientTape() as tape:
            tape.watch(dense.weights)
        self.assertEqual(len(tape.watched_variables()), 2)
        del dense
        gc.collect()
        self.assertEqual(tape.watched_variables(), [])

    def test_one_object_per_variable_across_threads(self):
        import threading
        dense = kiln.layers.Dense(4)
        dense.build((None, 3))
        seen, barrier = [], threading.Barrier(8)

        def read():
            barrier.wait()
            for _ in range(200):
                seen.append(dense.weights)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        kernel = dense.weights[0]
        self.assertTrue(all(w[0] is kernel for w in seen))

    def test_canonical_loop_updates_in_place(self):
        # tape -> gradient -> assign_sub, the tape still alive: a non-persistent tape has let go of the
        # variable's reads in gradient(), so the update writes into the variable's own buffer.
        def data_pointer(var):
            value = var.value()  # alive across the call: the handle is freed with it
            return kiln._lib.lib.kiln_tensor_get_data(value._h)
        w = kiln.Variable(np.linspace(-1, 1, 1000).astype(np.float32))
        before = data_pointer(w)
        for _ in range(3):
            with kiln.GradientTape() as tape:
                loss = kiln.reduce_sum(w * w)
            g = tape.gradient(loss, w)
            w.assign_sub(g * 0.1)
            self.assertEqual(data_pointer(w), before)
        np.testing.assert_allclose(w.numpy(), np.linspace(-1, 1, 1000) * 0.8 ** 3, rtol=1e-5, atol=1e-7)

    def test_gradient_through_value_read_while_recording(self):
        v = kiln.Variable([3.0])
        with kiln.GradientTape() as tape:
            y = v * v
        v.assign([10.0])
        np.testing.assert_allclose(arr(tape.gradient(y, v)), [6.0])

    def test_list_of_targets_and_mixed_sources(self):
        x = kiln.constant([1.0, 2.0])
        v = kiln.Variable([3.0, 4.0])
        with kiln.GradientTape(persistent=True) as tape:
            tape.watch(x)
            l1 = kiln.reduce_sum(x * x)
            l2 = x * v
        gx, gv = tape.gradient([l1, l2], [x, v])
        np.testing.assert_allclose(arr(gx), [2 + 3, 4 + 4])
        np.testing.assert_allclose(arr(gv), [1, 2])
        gx = tape.gradient([l1, l2], x, output_gradients=[None, [2.0, 0.0]])
        np.testing.assert_allclose(arr(gx), [2 + 6, 4])
        with self.assertRaises(InvalidArgumentError):
            tape.gradient([l1, l2], x, output_gradients=[None])

    def test_rejected_gradient_leaves_tape_usable(self):
        x = kiln.constant([1.0, 2.0])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        with self.assertRaises(InvalidArgumentError):
            tape.gradient(y, x, output_gradients=kiln.constant([1, 1], kiln.int32))
        with self.assertRaises(InvalidArgumentError):
            tape.gradient(y, x, output_gradients=[1.0, 1.0, 1.0])
        np.testing.assert_allclose(arr(tape.gradient(y, x)), [2, 4])
        with self.assertRaises(FailedPreconditionError):
            tape.gradient(y, x)


class MaxPoolSecondOrderTest(unittest.TestCase):
    def test_second_order_matches_central_differences(self):
        rng = np.random.default_rng(3)
        x0 = rng.permutation(np.linspace(-1, 1, 32)).astype(np.float32).reshape(1, 4, 4, 2)

        def first(xv):
            x = kiln.constant(xv)
            with kiln.GradientTape() as inner:
                inner.watch(x)
                y = kiln.max_pool2d(x, 2, 2) * kiln.reduce_sum(x * x)  # the upstream gradient depends on x
            return x, inner, inner.gradient(y, x)

        x = kiln.constant(x0)
        with kiln.GradientTape() as outer:
            outer.watch(x)
            with kiln.GradientTape() as inner:
                inner.watch(x)
                y = kiln.max_pool2d(x, 2, 2) * kiln.reduce_sum(x * x)
            g = inner.gradient(y, x)
            s = kiln.reduce_sum(g * g)
        analytic = outer.gradient(s, x).numpy()
        eps = 1e-3
        for i in range(x0.size):
            xp, xm = x0.copy().reshape(-1), x0.copy().reshape(-1)
            xp[i] += eps
            xm[i] -= eps
            sp = float(np.sum(first(xp.reshape(x0.shape))[2].numpy().astype(np.float64) ** 2))
            sm = float(np.sum(first(xm.reshape(x0.shape))[2].numpy().astype(np.float64) ** 2))
            numeric = (sp - sm) / (2 * eps)
            self.assertAlmostEqual(analytic.reshape(-1)[i], numeric, delta=2e-2 * (1 + abs(numeric)), msg=str(i))


if __name__ == "__main__":
    unittest.main()
