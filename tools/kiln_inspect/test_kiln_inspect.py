"""The kiln-inspect command on TensorFlow's checkpoints (listing, totals, --tensor values) and on
kiln's SavedModels (signatures, layers, parameters), and a non-zero exit with a clear message for
missing, corrupt and truncated files and for bad usage.

    python3 test_kiln_inspect.py path/to/kiln-inspect path/to/shared/fixtures

The checkpoint tests skip when the fixtures are absent, the SavedModel ones when the kiln Python
binding does not import (it writes their SavedModel); exits 77 (CTest's skip) when both are."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TOOL = FIXTURES = None
DATA = ".data-00000-of-00001"
KERNEL0 = "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
ITERATIONS = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"


def run(*args):
    p = subprocess.run([TOOL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tf2():
    return os.path.join(FIXTURES, "tf2_checkpoint", "keras_embedding.ckpt-0")


def bert():
    return os.path.join(FIXTURES, "tf1_bert_tiny", "bert_model.ckpt")


def have_fixtures():
    return os.path.exists(tf2() + ".index") and os.path.exists(bert() + ".index")


def kiln_module():
    try:
        import kiln  # noqa: PLC0415
        return kiln
    except Exception:  # noqa: BLE001 - no binding, no library: those tests skip
        return None


class KilnInspectTest(unittest.TestCase):
    def setUp(self):
        if not have_fixtures():
            self.skipTest("the TensorFlow checkpoint fixtures are not in " + FIXTURES)
        self.tmp = tempfile.mkdtemp(prefix="kiln_inspect_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def copy_tf2(self, flip=None, keep=None):
        prefix = os.path.join(self.tmp, "m.ckpt-0")
        shutil.copyfile(tf2() + ".index", prefix + ".index")
        with open(tf2() + DATA, "rb") as f:
            data = bytearray(f.read())
        if flip is not None:
            data[flip] ^= 0xFF
        with open(prefix + DATA, "wb") as f:
            f.write(data[:keep] if keep else data)
        return prefix

    def test_lists_every_variable_and_the_totals(self):
        code, out, err = run("ckpt", tf2())
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertIn("15 variables", lines[0])  # 14 tensors and the object graph
        rows = {l.split()[0]: l.split() for l in lines[2:17]}
        self.assertEqual(len(rows), 15)
        self.assertEqual(rows[KERNEL0][1:], ["float32", "[784,", "200]", "627,200"])
        self.assertEqual(rows[ITERATIONS][1:], ["int64", "[]", "8"])
        self.assertEqual(rows["_CHECKPOINTABLE_OBJECT_GRAPH"][1:], ["string", "[]", "1,841"])
        self.assertIn("total: 15 variables, 1,909,973 bytes (1.8 MiB)", out)
        self.assertIn("verified: the sizes and checksums of 14 variables match", out)
        self.assertIn("not read: _CHECKPOINTABLE_OBJECT_GRAPH (string)", out)

    def test_tf1_bert_and_a_directory(self):
        code, out, err = run("ckpt", bert())
        self.assertEqual(code, 0, err)
        self.assertIn("139 variables", out.splitlines()[0])
        self.assertIn("global_step", out)
        prefix = self.copy_tf2()
        with open(os.path.join(self.tmp, "checkpoint"), "w") as f:
            f.write('model_checkpoint_path: "m.ckpt-0"\n')
        code, out, err = run("ckpt", self.tmp, "--no-verify")
        self.assertEqual(code, 0, err)
        self.assertIn(prefix, out.splitlines()[0])
        self.assertNotIn("verified", out)

    def test_tensor_values(self):
        code, out, err = run("ckpt", tf2(), "--tensor", ITERATIONS)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), [ITERATIONS + ": int64 [], 8 bytes", "1500"])
        code, out, err = run("ckpt", bert(), "--tensor=cls/seq_relationship/output_bias")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines()[1], "[-6.13113752e-06  6.13113798e-06]")
        # A big one is summarised as NumPy does: the ends of each dimension, then min/max/mean.
        code, out, err = run("ckpt", tf2(), "--tensor", KERNEL0)
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], KERNEL0 + ": float32 [784, 200], 627,200 bytes")
        self.assertTrue(lines[1].startswith("[[ 0.04720142  0.07621887 -0.03505123 ...  0.00978151"), lines[1])
        self.assertIn(" ...", lines)  # the rows left out
        self.assertEqual(len(lines), 15)  # 6 rows of 200 values shown on 2 lines each, "...", min/max/mean
        self.assertTrue(lines[-2].endswith("]]"), lines[-2])
        self.assertTrue(lines[-1].startswith("min "), lines[-1])
        code, out, err = run("ckpt", tf2(), "--tensor", "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertEqual(out.splitlines()[1], "0.001")

    def test_missing_and_corrupt_files(self):
        code, out, err = run("ckpt", os.path.join(self.tmp, "nothing.ckpt"))
        self.assertEqual(code, 1)
        self.assertIn("not found", err)
        self.assertIn("nothing.ckpt", err)
        code, out, err = run("ckpt", self.tmp)  # a directory without a state file
        self.assertEqual(code, 1)
        self.assertIn("not found", err)
        # A flipped byte in the kernel's data: the listing names it, and --tensor fails on it.
        prefix = self.copy_tf2(flip=0)
        code, out, err = run("ckpt", prefix)
        self.assertEqual(code, 1)
        self.assertIn("data loss", err)
        self.assertIn(KERNEL0, err)
        self.assertIn("1 of 14 variables failed their checks", err)
        self.assertIn("total: 15 variables", out)  # the listing comes first
        code, out, err = run("ckpt", prefix, "--tensor", KERNEL0)
        self.assertEqual(code, 1)
        self.assertIn("data loss", err)
        code, out, err = run("ckpt", prefix, "--tensor", ITERATIONS)
        self.assertEqual(code, 0, err)
        # A truncated index is not a checkpoint.
        with open(prefix + ".index", "r+b") as f:
            f.truncate(500)
        code, out, err = run("ckpt", prefix)
        self.assertEqual(code, 1)
        self.assertIn("data loss", err)
        self.assertIn("m.ckpt-0.index", err)

    def test_unknown_variable_and_string_variable(self):
        code, out, err = run("ckpt", tf2(), "--tensor", "no/such/variable")
        self.assertEqual(code, 1)
        self.assertIn("not found", err)
        self.assertIn("no/such/variable", err)
        code, out, err = run("ckpt", tf2(), "--tensor", "_CHECKPOINTABLE_OBJECT_GRAPH")
        self.assertEqual(code, 1)
        self.assertIn("unimplemented", err)

    def test_usage(self):
        code, out, err = run()
        self.assertEqual(code, 2)
        self.assertIn("usage: kiln-inspect", err)
        code, out, err = run("--help")
        self.assertEqual(code, 0)
        self.assertIn("ckpt PREFIX|DIR", out)
        code, out, err = run("frobnicate", "x")
        self.assertEqual(code, 2)
        self.assertIn("unknown command 'frobnicate'; the commands are: ckpt, savedmodel, events", err)
        code, out, err = run("ckpt")
        self.assertEqual(code, 2)
        code, out, err = run("ckpt", tf2(), "--bogus")
        self.assertEqual(code, 2)
        self.assertIn("--bogus", err)
        code, out, err = run("ckpt", tf2(), "--tensor")
        self.assertEqual(code, 2)
        code, out, err = run("--version")
        self.assertEqual(code, 0)
        self.assertIn("kiln", out)


class SavedModelInspectTest(unittest.TestCase):
    def setUp(self):
        self.kiln = kiln_module()
        if self.kiln is None:
            self.skipTest("the kiln Python binding does not import (PYTHONPATH, KILN_LIBRARY)")
        self.tmp = tempfile.mkdtemp(prefix="kiln_inspect_sm_")
        kiln = self.kiln
        self.model = kiln.Sequential([kiln.layers.Dense(16, activation="relu"), kiln.layers.Dense(3)])
        self.model.build((None, 4))
        self.model.compile(optimizer="adam", loss="mse")
        self.export = os.path.join(self.tmp, "export")
        self.model.save(self.export)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_signatures_layers_and_parameters(self):
        code, out, err = run("savedmodel", self.export)
        self.assertEqual(code, 0, err)
        first, last = self.model.layers[0].name, self.model.layers[1].name
        self.assertIn("signature_def['serving_default']:", out)
        self.assertIn("inputs['%s_input'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 4)" % first, out)
        self.assertIn("outputs['%s'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 3)" % last, out)
        self.assertIn("Total params: 131", out)  # 4*16+16 + 16*3+3
        self.assertIn("Compiled: optimizer Adam, 0 iteration(s)", out)
        self.assertIn("Variables:", out)

    def test_damaged_and_missing(self):
        with open(os.path.join(self.export, "saved_model.pb"), "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 3] ^= 0x11
            f.seek(0)
            f.write(data)
        code, out, err = run("savedmodel", self.export)
        self.assertEqual(code, 1)
        self.assertIn("data loss", err)
        self.assertIn("saved_model.pb", err)
        code, out, err = run("savedmodel", os.path.join(self.tmp, "nowhere"))
        self.assertEqual(code, 1)
        self.assertIn("not found", err)
        code, out, err = run("savedmodel")
        self.assertEqual(code, 2)
        code, out, err = run("savedmodel", self.export, "--bogus")
        self.assertEqual(code, 2)


if __name__ == "__main__":
    TOOL, FIXTURES = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if not have_fixtures() and kiln_module() is None:
        print("SKIP: neither the TensorFlow checkpoint fixtures (%s) nor the kiln Python binding" % FIXTURES)
        sys.exit(77)
    unittest.main(argv=sys.argv[:1], verbosity=2)
