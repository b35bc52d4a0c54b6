"""The 3-D convolution and pooling layers from Python (Conv3D, Conv3DTranspose, MaxPooling3D,
AveragePooling3D, GlobalAveragePooling3D, GlobalMaxPooling3D): Keras's signatures, configs and aliases,
outputs against NumPy loops written here with TF's padding, gradients against the NumPy adjoints, errors,
and a small model that trains and reloads its weights."""
import itertools
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers
from test_conv_layers import randomize


def _axis(n, k, s, d, same):
    """Output size and padding before the first cell along one axis, as TF."""
    span = (k - 1) * d + 1
    if not same:
        return (n - span) // s + 1, 0
    out = -(-n // s)
    return out, max(0, (out - 1) * s + span - n) // 2


def _taps(x_shape, k, s, d, same):
    """Output shape and, per output cell and window tap, the input cell (or None when it is padding)."""
    axes = [_axis(x_shape[i + 1], k[i], s[i], d[i], same) for i in range(3)]
    outs = [a[0] for a in axes]

    def cells():
        for o in itertools.product(*(range(n) for n in outs)):
            for t in itertools.product(*(range(n) for n in k)):
                pos = tuple(o[i] * s[i] - axes[i][1] + t[i] * d[i] for i in range(3))
                inside = all(0 <= pos[i] < x_shape[i + 1] for i in range(3))
                yield o, t, pos if inside else None
    return outs, cells


def ref_conv3d(x, w, b, s=(1, 1, 1), d=(1, 1, 1), same=False):
    outs, cells = _taps(x.shape, w.shape[:3], s, d, same)
    y = np.zeros((x.shape[0], *outs, w.shape[4]))
    for o, t, pos in cells():
        if pos is not None:
            y[(slice(None),) + o] += x[(slice(None),) + pos] @ w[t]
    return y + b


def ref_conv3d_transpose(x, w, out_shape, s=(1, 1, 1), d=(1, 1, 1), same=False):
    """The adjoint of ref_conv3d from out_shape [OD, OH, OW] onto x: w [KD, KH, KW, O, C]."""
    y = np.zeros((x.shape[0], *out_shape, w.shape[3]))
    fwd_shape = (x.shape[0], *out_shape)
    outs, cells = _taps(fwd_shape, w.shape[:3], s, d, same)
    assert tuple(outs) == x.shape[1:4], (outs, x.shape)
    for o, t, pos in cells():
        if pos is not None:
            y[(slice(None),) + pos] += x[(slice(None),) + o] @ w[t].T
    return y


def ref_pool3d(x, k, s, same, reduce):
    outs, cells = _taps(x.shape, k, s, (1, 1, 1), same)
    windows = {}
    for o, _, pos in cells():
        if pos is not None:
            windows.setdefault(o, []).append(x[(slice(None),) + pos])
    y = np.zeros((x.shape[0], *outs, x.shape[4]))
    for o, vals in windows.items():
        y[(slice(None),) + o] = reduce(np.stack(vals), axis=0)
    return y


class Conv3DLayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        self.rng = np.random.RandomState(0)

    def x(self, *shape):
        return self.rng.uniform(-1, 1, shape).astype(np.float32)

    def test_configs_defaults_and_aliases(self):
        conv = layers.Conv3D(4, 3)
        self.assertEqual(conv.name, "conv3d")
        c = conv.get_config()
        self.assertEqual([list(c[n]) for n in ("kernel_size", "strides", "dilation_rate")], [[3, 3, 3], [1, 1, 1], [1, 1, 1]])
        self.assertEqual((c["padding"], c["data_format"], c["groups"]), ("valid", "channels_last", 1))
        self.assertEqual(list(layers.Conv3D.from_config(c).get_config()["kernel_size"]), [3, 3, 3])
        t = layers.Conv3DTranspose(2, (1, 2, 3), strides=(1, 2, 3), output_padding=(0, 1, 2)).get_config()
        self.assertEqual((list(t["kernel_size"]), list(t["output_padding"])), ([1, 2, 3], [0, 1, 2]))
        self.assertNotIn("groups", t)
        self.assertEqual(list(layers.MaxPooling3D().get_config()["pool_size"]), [2, 2, 2])
        self.assertEqual(list(layers.AveragePooling3D(3, strides=1).get_config()["strides"]), [1, 1, 1])
        self.assertEqual(layers.GlobalAveragePooling3D(keepdims=True).get_config()["keepdims"], True)
        for alias, cls in ((layers.Convolution3D, layers.Conv3D), (layers.Convolution3DTranspose, layers.Conv3DTranspose),
                           (layers.MaxPool3D, layers.MaxPooling3D), (layers.AvgPool3D, layers.AveragePooling3D),
                           (layers.GlobalAvgPool3D, layers.GlobalAveragePooling3D),
                           (layers.GlobalMaxPool3D, layers.GlobalMaxPooling3D)):
            self.assertIs(alias, cls)
        self.assertEqual(layers.Conv3DTranspose(2, 2).name, "conv3d_transpose_1")  # the second: Keras names
        self.assertEqual(layers.GlobalMaxPooling3D().name, "global_max_pooling3d")

    def test_conv3d_matches_numpy_loops(self):
        x = self.x(2, 5, 4, 6, 3)
        cases = [dict(kernel_size=3), dict(kernel_size=(2, 3, 1), strides=(2, 1, 3), padding="same"),
                 dict(kernel_size=2, dilation_rate=(2, 1, 2), padding="same"),
                 dict(kernel_size=(3, 2, 2), strides=2, activation="relu")]
        for kw in cases:
            conv = layers.Conv3D(2, **kw)
            conv.build(x.shape)
            randomize(conv, 1)
            k, b = (v.numpy() for v in conv.weights)
            self.assertEqual(k.shape[3:], (3, 2))
            ks, st, dl = (conv.get_config()[n] for n in ("kernel_size", "strides", "dilation_rate"))
            want = ref_conv3d(x, k, b, st, dl, kw.get("padding") == "same")
            if kw.get("activation") == "relu":
                want = np.maximum(want, 0)
            y = conv(x).numpy()
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5, err_msg=str(kw))
            self.assertEqual(tuple(conv.compute_output_shape((None,) + x.shape[1:])), (None,) + y.shape[1:])

    def test_conv3d_transpose_matches_numpy_loops(self):
        x = self.x(2, 3, 2, 4, 3)
        cases = [(dict(kernel_size=3, strides=2), (7, 5, 9)),
                 (dict(kernel_size=(3, 2, 3), strides=(2, 1, 3), padding="same"), (6, 2, 12)),
                 (dict(kernel_size=(2, 3, 3), strides=(3, 2, 2), output_padding=(2, 1, 0)), (10, 6, 9)),
                 (dict(kernel_size=(3, 1, 3), strides=(2, 3, 2), padding="same", output_padding=(1, 2, 1)), (6, 6, 8)),
                 (dict(kernel_size=2, dilation_rate=(2, 1, 3)), (5, 3, 7))]
        for kw, out in cases:
            up = layers.Conv3DTranspose(2, **kw)
            up.build(x.shape)
            randomize(up, 2)
            k, b = (v.numpy() for v in up.weights)
            self.assertEqual(k.shape[3:], (2, 3))
            c = up.get_config()
            want = ref_conv3d_transpose(x, k, out, c["strides"], c["dilation_rate"], kw.get("padding") == "same") + b
            y = up(x).numpy()
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5, err_msg=str(kw))
            self.assertEqual(tuple(up.compute_output_shape((None,) + x.shape[1:])), (None,) + y.shape[1:])

    def test_poolings_match_numpy_loops(self):
        x = self.x(2, 5, 4, 7, 3)
        for (ps, st, padding), (cls, reduce) in itertools.product(
                [((2, 2, 2), None, "valid"), ((3, 3, 3), (2, 2, 2), "same"), ((3, 1, 2), (1, 2, 3), "valid"),
                 ((2, 3, 4), (3, 1, 2), "same"), ((4, 2, 2), (1, 1, 1), "same")],
                [(layers.MaxPooling3D, np.max), (layers.AveragePooling3D, np.mean)]):
            y = cls(ps, strides=st, padding=padding)(x).numpy()
            want = ref_pool3d(x, ps, st or ps, padding == "same", reduce)
            np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6, err_msg=f"{cls.__name__} {ps} {st} {padding}")
        np.testing.assert_allclose(layers.GlobalAveragePooling3D()(x).numpy(), x.mean(axis=(1, 2, 3)), rtol=1e-5)
        np.testing.assert_allclose(layers.GlobalMaxPooling3D(keepdims=True)(x).numpy(),
                                   x.max(axis=(1, 2, 3), keepdims=True))

    def test_gradients_are_the_numpy_adjoints(self):
        # d/dx sum(conv3d(x) * r) is conv3d_transpose(r); d/dkernel sums x's window cells times r.
        x = kiln.constant(self.x(2, 4, 3, 5, 2))
        conv = layers.Conv3D(3, (2, 3, 2), strides=(2, 1, 1), padding="same")
        conv.build(x.shape)
        randomize(conv, 3)
        k = conv.weights[0].numpy()
        r = self.x(2, 2, 3, 5, 3)
        with kiln.GradientTape() as tape:
            tape.watch(x)
            loss = kiln.reduce_sum(conv(x) * r)
        gx, gk, gb = tape.gradient(loss, [x] + conv.trainable_variables)
        np.testing.assert_allclose(gx.numpy(), ref_conv3d_transpose(r, k, (4, 3, 5), (2, 1, 1), (1, 1, 1), True),
                                   rtol=1e-4, atol=1e-5)
        outs, cells = _taps(x.shape, k.shape[:3], (2, 1, 1), (1, 1, 1), True)
        want_k = np.zeros(k.shape)
        for o, t, pos in cells():
            if pos is not None:
                want_k[t] += x.numpy()[(slice(None),) + pos].T @ r[(slice(None),) + o]
        np.testing.assert_allclose(gk.numpy(), want_k, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(gb.numpy(), r.sum(axis=(0, 1, 2, 3)), rtol=1e-5)
        # MaxPooling3D routes a window's gradient to its first maximum in (depth, height, width) order.
        ones = kiln.constant(np.ones((1, 3, 2, 2, 1), np.float32))
        with kiln.GradientTape() as tape:
            tape.watch(ones)
            loss = kiln.reduce_sum(layers.MaxPooling3D(2, padding="same")(ones))
        self.assertEqual(tape.gradient(loss, ones).numpy().ravel().tolist(), [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])

    def test_the_ops_match_numpy_loops(self):
        # kiln.nn.conv3d / conv3d_transpose / max_pool3d / avg_pool3d: TF's names and argument forms.
        x, f = self.x(2, 4, 5, 3, 2), self.x(2, 3, 2, 2, 3)
        for strides, padding in (((1, 2, 1), "SAME"), (1, "VALID"), ([1, 2, 2, 1, 1], "SAME")):
            s3 = (strides,) * 3 if isinstance(strides, int) else tuple(strides[-4:-1] if len(strides) == 5 else strides)
            y = kiln.nn.conv3d(x, f, strides, padding)
            np.testing.assert_allclose(y.numpy(), ref_conv3d(x, f, 0, s3, (1, 1, 1), padding == "SAME"),
                                       rtol=1e-4, atol=1e-5)
            r = self.x(*y.shape)
            t = kiln.nn.conv3d_transpose(r, f, x.shape[:4] + (2,), strides, padding)
            np.testing.assert_allclose(t.numpy(), ref_conv3d_transpose(r, f, x.shape[1:4], s3,
                                                                       (1, 1, 1), padding == "SAME"), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(kiln.nn.conv3d(x, f, 1, "VALID", dilations=(2, 1, 1)).numpy(),
                                   ref_conv3d(x, f, 0, (1, 1, 1), (2, 1, 1)), rtol=1e-4, atol=1e-5)
        for fn, reduce in ((kiln.nn.max_pool3d, np.max), (kiln.nn.avg_pool3d, np.mean)):
            np.testing.assert_allclose(fn(x, (2, 3, 2), (1, 2, 2), "SAME").numpy(),
                                       ref_pool3d(x, (2, 3, 2), (1, 2, 2), True, reduce), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(fn(x, 2, 2).numpy(), ref_pool3d(x, (2, 2, 2), (2, 2, 2), False, reduce),
                                       rtol=1e-5, atol=1e-6)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "strides needs 3 values"):
            kiln.nn.conv3d(x, f, (1, 2), "SAME")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected 5"):
            kiln.nn.conv3d_transpose(x, f, (2, 4, 5, 3), 1)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "conv3d: x has shape"):
            kiln.nn.conv3d(x[0], f)

    def test_mixed_bfloat16_global_pooling_passes_gradients_to_the_convolution(self):
        # The pooling's mean / max of bfloat16 values carries the gradient back (it once recorded none,
        # so fit trained only the layers after it).
        prior = kiln.mixed_precision.global_policy()
        kiln.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            for pool in (layers.GlobalAveragePooling3D(), layers.GlobalMaxPooling3D()):
                conv = layers.Conv3D(3, 2)
                x = self.x(2, 3, 3, 3, 2)
                with kiln.GradientTape() as tape:
                    loss = kiln.reduce_sum(kiln.cast(pool(conv(x)), "float32"))
                grads = tape.gradient(loss, conv.trainable_variables)
                self.assertTrue(all(g is not None for g in grads), pool.name)
                self.assertGreater(float(np.abs(grads[0].numpy()).sum()), 0)
        finally:
            kiln.mixed_precision.set_global_policy(prior)

    def test_errors_name_the_layer(self):
        conv = layers.Conv3D(2, 3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'conv3d' \(Conv3D\).*expected rank 5"):
            conv(self.x(2, 5, 5, 3))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "too small for a window of 3"):
            conv(self.x(1, 2, 5, 5, 3))
        conv(self.x(1, 3, 5, 5, 3))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected the last axis to be 3"):
            conv(self.x(1, 3, 5, 5, 4))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "kernel_size must be an int or a tuple of 3 ints"):
            layers.Conv3D(2, (3, 3))
        # As Keras's standardize_tuple: an int, or exactly one value per axis.
        for bad in (lambda: layers.Conv3D(2, (3,)), lambda: layers.Conv3D(2, "3"),
                    lambda: layers.MaxPooling3D(2, strides=(2,)), lambda: layers.Conv2D(2, (2,)),
                    lambda: layers.Conv3DTranspose(2, 3, strides=2, output_padding=(1, 1))):
            with self.assertRaisesRegex(ValueError, "must be an int or a tuple of [23] ints"):
                bad()
        self.assertEqual(list(layers.Conv1D(2, (3,)).get_config()["kernel_size"]), [3])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "together with dilation_rate"):
            layers.Conv3D(2, 3, strides=2, dilation_rate=2)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "output_padding"):
            layers.Conv3DTranspose(2, 3, strides=2, output_padding=2)
        with self.assertRaisesRegex(kiln.UnimplementedError, "channels_first"):
            layers.MaxPooling3D(data_format="channels_first")
        with self.assertRaisesRegex(kiln.UnimplementedError, "float64"):
            layers.Conv3D(2, 3, dtype="float64")

    def test_a_small_model_trains_and_comes_back(self):
        kiln.set_seed(3)
        rng = np.random.RandomState(3)
        x = rng.uniform(0, 1, (16, 4, 6, 6, 1)).astype(np.float32)
        y = (x.mean(axis=(1, 2, 3, 4)) > 0.5).astype(np.int32)
        model = kiln.keras.Sequential([
            layers.Input((4, 6, 6, 1)), layers.Conv3D(4, 3, padding="same", activation="relu"), layers.MaxPooling3D(),
            layers.Conv3DTranspose(2, 2, strides=2), layers.AveragePooling3D((1, 2, 2)),
            layers.GlobalAveragePooling3D(), layers.Dense(2)])
        self.assertEqual([l.count_params() for l in model.layers], [112, 0, 66, 0, 0, 6])
        self.assertEqual(tuple(model.layers[2].compute_output_shape((None, 2, 3, 3, 4))), (None, 4, 6, 6, 2))
        model.compile(optimizer=kiln.keras.optimizers.Adam(0.01),
                      loss=kiln.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history["loss"]
        self.assertTrue(np.all(np.isfinite(hist)))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ckpt")
            model.save_weights(path)
            clone = kiln.keras.Sequential.from_config(model.get_config())
            clone.load_weights(path).expect_partial()  # not the optimizer's slots
            np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


if __name__ == "__main__":
    unittest.main()
