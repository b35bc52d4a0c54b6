"""MultiHeadAttention, the merge layers, Permute and RepeatVector from Python: Keras's call signature
(keywords mapped onto the C layer's input list), outputs against NumPy, gradients to every weight,
configs that round-trip, errors naming the layer."""
import unittest

import numpy as np

import kiln
from kiln import layers


def numpy_attention(layer, query, value, key=None, mask=None, causal=False):
    """Keras's multi-head attention in NumPy (float64) over the layer's own weights: (output, scores)."""
    key = value if key is None else key
    wq, bq, wk, bk, wv, bv, wo, bo = [w.numpy().astype(np.float64) for w in layer.weights]
    q = np.einsum("btc,chd->bthd", query, wq) + bq
    k = np.einsum("bsc,chd->bshd", key, wk) + bk
    v = np.einsum("bsc,chd->bshd", value, wv) + bv
    scores = np.einsum("bthd,bshd->bhts", q, k) / np.sqrt(wq.shape[-1])
    t, s = scores.shape[-2:]
    keep = np.ones((query.shape[0], t, s), bool)
    if mask is not None:
        keep &= np.broadcast_to(np.asarray(mask) != 0, keep.shape)
    if causal:
        keep &= np.tril(np.ones((t, s), bool))
    keep = keep[:, None]
    scores = np.where(keep, scores, -np.inf)
    peak = np.max(scores, -1, keepdims=True)
    e = np.where(keep, np.exp(scores - np.where(np.isfinite(peak), peak, 0)), 0)
    z = e.sum(-1, keepdims=True)
    probs = np.divide(e, z, out=np.zeros_like(e), where=z > 0)
    out = np.einsum("bthd,hde->bte", np.einsum("bhts,bshd->bthd", probs, v), wo) + bo
    return out, probs


class MultiHeadAttentionTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        rng = np.random.default_rng(0)
        self.q = rng.uniform(-1, 1, (2, 3, 8)).astype(np.float32)
        self.v = rng.uniform(-1, 1, (2, 5, 6)).astype(np.float32)
        self.k = rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32)
        self.mask = rng.uniform(size=(2, 3, 5)) > 0.4
        self.mask[1, 2] = False  # a fully masked query row

    def test_keras_call_signature_against_numpy(self):
        mha = layers.MultiHeadAttention(num_heads=2, key_dim=4, bias_initializer="random_uniform")
        out = mha(self.q, self.v)
        self.assertEqual(out.shape, (2, 3, 8))
        np.testing.assert_allclose(out.numpy(), numpy_attention(mha, self.q, self.v)[0], rtol=1e-4, atol=1e-5)
        self.assertEqual([w.name for w in mha.weights][::2], ["multi_head_attention/query/kernel",
                                                               "multi_head_attention/key/kernel",
                                                               "multi_head_attention/value/kernel",
                                                               "multi_head_attention/attention_output/kernel"])
        self.assertEqual([tuple(w.shape) for w in mha.weights],
                         [(8, 2, 4), (2, 4), (6, 2, 4), (2, 4), (6, 2, 4), (2, 4), (2, 4, 8), (8,)])

        out, scores = mha(self.q, self.v, attention_mask=self.mask, return_attention_scores=True)
        self.assertEqual(scores.shape, (2, 2, 3, 5))
        want_out, want_scores = numpy_attention(mha, self.q, self.v, mask=self.mask)
        np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scores.numpy(), want_scores, rtol=1e-4, atol=1e-6)
        self.assertTrue(np.all(scores.numpy()[np.broadcast_to(~self.mask[:, None], scores.shape)] == 0))

        out, scores = mha(self.q, self.v, attention_mask=self.mask.astype(np.float32), return_attention_scores=True,
                          use_causal_mask=True)
        want_out, want_scores = numpy_attention(mha, self.q, self.v, mask=self.mask, causal=True)
        np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scores.numpy(), want_scores, rtol=1e-4, atol=1e-6)
        out = mha(self.q, self.v, use_causal_mask=True)
        np.testing.assert_allclose(out.numpy(), numpy_attention(mha, self.q, self.v, causal=True)[0], rtol=1e-4,
                                   atol=1e-5)

    def test_separate_key_and_gradients_to_every_weight(self):
        mha = layers.MultiHeadAttention(2, 3, value_dim=5, output_shape=7, bias_initializer="random_uniform")
        out = mha(self.q, self.v, key=self.k, attention_mask=self.mask)
        self.assertEqual(out.shape, (2, 3, 7))
        np.testing.assert_allclose(out.numpy(), numpy_attention(mha, self.q, self.v, self.k, self.mask)[0],
                                   rtol=1e-4, atol=1e-5)
        with kiln.GradientTape() as tape:
            loss = kiln.reduce_sum(kiln.square(mha(self.q, self.v, self.k, attention_mask=self.mask, training=True)))
        grads = tape.gradient(loss, mha.trainable_variables)
        self.assertEqual(len(grads), 8)
        for var, g in zip(mha.trainable_variables, grads):
            self.assertIsNotNone(g, var.name)
            self.assertGreater(float(np.abs(g.numpy()).sum()), 0, var.name)

    def test_dropout_only_when_training(self):
        mha = layers.MultiHeadAttention(2, 4, dropout=0.5)
        a = mha(self.q, self.q).numpy()
        np.testing.assert_array_equal(mha(self.q, self.q, training=False).numpy(), a)
        out, scores = mha(self.q, self.q, return_attention_scores=True, training=True)
        _, infer_scores = mha(self.q, self.q, return_attention_scores=True)
        np.testing.assert_allclose(scores.numpy(), infer_scores.numpy(), rtol=1e-6)  # scores before dropout
        self.assertGreater(float(np.abs(out.numpy() - a).max()), 1e-4)

    def test_config_round_trip(self):
        mha = layers.MultiHeadAttention(num_heads=2, key_dim=4, dropout=0.1, output_shape=(3, 2),
                                        kernel_regularizer="l2", seed=5)
        cfg = mha.get_config()
        self.assertEqual((cfg["num_heads"], cfg["key_dim"], cfg["value_dim"]), (2, 4, 4))
        self.assertEqual(cfg["output_shape"], [3, 2])
        self.assertIsNone(cfg["attention_axes"])
        self.assertEqual(layers.MultiHeadAttention.from_config(cfg).get_config(), cfg)
        again = layers.deserialize(layers.serialize(mha))
        self.assertIsInstance(again, layers.MultiHeadAttention)
        self.assertEqual(again.get_config(), cfg)
        self.assertEqual(mha(self.q, self.v).shape, (2, 3, 3, 2))

    def test_errors_name_the_layer(self):
        with self.assertRaisesRegex(TypeError, "key_dim"):
            layers.MultiHeadAttention(num_heads=2)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "'key_dim' is required"):
            layers.MultiHeadAttention.from_config({"num_heads": 2})
        mha = layers.MultiHeadAttention(2, 4, name="mha")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'mha' \(MultiHeadAttention\): got 1 inputs"):
            layers.Layer.__call__(mha, [self.q])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"key has positions \(4,\) and value \(5,\)"):
            mha(self.q, self.v, key=self.v[:, :4, :])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "attention_mask has shape"):
            mha(self.q, self.v, attention_mask=np.ones((2, 5, 3), bool))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'mha' \(MultiHeadAttention\): mask 0 has shape"):
            mha(self.q, self.v, query_mask=np.ones((2, 7), bool))


class GroupedQueryAttentionTest(unittest.TestCase):
    """keras.layers.GroupedQueryAttention, and Keras 3's use_gate and sliding_window, against NumPy."""

    def setUp(self):
        layers.clear_session()

    @staticmethod
    def reference(layer, query, value, gate=False, window=None, causal=False, mask=None):
        w = {v.name.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}
        q = np.einsum("bqm,muh->bquh", query, w["query/kernel"]) + w.get("query/bias", 0)
        k = np.einsum("bkm,mvh->bkvh", value, w["key/kernel"]) + w.get("key/bias", 0)
        v = np.einsum("bkm,mvh->bkvh", value, w["value/kernel"]) + w.get("value/bias", 0)
        k, v = (np.repeat(t, q.shape[2] // t.shape[2], axis=2) for t in (k, v))  # Keras's ops.repeat
        scores = np.einsum("bquh,bkuh->buqk", q, k) / np.sqrt(q.shape[-1])
        t, s = scores.shape[-2:]
        keep = np.ones((query.shape[0], t, s), bool)
        if mask is not None:
            keep &= mask
        if causal:
            keep &= np.tril(np.ones((t, s), bool))
        if window:
            keep &= np.abs(np.arange(t)[:, None] - np.arange(s)[None]) < window
        keep = keep[:, None]
        e = np.where(keep, np.exp(scores - scores.max(-1, keepdims=True)), 0)
        probs = e / np.maximum(e.sum(-1, keepdims=True), 1e-300)
        context = np.einsum("buqk,bkuh->bquh", probs, v)
        if gate:
            context = context / (1 + np.exp(-(np.einsum("bqm,muh->bquh", query, w["gate/kernel"]) +
                                              w.get("gate/bias", 0))))
        return np.einsum("bquh,uhm->bqm", context, w["attention_output/kernel"]) + w.get("attention_output/bias", 0)

    def test_against_numpy(self):
        rng = np.random.default_rng(1)
        for case in range(20):
            heads, kv_heads = ((4, 2), (4, 1), (6, 3), (2, 2), (8, 4))[case % 5]
            gate, window, causal = case % 3 == 0, (None, 2, 3)[case % 3], case % 4 == 1
            mask = rng.random((2, 5, 4)) < 0.8 if case % 5 == 3 else None
            layer = layers.GroupedQueryAttention(3, heads, kv_heads, use_gate=gate, sliding_window=window,
                                                 use_bias=case % 7 != 2)
            query = rng.standard_normal((2, 5, 6)).astype(np.float32)
            value = rng.standard_normal((2, 4, 6)).astype(np.float32)
            out = layer(query, value, use_causal_mask=causal,
                        attention_mask=None if mask is None else kiln.constant(mask))
            np.testing.assert_allclose(np.asarray(out), self.reference(layer, query.astype(np.float64),
                                                                       value.astype(np.float64), gate, window,
                                                                       causal, mask), rtol=1e-5, atol=1e-5,
                                       err_msg="case %d" % case)
        mha = layers.MultiHeadAttention(2, 3, use_gate=True, sliding_window=2)
        query = rng.standard_normal((2, 5, 6)).astype(np.float32)
        out, scores = mha(query, query, return_attention_scores=True)
        np.testing.assert_allclose(np.asarray(out), self.reference(mha, query.astype(np.float64),
                                                                   query.astype(np.float64), True, 2),
                                   rtol=1e-5, atol=1e-5)
        self.assertEqual(float(np.asarray(scores)[0, 0, 0, 2:].sum()), 0.0)  # outside the window

    def test_config_weights_and_errors(self):
        layer = layers.GroupedQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2, dropout=0.1,
                                             use_gate=True)
        config = layer.get_config()
        self.assertEqual(list(config)[3:10], ["head_dim", "num_query_heads", "num_key_value_heads", "use_bias",
                                              "use_gate", "sliding_window", "dropout"])
        self.assertEqual(layers.GroupedQueryAttention.from_config(config).get_config(), config)
        layer(np.ones((1, 3, 8), np.float32), np.ones((1, 2, 8), np.float32))
        self.assertEqual([v.name.split("/", 1)[1] for v in layer.weights][::2], [
            "query/kernel", "key/kernel", "gate/kernel", "value/kernel", "attention_output/kernel"])
        self.assertEqual(tuple(layer.weights[2].shape), (8, 2, 4))
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "divisible"):
            layers.GroupedQueryAttention(4, 3, 2)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "sliding_window"):
            layers.GroupedQueryAttention(4, 2, 2, sliding_window=0)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "sliding_window"):
            layers.GroupedQueryAttention(4, 2, 2, sliding_window=2.5)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "expected rank 3"):
            layers.GroupedQueryAttention(4, 2, 1)(np.ones((1, 2, 3, 8), np.float32), np.ones((1, 2, 3, 8), np.float32))
        for bad in (2.7, "2"):  # not truncated
            with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "head_dim must be an int"):
                layers.GroupedQueryAttention(bad, 4, 2)

    def test_keras_names_masks_and_empty_batches(self):
        # Keras 3 exports the layer as GroupQueryAttention too; configs name GroupedQueryAttention.
        self.assertIs(layers.GroupQueryAttention, layers.GroupedQueryAttention)
        alias = layers.deserialize({"class_name": "GroupQueryAttention", "config": {
            "head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1}})
        self.assertEqual(alias.get_config()["num_query_heads"], 2)
        # An explicit key_mask applies without a key, as Keras ANDs it in: the same as that value mask.
        rng = np.random.default_rng(2)
        query = rng.standard_normal((2, 3, 5)).astype(np.float32)
        value = rng.standard_normal((2, 4, 5)).astype(np.float32)
        mask = kiln.constant(np.array([[1, 1, 0, 0], [1, 0, 1, 0]], bool))
        for layer in (layers.GroupedQueryAttention(2, 4, 2), layers.MultiHeadAttention(2, 3)):
            plain = np.asarray(layer(query, value))
            keyed = np.asarray(layer(query, value, key_mask=mask))
            self.assertGreater(np.abs(plain - keyed).max(), 1e-3)
            np.testing.assert_array_equal(keyed, np.asarray(layer(query, value, value_mask=mask)))
            # An empty batch gives an empty output.
            self.assertEqual(tuple(layer(query[:0], value[:0]).shape), (0, 3, 5))


def numpy_dot_attention(mode, query, value, key=None, scale=None, concat_weight=1.0, query_mask=None,
                        value_mask=None, causal=False):
    """Keras's Attention / AdditiveAttention in NumPy (float64): (output, weights)."""
    key = value if key is None else key
    q, v, k = (np.asarray(x, np.float64) for x in (query, value, key))
    if mode == "dot":
        scores = q @ np.swapaxes(k, -1, -2) * (1.0 if scale is None else scale)
    elif mode == "concat":
        scores = concat_weight * np.tanh((1.0 if scale is None else scale) * (q[..., :, None, :] + k[..., None, :, :])).sum(-1)
    else:
        scores = ((1.0 if scale is None else scale) * np.tanh(q[..., :, None, :] + k[..., None, :, :])).sum(-1)
    keep = np.ones(scores.shape, bool)
    if value_mask is not None:
        keep &= np.asarray(value_mask, bool)[..., None, :]
    if causal:
        keep &= np.tril(np.ones(scores.shape[-2:], bool))
    # Keras's float32 scores - 1e9 (a fully masked row becomes uniform: the scores round away)
    scores = np.where(keep, scores, (scores.astype(np.float32) - np.float32(1e9)).astype(np.float64))
    e = np.exp(scores - scores.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    out = w @ v
    if query_mask is not None:
        out = np.where(np.asarray(query_mask, bool)[..., None], out, 0)
    return out, w


class DotAttentionTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        rng = np.random.default_rng(1)
        self.q = rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32)
        self.v = rng.uniform(-1, 1, (2, 5, 6)).astype(np.float32)
        self.k = rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32)
        self.qm = np.array([[1, 0, 1], [1, 1, 1]], bool)
        self.vm = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], bool)

    def test_keras_call_signature_against_numpy(self):
        cases = [(layers.Attention(), "dot"), (layers.Attention(use_scale=True), "dot"),
                 (layers.Attention(True, "concat"), "concat"), (layers.AdditiveAttention(), "additive")]
        for layer, mode in cases:
            layer([self.q, self.v, self.k])  # builds
            weights = layer.weights
            scale = concat = None
            if weights:
                weights[0].assign(np.full(weights[0].shape, 0.75, np.float32))
                scale = 0.75
            if len(weights) > 1:
                weights[1].assign(np.float32(1.25))
                concat = 1.25
            want = numpy_dot_attention(mode, self.q, self.v, self.k, scale, concat or 1.0)[0]
            np.testing.assert_allclose(layer([self.q, self.v, self.k]).numpy(), want, rtol=1e-5, atol=1e-6)
            out, w = layer([self.q, self.v, self.k], mask=[self.qm, self.vm], return_attention_scores=True,
                           use_causal_mask=True)
            want_out, want_w = numpy_dot_attention(mode, self.q, self.v, self.k, scale, concat or 1.0, self.qm,
                                                   self.vm, True)
            np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-5, atol=1e-6, err_msg=layer.name)
            np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-5, atol=1e-6, err_msg=layer.name)
            np.testing.assert_array_equal(out._keras_mask.numpy(), self.qm)  # the query's mask
            # Masks carried by the inputs, as Keras fills mask= from _keras_mask.
            q = kiln.constant(self.q)
            q._keras_mask = kiln.constant(self.qm)
            v = kiln.constant(self.k)
            v._keras_mask = kiln.constant(self.vm)
            np.testing.assert_allclose(
                layer([q, v]).numpy(),
                numpy_dot_attention(mode, self.q, self.k, None, scale, concat or 1.0, self.qm, self.vm)[0],
                rtol=1e-5, atol=1e-6)

    def test_weights_gradients_config_and_errors(self):
        add = layers.AdditiveAttention()
        add([self.q, self.k])
        self.assertEqual([w.name for w in add.weights], ["additive_attention/scale"])
        self.assertEqual(add.weights[0].shape, (4,))
        with kiln.GradientTape() as tape:
            loss = kiln.reduce_sum(kiln.square(add([self.q, self.k])))
        (g,) = tape.gradient(loss, add.trainable_variables)
        self.assertGreater(float(np.abs(g.numpy()).sum()), 0)
        att = layers.Attention(use_scale=True, score_mode="concat", dropout=0.25, seed=4, name="att")
        cfg = att.get_config()
        self.assertEqual((cfg["name"], cfg["use_scale"], cfg["score_mode"], cfg["dropout"], cfg["seed"]),
                         ("att", True, "concat", 0.25, 4))
        self.assertEqual(layers.Attention.from_config(cfg).get_config(), cfg)
        self.assertNotIn("score_mode", add.get_config())
        back = kiln.keras.layers.deserialize(kiln.keras.layers.serialize(add))
        self.assertIsInstance(back, layers.AdditiveAttention)
        # Dropout only when training, on the returned weights as Keras's.
        drop = layers.Attention(dropout=0.5, seed=1)
        _, w_infer = drop([self.q, self.k], return_attention_scores=True)
        _, w_train = drop([self.q, self.k], return_attention_scores=True, training=True)
        self.assertTrue(np.any(w_train.numpy() == 0))
        nz = w_train.numpy() != 0
        np.testing.assert_allclose(w_train.numpy()[nz], 2 * w_infer.numpy()[nz], rtol=1e-5)
        with self.assertRaisesRegex(ValueError, "list of inputs"):
            layers.Attention()(self.q)
        # An explicit mask= wins over the masks the inputs carry (Keras): [None, None] masks nothing.
        q = kiln.constant(self.q)
        q._keras_mask = kiln.constant(self.qm)
        out = layers.Attention()([q, q], mask=[None, None])
        np.testing.assert_allclose(out.numpy(), numpy_dot_attention("dot", self.q, self.q)[0], rtol=1e-5, atol=1e-6)
        self.assertIsNone(getattr(out, "_keras_mask", None))
        # A scalar that is not a bool flag is a (bad) key, not a flag.
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "one rank"):
            layers.Attention()([self.q, self.v, kiln.constant(0.0)])
        self.assertNotIn("score_mode", layers.AdditiveAttention(score_mode="concat").get_config())
        # compute_output_shape of several inputs, and of several outputs.
        self.assertEqual(layers.Attention().compute_output_shape([(None, 3, 4), (None, 5, 6), (None, 5, 4)]),
                         (None, 3, 6))
        self.assertEqual(layers.Concatenate().compute_output_shape([(2, 3), (2, 4)]), (2, 7))
        self.assertEqual(layers.MultiHeadAttention(2, 3).compute_output_shape([(None, 3, 8), (None, 5, 6)]),
                         (None, 3, 8))
        self.assertEqual(layers.LSTM(4, return_state=True).compute_output_shape((None, 7, 3)),
                         [(None, 4), (None, 4), (None, 4)])
        self.assertEqual(layers.Dense(2).compute_output_shape((None, 5)), (None, 2))
        # Keras's formula, with the value's dim and the flag shapes after the inputs.
        self.assertEqual(layers.AdditiveAttention().compute_output_shape([(None, 3, 4), (None, 5, 6), (None, 5, 4), (),
                                                                          ()]), (None, 3, 6))
        with self.assertRaisesRegex(ValueError, "got a list of 1"):
            layers.Attention()([self.q])
        # An all-None mask list of another length than the inputs masks nothing, as Keras.
        gap = layers.GlobalAveragePooling1D()
        x = kiln.constant(self.v)
        x._keras_mask = kiln.constant(self.vm)
        np.testing.assert_allclose(gap(x, mask=[None, None]).numpy(), self.v.mean(1), rtol=1e-6)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "score_mode is 'general'"):
            layers.Attention(score_mode="general")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "key needs the query's dim"):
            layers.Attention()([self.q, self.v, self.v])
        # In a model: a Sequential cannot hold it (two inputs), a subclassed model can.
        class Seq2Seq(kiln.keras.Model):
            def __init__(self):
                super().__init__()
                self.attn = layers.Attention()
                self.out = layers.Dense(1)

            def call(self, x):
                return self.out(self.attn([x, x]))
        m = Seq2Seq()
        m.compile("adam", "mse")
        hist = m.fit(self.q, np.zeros((2, 3, 1), np.float32), epochs=2, verbose=0)
        self.assertEqual(len(hist.history["loss"]), 2)


class MergeAndReshapingTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        rng = np.random.default_rng(1)
        self.a, self.b, self.c = (rng.uniform(-1, 1, (2, 3, 4)).astype(np.float32) for _ in range(3))

    def test_merges_against_numpy(self):
        a, b, c = self.a, self.b, self.c
        cases = [(layers.Add(), [a, b, c], a + b + c), (layers.Subtract(), [a, b], a - b),
                 (layers.Multiply(), [a, b, c], a * b * c), (layers.Average(), [a, b, c], (a + b + c) / 3),
                 (layers.Maximum(), [a, b], np.maximum(a, b)), (layers.Minimum(), [a, b, c], np.minimum(np.minimum(a, b), c)),
                 (layers.Concatenate(), [a, b], np.concatenate([a, b], -1)),
                 (layers.Concatenate(axis=1), [a, c[:, :1]], np.concatenate([a, c[:, :1]], 1))]
        for layer, xs, want in cases:
            np.testing.assert_allclose(layer(xs).numpy(), want, rtol=1e-6, err_msg=layer.name)
            self.assertEqual(type(layer).from_config(layer.get_config()).get_config(), layer.get_config())
        # Keras's broadcasting: size-1 dims, and a lower-rank input gets axes after the batch axis.
        np.testing.assert_allclose(layers.add([a, a[:, :1]]).numpy(), a + a[:, :1], rtol=1e-6)
        np.testing.assert_allclose(layers.multiply([a, a[:, 0]]).numpy(), a * a[:, :1], rtol=1e-6)
        np.testing.assert_allclose(layers.concatenate([a, b], axis=0).numpy(), np.concatenate([a, b], 0))
        self.assertEqual(layers.Concatenate().get_config()["axis"], -1)

    def test_gradients_flow_to_every_input(self):
        a, b = kiln.constant(self.a), kiln.constant(self.b)
        with kiln.GradientTape(persistent=True) as tape:
            tape.watch(a)
            tape.watch(b)
            avg = kiln.reduce_sum(layers.Average()([a, b]))
            cat = kiln.reduce_sum(layers.Concatenate()([a, b]) * 2.0)
        for g in tape.gradient(avg, [a, b]):
            np.testing.assert_allclose(g.numpy(), np.full((2, 3, 4), 0.5))
        for g in tape.gradient(cat, [a, b]):
            np.testing.assert_allclose(g.numpy(), np.full((2, 3, 4), 2.0))

    def test_permute_and_repeat_vector(self):
        p = layers.Permute((3, 1, 2))
        np.testing.assert_array_equal(p(self.a[..., None]).numpy(), np.transpose(self.a[..., None], (0, 3, 1, 2)))
        self.assertEqual(p.get_config()["dims"], [3, 1, 2])
        r = layers.RepeatVector(3)
        x = self.a[:, 0]
        np.testing.assert_array_equal(r(x).numpy(), np.repeat(x[:, None], 3, axis=1))
        self.assertEqual(layers.deserialize(layers.serialize(r)).get_config(), r.get_config())
        x = kiln.constant(x)
        with kiln.GradientTape() as tape:
            tape.watch(x)
            y = kiln.reduce_sum(r(x))
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.full((2, 4), 3.0))

    def test_errors_name_the_layer(self):
        a = self.a
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'add' \(Add\): inputs have incompatible shapes"):
            layers.Add()([a, a[:, :, :2]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "different batch sizes"):
            layers.Multiply()([a, a[:1]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"'subtract' \(Subtract\).*exactly 2"):
            layers.Subtract()([a, a, a])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "matching shapes except for the concatenation axis"):
            layers.Concatenate(axis=1)([a, a[:, :, :2]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "consecutive and start from 1"):
            layers.Permute((0, 1))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"'repeat_vector' \(RepeatVector\).*rank 2"):
            layers.RepeatVector(2)(a)


if __name__ == "__main__":
    unittest.main()
