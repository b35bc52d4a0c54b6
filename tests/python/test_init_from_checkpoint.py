"""kiln.train.init_from_checkpoint from Python: tf.compat.v1.train.init_from_checkpoint's assignment map
(names, scopes, the root, Variables, lists of targets) on google-research/bert's TF1 checkpoint
(../shared/fixtures; skipped when absent) and on checkpoints kiln writes itself (TF2 object-based keys,
read by their paths), the report, the options, errors as kiln exceptions with nothing changed, and the
example's BERT and ALBERT name maps (examples/python/bert_tf1_init.py)."""
import contextlib
import importlib.util
import io
import os
import shutil
import tempfile
import unittest

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

import kiln
from kiln import layers

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(ROOT, "..", "shared", "fixtures")
BERT_DIR = os.path.join(FIXTURES, "tf1_bert_tiny")
BERT = os.path.join(BERT_DIR, "bert_model.ckpt")

needs_bert = unittest.skipUnless(os.path.exists(BERT + ".index"), "the TF1 BERT fixture is not in " + FIXTURES)
needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


def _example():
    spec = importlib.util.spec_from_file_location("bert_tf1_init",
                                                  os.path.join(ROOT, "examples", "python", "bert_tf1_init.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zeros(name, shape):
    return kiln.Variable(kiln.zeros(list(shape)), name=name)


@needs_numpy
@needs_bert
class InitFromBertCheckpointTest(unittest.TestCase):
    def setUp(self):
        self.reader = kiln.train.load_checkpoint(BERT)

    def same(self, variable, name):
        return np.array_equal(variable.numpy().reshape(-1), self.reader.get_tensor(name).reshape(-1))

    def test_names_scopes_variables_and_report(self):
        kernel, bias = zeros("pool/kernel", (4, 4)), zeros("pool/bias", (4,))
        words, spare = zeros("emb/words", (15, 4)), zeros("spare", (4,))
        r = kiln.train.init_from_checkpoint(BERT, {"bert/pooler/dense/": "pool/",
                                                   "bert/embeddings/word_embeddings": "emb/words"},
                                            variables=[kernel, bias, words, spare])
        self.assertTrue(self.same(kernel, "bert/pooler/dense/kernel"))
        self.assertTrue(self.same(bias, "bert/pooler/dense/bias"))
        self.assertTrue(self.same(words, "bert/embeddings/word_embeddings"))
        self.assertEqual(r.checkpoint, BERT)
        self.assertEqual(r.matched_pairs(), [("bert/pooler/dense/kernel", "pool/kernel"),
                                             ("bert/pooler/dense/bias", "pool/bias"),
                                             ("bert/embeddings/word_embeddings", "emb/words")])
        self.assertEqual(r.matched[0]["checkpoint_shape"], [4, 4])
        self.assertFalse(r.matched[0]["reshaped"])
        self.assertEqual(r.unmatched_variables, ["spare"])
        self.assertEqual(len(r.skipped_checkpoint_names), 93)  # Adam slots and global_step
        self.assertIn("global_step", r.skipped_checkpoint_names)
        self.assertEqual(len(r.unmatched_checkpoint_names), 139 - 93 - 3)
        self.assertIn("bert/pooler/dense/kernel [4, 4] -> pool/kernel", str(r))
        self.assertIn("3 matched", repr(r))

    def test_variables_as_targets_and_lists(self):
        a, b, c = zeros("a", (4,)), zeros("b", (4,)), zeros("c", (4,))
        # A list of targets: one value into each (ALBERT's shared layers); pairs may repeat a name.
        r = kiln.train.init_from_checkpoint(BERT, {"bert/pooler/dense/bias": [a, b]})
        self.assertTrue(self.same(a, "bert/pooler/dense/bias") and self.same(b, "bert/pooler/dense/bias"))
        self.assertEqual(len(r.matched), 2)
        kiln.train.init_from_checkpoint(BERT, [("bert/embeddings/LayerNorm/gamma", c)])
        self.assertTrue(self.same(c, "bert/embeddings/LayerNorm/gamma"))

    def test_model(self):
        dense = layers.Dense(4, name="pooler_py")
        with self.assertRaises(kiln.FailedPreconditionError):
            kiln.train.init_from_checkpoint(BERT, {"bert/pooler/dense/": "pooler_py/"}, model=dense)
        dense(kiln.zeros([1, 4]))
        r = kiln.train.init_from_checkpoint(BERT, {"bert/pooler/dense/": "pooler_py/"}, model=dense)
        self.assertEqual(len(r.matched), 2)
        self.assertTrue(self.same(dense.variables[0], "bert/pooler/dense/kernel"))

    def test_options(self):
        q, t = zeros("q", (4, 2, 2)), zeros("t", (16, 4))
        query = "bert/encoder/layer_0/attention/self/query/kernel"
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"\[4, 4\].*\[4, 2, 2\]"):
            kiln.train.init_from_checkpoint(BERT, {query: "q"}, variables=[q])
        self.assertFalse(q.numpy().any())
        r = kiln.train.init_from_checkpoint(BERT, {query: "q"}, variables=[q], allow_reshape=True)
        self.assertTrue(r.matched[0]["reshaped"])
        self.assertTrue(self.same(q, query))
        # A transposition is a mismatch even with allow_reshape: both names and shapes named.
        inter = "bert/encoder/layer_0/intermediate/dense/kernel"
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"'%s' \(float32\[4, 16\]\).*'t' \(float32\[16, 4\]\)"
                                    % inter):
            kiln.train.init_from_checkpoint(BERT, {inter: "t"}, variables=[t], allow_reshape=True)
        r = kiln.train.init_from_checkpoint(BERT, {inter: "t"}, variables=[t], skip_mismatched=True)
        self.assertEqual(r.mismatched[0]["variable_shape"], [16, 4])
        self.assertEqual(r.unmatched_variables, ["t"])
        with self.assertRaisesRegex(kiln.NotFoundError, "bert/no/such"):
            kiln.train.init_from_checkpoint(BERT, {"bert/no/such": "t"}, variables=[t])
        r = kiln.train.init_from_checkpoint(BERT, {"bert/no/such": "t"}, variables=[t], allow_missing=True)
        self.assertEqual(r.missing, [("bert/no/such", "t")])
        r = kiln.train.init_from_checkpoint(BERT, {}, variables=[t], skip_optimizer_state=False)
        self.assertEqual(r.skipped_checkpoint_names, [])
        self.assertIn("global_step", r.unmatched_checkpoint_names)

    def test_errors(self):
        v = zeros("v", (4,))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "scope"):
            kiln.train.init_from_checkpoint(BERT, {"bert/pooler/": "v"}, variables=[v])
        with self.assertRaisesRegex(kiln.NotFoundError, "'nobody'"):
            kiln.train.init_from_checkpoint(BERT, {"bert/pooler/dense/bias": "nobody"}, variables=[v])
        with self.assertRaisesRegex(kiln.NotFoundError, "no_such.ckpt"):
            kiln.train.init_from_checkpoint(os.path.join(FIXTURES, "no_such.ckpt"), {"a": "v"}, variables=[v])
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.init_from_checkpoint(BERT, {"bert/pooler/dense/bias": 3}, variables=[v])
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.init_from_checkpoint(BERT, ["not a pair"], variables=[v])
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.init_from_checkpoint(BERT, {}, variables=["v"])
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.init_from_checkpoint(BERT, {}, model="m")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "int64"):
            kiln.train.init_from_checkpoint(BERT, {"global_step": "v"}, variables=[v])
        self.assertFalse(v.numpy().any())

    def test_bert_example(self):
        # The example builds modeling.py's encoder, initialises it and checks every weight, the
        # report and the outputs against a NumPy modeling.py; 0 when every check passed.
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = _example().run(BERT_DIR)
        self.assertEqual(rc, 0, out.getvalue())
        self.assertIn("all checks passed", out.getvalue())


@needs_numpy
class InitFromKilnCheckpointTest(unittest.TestCase):
    """Checkpoints kiln writes (tf.train.Checkpoint's TF2 object-based keys) read by their paths."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_init_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_object_based_names(self):
        src = layers.Dense(3, name="src_dense")
        src(kiln.zeros([1, 2]))
        path = kiln.train.Checkpoint(model=src).save(os.path.join(self.dir, "ckpt"))  # adds save_counter
        dst = layers.Dense(3, name="dst_dense")
        dst(kiln.zeros([1, 2]))
        r = kiln.train.init_from_checkpoint(path, {"model/": "dst_dense/"}, model=dst)
        self.assertEqual(sorted(r.matched_pairs()), [("model/bias", "dst_dense/bias"),
                                                     ("model/kernel", "dst_dense/kernel")])
        self.assertEqual(r.matched[0]["checkpoint_key"],
                         r.matched[0]["checkpoint_name"] + "/.ATTRIBUTES/VARIABLE_VALUE")
        for s, d in zip(src.variables, dst.variables):
            np.testing.assert_array_equal(s.numpy(), d.numpy())
        self.assertIn("save_counter", r.skipped_checkpoint_names)
        self.assertIn("_CHECKPOINTABLE_OBJECT_GRAPH", r.skipped_checkpoint_names)
        # The directory names its latest checkpoint; full keys are accepted too.
        other = zeros("other", (3,))
        r = kiln.train.init_from_checkpoint(self.dir, {"model/bias/.ATTRIBUTES/VARIABLE_VALUE": other})
        np.testing.assert_array_equal(other.numpy(), src.variables[1].numpy())

    def test_albert_name_map(self):
        # A synthetic ALBERT checkpoint: google-research/albert's names for a tiny config (vocab 30,
        # embedding 6, hidden 8 in 2 heads, intermediate 12, 16 positions, 4 layers in 2 groups), with
        # Adam slots and global_step. kiln's Checkpoint escapes each name's '/' in its key (".S"),
        # and init_from_checkpoint reads the key as the name again.
        ex = _example()
        vocab, emb, hidden, heads, inter, pos, n_layers, groups = 30, 6, 8, 2, 12, 16, 4, 2
        rng = np.random.default_rng(5)
        tf1 = {"bert/embeddings/word_embeddings": (vocab, emb), "bert/embeddings/token_type_embeddings": (2, emb),
               "bert/embeddings/position_embeddings": (pos, emb), "bert/embeddings/LayerNorm/gamma": (emb,),
               "bert/embeddings/LayerNorm/beta": (emb,),
               "bert/encoder/embedding_hidden_mapping_in/kernel": (emb, hidden),
               "bert/encoder/embedding_hidden_mapping_in/bias": (hidden,),
               "bert/pooler/dense/kernel": (hidden, hidden), "bert/pooler/dense/bias": (hidden,)}
        for g in range(groups):
            p = "bert/encoder/transformer/group_%d/inner_group_0/" % g
            for n in ("query", "key", "value"):
                tf1[p + "attention_1/self/%s/kernel" % n] = (hidden, hidden)
                tf1[p + "attention_1/self/%s/bias" % n] = (hidden,)
            tf1[p + "attention_1/output/dense/kernel"] = (hidden, hidden)
            tf1[p + "ffn_1/intermediate/dense/kernel"] = (hidden, inter)
            tf1[p + "ffn_1/intermediate/dense/bias"] = (inter,)
            tf1[p + "ffn_1/intermediate/output/dense/kernel"] = (inter, hidden)
            for n in ("attention_1/output/dense/bias", "ffn_1/intermediate/output/dense/bias", "LayerNorm/gamma",
                      "LayerNorm/beta", "LayerNorm_1/gamma", "LayerNorm_1/beta"):
                tf1[p + n] = (hidden,)
        values = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in tf1.items()}
        objects = {name: kiln.Variable(v, name=name) for name, v in values.items()}
        for name, v in values.items():
            objects[name + "/adam_m"] = kiln.Variable(np.zeros_like(v), name=name + "/adam_m")
        objects["global_step"] = kiln.Variable(np.array(1000, dtype=np.int64), name="global_step")
        path = kiln.train.Checkpoint(**objects).write(os.path.join(self.dir, "albert.ckpt"))

        pairs = ex.albert_tf1_name_map("albert", n_layers, groups)

        def kiln_shape(tf1_name, kiln_name):
            if kiln_name.endswith("attention_output/kernel"):
                return (heads, hidden // heads, hidden)
            if "/attention/" in kiln_name and not kiln_name.endswith("attention_output/bias"):
                return (hidden, heads, hidden // heads) if kiln_name.endswith("kernel") else (heads, hidden // heads)
            return tf1[tf1_name]

        variables = {k: zeros(k, kiln_shape(t, k)) for t, k in pairs}
        self.assertEqual(len(variables), len(pairs))
        r = kiln.train.init_from_checkpoint(path, pairs, variables=list(variables.values()), allow_reshape=True)
        self.assertEqual(len(r.matched), len(pairs))
        self.assertEqual(r.unmatched_variables, [])
        self.assertEqual(r.unmatched_checkpoint_names, [])
        self.assertEqual(len(r.skipped_checkpoint_names), len(values) + 2)  # slots, global_step, object graph
        # Every shared weight reaches every layer of its group, in its checkpoint order.
        uses = {}
        for t, k in pairs:
            np.testing.assert_array_equal(variables[k].numpy().reshape(-1), values[t].reshape(-1), err_msg=k)
            uses[t] = uses.get(t, 0) + 1
        for t in values:
            self.assertEqual(uses[t], n_layers // groups if "/transformer/group_" in t else 1, t)
        self.assertEqual(ex.albert_group_of_layer(1, 4, 2), 0)
        self.assertEqual(ex.albert_group_of_layer(2, 4, 2), 1)
        self.assertEqual(len(ex.albert_tf1_name_map("m", 2, 1, hidden_mapping=False)),
                         len(ex.albert_tf1_name_map("m", 2, 1)) - 2)


if __name__ == "__main__":
    unittest.main()
