"""copy.copy, copy.deepcopy and pickle of kiln's Python objects: each owns a C handle, so a plain
copy would free it twice. Tensors and datasets (immutable) are their own copies, and tensors pickle
by value; every other object refuses with a TypeError naming what to use, and nothing crashes."""
import copy
import gc
import pickle
import unittest

import kiln
from kiln import layers


class CopyTest(unittest.TestCase):
    def test_tensors_copy_as_themselves_and_pickle_by_value(self):
        for t in [kiln.constant([[1.0, 2.0]]), kiln.constant([], dtype="int64"), kiln.zeros([0, 3]),
                  kiln.constant(3.5), kiln.constant([[True, False]]),
                  kiln.cast(kiln.constant([1.5, 2.25]), "bfloat16")]:
            self.assertIs(copy.copy(t), t)
            self.assertIs(copy.deepcopy(t), t)
            u = pickle.loads(pickle.dumps(t))
            self.assertIsNot(u, t)
            self.assertEqual((u.dtype, u.shape, u.tolist()), (t.dtype, t.shape, t.tolist()))
        ds = kiln.data.Dataset.range(3)
        self.assertIs(copy.deepcopy(ds), ds)

    def test_handle_owners_refuse_without_crashing(self):
        objects = [kiln.Variable([1.0]), kiln.optimizers.Adam(), layers.Dense(2), layers.IntegerLookup(vocabulary=[1]),
                   kiln.losses.MeanSquaredError(), kiln.metrics.Mean(), kiln.GradientTape(),
                   kiln.models.Sequential([layers.Dense(2)]), iter(kiln.data.Dataset.range(3))]
        for o in objects:
            for how in (copy.copy, copy.deepcopy, pickle.dumps):
                with self.assertRaisesRegex(TypeError, "%s cannot be (copied|pickled)" % type(o).__name__):
                    how(o)
        with self.assertRaisesRegex(TypeError, "clone_model"):
            copy.deepcopy(layers.Dense(2))
        with self.assertRaises(TypeError):
            pickle.dumps(kiln.data.Dataset.range(3))
        del objects
        gc.collect()


if __name__ == "__main__":
    unittest.main()
