"""keras.ops.image.perspective_transform, keras.layers.RandomPerspective, Equalization, RandAugment, MixUp and
CutMix from Python: Equalization against a NumPy model of Keras's code; RandAugment's one op against its eleven
layers; MixUp's and CutMix's images against their mixed labels (dicts as Keras takes them); the transform against
a NumPy model of Keras's homography (its linear system solved by NumPy) and of TF's ImageProjectiveTransformV3
with a constant fill, both data formats, one set of points or one per image; the layer's fixed points, its
per-image choice, configs, a model with it trained, saved and loaded; errors as Keras's types."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers


def keras_homography(start, end):
    """Keras's compute_homography_matrix for one image: the 8 numbers reading each end point from its start."""
    rows, target = [], []
    for (xs, ys), (xe, ye) in zip(start, end):
        rows.append([xe, ye, 1, 0, 0, 0, -xs * xe, -xs * ye])
        rows.append([0, 0, 0, xe, ye, 1, -ys * xe, -ys * ye])
        target += [xs, ys]
    return np.linalg.solve(np.array(rows, np.float64), np.array(target, np.float64)).astype(np.float32)


def tf_transform(image, t, fill_value, nearest=False):
    """TF's ImageProjectiveTransformV3 of one [H, W, C] image, fill_mode CONSTANT."""
    h, w, c = image.shape
    out = np.empty_like(image)

    def read(y, x):
        inside = 0 <= y < h and 0 <= x < w
        return image[int(y), int(x)] if inside else np.full(c, fill_value, np.float32)
    for oy in range(h):
        for ox in range(w):
            k = t[6] * ox + t[7] * oy + 1
            if k == 0:
                out[oy, ox] = fill_value
                continue
            x = (t[0] * ox + t[1] * oy + t[2]) / k
            y = (t[3] * ox + t[4] * oy + t[5]) / k
            if nearest:
                out[oy, ox] = read(np.floor(y + 0.5), np.floor(x + 0.5))
                continue
            y0, x0 = np.floor(y), np.floor(x)
            top = (x0 + 1 - x) * read(y0, x0) + (x - x0) * read(y0, x0 + 1)
            bottom = (x0 + 1 - x) * read(y0 + 1, x0) + (x - x0) * read(y0 + 1, x0 + 1)
            out[oy, ox] = (y0 + 1 - y) * top + (y - y0) * bottom
    return out


def fits_saves_and_loads(test, augmentation, x, labels, epochs, batch_size=4, save=True):
    """A Sequential of the augmentation layers, Flatten and Dense(2) is fit for `epochs` epochs on x and labels;
    saved and loaded back (save), it predicts x as it did."""
    model = kiln.models.Sequential([layers.Input(x.shape[1:])] + augmentation + [layers.Flatten(), layers.Dense(2)])
    model.compile("adam", kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    test.assertEqual(len(model.fit(x, labels, epochs=epochs, batch_size=batch_size, verbose=0).history["loss"]),
                     epochs)
    if save:
        first = model.predict(x, verbose=0)
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m"))
            loaded = kiln.models.load_model(os.path.join(d, "m"))
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), first)


def bf16(x):
    """float32 values rounded to bfloat16 (nearest even), as float32."""
    a = np.asarray(x, np.float32)
    u = np.atleast_1d(a).view(np.uint32).astype(np.uint64)
    sixteen = np.uint64(16)
    r = ((u + np.uint64(0x7FFF) + ((u >> sixteen) & np.uint64(1))) >> sixteen << sixteen).astype(np.uint32)
    return r.view(np.float32).reshape(a.shape)


def keras_equalization(images, value_range, bins, q=lambda v: v):
    """Keras 3's Equalization of float32 [N, H, W, C] images in training: one histogram per channel over the batch;
    q rounds each step of the images' arithmetic (bf16 under a bfloat16 compute dtype)."""
    lo, hi = sorted(value_range)
    scale, out_scale = 255.0 / (hi - lo), (hi - lo) / 255.0
    out = []
    for i in range(images.shape[-1]):
        ch = q(q(images[..., i] * q(np.float32(scale))) + q(np.float32(0.0 - lo * scale)))
        idx = np.clip((ch * np.float32(bins - 1) / np.float32(255)).astype(np.int32), 0, bins - 1)
        hist = np.bincount(idx.ravel(), minlength=bins)
        if np.count_nonzero(hist) <= 1:
            eq = ch.astype(np.float64)
        else:
            cdf = np.cumsum(hist)
            cdf_min = cdf[np.nonzero(cdf)[0][0]]
            den = cdf[-1] - cdf_min or 1
            lut = np.clip(np.round((cdf - cdf_min) * 255 / den), 0, 255)
            top = q(np.float32(bins - 1))
            eq = lut[np.minimum(np.clip(q(q(ch / np.float32(255.0)) * top), 0, top).astype(np.int32), bins - 1)]
        out.append(eq * out_scale + lo)
    return np.stack(out, axis=-1).astype(np.float32)


class EqualizationTest(unittest.TestCase):
    def test_matches_keras_code(self):
        rng = np.random.default_rng(11)
        for value_range in [(0, 255), (0, 1), (-1, 1), (10, -5)]:
            for bins in [256, 64, 7, 2, 1]:
                lo, hi = sorted(value_range)
                x = (np.round(rng.uniform(0, 40, (3, 5, 6, 3))) / 40 * (hi - lo) + lo).astype(np.float32)
                x[1, :, :, 2] = lo + 0.3 * (hi - lo)  # a channel of one value in one image
                layer = layers.Equalization(value_range=value_range, bins=bins)
                want = keras_equalization(x, value_range, bins)
                np.testing.assert_allclose(layer(x, training=True).numpy(), want, rtol=1e-6, atol=1e-6,
                                           err_msg="value_range %s bins %d" % (value_range, bins))
                first = layers.Equalization(value_range=value_range, bins=bins, data_format="channels_first")
                np.testing.assert_array_equal(first(x.transpose(0, 3, 1, 2), training=True).numpy(),
                                              layer(x, training=True).numpy().transpose(0, 3, 1, 2))
                np.testing.assert_array_equal(layer(x).numpy(), x)  # inference
        constant = np.full((2, 3, 3, 1), 9, np.float32)
        np.testing.assert_array_equal(layers.Equalization()(constant, training=True).numpy(), constant)
        uint8 = rng.integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
        np.testing.assert_array_equal(layers.Equalization()(uint8, training=True).numpy(),
                                      keras_equalization(uint8.astype(np.float32), (0, 255), 256))
        same = layers.Equalization()(uint8).numpy()  # outside training Keras returns integer images as they are
        self.assertEqual(same.dtype, np.uint8)
        np.testing.assert_array_equal(same, uint8)
        # A bfloat16 compute dtype rounds the images' steps to bfloat16, as Keras's arithmetic does.
        for value_range, bins in [((0, 255), 7), ((0, 1), 256), ((-1, 1), 1000)]:
            lo, hi = sorted(value_range)
            x = bf16(rng.uniform(lo, hi, (2, 6, 5, 3)))
            got = layers.Equalization(value_range=value_range, bins=bins, dtype="bfloat16")(x, training=True)
            want = bf16(keras_equalization(x, value_range, bins, bf16).astype(np.float32))
            np.testing.assert_array_equal(got.numpy().astype(np.float32), want)

    def test_nan_config_model_and_errors(self):
        x = np.array([np.nan, 0, 100, 200, 255, 255], np.float32).reshape(1, 6, 1, 1)
        y = layers.Equalization(bins=3)(x, training=True).numpy().ravel()
        self.assertTrue(np.isnan(y[0]))
        np.testing.assert_array_equal(y[1:], [0, 0, 85, 255, 255])
        layer = layers.Equalization(value_range=(1, -1), bins=32)
        config = layer.get_config()
        self.assertEqual((config["value_range"], config["bins"]), ([-1.0, 1.0], 32))
        self.assertEqual(layers.deserialize(layers.serialize(layer)).get_config(), config)
        images = np.random.default_rng(1).uniform(0, 255, (8, 4, 4, 3)).astype(np.float32)
        fits_saves_and_loads(self, [layers.Equalization(), layers.Rescaling(1 / 255)], images, np.arange(8) % 2, 1)
        for make, message in [(lambda: layers.Equalization(bins=0), "bins"),
                              (lambda: layers.Equalization(bins=2.5), "whole number"),
                              (lambda: layers.Equalization(value_range=(2, 2)), "value_range"),
                              (lambda: layers.Equalization()(np.ones((2, 2), np.float32)), "rank")]:
            with self.assertRaisesRegex(kiln.InvalidArgumentError, message):
                make()


class RandAugmentTest(unittest.TestCase):
    def test_one_op_is_one_of_keras_layers(self):
        x = np.random.default_rng(5).uniform(0, 255, (3, 5, 4, 3)).astype(np.float32)
        zero = (0.0, 0.0)
        fixed = [layers.RandomShear(zero, zero), layers.RandomTranslation(zero, zero), layers.RandomRotation(zero),
                 layers.RandomBrightness(zero), layers.RandomColorDegeneration(zero), layers.RandomContrast(zero),
                 layers.RandomSharpness(zero), layers.RandomPosterization(1), layers.Solarization(zero, zero),
                 layers.AutoContrast(), layers.Equalization()]
        candidates = [layer(x, training=True).numpy() for layer in fixed]
        ra = layers.RandAugment(factor=0.0, num_ops=1, seed=2)
        seen = set()
        for _ in range(40):
            got = ra(x, training=True).numpy()
            found = [i for i, c in enumerate(candidates) if np.array_equal(c, got)]
            self.assertTrue(found)
            seen.add(found[0])
        self.assertGreaterEqual(len(seen), 5)
        np.testing.assert_array_equal(ra(x).numpy(), x)
        two = layers.RandAugment(value_range=(0, 1), num_ops=2, factor=(0.2, 0.6), interpolation="nearest")
        y = two(x / 255, training=True).numpy()
        self.assertEqual(y.shape, x.shape)
        self.assertTrue(np.all((y >= 0) & (y <= 1) | np.isclose(y, 0) | np.isclose(y, 1)))

    def test_config_model_and_errors(self):
        layer = layers.RandAugment(value_range=(1, 0), num_ops=3, factor=0.3, seed=4)
        config = layer.get_config()
        self.assertEqual((config["value_range"], config["num_ops"], config["factor"], config["interpolation"]),
                         ([0.0, 1.0], 3, [0.0, 0.3], "bilinear"))
        self.assertEqual(layers.deserialize(layers.serialize(layer)).get_config(), config)
        x = np.random.default_rng(2).uniform(0, 255, (8, 6, 6, 3)).astype(np.float32)
        fits_saves_and_loads(self, [layers.RandAugment(), layers.Rescaling(1 / 255)], x, np.arange(8) % 2, 2)
        for make, message in [(lambda: layers.RandAugment(num_ops=-1), "num_ops"),
                              (lambda: layers.RandAugment(num_ops=1.5), "whole number"),
                              (lambda: layers.RandAugment(factor=2.0), "factor"),
                              (lambda: layers.RandAugment(interpolation="cubic"), "cubic"),
                              (lambda: layers.RandAugment()(np.ones((2, 2), np.float32)), "rank")]:
            with self.assertRaisesRegex(kiln.InvalidArgumentError, message):
                make()


class MixTest(unittest.TestCase):
    def setUp(self):
        self.n = 10
        self.x = np.repeat(np.arange(self.n, dtype=np.float32), 12).reshape(self.n, 3, 4, 1)  # image i is all i
        self.y = np.eye(self.n, dtype=np.float32)

    def test_mixup_mixes_images_and_labels_alike(self):
        mix = layers.MixUp(alpha=0.5, seed=7)
        out = mix({"images": self.x, "labels": self.y, "ids": "kept"}, training=True)
        self.assertEqual(out["ids"], "kept")
        labels = out["labels"].numpy()
        np.testing.assert_allclose(labels.sum(axis=1), 1, atol=1e-6)
        np.testing.assert_allclose(out["images"].numpy(), np.broadcast_to(
            (labels @ np.arange(self.n, dtype=np.float32)).reshape(-1, 1, 1, 1), self.x.shape), atol=1e-4)
        images, labels = mix([self.x, self.y], training=True)
        self.assertEqual(labels.shape, (self.n, self.n))
        np.testing.assert_array_equal(mix({"images": self.x, "labels": self.y})["labels"].numpy(), self.y)
        np.testing.assert_array_equal(mix(self.x[0], training=True).numpy(), self.x[0])  # one image: no partner
        self.assertEqual(mix(self.x, training=True).shape, self.x.shape)
        uint8 = self.x.astype(np.uint8)  # outside training Keras's MixUp returns integer images as they are
        self.assertEqual(mix({"images": uint8, "labels": self.y})["images"].numpy().dtype, np.uint8)
        self.assertEqual(layers.CutMix()(uint8).numpy().dtype, np.float32)

    def test_cutmix_pastes_a_box_of_the_partner(self):
        cut = layers.CutMix(seed=3)
        pasted = 0
        for _ in range(3):
            out = cut({"images": self.x, "labels": self.y}, training=True)
            images, labels = out["images"].numpy(), out["labels"].numpy()
            np.testing.assert_allclose(labels.sum(axis=1), 1, atol=1e-5)
            for i in range(self.n):
                others = [j for j in range(self.n) if j != i and labels[i, j] > 0]
                self.assertLessEqual(len(others), 1)
                allowed = {float(i)} | {float(j) for j in others}
                self.assertTrue(set(np.unique(images[i])) <= allowed)
                box = images[i, ..., 0] != i
                pasted += box.any()
                if box.any():  # the pasted pixels form a rectangle
                    rows, cols = np.nonzero(box)
                    self.assertEqual(box.sum(), (rows.ptp() + 1) * (cols.ptp() + 1))
        self.assertGreater(pasted, 5)
        np.testing.assert_array_equal(cut({"images": self.x, "labels": self.y})["images"].numpy(), self.x)

    def test_config_model_and_errors(self):
        for layer in [layers.MixUp(0.3, seed=1), layers.CutMix((0.2, 0.4))]:
            config = layer.get_config()
            self.assertEqual(layers.deserialize(layers.serialize(layer)).get_config(), config)
        self.assertEqual(layers.CutMix(0.5).get_config()["factor"], [0.0, 0.5])
        fits_saves_and_loads(self, [layers.MixUp(), layers.CutMix()], self.x, np.arange(self.n) % 2, 1, batch_size=5,
                             save=False)
        for make, message in [(lambda: layers.MixUp(alpha=0), "alpha"),
                              (lambda: layers.CutMix(factor=1.5), "factor"),
                              (lambda: layers.MixUp()({"labels": self.y}), "images"),
                              (lambda: layers.MixUp()({"images": self.x, "labels": self.y.astype(np.int32)},
                                                      training=True), "labels"),
                              (lambda: layers.CutMix()({"images": self.x, "labels": self.y[:3]}, training=True),
                               "batch of 10"),
                              (lambda: layers.CutMix()({"images": self.x, "bounding_boxes": {}}), "bounding_boxes")]:
            with self.assertRaisesRegex(kiln.InvalidArgumentError, message):
                make()


class RandomDrawsTest(unittest.TestCase):
    def test_gamma_beta_and_shuffle(self):
        g = kiln.random.gamma([20000], 0.5, beta=2.0, seed=1).numpy()  # TF's beta is a rate
        self.assertAlmostEqual(g.mean(), 0.25, delta=0.01)
        self.assertAlmostEqual(g.var(), 0.125, delta=0.01)
        g3 = kiln.keras.random.gamma([20000], np.float32(3.0), dtype="float64").numpy()
        self.assertEqual(g3.dtype, np.float64)
        self.assertAlmostEqual(g3.mean(), 3.0, delta=0.06)
        b = kiln.keras.random.beta([20000], 2.0, 5.0).numpy()
        self.assertAlmostEqual(b.mean(), 2 / 7, delta=0.005)
        self.assertAlmostEqual(b.var(), 10 / 392, delta=0.002)
        rows = kiln.random.shuffle(np.arange(12).reshape(6, 2)).numpy()
        np.testing.assert_array_equal(rows[:, 1], rows[:, 0] + 1)
        self.assertEqual(sorted(rows[:, 0]), list(range(0, 12, 2)))
        cols = kiln.keras.random.shuffle(np.arange(12).reshape(2, 6), axis=1, seed=3).numpy()
        np.testing.assert_array_equal(cols[1], cols[0] + 6)
        for make, kind, message in [(lambda: kiln.random.gamma([2], 0.0), kiln.InvalidArgumentError, "alpha"),
                                    (lambda: kiln.keras.random.beta([2], 1.0, np.ones(2)), kiln.UnimplementedError,
                                     "one number"),
                                    (lambda: kiln.keras.random.beta([2], 1.0, 1.0, dtype="int32"),
                                     kiln.InvalidArgumentError, "floating"),
                                    (lambda: kiln.keras.random.shuffle(np.ones(3), axis=1), kiln.InvalidArgumentError,
                                     "axis")]:
            with self.assertRaisesRegex(kind, message):
                make()


class PerspectiveTransformTest(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(7)

    def corners(self, h, w):
        return np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float32)

    def test_matches_keras_homography_and_tf_resampling(self):
        op = kiln.keras.ops.image.perspective_transform
        for trial in range(6):
            n, h, w, c = 2, int(self.rng.integers(3, 8)), int(self.rng.integers(3, 8)), 3
            x = self.rng.uniform(-1, 1, (n, h, w, c)).astype(np.float32)
            start = np.stack([self.corners(h, w)] * n)
            end = (start + self.rng.uniform(-1.5, 1.5, start.shape)).astype(np.float32)
            got = op(x, start, end, fill_value=0.5).numpy()
            for i in range(n):
                want = tf_transform(x[i], keras_homography(start[i], end[i]), 0.5)
                np.testing.assert_allclose(got[i], want, atol=2e-4, err_msg="trial %d image %d" % (trial, i))
            # One set of points for every image, channels first, rank-3 images.
            shared = op(x.transpose(0, 3, 1, 2), start[0], end[0], data_format="channels_first").numpy()
            np.testing.assert_allclose(shared.transpose(0, 2, 3, 1)[1],
                                       tf_transform(x[1], keras_homography(start[0], end[0]), 0.0), atol=2e-4)
            np.testing.assert_array_equal(op(x[1], start[0], end[0]).numpy(), op(x, start[0], end[0]).numpy()[1])
        nearest = op(x, start, end, interpolation="nearest").numpy()
        want = np.stack([tf_transform(x[i], keras_homography(start[i], end[i]), 0.0, True) for i in range(2)])
        self.assertLess(np.mean(nearest != want), 0.05)  # a point on a pixel's edge may round either way
        self.assertIs(kiln.image.perspective_transform, op)

    def test_errors(self):
        op = kiln.keras.ops.image.perspective_transform
        x = np.zeros((1, 4, 4, 1), np.float32)
        corners = self.corners(4, 4)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "singular"):
            op(x, corners, np.zeros((4, 2), np.float32))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"\[4, 2\]"):
            op(x, corners[:3], corners[:3])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "same shape"):
            op(x, corners, corners[None])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "interpolation"):
            op(x, corners, corners, interpolation="cubic")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "holds 1"):
            op(x, np.stack([corners] * 2), np.stack([corners] * 2))


class RandomPerspectiveTest(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(3)
        self.x = self.rng.uniform(0, 255, (8, 6, 5, 3)).astype(np.float32)

    def test_keeps_images_it_does_not_choose_and_moves_the_others(self):
        x = self.x.copy()
        x[0, 2, 2, 0] = np.nan
        np.testing.assert_array_equal(layers.RandomPerspective(0.0)(x, training=True).numpy(), x)
        layer = layers.RandomPerspective((1.0, 1.0), seed=4)
        np.testing.assert_array_equal(layer(x).numpy(), x)  # inference
        y = layer(self.x, training=True).numpy()
        np.testing.assert_array_equal(y[:, 0, 0], self.x[:, 0, 0])  # the corner (0, 0) does not move
        self.assertTrue(all(not np.array_equal(y[i], self.x[i]) for i in range(8)))
        np.testing.assert_allclose(layers.RandomPerspective(scale=0.0)(self.x, training=True).numpy(), self.x)
        first = layers.RandomPerspective(0.0, data_format="channels_first")
        np.testing.assert_array_equal(first(self.x.transpose(0, 3, 1, 2), training=True).numpy(),
                                      self.x.transpose(0, 3, 1, 2))
        many = self.rng.uniform(0, 1, (300, 4, 4, 1)).astype(np.float32)
        moved = layers.RandomPerspective((0.5, 0.5))(many, training=True).numpy()
        kept = sum(np.array_equal(moved[i], many[i]) for i in range(300))
        self.assertGreater(kept, 110)
        self.assertLess(kept, 190)
        # Images of one row define no perspective transform and are kept.
        np.testing.assert_array_equal(layer(self.x[:, :1], training=True).numpy(), self.x[:, :1])

    def test_config_model_and_errors(self):
        layer = layers.RandomPerspective(0.4, scale=0.5, interpolation="nearest", fill_value=2.0, seed=1)
        config = layer.get_config()
        self.assertEqual((config["factor"], config["scale"], config["interpolation"], config["fill_value"]),
                         ([0.0, 0.4], 0.5, "nearest", 2.0))
        self.assertNotIn("fill_mode", config)
        self.assertEqual(layers.deserialize(layers.serialize(layer)).get_config(), config)
        labels = (self.x.mean(axis=(1, 2, 3)) > 127).astype(np.int32)
        fits_saves_and_loads(self, [layers.RandomPerspective(0.5), layers.Rescaling(1 / 255)], self.x, labels, 2)
        for make, message in [(lambda: layers.RandomPerspective(scale=1.5), "scale"),
                              (lambda: layers.RandomPerspective(1.5), "factor"),
                              (lambda: layers.RandomPerspective(scale="big"), "scale"),
                              (lambda: layers.RandomPerspective(interpolation="cubic"), "cubic"),
                              (lambda: layers.RandomPerspective()(np.ones((2, 2), np.float32)), "rank")]:
            with self.assertRaisesRegex(kiln.InvalidArgumentError, message):
                make()
        with self.assertRaises(TypeError):
            layers.RandomPerspective(fill_mode="constant")


if __name__ == "__main__":
    unittest.main()
