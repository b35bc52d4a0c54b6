"""keras.layers.AdaptiveAveragePooling1D/2D/3D, AdaptiveMaxPooling1D/2D/3D and ActivityRegularization
from Python: pooled values against a NumPy transcription of Keras 3's (PyTorch's) windows over random
shapes, shrinking and growing, channels last and first; configs, output shapes, a model that trains
and saves; the activity loss; errors."""
import itertools
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers, models
from kiln.errors import InvalidArgumentError


def reference(x, size, mode):
    """Position i of each spatial axis pools [floor(i * n / out), ceil((i + 1) * n / out)); x channels last."""
    rank = x.ndim - 2
    out = np.zeros((x.shape[0],) + tuple(size) + (x.shape[-1],))
    for idx in itertools.product(*(range(o) for o in size)):
        window = [slice(None)]
        for a, i in enumerate(idx):
            n = x.shape[1 + a]
            window.append(slice(i * n // size[a], -(-(i + 1) * n // size[a])))
        cells = x[tuple(window)].reshape(x.shape[0], -1, x.shape[-1])
        out[(slice(None),) + idx] = cells.mean(1) if mode == "Average" else cells.max(1)
    return out


class AdaptivePoolingTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_against_the_windows(self):
        rng = np.random.default_rng(0)
        for case in range(60):
            rank, mode = 1 + case % 3, ("Average", "Max")[case // 3 % 2]
            spatial = [int(v) for v in rng.integers(1, 10, size=rank)]
            size = tuple(int(v) for v in rng.integers(1, 8, size=rank))
            first = case % 5 == 0
            x = rng.standard_normal([2] + spatial + [3]).astype(np.float32)
            cls = getattr(layers, "Adaptive%sPooling%dD" % (mode, rank))
            layer = cls(size if rank > 1 or case % 2 else size[0], data_format="channels_first" if first else None)
            y = np.asarray(layer(kiln.constant(np.moveaxis(x, -1, 1) if first else x)))
            want = reference(x.astype(np.float64), size, mode)
            np.testing.assert_allclose(np.moveaxis(y, 1, -1) if first else y, want, rtol=1e-6, atol=1e-6,
                                       err_msg="case %d: %s %s -> %s" % (case, cls.__name__, spatial, size))

    def test_special_values(self):
        x = np.array([[-np.inf, -np.inf, 1, np.nan, 2, 3]], np.float32).reshape(1, 6, 1)
        np.testing.assert_array_equal(np.asarray(layers.AdaptiveMaxPooling1D(3)(kiln.constant(x))).ravel(),
                                      [-np.inf, np.nan, 3])
        np.testing.assert_array_equal(np.asarray(layers.AdaptiveAveragePooling1D(3)(kiln.constant(x))).ravel(),
                                      [-np.inf, np.nan, 2.5])

    def test_config_and_shapes(self):
        layer = layers.AdaptiveMaxPooling2D((2, 3))
        config = layer.get_config()
        self.assertEqual({k: config[k] for k in ("output_size", "data_format")},
                         {"output_size": [2, 3], "data_format": "channels_last"})
        self.assertEqual(layers.AdaptiveMaxPooling2D.from_config(config).get_config(), config)
        self.assertEqual(layer.compute_output_shape((None, 7, 9, 4)), (None, 2, 3, 4))
        first = layers.AdaptiveAveragePooling1D(4, data_format="channels_first")
        self.assertEqual(first.compute_output_shape((None, 3, 10)), (None, 3, 4))
        self.assertEqual(layers.AdaptiveAveragePooling3D(2).get_config()["output_size"], [2, 2, 2])

    def test_model_trains_and_saves(self):
        kiln.keras.utils.set_random_seed(3)
        model = models.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.AdaptiveMaxPooling2D(3),
                                   layers.Flatten(), layers.ActivityRegularization(l2=0.001), layers.Dense(2)])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(4)
        x = rng.standard_normal([16, 8, 8, 1]).astype(np.float32)
        y = (x[:, :4].sum((1, 2, 3)) > 0).astype(np.int32)
        history = model.fit(x, y, epochs=6, batch_size=8, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "adaptive")
            model.save(path)
            np.testing.assert_array_equal(np.asarray(models.load_model(path).predict(x, verbose=0)),
                                          np.asarray(model.predict(x, verbose=0)))

    def test_activity_regularization(self):
        layer = layers.ActivityRegularization(l1=0.1, l2=0.01)
        x = np.array([[1, -2], [3, 4]], np.float32)
        np.testing.assert_array_equal(np.asarray(layer(kiln.constant(x))), x)
        self.assertEqual(len(layer.losses), 1)
        self.assertAlmostEqual(float(np.asarray(layer.losses[0])), (0.1 * 10 + 0.01 * 30) / 2, places=6)
        config = layer.get_config()
        self.assertEqual((config["l1"], config["l2"]), (0.1, 0.01))
        self.assertEqual(layers.ActivityRegularization.from_config(config).get_config(), config)
        self.assertEqual(layers.ActivityRegularization(l1=None).get_config()["l1"], 0.0)

    def test_errors(self):
        with self.assertRaisesRegex(InvalidArgumentError, "output_size"):
            layers.AdaptiveAveragePooling2D((1, 2, 3))
        with self.assertRaisesRegex(InvalidArgumentError, "output_size"):
            layers.AdaptiveMaxPooling1D(0)
        for bad in ((None, 3), (2.5, 1)):  # not truncated (Keras takes whole floats: (2.0, 3) is (2, 3))
            with self.assertRaisesRegex(InvalidArgumentError, "output_size must be an int or a tuple of 2 ints"):
                layers.AdaptiveMaxPooling2D(bad)
        self.assertEqual(layers.AdaptiveMaxPooling2D((2.0, 3)).get_config()["output_size"], [2, 3])
        with self.assertRaisesRegex(InvalidArgumentError, "rank 4"):
            layers.AdaptiveMaxPooling2D(2)(kiln.constant(np.zeros([1, 5, 1], np.float32)))
        with self.assertRaisesRegex(InvalidArgumentError, "floating"):
            layers.AdaptiveMaxPooling1D(2)(kiln.constant(np.zeros([1, 5, 1], np.int32)))
        with self.assertRaisesRegex(InvalidArgumentError, "l1 must be a number"):
            layers.ActivityRegularization("0.1")
        with self.assertRaisesRegex(InvalidArgumentError, "l2. is nan"):
            layers.ActivityRegularization(l2=float("nan"))


if __name__ == "__main__":
    unittest.main()
