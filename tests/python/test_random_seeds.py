"""Seeds as TF2: seeded calls advance and repeat after set_seed; stateless ops; dropout noise_shape."""
import threading
import unittest

import numpy as np

import kiln
from kiln.errors import InvalidArgumentError


class SeedTest(unittest.TestCase):
    def test_seeded_calls_differ_and_repeat_after_set_seed(self):
        for op in (kiln.random.uniform, kiln.random.normal, kiln.random.truncated_normal):
            kiln.set_seed(1)
            a, b = op([2], seed=7).numpy(), op([2], seed=7).numpy()
            self.assertFalse(np.array_equal(a, b), op)
            kiln.random.set_seed(1)
            np.testing.assert_array_equal(op([2], seed=7).numpy(), a)
            np.testing.assert_array_equal(op([2], seed=7).numpy(), b)
        x = kiln.ones([200])
        kiln.set_seed(2)
        m1, m2 = kiln.nn.dropout(x, 0.5, seed=7).numpy(), kiln.nn.dropout(x, 0.5, seed=7).numpy()
        self.assertFalse(np.array_equal(m1, m2))
        kiln.set_seed(2)
        np.testing.assert_array_equal(kiln.nn.dropout(x, 0.5, seed=7).numpy(), m1)

    def test_stateless_same_seed_same_values_on_every_thread(self):
        x = kiln.ones([64, 8])
        ops = [lambda: kiln.random.stateless_uniform([300], seed=[1, 2], minval=-1.0, maxval=2.0),
               lambda: kiln.random.stateless_normal([300], seed=(3, 4)),
               lambda: kiln.random.stateless_truncated_normal([300], seed=np.array([5, 6])),
               lambda: kiln.nn.experimental.stateless_dropout(x, 0.5, seed=kiln.constant([7, 8], kiln.int64))]
        kiln.set_seed(1)
        want = [op().numpy() for op in ops]
        kiln.set_seed(99)
        kiln.random.uniform([5], seed=1)
        results = {}

        def work(i):
            results[i] = [op().numpy() for op in ops]
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(4):
            for got, w in zip(results[i], want):
                np.testing.assert_array_equal(got, w)
        self.assertFalse(np.array_equal(kiln.random.stateless_uniform([300], seed=[2, 1]).numpy(), want[0]))
        with self.assertRaises(InvalidArgumentError):
            kiln.random.stateless_uniform([3], seed=[1, 2, 3])
        with self.assertRaises(InvalidArgumentError):
            kiln.random.stateless_normal([3], seed=[1, 2], stddev=-1.0)

    def test_dropout_noise_shape(self):
        x = kiln.constant(np.arange(1, 41, dtype=np.float32).reshape(8, 5))
        for noise in ([8, 1], [None, 1]):
            y = kiln.nn.dropout(x, 0.5, seed=3, noise_shape=noise).numpy()
            for r in range(8):
                if y[r, 0] == 0:
                    np.testing.assert_array_equal(y[r], 0)
                else:
                    np.testing.assert_allclose(y[r], 2 * x.numpy()[r])
        y = kiln.nn.experimental.stateless_dropout(x, 0.5, seed=[1, 1], noise_shape=[1, 5]).numpy()
        self.assertTrue(((y == 0) == (y[0] == 0)).all())
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.nn.dropout(x, 0.25, noise_shape=[8, 1])
        g = tape.gradient(y, x).numpy()
        np.testing.assert_allclose(g, np.where(y.numpy() == 0, 0, 1 / 0.75), rtol=1e-6)
        with self.assertRaises(InvalidArgumentError):
            kiln.nn.dropout(x, 0.5, noise_shape=[8, 2])
        np.testing.assert_array_equal(kiln.nn.dropout(x, 0.5, training=False, noise_shape=[8, 1]).numpy(), x.numpy())


if __name__ == "__main__":
    unittest.main()
