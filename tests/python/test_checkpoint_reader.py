"""kiln.train from Python: tf.train.load_checkpoint / list_variables / CheckpointReader on TensorFlow's
own checkpoints (../shared/fixtures; skipped when absent), a directory through its state file, files
naming their checkpoint, corrupt copies and the errors as kiln exceptions."""
import os
import pathlib
import shutil
import tempfile
import unittest

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

import kiln

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "..", "shared", "fixtures")
TF2_DIR = os.path.join(FIXTURES, "tf2_checkpoint")
TF2 = os.path.join(TF2_DIR, "keras_embedding.ckpt-0")
BERT = os.path.join(FIXTURES, "tf1_bert_tiny", "bert_model.ckpt")
DATA = ".data-00000-of-00001"
KERNEL0 = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
ITERATIONS = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"

needs_fixtures = unittest.skipUnless(os.path.exists(TF2 + ".index") and os.path.exists(BERT + ".index"),
                                     "the TensorFlow checkpoint fixtures are not in " + FIXTURES)
needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


class CheckpointCopy:
    """A temporary directory holding the TF2 fixture as m.ckpt-0; flip inverts one data byte."""

    def __init__(self, flip=None):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_ckpt_")
        self.prefix = os.path.join(self.dir, "m.ckpt-0")
        shutil.copyfile(TF2 + ".index", self.prefix + ".index")
        with open(TF2 + DATA, "rb") as f:
            data = bytearray(f.read())
        if flip is not None:
            data[flip] ^= 0xFF
        with open(self.prefix + DATA, "wb") as f:
            f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


@needs_fixtures
class Tf2CheckpointTest(unittest.TestCase):
    def test_maps(self):
        r = kiln.train.load_checkpoint(TF2)
        self.assertIsInstance(r, kiln.train.CheckpointReader)
        self.assertEqual(r.prefix, TF2)
        shapes = r.get_variable_to_shape_map()
        self.assertEqual(len(shapes), 15)  # 14 tensors and the object graph, as TF lists them
        self.assertEqual(shapes[KERNEL0], [784, 200])
        self.assertEqual(shapes[ITERATIONS], [])
        self.assertEqual(shapes[OBJECT_GRAPH], [])
        dtypes = r.get_variable_to_dtype_map()
        self.assertEqual(dtypes[KERNEL0], "float32")
        self.assertEqual(dtypes[KERNEL0], kiln.float32)
        self.assertEqual(dtypes[ITERATIONS], "int64")
        self.assertEqual(dtypes[OBJECT_GRAPH], "string")
        self.assertTrue(r.has_tensor(ITERATIONS))
        self.assertFalse(r.has_tensor("optimizer/_iterations"))
        sizes = {name: size for name, _, _, size in r.variables()}
        self.assertEqual(sizes[KERNEL0], 784 * 200 * 4)
        self.assertEqual(sizes[ITERATIONS], 8)

    @needs_numpy
    def test_values_as_numpy(self):
        r = kiln.train.load_checkpoint(pathlib.Path(TF2))
        it = r.get_tensor(ITERATIONS)
        # A NumPy scalar for a rank-0 variable, as TensorFlow's reader gives.
        self.assertIsInstance(it, np.int64)
        self.assertEqual(it, 1500)
        self.assertAlmostEqual(float(r.get_tensor("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")), 0.001,
                               places=9)
        kernel = r.get_tensor(KERNEL0)
        self.assertIsInstance(kernel, np.ndarray)
        self.assertEqual(kernel.shape, (784, 200))
        self.assertEqual(kernel.dtype, np.float32)
        bias = r.get_tensor("layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_allclose(bias[:3], [-0.02635354734957218, 0.03461642190814018, -0.04411838948726654],
                                   rtol=1e-6)

    def test_list_variables_sorted(self):
        v = kiln.train.list_variables(TF2)
        self.assertEqual(len(v), 15)
        self.assertEqual([n for n, _ in v], sorted(n for n, _ in v))
        self.assertEqual(v[0], (OBJECT_GRAPH, []))
        self.assertIn((KERNEL0, [784, 200]), v)

    def test_files_name_their_checkpoint(self):
        self.assertEqual(kiln.train.load_checkpoint(TF2 + ".index").prefix, TF2)
        self.assertEqual(kiln.train.load_checkpoint(TF2 + DATA).get_tensor(ITERATIONS), 1500)


@needs_fixtures
class Tf1BertCheckpointTest(unittest.TestCase):
    def test_bert(self):
        r = kiln.train.load_checkpoint(BERT)
        shapes = r.get_variable_to_shape_map()
        self.assertEqual(len(shapes), 139)
        self.assertEqual(shapes["bert/embeddings/word_embeddings"], [15, 4])
        self.assertEqual(shapes["bert/encoder/layer_1/intermediate/dense/kernel"], [4, 16])
        self.assertIn("bert/embeddings/word_embeddings/adam_m", shapes)
        self.assertEqual(r.get_variable_to_dtype_map()["global_step"], "int64")
        self.assertEqual(int(r.get_tensor("global_step")), 20)
        v = kiln.train.list_variables(BERT)
        self.assertEqual(v[-1], ("global_step", []))
        self.assertEqual(v[0], ("bert/embeddings/LayerNorm/beta", [4]))

    @needs_numpy
    def test_values(self):
        b = kiln.train.load_checkpoint(BERT).get_tensor("cls/seq_relationship/output_bias")
        np.testing.assert_allclose(b, [-6.131137524789665e-06, 6.131137979537016e-06], rtol=1e-6)


@needs_fixtures
class DirectoryAndErrorsTest(unittest.TestCase):
    def test_directory_through_state_file(self):
        with CheckpointCopy() as c:
            with self.assertRaises(kiln.NotFoundError):
                kiln.train.load_checkpoint(c.dir)  # no state file: no latest checkpoint
            with open(os.path.join(c.dir, "checkpoint"), "w") as f:
                f.write('model_checkpoint_path: "m.ckpt-0"\nall_model_checkpoint_paths: "m.ckpt-0"\n')
            r = kiln.train.load_checkpoint(c.dir)
            self.assertEqual(os.path.basename(r.prefix), "m.ckpt-0")
            self.assertEqual(int(r.get_tensor(ITERATIONS)), 1500)
            self.assertEqual(len(kiln.train.list_variables(c.dir)), 15)

    def test_fixture_state_names_a_missing_checkpoint(self):
        # The fixture's `checkpoint` file names keras_embedding.ckpt-9, which is not there.
        with self.assertRaises(kiln.NotFoundError) as cm:
            kiln.train.load_checkpoint(TF2_DIR)
        self.assertIn("keras_embedding.ckpt-9", str(cm.exception))

    def test_missing_checkpoint_and_name(self):
        with self.assertRaises(kiln.NotFoundError) as cm:
            kiln.train.load_checkpoint(os.path.join(FIXTURES, "no_such.ckpt"))
        self.assertIn("no_such.ckpt", str(cm.exception))
        r = kiln.train.load_checkpoint(TF2)
        with self.assertRaises(kiln.NotFoundError) as cm:
            r.get_tensor("no/such/variable")
        self.assertIn("no/such/variable", str(cm.exception))

    def test_string_object_graph_is_unimplemented(self):
        with self.assertRaises(kiln.UnimplementedError) as cm:
            kiln.train.load_checkpoint(TF2).get_tensor(OBJECT_GRAPH)
        self.assertIn("string", str(cm.exception))

    def test_corrupt_copy_is_data_loss_naming_file_and_variable(self):
        with CheckpointCopy(flip=0) as c:  # byte 0 of the data file is the first of the kernel's
            r = kiln.train.load_checkpoint(c.prefix)
            with self.assertRaises(kiln.DataLossError) as cm:
                r.get_tensor(KERNEL0)
            self.assertIn(KERNEL0, str(cm.exception))
            self.assertIn(DATA, str(cm.exception))
            self.assertEqual(int(r.get_tensor(ITERATIONS)), 1500)

    def test_truncated_index_is_data_loss(self):
        with CheckpointCopy() as c:
            with open(c.prefix + ".index", "r+b") as f:
                f.truncate(500)
            with self.assertRaises(kiln.DataLossError) as cm:
                kiln.train.load_checkpoint(c.prefix)
            self.assertIn("m.ckpt-0.index", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
