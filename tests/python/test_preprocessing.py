"""Discretization, IntegerLookup, Hashing, CenterCrop and the random image layers (RandomFlip, RandomCrop, RandomContrast,
RandomBrightness, RandomRotation, RandomTranslation, RandomZoom) from Python: Keras's signatures, docstring examples and defaults,
Discretization.adapt against a NumPy model of Keras's quantile summaries over random data and
batchings, the encoded output modes, configs that round-trip, a model that saves and loads the
adapted boundaries, CenterCrop against NumPy slicing and against Resizing, each random layer's output
against every transform it may choose, a model with them trained by fit, errors as Keras's types;
IntegerLookup's adapt and lookups against a NumPy model of Keras's IndexLookup."""
import os
import tempfile
import threading
import unittest

import numpy as np

import kiln
from kiln import layers

DOC = np.array([[-1.5, 1.0, 3.4, .5], [0.0, 3.0, 1.3, 0.0]])  # Keras's Discretization docstring input


def keras_compress(values, weights, epsilon):
    """Keras's compress_summary, written out: float32 summary, float64 interpolation."""
    if len(values) * epsilon < 1:
        return values, weights
    fractions_at = epsilon + np.arange(0.0, 1.0, epsilon)
    cum = np.cumsum(weights, dtype=np.float32)
    fractions = cum / cum[-1]
    new_values = np.interp(fractions_at, fractions.astype(np.float64), values.astype(np.float64))
    new_cum = np.interp(fractions_at, fractions.astype(np.float64), cum.astype(np.float64))
    new_weights = new_cum - np.concatenate(([0.0], new_cum[:-1]))
    return new_values.astype(np.float32), new_weights.astype(np.float32)


def keras_boundaries(batches, num_bins, epsilon):
    """The boundaries Keras's Discretization.adapt computes from these batches."""
    values = np.zeros(0, np.float32)
    weights = np.zeros(0, np.float32)
    for batch in batches:
        v = np.sort(np.asarray(batch, np.float32).reshape(-1))
        step = max(v.size / (1.0 / epsilon), 1.0)
        picked = v[int(step - 1)::int(step)]
        both_v = np.concatenate((picked, values))
        both_w = np.concatenate((np.full(picked.shape, step, np.float32), weights))
        order = np.argsort(both_v, kind="stable")
        values, weights = keras_compress(both_v[order], both_w[order], epsilon)
    return keras_compress(values, weights, 1.0 / num_bins)[0][:-1].tolist()


def assert_fits_saves_and_loads(model, x, probe=None):
    """Compiles and fits model one epoch on x (targets of ones), saves it, loads it back, and checks
    that the loaded model predicts probe (x when None) as the model does."""
    model.compile("sgd", "mse")
    model.fit(x, np.ones((len(x), 1), np.float32), epochs=1, verbose=0)
    probe = x if probe is None else probe
    with tempfile.TemporaryDirectory() as d:
        model.save(os.path.join(d, "m"))
        loaded = kiln.models.load_model(os.path.join(d, "m"))
    np.testing.assert_array_equal(loaded.predict(probe, verbose=0), model.predict(probe, verbose=0))


def outputs_during(layer, x, changes):
    """The distinct outputs (as tuples) two threads see calling layer(x) while this thread runs each
    of changes (adapts, set_vocabulary) in turn."""
    seen, stop = [], threading.Event()

    def call():
        while not stop.is_set():
            seen.append(tuple(layer(x).numpy().tolist()))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for change in changes:
        change()
    stop.set()
    for t in threads:
        t.join()
    return set(seen)


class DiscretizationTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_keras_docstring_examples(self):
        layer = layers.Discretization(bin_boundaries=[0., 1., 2.])
        self.assertEqual(layer.name, "discretization")
        out = layer(DOC)
        self.assertEqual(out.dtype, kiln.int32)
        self.assertEqual(out.numpy().tolist(), [[0, 2, 3, 1], [1, 3, 2, 1]])
        layer = layers.Discretization(num_bins=4, epsilon=0.01)
        self.assertIsNone(layer.bin_boundaries)
        layer.adapt(DOC)
        self.assertEqual(layer(DOC).numpy().tolist(), [[0, 2, 3, 2], [1, 3, 3, 1]])
        self.assertEqual(layer.bin_boundaries, [0.0, 0.5, float(np.float32(1.3))])
        self.assertEqual(layer.num_bins, 4)

    def test_adapt_matches_keras_quantile_summaries(self):
        rng = np.random.default_rng(7)
        cases = 0
        for trial in range(120):
            n = int(rng.integers(0, 900))
            kind = trial % 4
            if kind == 0:
                data = rng.normal(size=n) * 10 ** rng.uniform(-3, 3)
            elif kind == 1:
                data = rng.integers(-5, 6, size=n).astype(np.float64)  # many ties
            elif kind == 2:
                data = rng.exponential(size=n)
            else:
                data = np.concatenate((rng.uniform(-1, 1, size=n), [np.inf, -np.inf]))
            epsilon = float(rng.choice([0.001, 0.01, 0.05, 1 / 3, 0.7, 1.5]))
            num_bins = int(rng.integers(1, 30))
            cuts = np.sort(rng.integers(0, data.size + 1, size=int(rng.integers(0, 4))))
            batches = [b for b in np.split(data, cuts)]
            layer = layers.Discretization(num_bins=num_bins, epsilon=epsilon)
            layer.adapt(iter(batches))
            want = keras_boundaries(batches, num_bins, epsilon)
            self.assertEqual(layer.bin_boundaries, want, (trial, n, epsilon, num_bins, cuts))
            probe = np.concatenate((data[:50], [np.nan]))
            bins = np.digitize(probe.astype(np.float32), np.asarray(want, np.float32))
            self.assertEqual(layer(probe).numpy().tolist(), bins.tolist())
            cases += 1
        self.assertEqual(cases, 120)

    def test_adapt_sources_and_batching(self):
        data = np.arange(100, dtype=np.float32)[::-1].copy()
        want = keras_boundaries(np.split(data, [32, 64, 96]), 5, 0.01)
        for source, kwargs in ((data, {"batch_size": 32}), (kiln.data.Dataset.from_tensor_slices(data).batch(32), {}),
                               ([data[:32], data[32:64], data[64:96], data[96:]], {}),
                               ((b for b in np.split(data, [32, 64, 96])), {})):
            layer = layers.Discretization(num_bins=5)
            layer.adapt(source, **kwargs)
            self.assertEqual(layer.bin_boundaries, want)
        layer = layers.Discretization(num_bins=5)
        layer.adapt(data, batch_size=32, steps=1)
        self.assertEqual(layer.bin_boundaries, keras_boundaries([data[:32]], 5, 0.01))
        layer.adapt([data[:32], data[32:64], data[64:]], steps=2)  # steps counts batches of any data
        self.assertEqual(layer.bin_boundaries, keras_boundaries([data[:32], data[32:64]], 5, 0.01))
        layer.adapt((b for b in [data[:10], data[10:40], data[40:]]), steps=2)
        self.assertEqual(layer.bin_boundaries, keras_boundaries([data[:10], data[10:40]], 5, 0.01))
        layer.adapt(kiln.data.Dataset.from_tensor_slices(data).batch(10), steps=3)
        self.assertEqual(layer.bin_boundaries, keras_boundaries([data[:10], data[10:20], data[20:30]], 5, 0.01))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "batch_size is for arrays"):
            layer.adapt([data], batch_size=4)
        layer.adapt(np.array([True, False, True]))  # bools as 0 and 1; adapt starts again
        self.assertEqual(layer.bin_boundaries, [0.0, 1.0])

    def test_output_modes(self):
        x = np.array([[0.5, 2.5, 2.7], [-1.0, 0.1, 9.0]], np.float32)
        kw = {"bin_boundaries": [0.0, 1.0, 2.0]}
        ids = np.digitize(x, [0.0, 1.0, 2.0])
        hot = layers.Discretization(output_mode="one_hot", **kw)(x)
        self.assertEqual(hot.dtype, kiln.float32)
        np.testing.assert_array_equal(hot.numpy(), np.eye(4, dtype=np.float32)[ids])
        multi = np.zeros((2, 4), np.float32)
        count = np.zeros((2, 4), np.float32)
        for r in range(2):
            for i in ids[r]:
                multi[r, i] = 1
                count[r, i] += 1
        np.testing.assert_array_equal(layers.Discretization(output_mode="multi_hot", **kw)(x).numpy(), multi)
        np.testing.assert_array_equal(layers.Discretization(output_mode="count", **kw)(x).numpy(), count)
        self.assertEqual(layers.Discretization(output_mode="one_hot", **kw)(x[:, :1]).shape, (2, 4))
        self.assertEqual(layers.Discretization(**kw)(np.array([7, -7, 1])).numpy().tolist(), [3, 0, 2])
        cube = np.array([[[0.1, 0.6], [0.6, 0.6], [0.6, 2.0]]])  # rank 3: Keras 3 encodes over axis 1
        np.testing.assert_array_equal(
            layers.Discretization(bin_boundaries=[0.5, 1.0], output_mode="count")(cube).numpy(), [[[1, 2, 0], [0, 2, 1]]])
        self.assertEqual(layers.Discretization(**kw).compute_output_shape((None, 3)), (None, 3))
        self.assertEqual(layers.Discretization(output_mode="one_hot", **kw).compute_output_shape((None, 3)),
                         (None, 3, 4))

    def test_config_round_trip_and_saved_model(self):
        layer = layers.Discretization(num_bins=3, epsilon=0.05, output_mode="one_hot", name="bins")
        config = layer.get_config()
        self.assertEqual({k: config[k] for k in ("bin_boundaries", "num_bins", "epsilon", "output_mode", "sparse")},
                         {"bin_boundaries": None, "num_bins": 3, "epsilon": 0.05, "output_mode": "one_hot",
                          "sparse": False})
        layer.adapt(np.arange(30, dtype=np.float32))
        again = layers.Discretization.from_config(layer.get_config())
        self.assertEqual(again.bin_boundaries, layer.bin_boundaries)
        self.assertEqual(layers.deserialize(layers.serialize(layer)).bin_boundaries, layer.bin_boundaries)
        model = kiln.models.Sequential([layers.Input((4,)), layer, layers.Flatten(), layers.Dense(1)])
        assert_fits_saves_and_loads(model, np.arange(8, dtype=np.float32).reshape(2, 4) * 4)

    def test_infinite_boundaries_round_trip(self):
        layer = layers.Discretization(num_bins=3)
        layer.adapt(np.array([-np.inf] * 5 + [1.0, 2.0, 3.0] + [np.inf] * 5))
        self.assertEqual(layer.bin_boundaries, [-np.inf, np.inf])
        again = layers.Discretization.from_config(layer.get_config())
        x = np.array([-np.inf, 0.0, np.inf])
        self.assertEqual(again(x).numpy().tolist(), [1, 1, 2])
        model = kiln.models.Sequential([layers.Input((3,)), layer])
        self.assertEqual(kiln.models.clone_model(model)(x[None]).numpy().tolist(), [[1, 1, 2]])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "between -inf and \\+inf"):
            layers.Discretization(num_bins=2).adapt(np.array([-np.inf, np.inf, np.inf]))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "NaN"):
            layers.Discretization(bin_boundaries=[0.0, np.nan])

    def test_calls_during_adapt_see_old_or_new_boundaries(self):
        layer = layers.Discretization(num_bins=2)
        low, high = np.zeros(101, np.float32), np.arange(101, dtype=np.float32)
        layer.adapt(low)  # summary of 101 zeros: the boundary 0
        x = np.array([-1.0, 0.0, 10.0, 60.0], np.float32)
        seen = outputs_during(layer, x, [lambda i=i: layer.adapt(high if i % 2 == 0 else low) for i in range(40)])
        self.assertTrue(seen)
        self.assertLessEqual(seen, {(0, 1, 1, 1), (0, 0, 0, 1)})  # boundary 0, or the median 50 of 0..100

    def test_errors(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "not both"):
            layers.Discretization(bin_boundaries=[1.0], num_bins=2)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "either num_bins"):
            layers.Discretization()
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "sorted ascending"):
            layers.Discretization(bin_boundaries=[1.0, 0.0])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "epsilon"):
            layers.Discretization(num_bins=2, epsilon=0.0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "'bucket'"):
            layers.Discretization(num_bins=2, output_mode="bucket")
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "adapt"):
            layers.Discretization(num_bins=2)(DOC)
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "made with bin_boundaries"):
            layers.Discretization(bin_boundaries=[1.0]).adapt(DOC)
        layer = layers.Discretization(num_bins=2)
        layer.adapt(DOC)
        kept = layer.bin_boundaries
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "NaN"):
            layer.adapt(np.array([1.0, np.nan]))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "no batches"):
            layer.adapt([])
        with self.assertRaises(TypeError):
            layer.adapt("data")
        self.assertEqual(layer.bin_boundaries, kept)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "bin_boundaries must be a list"):
            layers.Discretization(bin_boundaries=1.0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "num_bins"):
            layers.Discretization(num_bins=2.5)


def keras_vocabulary(rows_batches, max_tokens, mask_token, oov_token, token_start):
    """Keras's IndexLookup.finalize_state: tokens by count, ties by token, both descending (NumPy's
    lexsort, reversed), the mask and OOV tokens removed, at most max_tokens - token_start."""
    values = np.concatenate([np.asarray(b).reshape(-1) for b in rows_batches]).astype(np.int64)
    tokens, counts = np.unique(values, return_counts=True)
    keep = np.ones(len(tokens), bool)
    for special in (mask_token, oov_token):
        if special is not None:
            keep &= tokens != special
    tokens, counts = tokens[keep], counts[keep]
    order = np.lexsort((tokens, counts))[::-1]
    if max_tokens:
        order = order[:max_tokens - token_start]
    return tokens[order].tolist()


def keras_lookup(x, vocab, mask_token, num_oov, mode):
    """Keras's _lookup_dense for int output: the vocabulary's index, the mask at 0, OOV tokens at
    floormod(x, num_oov) after the mask index."""
    oov_start = 1 if mask_token is not None and mode == "int" else 0
    index = {t: i + oov_start + num_oov for i, t in enumerate(vocab)}
    out = []
    for v in np.asarray(x).reshape(-1).tolist():
        if mask_token is not None and v == mask_token:
            out.append(0 if mode == "int" else np.iinfo(np.int64).max)
        elif v in index:
            out.append(index[v])
        else:
            out.append(oov_start + (v % num_oov if num_oov > 1 else 0))
    return np.array(out, np.int64).reshape(np.shape(x))


class IntegerLookupTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_keras_docstring_examples(self):
        data = np.array([[12, 1138, 42], [42, 1000, 36]])
        layer = layers.IntegerLookup()
        layer.adapt(data)
        self.assertEqual(layer.get_vocabulary(), [-1, 42, 1138, 1000, 36, 12])
        self.assertEqual(layer(data).numpy().tolist(), [[5, 2, 1], [1, 3, 4]])
        self.assertEqual(layer(data).dtype, kiln.int64)
        vocab = [12, 36, 1138, 42]
        self.assertEqual(layers.IntegerLookup(vocabulary=vocab)(data).numpy().tolist(), [[1, 3, 4], [4, 0, 2]])
        self.assertEqual(layers.IntegerLookup(vocabulary=vocab, num_oov_indices=2)(
            [[12, 1138, 42], [37, 1000, 36]]).numpy().tolist(), [[2, 4, 5], [1, 0, 3]])
        one_hot = layers.IntegerLookup(vocabulary=vocab, output_mode="one_hot")(np.array([12, 36, 1138, 42, 7]))
        np.testing.assert_array_equal(one_hot.numpy(), np.eye(5, dtype=np.float32)[[1, 2, 3, 4, 0]])
        np.testing.assert_array_equal(layers.IntegerLookup(vocabulary=vocab, output_mode="multi_hot")(data).numpy(),
                                      [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
        tf_idf = layers.IntegerLookup(vocabulary=vocab, output_mode="tf_idf", idf_weights=[0.25, 0.75, 0.6, 0.4])
        np.testing.assert_allclose(tf_idf(np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])).numpy(),
                                   [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6)
        inverse = layers.IntegerLookup(vocabulary=vocab, invert=True)
        self.assertEqual(inverse(np.array([[1, 3, 4], [4, 0, 2]])).numpy().tolist(), [[12, 1138, 42], [42, -1, 36]])
        masked = layers.IntegerLookup(vocabulary=vocab, mask_token=0)
        self.assertEqual(masked(np.array([[12, 1138, 0], [42, 1000, 36]])).numpy().tolist(), [[2, 4, 0], [5, 1, 3]])

    def test_adapt_and_lookup_match_keras(self):
        rng = np.random.default_rng(7)
        for case in range(150):
            mask = [None, 0, 3][case % 3]
            num_oov = int(rng.integers(0, 4)) if case % 5 else 1
            max_tokens = [None, 4, 9][case % 4 % 3]
            token_start = (1 if mask is not None else 0) + num_oov
            if max_tokens is not None and max_tokens <= token_start:
                max_tokens = None
            shape = [(int(rng.integers(1, 30)),), (int(rng.integers(1, 6)), int(rng.integers(1, 6))),
                     (2, int(rng.integers(1, 4)), 3)][case % 3]
            data = rng.integers(-6, 12, size=shape)
            layer = layers.IntegerLookup(max_tokens=max_tokens, num_oov_indices=num_oov, mask_token=mask)
            if case % 2:
                layer.adapt(data)
                batches = [data]
            else:  # batches of a dataset: the counts add up
                batches = [data[:1], data[1:]] if len(data) > 1 else [data]
                layer.adapt(iter(batches))
            vocab = keras_vocabulary(batches, max_tokens, mask, -1, token_start)
            self.assertEqual(layer.get_vocabulary(include_special_tokens=False), vocab, case)
            self.assertEqual(layer.vocabulary_size(), token_start + len(vocab))
            x = rng.integers(-8, 14, size=(3, 4))
            if num_oov == 0:
                x = np.where(np.isin(x, vocab + ([mask] if mask is not None else [])), x,
                             vocab[0] if vocab else (mask if mask is not None else 0))
                if not vocab and mask is None:
                    continue
            np.testing.assert_array_equal(layer(x).numpy(), keras_lookup(x, vocab, mask, num_oov, "int"), str(case))
            count = layers.IntegerLookup(vocabulary=vocab or [100], num_oov_indices=max(num_oov, 1), mask_token=mask,
                                         output_mode="count")
            ids = keras_lookup(x, vocab or [100], mask, max(num_oov, 1), "count")
            depth = max(num_oov, 1) + len(vocab or [100])
            want = np.stack([np.bincount(r[r < depth], minlength=depth) for r in ids]).astype(np.float32)
            np.testing.assert_array_equal(count(x).numpy(), want, str(case))

    def test_tf_idf_adapt_matches_keras(self):
        rng = np.random.default_rng(3)
        for case in range(20):
            data = rng.integers(0, 8, size=(int(rng.integers(1, 7)), 5))
            pad = case % 2 == 1
            layer = layers.IntegerLookup(output_mode="tf_idf", max_tokens=12 if pad else None, pad_to_max_tokens=pad)
            layer.adapt(data)
            vocab = layer.get_vocabulary(include_special_tokens=False)
            self.assertEqual(vocab, keras_vocabulary([data], None, None, -1, 1))
            docs = np.array([sum(t in row for row in data.tolist()) for t in vocab], np.int64)
            idf = np.log(1 + len(data) / (1 + docs)).astype(np.float32)
            weights = np.concatenate([[np.mean(idf, dtype=np.float64)], idf]).astype(np.float32)
            if pad:
                weights = np.pad(weights, (0, 12 - len(weights)))
            x = rng.integers(0, 10, size=(3, 6))
            ids = keras_lookup(x, vocab, None, 1, "count")
            counts = np.stack([np.bincount(r, minlength=len(weights)) for r in ids]).astype(np.float32)
            np.testing.assert_allclose(layer(x).numpy(), counts * weights, rtol=1e-6, err_msg=str(case))
            again = layers.IntegerLookup.from_config(layer.get_config())
            np.testing.assert_array_equal(again(x).numpy(), layer(x).numpy())

    def test_vocabulary_file_set_vocabulary_and_config(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "vocab.txt")
            with open(path, "w") as f:
                f.write("12\n36\n1138\n42\n\n")
            layer = layers.IntegerLookup(vocabulary=path)
            self.assertEqual(layer.get_vocabulary(), [-1, 12, 36, 1138, 42])
            with open(path, "w") as f:
                f.write("12\nforty\n")
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "line 2"):
                layers.IntegerLookup(vocabulary=path)
        layer = layers.IntegerLookup(mask_token=0)
        layer.set_vocabulary(np.array([5, 6, 7]))
        self.assertEqual(layer.get_vocabulary(), [0, -1, 5, 6, 7])
        layer.set_vocabulary([0, -1, 9, 8])  # the special tokens first, in Keras's order
        self.assertEqual(layer.get_vocabulary(include_special_tokens=False), [9, 8])
        config = layer.get_config()
        self.assertEqual((config["vocabulary"], config["vocabulary_size"], config["mask_token"]), ([9, 8], 4, 0))
        self.assertEqual(layers.deserialize(layers.serialize(layer)).get_vocabulary(), [0, -1, 9, 8])
        layer.adapt([[1, 1, 2]])  # a vocabulary set (not given at construction) may be learned again
        self.assertEqual(layer.get_vocabulary(), [0, -1, 1, 2])

    def test_keras_behaviours_probe(self):
        # steps does not apply to an array (Keras's array branch reads it whole)
        layer = layers.IntegerLookup()
        layer.adapt(np.arange(40), steps=1)
        self.assertEqual(layer.vocabulary_size(), 41)
        # a vocabulary file through set_vocabulary; text is refused; training is keyword-only
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "v.txt")
            with open(path, "w") as f:
                f.write("7\n8\n")
            layer.set_vocabulary(path)
        self.assertEqual(layer.get_vocabulary(), [-1, 7, 8])
        with self.assertRaises(TypeError):  # a fraction is not a token (as tf.constant refuses it)
            layer.set_vocabulary([2.5])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "text"):
            layer(["1", "2"])
        with self.assertRaises(TypeError):
            layer(np.array([1]), True)
        # max_tokens must leave room for a token; an adapt that learns none round-trips
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "max_tokens \\(2\\)"):
            layers.IntegerLookup(num_oov_indices=3, max_tokens=2)
        empty = layers.IntegerLookup(num_oov_indices=2, max_tokens=3, output_mode="count")
        empty.adapt(np.array([-1, -1]))
        self.assertEqual(layers.IntegerLookup.from_config(empty.get_config()).vocabulary_size(), 2)
        # NaN IDF weights (Keras's mean of no tokens) survive the config
        nan_idf = layers.IntegerLookup(output_mode="tf_idf")
        nan_idf.adapt(np.array([[-1, -1]]))
        again = layers.IntegerLookup.from_config(nan_idf.get_config())
        self.assertTrue(np.isnan(again(np.array([[3]])).numpy()).all())
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "rank 2 at most"):
            layers.IntegerLookup(output_mode="tf_idf").adapt(np.zeros((2, 2, 2), np.int64))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "num_oov_indices must not be None"):
            layers.IntegerLookup(num_oov_indices=None)

    def test_farmhash_oov_buckets(self):
        layer = layers.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4, oov_method="farmhash")
        self.assertEqual(layer([100, 200, 300, 400]).numpy().tolist(), [3, 1, 3, 1])  # Keras's test values
        salted = layers.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4, oov_method="farmhash", salt=[137, 42])
        self.assertNotEqual(salted([100, 300, 700, 1100, 1700, 2000]).numpy().tolist(),
                            layer([100, 300, 700, 1100, 1700, 2000]).numpy().tolist())
        self.assertEqual(layers.IntegerLookup.from_config(salted.get_config()).get_config()["salt"], [137, 42])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "farmhash"):
            layers.IntegerLookup(salt=1)

    def test_model_with_lookup_and_embedding_saves(self):
        data = np.array([[12, 1138, 42], [42, 1000, 36]], np.int64)
        lookup = layers.IntegerLookup()
        lookup.adapt(data)
        model = kiln.models.Sequential([layers.Input((3,), dtype="int64"), lookup, layers.Embedding(6, 2),
                                        layers.Flatten(), layers.Dense(1)])
        assert_fits_saves_and_loads(model, data, probe=np.array([[7, 42, 12], [1000, 1000, 36]], np.int64))

    def test_calls_during_set_vocabulary_see_old_or_new(self):
        layer = layers.IntegerLookup(vocabulary=[1, 2, 3])
        changes = [lambda i=i: layer.set_vocabulary([3, 2, 1] if i % 2 == 0 else [1, 2, 3]) for i in range(60)]
        seen = outputs_during(layer, np.array([1, 2, 3, 4]), changes)
        self.assertTrue(seen)
        self.assertLessEqual(seen, {(1, 2, 3, 0), (3, 2, 1, 0)})

    def test_errors(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "max_tokens must be greater than 1"):
            layers.IntegerLookup(max_tokens=1)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "invert"):
            layers.IntegerLookup(invert=True, output_mode="count")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "repeats"):
            layers.IntegerLookup(vocabulary=[1, 2, 1])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "mask token 0"):
            layers.IntegerLookup(vocabulary=[1, 0], mask_token=0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "idf_weights"):
            layers.IntegerLookup(vocabulary=[1, 2], output_mode="tf_idf")
        with self.assertRaisesRegex(kiln.UnimplementedError, "sparse"):
            layers.IntegerLookup(output_mode="count", sparse=True)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "num_oov_indices=0.*\\[9\\]"):
            layers.IntegerLookup(vocabulary=[1, 2], num_oov_indices=0)(np.array([1, 9]))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "inf"):
            layers.IntegerLookup(vocabulary=[1, 2])(np.array([1.0, np.inf]))
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "adapt"):
            layers.IntegerLookup(output_mode="multi_hot")(np.array([[1]]))
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "made with a vocabulary"):
            layers.IntegerLookup(vocabulary=[1, 2]).adapt(np.array([1, 2]))
        hot = layers.IntegerLookup(vocabulary=[1, 2], output_mode="multi_hot")
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "cannot change"):
            hot.set_vocabulary([1, 2, 3])


class HashingTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_keras_tests(self):
        x = np.array([[0], [1], [2], [3], [4]])
        self.assertEqual(layers.Hashing(num_bins=3)(x).numpy().tolist(), [[1], [0], [1], [0], [2]])
        self.assertEqual(layers.Hashing(num_bins=3, salt=[133, 137])(x).numpy().tolist(), [[1], [1], [2], [0], [1]])
        self.assertEqual(layers.Hashing(num_bins=1)(x).numpy().tolist(), [[0]] * 5)
        self.assertEqual(layers.Hashing(num_bins=3)(x).dtype, kiln.int64)
        np.testing.assert_array_equal(layers.Hashing(num_bins=3, output_mode="one_hot")(np.arange(5)).numpy(),
                                      np.eye(3, dtype=np.float32)[[1, 0, 1, 0, 2]])
        np.testing.assert_array_equal(layers.Hashing(num_bins=3, output_mode="multi_hot")(
            np.array([[0, 1, 2, 3, 4]])).numpy(), [[1, 1, 1]])

    def test_mask_salt_floats_and_config(self):
        layer = layers.Hashing(num_bins=4, mask_value=2, salt=5)
        out = layer([[2, 7], [2, 2]]).numpy()
        self.assertEqual(out[0, 0], 0)
        self.assertTrue(1 <= out[0, 1] <= 3)
        config = layer.get_config()
        self.assertEqual((config["num_bins"], config["salt"], config["mask_value"]), (4, [5, 5], 2))
        np.testing.assert_array_equal(layers.Hashing.from_config(config)([[2, 7]]).numpy(), out[:1])
        # floats are truncated to integers before hashing, as Keras casts them
        self.assertEqual(layers.Hashing(num_bins=7)(np.array([3.7, -2.2])).numpy().tolist(),
                         layers.Hashing(num_bins=7)(np.array([3, -2])).numpy().tolist())
        model = kiln.models.Sequential([layers.Input((2,), dtype="int64"), layers.Hashing(num_bins=5),
                                        layers.Embedding(5, 2), layers.Flatten(), layers.Dense(1)])
        assert_fits_saves_and_loads(model, np.array([[1, 2], [3, 4]], np.int64))

    def test_mask_in_the_inputs_dtype_and_keras_dtypes(self):
        self.assertEqual(layers.Hashing(5, mask_value=0.1)(np.array([0.1], np.float32)).numpy().tolist(), [0])
        self.assertEqual(layers.Hashing(5, mask_value=2)(np.array([2], np.uint8)).numpy().tolist(), [0])
        self.assertEqual(layers.Hashing(5, mask_value=True)(np.array([1, 2])).numpy().tolist()[0], 0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "refuses a float"):
            layers.Hashing(5, mask_value=2.0)(np.array([2]))
        self.assertEqual(layers.Hashing(5, mask_value=True)(np.array([True])).numpy().tolist(), [0])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "does not convert"):
            layers.Hashing(5, mask_value=300)(np.array([2], np.uint8))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "outside int64"):
            layers.Hashing(5, mask_value=-2**63 - 1)
        self.assertEqual(layers.Hashing(5, output_mode="one_hot")(np.zeros((3, 1, 1))).shape, (3, 5))
        keras_config = {"name": "hashing", "trainable": True, "num_bins": 3, "salt": None, "mask_value": None,
                        "output_mode": "int", "sparse": False,
                        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "int64"},
                                  "registered_name": None}}
        layer = layers.Hashing.from_config(keras_config)
        self.assertEqual(layer(np.array([[0], [1]])).numpy().tolist(), [[1], [0]])
        self.assertEqual(layers.Hashing(3, dtype="int32")(np.array([0])).dtype, kiln.int32)

    def test_hashed_crossing(self):
        layer = layers.HashedCrossing(num_bins=1000)
        bins = layer((np.array([1, 2, 1]), np.array([4, 5, 4]))).numpy().tolist()
        self.assertEqual(bins[0], bins[2])
        self.assertEqual(layer(([[1], [2]], [[4], [5]])).shape, (2, 1))
        self.assertEqual(layer((3, 4)).shape, ())
        hot = layers.HashedCrossing(num_bins=4, output_mode="one_hot")((np.array([1, 2]), np.array([4, 5])))
        self.assertEqual(hot.shape, (2, 4))
        np.testing.assert_array_equal(hot.numpy().sum(axis=1), [1, 1])
        self.assertEqual(layers.HashedCrossing.from_config(layer.get_config()).get_config(), layer.get_config())
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "list or tuple"):
            layer(np.array([1, 2]))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "two features"):
            layer([np.array([1, 2])])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "integer features"):
            layer((np.array([1.0]), np.array([2])))

    def test_errors(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "positive"):
            layers.Hashing(num_bins=0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "salt"):
            layers.Hashing(num_bins=2, salt=[1])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "mask_value"):
            layers.Hashing(num_bins=2, mask_value="")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "text"):
            layers.Hashing(num_bins=2)(["A"])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "NaN|nan"):
            layers.Hashing(num_bins=2)(np.array([np.nan]))


class CenterCropTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_crops_the_centre_as_float32(self):
        rng = np.random.default_rng(3)
        for h, w, th, tw in ((5, 6, 3, 4), (4, 4, 3, 3), (7, 2, 2, 2), (3, 3, 3, 3), (6, 9, 1, 8)):
            images = rng.integers(0, 256, size=(2, h, w, 3)).astype(np.uint8)
            got = layers.CenterCrop(th, tw)(images)
            self.assertEqual(got.dtype, kiln.float32)
            top, left = (h - th) // 2, (w - tw) // 2
            want = images[:, top:top + th, left:left + tw, :].astype(np.float32)
            np.testing.assert_array_equal(got.numpy(), want)
            first = layers.CenterCrop(th, tw, data_format="channels_first")(images.transpose(0, 3, 1, 2)[0])
            np.testing.assert_array_equal(first.numpy(), want[0].transpose(2, 0, 1))

    def test_smaller_images_are_resized_to_the_target(self):
        x = np.arange(2 * 3 * 8 * 1, dtype=np.float32).reshape(2, 3, 8, 1)
        got = layers.CenterCrop(6, 6)(x)  # the centred 3 x 3 box, resized to 6 x 6
        np.testing.assert_array_equal(got.numpy(), layers.Resizing(6, 6)(x[:, :, 2:5, :]).numpy())
        got = layers.CenterCrop(2, 10)(x)  # too narrow: the 1 x 8 box of the middle row, resized
        np.testing.assert_array_equal(got.numpy(), layers.Resizing(2, 10)(x[:, 1:2, :, :]).numpy())
        self.assertEqual(got.shape, (2, 2, 10, 1))

    def test_config_and_errors(self):
        layer = layers.CenterCrop(2, 3)
        config = layer.get_config()
        self.assertEqual((config["height"], config["width"], config["data_format"]), (2, 3, "channels_last"))
        self.assertEqual(layers.CenterCrop.from_config(config).get_config(), config)
        self.assertEqual(layer.compute_output_shape((None, 9, 9, 3)), (None, 2, 3, 3))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "rank 4"):
            layer(np.zeros((4, 4), np.float32))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "bool"):
            layer(np.zeros((4, 4, 1), bool))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "positive"):
            layers.CenterCrop(0, 3)
        with self.assertRaises(TypeError):
            layers.CenterCrop(3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "height"):
            layers.CenterCrop("2", 2)


class RandomImageLayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        rng = np.random.default_rng(5)
        self.x = rng.integers(0, 256, size=(48, 5, 6, 3)).astype(np.float32)

    def test_flip(self):
        x = self.x
        flips = [x, x[:, :, ::-1], x[:, ::-1], x[:, ::-1, ::-1]]
        layer = layers.RandomFlip()
        np.testing.assert_array_equal(layer(x).numpy(), x)  # inference: the images
        counts = [0] * 4
        for _ in range(3):
            y = layer(x, training=True).numpy()
            for i in range(len(x)):
                which = [k for k in range(4) if np.array_equal(y[i], flips[k][i])]
                self.assertTrue(which, "image %d is no flip of its input" % i)
                counts[which[0]] += 1
        self.assertTrue(all(c > 10 for c in counts), counts)
        y = layers.RandomFlip("horizontal")(x, training=True).numpy()
        self.assertTrue(all(np.array_equal(y[i], x[i]) or np.array_equal(y[i], x[i, :, ::-1]) for i in range(len(x))))
        first = layers.RandomFlip("vertical", data_format="channels_first")(x[0].transpose(2, 0, 1), training=True)
        self.assertIn(first.numpy().transpose(1, 2, 0).tolist(), [x[0].tolist(), x[0, ::-1].tolist()])
        self.assertEqual(layers.RandomFlip(seed=3).get_config()["seed"], 3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "'diagonal'"):
            layers.RandomFlip("diagonal")

    def test_crop(self):
        x = self.x
        layer = layers.RandomCrop(3, 4)
        seen = set()
        for _ in range(200):
            y = layer(x, training=True).numpy()
            where = [(a, b) for a in range(3) for b in range(3) if np.array_equal(y, x[:, a:a + 3, b:b + 4])]
            self.assertTrue(where)
            seen.add(where[0])
        self.assertEqual(len(seen), 9)
        # outside training: the largest centred box of ratio 3 : 4 (4 x 6 of 5 x 6 images), resized
        np.testing.assert_array_equal(layer(x).numpy(), layers.Resizing(3, 4)(x[:, 0:4]).numpy())
        self.assertEqual(layer.compute_output_shape((None, 9, 9, 3)), (None, 3, 4, 3))
        # not larger on both sides: resized in training too
        np.testing.assert_array_equal(layers.RandomCrop(5, 3)(x, training=True).numpy(),
                                      layers.Resizing(5, 3)(x[:, :, 1:4]).numpy())

    def test_contrast_and_brightness(self):
        x = self.x
        y = layers.RandomContrast((0.3, 0.4), value_range=(-1000, 1000))(x, training=True).numpy()
        mean = x.mean(axis=(1, 2), keepdims=True)
        c = (y - mean) / (x - mean)
        per_image = c.reshape(len(x), -1)
        np.testing.assert_allclose(per_image, per_image[:, :1].repeat(per_image.shape[1], 1), rtol=1e-3, atol=1e-3)
        self.assertGreaterEqual(per_image.min(), 0.7 - 1e-4)
        self.assertLessEqual(per_image.max(), 1.4 + 1e-4)
        clipped = layers.RandomContrast(0.9)(x, training=True).numpy()
        self.assertGreaterEqual(clipped.min(), 0)
        self.assertLessEqual(clipped.max(), 255)
        b = layers.RandomBrightness((-0.2, 0.1), value_range=(-1000, 1000))(x, training=True).numpy()
        delta = (b - x).reshape(len(x), -1)
        np.testing.assert_allclose(delta, delta[:, :1].repeat(delta.shape[1], 1), atol=1e-3)
        self.assertGreaterEqual(delta.min(), -400.001)
        self.assertLessEqual(delta.max(), 200.001)
        self.assertGreater(delta.max() - delta.min(), 50)
        np.testing.assert_array_equal(layers.RandomBrightness(0.5)(x.astype(np.uint8)).numpy(), x)
        config = layers.RandomContrast(0.2, value_range=(0, 1)).get_config()
        self.assertEqual((config["factor"], config["value_range"]), ([0.2, 0.2], [0.0, 1.0]))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "factor"):
            layers.RandomContrast(1.5)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "factor"):
            layers.RandomBrightness("bright")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "value_range"):
            layers.RandomBrightness(0.1, value_range=(1, 0))

    def test_geometric_layers(self):
        x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
        turn = layers.RandomRotation((0.25, 0.25), interpolation="nearest")
        np.testing.assert_array_equal(turn(x, training=True).numpy()[0, :, :, 0], np.rot90(x[0, :, :, 0]))
        np.testing.assert_array_equal(turn(x).numpy(), x)
        down = layers.RandomTranslation((0.4, 0.4), 0.0, fill_mode="constant", fill_value=-1.0)
        want = np.full((5, 5), -1.0, np.float32)
        want[2:] = x[0, :3, :, 0]
        np.testing.assert_array_equal(down(x, training=True).numpy()[0, :, :, 0], want)
        zoom = layers.RandomZoom((-0.5, -0.5))  # 2x in about the centre: (x, y) reads (x / 2 + 1, y / 2 + 1)
        grid = np.arange(5) * 0.5 + 1
        np.testing.assert_allclose(zoom(x, training=True).numpy()[0, :, :, 0], 5 * grid[:, None] + grid[None, :],
                                   atol=1e-5)
        # reflect (the default) keeps the values of the image; wrap too
        rng = np.random.default_rng(1)
        img = rng.integers(0, 9, size=(8, 6, 7, 2)).astype(np.float32)
        for fill in ("reflect", "wrap", "nearest"):
            y = layers.RandomTranslation(0.3, 0.3, fill_mode=fill, interpolation="nearest")(img, training=True)
            self.assertTrue(set(np.unique(y.numpy())) <= set(np.unique(img)), fill)
        y = layers.RandomRotation(0.5, fill_mode="constant", fill_value=-5.0)(img, training=True).numpy()
        self.assertTrue((y == -5.0).any())
        self.assertEqual(layers.RandomZoom(0.2).get_config()["width_factor"], None)
        config = layers.RandomZoom(0.2, (0.1, -0.3), fill_mode="wrap").get_config()
        self.assertEqual((config["height_factor"], config["width_factor"], config["fill_mode"]),
                         ([-0.2, 0.2], [-0.3, 0.1], "wrap"))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "fill_mode"):
            layers.RandomRotation(0.1, fill_mode="mirror")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "factor"):
            layers.RandomRotation(2.0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"\(-1, 1\]"):
            layers.RandomZoom(-1.0)
        with self.assertRaises(TypeError):
            layers.RandomTranslation(0.1)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "two numbers"):
            layers.RandomRotation([0.1])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "seed must be an int >= 0"):
            layers.RandomRotation(0.1, seed=-5)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "seed"):
            layers.RandomRotation(0.1, seed=1.5)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "height"):
            layers.RandomCrop(3.5, 3)
        self.assertEqual(layers.RandomCrop(np.int64(3), 3.0).get_config()["height"], 3)

    def test_keras_ops_affine_transform(self):
        x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
        shift = np.array([1, 0, -1, 0, 1, -1, 0, 0], np.float32)  # right by 1, down by 1
        affine = kiln.keras.ops.image.affine_transform
        y = affine(x, shift, interpolation="nearest").numpy()  # constant 0 by default
        want = np.zeros_like(x)
        want[:, 1:, 1:] = x[:, :-1, :-1]
        np.testing.assert_array_equal(y, want)
        first = affine(x.transpose(0, 3, 1, 2), np.stack([shift, shift]), fill_mode="nearest",
                       data_format="channels_first").numpy()
        edge = np.pad(x, ((0, 0), (1, 0), (1, 0), (0, 0)), mode="edge")[:, :3, :4]
        np.testing.assert_array_equal(first, edge.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(affine(x[0], shift, fill_value=7.0).numpy()[0], np.full((4, 2), 7.0))
        self.assertIs(kiln.image.affine_transform, affine)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "fill_mode"):
            affine(x, shift, fill_mode="mirror")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "transforms"):
            affine(x, shift[:6])

    def test_augmentation_in_a_model_trains_and_saves(self):
        model = kiln.models.Sequential([
            layers.Input((5, 6, 3)), layers.RandomFlip("horizontal"), layers.RandomCrop(4, 4),
            layers.RandomContrast(0.1), layers.RandomBrightness(0.1), layers.RandomRotation(0.1),
            layers.RandomTranslation(0.1, 0.1), layers.RandomZoom(0.1), layers.Rescaling(1 / 255), layers.Flatten(),
            layers.Dense(2)])
        model.compile("adam", kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
        labels = (self.x.mean(axis=(1, 2, 3)) > 127).astype(np.int32)
        history = model.fit(self.x, labels, epochs=2, batch_size=16, verbose=0)
        self.assertEqual(len(history.history["loss"]), 2)
        first = model.predict(self.x, verbose=0)
        np.testing.assert_array_equal(first, model.predict(self.x, verbose=0))  # inference: no randomness
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m"))
            loaded = kiln.models.load_model(os.path.join(d, "m"))
        np.testing.assert_array_equal(loaded.predict(self.x, verbose=0), first)


if __name__ == "__main__":
    unittest.main()
