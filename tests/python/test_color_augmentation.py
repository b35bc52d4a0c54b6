"""Keras 3's colour augmentation layers (AutoContrast, Solarization, RandomInvert, RandomGrayscale,
RandomPosterization, RandomColorDegeneration, RandomSharpness, RandomSaturation, RandomHue,
RandomColorJitter, RandomErasing, RandomGaussianBlur), RandomShear and the HSV conversions from Python: Keras's
signatures and defaults, each against a NumPy model of Keras's code with fixed draws (lower == upper) over
random images, value ranges and both data formats; random draws per image; configs that round-trip; a
model with all of them trained by fit, saved and loaded; errors as Keras's types."""
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers

GRAY = np.array([0.2989, 0.5870, 0.1140])


def to_byte(x, vr):
    return x if tuple(vr) == (0, 255) else (x - vr[0]) / (vr[1] - vr[0]) * 255.0


def from_byte(x, vr):
    return x if tuple(vr) == (0, 255) else x / 255.0 * (vr[1] - vr[0]) + vr[0]


def auto_contrast(x, vr):
    b = to_byte(x, vr)
    low, high = b.min(axis=(1, 2), keepdims=True), b.max(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 255.0 / (high - low)
        y = from_byte(np.clip(b * scale - low * scale, 0, 255), vr)
    return np.where(np.isnan(y), x, y)


def gray(x):
    return (x[..., :1] * GRAY[0] + x[..., 1:2] * GRAY[1] + x[..., 2:3] * GRAY[2]) if x.shape[-1] == 3 else x


def tf_rgb_to_hsv(x):
    """TF's RGBToHSV kernel's formulas in float64."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    rng = v - x.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(v > 0, rng / v, 0)
        norm = 1 / rng / 6
        h = np.where(r == v, norm * (g - b), np.where(g == v, norm * (b - r) + 2 / 6, norm * (r - g) + 4 / 6))
    h = np.where(rng > 0, h, 0)
    h = np.where(h < 0, h + 1, h)
    return np.stack([h, s, v], axis=-1)


def tf_hsv_to_rgb(x):
    h, s, v = x[..., 0], x[..., 1], x[..., 2]
    dh = h * 6
    d = [np.clip(np.abs(dh - 3) - 1, 0, 1), np.clip(2 - np.abs(dh - 2), 0, 1), np.clip(2 - np.abs(dh - 4), 0, 1)]
    return np.stack([((1 - s) + s * di) * v for di in d], axis=-1)


def smoothed(x):
    p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    around = sum(p[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1))
    return around / 13.0 + x * 5.0 / 13.0


class ColorLayers(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(5)
        self.x = self.rng.uniform(0, 255, (3, 5, 4, 3)).astype(np.float32)

    def check(self, layer, want, x=None, tol=1e-3):
        np.testing.assert_allclose(layer(self.x if x is None else x, training=True).numpy(), want, atol=tol, rtol=1e-5)

    def test_auto_contrast_matches_keras_in_training_and_inference(self):
        for vr in [(0, 255), (0, 1), (-1, 1), (20, 200)]:
            x = self.rng.uniform(vr[0], vr[1], (2, 4, 6, 3)).astype(np.float32)
            x[1, :, :, 2] = vr[0]  # a constant channel keeps its values
            x[0, 1, 1, 0] = np.nan  # so does a channel holding NaN
            want = auto_contrast(x.astype(np.float64), vr)
            ac = layers.AutoContrast(value_range=vr)
            for training in (False, True):
                np.testing.assert_allclose(ac(x, training=training).numpy(), want, atol=1e-4 * (vr[1] - vr[0]))
        first = layers.AutoContrast(data_format="channels_first")(self.x.transpose(0, 3, 1, 2)).numpy()
        np.testing.assert_allclose(first.transpose(0, 2, 3, 1), auto_contrast(self.x.astype(np.float64), (0, 255)),
                                   atol=1e-3)
        self.assertEqual(layers.AutoContrast().get_config()["value_range"], [0, 255])

    def test_solarization_invert_grayscale_and_degeneration(self):
        x = self.x.astype(np.float64)
        y = np.clip(x + 0.1 * 255, 0, 255)
        self.check(layers.Solarization((0.1, 0.1), (0.5, 0.5)), np.where(y < 127.5, y, 255 - y))
        self.check(layers.Solarization(), 255 - x)  # the defaults invert every value
        np.testing.assert_array_equal(layers.Solarization(0.5)(self.x).numpy(), self.x)  # inference: unchanged
        self.check(layers.Solarization(value_range=(0, 1)), 1 - x / 255, x=self.x / 255, tol=1e-6)
        self.check(layers.RandomInvert((1, 1)), 255 - x)
        self.check(layers.RandomInvert((0, 0)), x)
        self.check(layers.RandomGrayscale(1.0), np.broadcast_to(gray(x), x.shape))
        self.check(layers.RandomColorDegeneration((0.25, 0.25)), x + 0.25 * (gray(x) - x))
        self.check(layers.RandomColorDegeneration((1, 1), value_range=(0, 100)),
                   np.clip(np.broadcast_to(gray(x), x.shape), 0, 100))
        first = layers.RandomGrayscale(1.0, data_format="channels_first")(self.x.transpose(0, 3, 1, 2), training=True)
        np.testing.assert_allclose(first.numpy().transpose(0, 2, 3, 1), np.broadcast_to(gray(x), x.shape), atol=1e-3)
        # Draws per image: about half of 1000 images inverted at probability 0.5.
        ones = np.ones((1000, 1, 1, 1), np.float32)
        inverted = (layers.RandomInvert((0.5, 0.5), value_range=(0, 1))(ones, training=True).numpy() == 0).mean()
        self.assertGreater(inverted, 0.4)
        self.assertLess(inverted, 0.6)

    def test_posterization_and_sharpness(self):
        x = self.x.astype(np.float64)
        for bits in (1, 3, 8):
            step = 2.0 ** (8 - bits)
            self.check(layers.RandomPosterization((bits, bits)), np.floor(np.floor(x) / step) * step, tol=0)
        unit = layers.RandomPosterization((2, 2), value_range=(0, 1))
        self.check(unit, np.floor(np.floor(x) / 64) * 64 / 255, x=(self.x / 255).astype(np.float32), tol=1e-6)
        many = layers.RandomPosterization(4)(np.tile(np.arange(256, dtype=np.float32), (200, 1))[:, None, :, None],
                                              training=True).numpy()
        levels = {len(np.unique(image)) for image in many}
        self.assertEqual(levels, {2, 4, 8})  # b in 1, 2, 3: Keras's randint over [1, 4)
        self.assertEqual(layers.RandomPosterization(4).get_config()["factor"], [1, 4])
        for f in (0.0, 0.3, 0.5, 1.0):
            s = 2 * f
            want = np.clip(x + (1 - s) * (smoothed(x) - x), 0, 255)
            self.check(layers.RandomSharpness((f, f)), want)
        x64 = layers.RandomSharpness((0, 0), dtype="float64")(x, training=True).numpy()
        self.assertEqual(x64.dtype, np.float64)
        np.testing.assert_allclose(x64, smoothed(x), rtol=1e-12)

    def test_shear_is_either_sign_of_its_draw(self):
        img = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
        transform = kiln.keras.ops.image.affine_transform

        def sheared(s):
            return transform(img, np.array([1, s, 0, s / 2, 1, 0, 0, 0], np.float32), interpolation="nearest",
                             fill_mode="reflect").numpy()
        shear = layers.RandomShear((0.4, 0.4), (0.2, 0.2), interpolation="nearest")
        signs = []
        for _ in range(30):
            got = shear(img, training=True).numpy()
            signs.append(1 if np.array_equal(got, sheared(0.4)) else -1 if np.array_equal(got, sheared(-0.4)) else 0)
        self.assertNotIn(0, signs)
        self.assertEqual(set(signs), {1, -1})
        np.testing.assert_array_equal(shear(img).numpy(), img)
        config = layers.RandomShear(0.3).get_config()
        self.assertEqual((config["x_factor"], config["y_factor"], config["fill_mode"]),
                         ([-0.3, 0.3], [0.0, 0.0], "reflect"))

    def test_hsv_ops_match_tf_formulas_and_differentiate(self):
        x = self.rng.uniform(0, 1, (4, 5, 3))
        x[0, 0] = [0.5, 0.5, 0.5]
        x[0, 1] = [0, 0, 0]
        x[0, 2] = [0.2, 0.7, 0.7]
        hsv = kiln.image.rgb_to_hsv(x.astype(np.float32)).numpy()
        np.testing.assert_allclose(hsv, tf_rgb_to_hsv(x), atol=2e-6)
        np.testing.assert_allclose(kiln.image.hsv_to_rgb(hsv).numpy(), x, atol=2e-6)
        np.testing.assert_allclose(kiln.image.rgb_to_hsv(x).numpy(), tf_rgb_to_hsv(x), atol=1e-12)  # float64
        np.testing.assert_allclose(kiln.image.rgb_to_grayscale(x).numpy(), x @ GRAY[:, None], atol=1e-12)
        first = kiln.keras.ops.image.rgb_to_hsv(x.transpose(2, 0, 1), data_format="channels_first").numpy()
        np.testing.assert_allclose(first.transpose(1, 2, 0), tf_rgb_to_hsv(x), atol=1e-12)
        one = np.ones((2, 2, 1))
        np.testing.assert_array_equal(kiln.keras.ops.image.rgb_to_grayscale(one).numpy(), one)
        t = kiln.constant(x)
        with kiln.GradientTape() as tape:
            tape.watch(t)
            y = kiln.reduce_sum(kiln.image.rgb_to_hsv(t)) + kiln.reduce_sum(kiln.image.hsv_to_rgb(t))
        self.assertTrue(np.all(np.isfinite(tape.gradient(y, t).numpy())))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "3 channels"):
            kiln.image.rgb_to_hsv(np.ones((2, 4), np.float32))

    def test_saturation_hue_and_jitter(self):
        x = self.x.astype(np.float64)
        self.check(layers.RandomSaturation((0.5, 0.5)), x)
        hsv = tf_rgb_to_hsv(x / 255)
        for f in (0.0, 0.3, 0.9):
            k = np.float32(f) / (1 - np.float32(f) + np.float32(1e-7))
            want = hsv.copy()
            want[..., 1] = np.clip(want[..., 1] * k, 0, 1)
            self.check(layers.RandomSaturation((f, f)), tf_hsv_to_rgb(want) * 255, tol=2e-3)
        for f in (0.2, 1.0):
            got = layers.RandomHue((f, f))(self.x, training=True).numpy()
            for i in range(len(x)):
                options = []
                for shift in (f / 2, -f / 2):
                    h = hsv[i].copy()
                    h[..., 0] += shift
                    h[..., 0] = np.where(h[..., 0] > 1, h[..., 0] - 1, np.where(h[..., 0] < 0, h[..., 0] + 1, h[..., 0]))
                    options.append(np.clip(tf_hsv_to_rgb(h), 0, 1) * 255)
                self.assertTrue(any(np.allclose(got[i], o, atol=3e-3) for o in options), "image %d" % i)
        # The jitter's steps in order: brightness +0.1 (clipped), contrast c = 1, saturation 0.5 and hue 0 keep.
        jitter = layers.RandomColorJitter(value_range=(0, 1), brightness_factor=(0.1, 0.1), contrast_factor=(0, 0),
                                          saturation_factor=(0.5, 0.5), hue_factor=(0, 0))
        u = (x / 255).astype(np.float32)
        np.testing.assert_allclose(jitter(u, training=True).numpy(), np.clip(u + 0.1, 0, 1), atol=1e-5)
        # Contrast alone: per image one c in [0.5, 1.5] scaling every channel's distance from its mean.
        contrast = layers.RandomColorJitter(value_range=(-10, 10), contrast_factor=0.5)(u, training=True).numpy()
        mean = u.mean(axis=(1, 2), keepdims=True)
        ratio = (contrast - mean) / (u - mean)
        for i in range(len(u)):
            self.assertTrue(0.5 - 1e-4 <= ratio[i].min() and ratio[i].max() <= 1.5 + 1e-4)
            np.testing.assert_allclose(ratio[i], ratio[i].mean(), atol=1e-3)
        config = layers.RandomColorJitter(hue_factor=0.1).get_config()
        self.assertEqual((config["hue_factor"], config["brightness_factor"]), ([0.0, 0.1], None))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "RandomHue.*1 channels"):
            layers.RandomHue(0.5)(np.ones((1, 2, 2, 1), np.float32), training=True)

    def test_erasing_and_gaussian_blur(self):
        x = np.full((30, 6, 8, 3), 100.0, np.float32)
        got = layers.RandomErasing((1, 1), scale=(0.25, 0.25), fill_value=(1, 2, 3))(x, training=True).numpy()
        for image in got:
            box = image[..., 0] != 100
            rows, cols = np.nonzero(box)
            self.assertEqual(box.sum(), 12)  # 3 rows x 4 columns, contiguous
            self.assertEqual((rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1), 12)
            np.testing.assert_array_equal(image[box], np.tile([1, 2, 3], (12, 1)))
        half = layers.RandomErasing((0.5, 0.5), fill_value=0)(x, training=True).numpy()
        touched = (half != 100).any(axis=(1, 2, 3)).mean()
        self.assertTrue(0.2 <= touched <= 0.8)
        np.testing.assert_array_equal(layers.RandomErasing()(x).numpy(), x)
        # Blur at sigma 0.7: Keras's kernel (outer product of normalized 1-D Gaussians) over zero padding.
        img = self.x[:2].astype(np.float64)
        t = (np.arange(5) - 2) / (np.float32(0.7) + np.float32(1e-6))
        g = np.exp(-0.5 * t * t)
        g /= g.sum()
        k = np.outer(g, g)
        pad = np.pad(img, ((0, 0), (2, 2), (2, 2), (0, 0)))
        want = sum(k[i, j] * pad[:, i:i + 5, j:j + 4] for i in range(5) for j in range(5))
        blur = layers.RandomGaussianBlur((1, 1), kernel_size=5, sigma=(0.7, 0.7))
        np.testing.assert_allclose(blur(self.x[:2], training=True).numpy(), want, atol=2e-3)
        first = layers.RandomGaussianBlur((1, 1), kernel_size=5, sigma=(0.7, 0.7), data_format="channels_first")
        np.testing.assert_allclose(first(self.x[:2].transpose(0, 3, 1, 2), training=True).numpy(),
                                   want.transpose(0, 3, 1, 2), atol=2e-3)
        self.assertEqual(layers.RandomGaussianBlur(kernel_size=(3, 5)).get_config()["kernel_size"], [3, 5])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "odd"):
            layers.RandomGaussianBlur(kernel_size=4)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "fill_value"):
            layers.RandomErasing(fill_value="red")

    def test_configs_round_trip_and_a_model_trains_saves_and_loads(self):
        made = [layers.AutoContrast(), layers.Solarization(0.1, 0.6, seed=3), layers.RandomInvert(0.3),
                layers.RandomGrayscale(0.4), layers.RandomPosterization((5, 7)), layers.RandomColorDegeneration(0.5),
                layers.RandomSharpness((0.2, 0.8)), layers.RandomShear(0.1, 0.2, fill_mode="nearest"),
                layers.RandomSaturation(0.6), layers.RandomHue(0.2),
                layers.RandomColorJitter(brightness_factor=0.1, contrast_factor=0.2, saturation_factor=0.5,
                                         hue_factor=0.1), layers.RandomErasing(0.5, fill_value=(1, 2, 3)),
                layers.RandomGaussianBlur(0.5, kernel_size=3, sigma=0.8)]
        for layer in made:
            again = type(layer).from_config(layer.get_config())
            self.assertEqual(again.get_config(), layer.get_config())
            self.assertEqual(layers.deserialize(layers.serialize(layer)).get_config(), layer.get_config())
        model = kiln.models.Sequential([layers.Input((5, 4, 3))] + made + [
            layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(2)])
        model.compile("adam", kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = self.rng.uniform(0, 255, (32, 5, 4, 3)).astype(np.float32)
        labels = (x.mean(axis=(1, 2, 3)) > 127).astype(np.int32)
        self.assertEqual(len(model.fit(x, labels, epochs=2, batch_size=8, verbose=0).history["loss"]), 2)
        first = model.predict(x, verbose=0)
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m"))
            loaded = kiln.models.load_model(os.path.join(d, "m"))
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), first)

    def test_errors_name_the_argument(self):
        bad = [
            (lambda: layers.RandomInvert(1.5), "factor"),
            (lambda: layers.RandomSharpness((0.1, 0.2, 0.3)), "two numbers"),
            (lambda: layers.RandomColorDegeneration("high"), "factor"),
            (lambda: layers.Solarization(threshold_factor=-0.1), "threshold_factor"),
            (lambda: layers.AutoContrast(value_range=(1, 1)), "value_range"),
            (lambda: layers.AutoContrast(value_range=5), "value_range"),
            (lambda: layers.RandomGrayscale(2.0), "factor"),
            (lambda: layers.RandomPosterization(9), r"\[1, 8\]"),
            (lambda: layers.RandomPosterization(2.5), "whole number"),
            (lambda: layers.RandomPosterization(float("nan")), "whole number"),
            (lambda: layers.RandomShear(1.5), "x_factor"),
            (lambda: layers.RandomColorJitter(hue_factor="x"), "hue_factor"),
            (lambda: layers.Solarization(threshold_factor="x"), "threshold_factor"),
            (lambda: layers.RandomShear(0.1, fill_mode="mirror"), "mirror"),
            (lambda: layers.RandomGrayscale(1.0)(np.ones((1, 2, 2, 4), np.float32), training=True), "4 channels"),
            (lambda: layers.AutoContrast()(np.ones((2, 2), np.float32)), "rank"),
        ]
        for make, message in bad:
            with self.assertRaisesRegex(kiln.InvalidArgumentError, message):
                make()
        with self.assertRaises(TypeError):
            layers.RandomSharpness()


if __name__ == "__main__":
    unittest.main()
