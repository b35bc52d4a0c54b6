"""kiln.Communicator.create: data-parallel training over a caller's transport, without MPI. Here
the process is rank 0 of two whose peer holds the same values, so a sum doubles them."""
import unittest

import numpy as np

import kiln


class TwinTransport:
    def __init__(self):
        self.sums, self.broadcasts, self.dtypes, self.fail = 0, 0, set(), False

    def allreduce(self, buffer, dtype):
        if self.fail:
            raise RuntimeError("the network is down")
        self.dtypes.add(dtype)
        if dtype != "bfloat16":
            arr = np.frombuffer(buffer, dtype)
            arr += arr.copy()
        self.sums += 1

    def broadcast(self, buffer, root):
        assert root == 0
        self.broadcasts += 1


class CommunicatorCreateTest(unittest.TestCase):
    def test_fit_over_a_callers_transport(self):
        t = TwinTransport()
        comm = kiln.Communicator.create(0, 2, t.allreduce, t.broadcast)
        self.assertEqual((comm.rank, comm.size), (0, 2))
        rng = np.random.default_rng(0)
        x = rng.standard_normal((24, 4)).astype(np.float32)
        y = rng.integers(0, 3, 24)
        model = kiln.Sequential([kiln.layers.Dense(3)])
        model.compile("sgd", "sparse_categorical_crossentropy")
        h = model.fit(x, y, batch_size=8, verbose=0, distribution=comm)
        self.assertGreater(t.sums, 0)
        self.assertIn("float32", t.dtypes)
        self.assertTrue(np.isfinite(h.history["loss"][0]))
        t.fail = True
        with self.assertRaisesRegex(kiln.KilnError, "the network is down"):
            model.fit(x, y, batch_size=8, verbose=0, distribution=comm)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "rank"):
            kiln.Communicator.create(2, 2, lambda b, d: None, lambda b, r: None)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "callable"):
            kiln.Communicator.create(0, 2, None, lambda b, r: None)


if __name__ == "__main__":
    unittest.main()
