"""Convolution and pooling layers from Python: Keras's signatures, configs and aliases, outputs
against NumPy reference loops and compositions of kiln ops, gradients through a GradientTape,
errors, and a small CNN built from (None, 28, 28, 1) and trained one step."""
import unittest

import numpy as np

import kiln
from kiln import layers


def _axis(n, k, s, same):
    """Output size and padding before the first cell along one axis, as TF."""
    if not same:
        return (n - k) // s + 1, 0
    out = -(-n // s)
    return out, max(0, (out - 1) * s + k - n) // 2


def ref_conv2d(x, w, b, strides, same):
    """NumPy conv2d: x [N, H, W, C], w [KH, KW, C, O], TF's SAME / VALID padding."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    (oh, top), (ow, left) = _axis(h, kh, strides[0], same), _axis(wd, kw, strides[1], same)
    xp = np.zeros((n, h + kh + strides[0] * oh, wd + kw + strides[1] * ow, c), np.float64)
    xp[:, top:top + h, left:left + wd, :] = x
    y = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw, :]
            y[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y + b


def ref_pool(x, k, s, same, reduce):
    """NumPy pooling over the cells inside the input (TF does not average padding)."""
    n, h, wd, c = x.shape
    (oh, top), (ow, left) = _axis(h, k[0], s[0], same), _axis(wd, k[1], s[1], same)
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = max(i * s[0] - top, 0), max(j * s[1] - left, 0)
            r1, c1 = min(i * s[0] - top + k[0], h), min(j * s[1] - left + k[1], wd)
            y[:, i, j, :] = reduce(x[:, r0:r1, c0:c1, :], axis=(1, 2))
    return y


def randomize(layer, seed):
    rng = np.random.RandomState(seed)
    for v in layer.weights:
        v.assign(rng.uniform(-1, 1, v.shape).astype(np.float32))


class ConvLayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()
        self.rng = np.random.RandomState(0)

    def x(self, *shape):
        return self.rng.uniform(-1, 1, shape).astype(np.float32)

    def test_flatten_channels_first_moves_the_channel_axis_last(self):
        x = self.x(2, 3, 4, 5)  # (batch, channels, h, w)
        y = layers.Flatten(data_format="channels_first")(x).numpy()
        np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1).reshape(2, -1))
        np.testing.assert_array_equal(layers.Flatten()(x).numpy(), x.reshape(2, -1))
        self.assertEqual(layers.Flatten(data_format="channels_first").get_config()["data_format"], "channels_first")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected 'channels_last' or 'channels_first'"):
            layers.Flatten(data_format="nchw")

    def test_configs_defaults_and_aliases(self):
        conv = layers.Conv2D(8, 3, activation="relu")
        c = conv.get_config()
        self.assertEqual(c["name"], "conv2d")
        self.assertEqual((c["kernel_size"], c["strides"], c["dilation_rate"]), ([3, 3], [1, 1], [1, 1]))
        self.assertEqual((c["padding"], c["data_format"], c["groups"], c["activation"]),
                         ("valid", "channels_last", 1, "relu"))
        self.assertEqual(c["kernel_initializer"]["class_name"], "GlorotUniform")
        self.assertEqual(c["bias_initializer"]["class_name"], "Zeros")
        d = layers.DepthwiseConv2D((3, 2), depth_multiplier=2, padding="SAME").get_config()
        self.assertEqual((d["depth_multiplier"], d["kernel_size"], d["padding"]), (2, [3, 2], "same"))
        self.assertIn("depthwise_initializer", d)
        t = layers.Conv2DTranspose(4, 3, strides=2, output_padding=1).get_config()
        self.assertEqual((t["strides"], t["output_padding"]), ([2, 2], [1, 1]))
        self.assertNotIn("groups", t)
        p = layers.MaxPooling2D().get_config()
        self.assertEqual((p["pool_size"], p["strides"], p["padding"]), ([2, 2], [2, 2], "valid"))
        self.assertEqual(layers.AveragePooling1D(3).get_config()["strides"], [3])
        self.assertEqual(layers.GlobalAveragePooling2D(keepdims=True).get_config()["keepdims"], True)
        aliases = {"MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "AvgPool1D": "AveragePooling1D",
                   "AvgPool2D": "AveragePooling2D", "GlobalAvgPool1D": "GlobalAveragePooling1D",
                   "GlobalAvgPool2D": "GlobalAveragePooling2D", "GlobalMaxPool1D": "GlobalMaxPooling1D",
                   "GlobalMaxPool2D": "GlobalMaxPooling2D", "Convolution1D": "Conv1D", "Convolution2D": "Conv2D",
                   "Convolution2DTranspose": "Conv2DTranspose"}
        for alias, cls in aliases.items():
            self.assertIs(getattr(layers, alias), getattr(layers, cls))
            self.assertIn(alias, layers.__all__)
        back = layers.deserialize(layers.serialize(conv))
        self.assertIsInstance(back, layers.Conv2D)
        self.assertEqual(back.get_config(), c)
        self.assertIsInstance(layers.deserialize({"class_name": "MaxPool2D", "config": {}}), layers.MaxPooling2D)
        self.assertEqual(layers.Conv2D.from_config(c).get_config(), c)

    def test_conv2d_and_pooling_match_numpy_loops(self):
        x = self.x(2, 7, 6, 3)
        conv_cases = [((3, 3), (1, 1), "valid"), ((2, 3), (2, 1), "same"), ((3, 1), (3, 3), "valid")]
        for kernel, strides, padding in conv_cases:
            conv = layers.Conv2D(4, kernel, strides=strides, padding=padding)
            conv.build((None, 7, 6, 3))
            randomize(conv, 1)
            self.assertEqual(conv.weights[0].shape, kernel + (3, 4))
            want = ref_conv2d(x, conv.weights[0].numpy(), conv.weights[1].numpy(), strides, padding == "same")
            y = conv(x)
            np.testing.assert_allclose(y.numpy(), want, rtol=1e-4, atol=1e-5)
            self.assertEqual(conv.compute_output_shape((None, 7, 6, 3)), (None,) + want.shape[1:])
        for cls, reduce in [(layers.MaxPooling2D, np.max), (layers.AveragePooling2D, np.mean)]:
            pool_cases = [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"), ((2, 3), (1, 1), "valid")]
            for size, strides, padding in pool_cases:
                pool = cls(size, strides=strides, padding=padding)
                want = ref_pool(x, size, strides or size, padding == "same", reduce)
                np.testing.assert_allclose(pool(x).numpy(), want, rtol=1e-5, atol=1e-6)
                self.assertEqual(pool.compute_output_shape((None, 7, 6, 3)), (None,) + want.shape[1:])
        np.testing.assert_allclose(layers.GlobalAveragePooling2D()(x).numpy(), x.mean(axis=(1, 2)), rtol=1e-5)
        np.testing.assert_allclose(layers.GlobalMaxPooling2D(keepdims=True)(x).numpy(),
                                   x.max(axis=(1, 2), keepdims=True))
        x1 = self.x(2, 9, 3)
        np.testing.assert_allclose(layers.GlobalAveragePooling1D()(x1).numpy(), x1.mean(axis=1), rtol=1e-5)
        np.testing.assert_allclose(layers.MaxPooling1D(3, strides=2, padding="same")(x1).numpy(),
                                   ref_pool(x1[:, None], (1, 3), (1, 2), True, np.max)[:, 0])

    def test_other_convolutions_match_kiln_ops(self):
        x = self.x(2, 5, 6, 3)
        dw = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
        dw.build((None, 5, 6, 3))
        randomize(dw, 2)
        k, b = dw.weights
        self.assertEqual((k.name, k.shape, b.shape), ("depthwise_conv2d/depthwise_kernel", (3, 3, 3, 2), (6,)))
        want = kiln.bias_add(kiln.nn.depthwise_conv2d(x, k.value(), 1, "SAME"), b.value())
        np.testing.assert_allclose(dw(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)

        up = layers.Conv2DTranspose(2, 3, strides=2, activation="tanh")
        up.build((None, 5, 6, 3))
        randomize(up, 3)
        k, b = up.weights
        self.assertEqual(k.shape, (3, 3, 2, 3))  # [kh, kw, filters, in], as TF
        want = kiln.tanh(kiln.bias_add(kiln.nn.conv2d_transpose(x, k.value(), (2, 11, 13, 2), 2, "VALID"),
                                       b.value()))
        np.testing.assert_allclose(up(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        self.assertEqual(up.compute_output_shape((None, None, 6, 3)), (None, None, 13, 2))

        # SeparableConv2D: the depthwise convolution, then the pointwise 1x1 one with the bias (Keras's
        # separable_conv); SeparableConv1D the same over one spatial axis.
        sep = layers.SeparableConv2D(4, 2, strides=2, depth_multiplier=2, activation="relu")
        sep.build((None, 5, 6, 3))
        randomize(sep, 5)
        dk, pk, b = sep.weights
        self.assertEqual([w.name for w in sep.weights], ["separable_conv2d/depthwise_kernel",
                                                         "separable_conv2d/pointwise_kernel", "separable_conv2d/bias"])
        self.assertEqual((dk.shape, pk.shape), ((2, 2, 3, 2), (1, 1, 6, 4)))
        want = kiln.nn.relu(kiln.bias_add(kiln.nn.conv2d(kiln.nn.depthwise_conv2d(x, dk.value(), 2, "VALID"),
                                                         pk.value(), 1, "VALID"), b.value()))
        np.testing.assert_allclose(sep(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        c = sep.get_config()
        self.assertEqual(list(c)[3:6], ["depth_multiplier", "filters", "kernel_size"])  # Keras's order
        self.assertEqual(layers.SeparableConv2D.from_config(c).get_config(), c)
        self.assertIs(layers.SeparableConvolution1D, layers.SeparableConv1D)
        sep1 = layers.SeparableConv1D(2, 3, padding="same")
        x9 = self.x(2, 9, 3)
        self.assertEqual(sep1(x9).shape, (2, 9, 2))
        dk1, pk1, b1 = sep1.weights
        want1 = kiln.bias_add(kiln.nn.conv1d(kiln.reshape(kiln.nn.depthwise_conv2d(
            kiln.reshape(x9, (2, 1, 9, 3)), kiln.reshape(dk1.value(), (1, 3, 3, 1)), 1, "SAME"), (2, 9, 3)),
            pk1.value(), 1, "VALID"), b1.value())
        np.testing.assert_allclose(sep1(x9).numpy(), want1.numpy(), rtol=1e-5, atol=1e-6)

        x1 = self.x(2, 9, 3)
        conv1 = layers.Conv1D(4, 3, padding="causal", dilation_rate=2)
        conv1.build((None, 9, 3))
        randomize(conv1, 4)
        k, b = conv1.weights
        self.assertEqual(k.shape, (3, 3, 4))
        padded = np.pad(x1, ((0, 0), (4, 0), (0, 0)))
        want = kiln.bias_add(kiln.nn.conv1d(padded, k.value(), 1, "VALID", dilations=2), b.value())
        np.testing.assert_allclose(conv1(x1).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)

    def test_depthwise_conv1d_and_conv1d_transpose_match_numpy_loops(self):
        x = self.x(2, 7, 3).astype(np.float64)
        for padding in ("valid", "same"):
            for stride, dil in ((1, 1), (2, 1), (1, 2), (2, 2)):
                with self.subTest(padding=padding, stride=stride, dil=dil):
                    span = 2 * dil + 1  # kernel 3, dilated
                    # Keras's depthwise convolutions take strides and dilation together; Conv and
                    # ConvTranspose refuse them
                    dw = layers.DepthwiseConv1D(3, strides=stride, dilation_rate=dil, depth_multiplier=2,
                                                padding=padding)
                    if dw is not None:
                        dw.build((None, 7, 3))
                        randomize(dw, 6)
                        k, b = [w.numpy().astype(np.float64) for w in dw.weights]
                        self.assertEqual(k.shape, (3, 3, 2))
                        out = -(-7 // stride) if padding == "same" else (7 - span) // stride + 1
                        total = max((out - 1) * stride + span - 7, 0) if padding == "same" else 0
                        want = np.zeros((2, out, 6))
                        for o in range(out):
                            for j in range(3):
                                i = o * stride - total // 2 + j * dil
                                if 0 <= i < 7:
                                    want[:, o] += (x[:, i, :, None] * k[j]).reshape(2, 6)  # channel c * 2 + m
                        np.testing.assert_allclose(dw(x).numpy(), want + b, rtol=1e-5, atol=1e-5)

                    if stride > 1 and dil > 1:
                        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "together with dilation"):
                            layers.Conv1DTranspose(2, 3, strides=stride, dilation_rate=dil)
                        continue
                    up = layers.Conv1DTranspose(2, 3, strides=stride, dilation_rate=dil, padding=padding)
                    up.build((None, 7, 3))
                    randomize(up, 7)
                    k, b = [w.numpy().astype(np.float64) for w in up.weights]
                    self.assertEqual(k.shape, (3, 2, 3))  # [kw, filters, in], as TF
                    length = 7 * stride + (max(span - stride, 0) if padding == "valid" else 0)
                    before = max(span - stride, 0) // 2 if padding == "same" else 0
                    want = np.zeros((2, length, 2))
                    for i in range(7):
                        for j in range(3):
                            o = i * stride + j * dil - before
                            if 0 <= o < length:
                                want[:, o] += x[:, i] @ k[j].T
                    np.testing.assert_allclose(up(x).numpy(), want + b, rtol=1e-5, atol=1e-5)
                    self.assertEqual(up.compute_output_shape((None, 7, 3)), (None, length, 2))
        self.assertIs(layers.Convolution1DTranspose, layers.Conv1DTranspose)
        c = layers.Conv1DTranspose(4, 3, strides=2, output_padding=1).get_config()
        self.assertEqual((c["strides"], c["output_padding"], c["dilation_rate"]), ([2], [1], [1]))
        self.assertEqual(layers.Conv1DTranspose.from_config(c).get_config(), c)
        self.assertEqual(layers.DepthwiseConv1D(3).get_config()["strides"], [1])

    def test_gradients_through_a_tape_match_the_ops(self):
        x = kiln.constant(self.x(2, 5, 5, 2))
        conv = layers.Conv2D(3, 3, strides=2, padding="same", activation="tanh")
        conv.build((None, 5, 5, 2))
        randomize(conv, 5)
        with kiln.GradientTape() as tape:
            tape.watch(x)
            loss = kiln.reduce_sum(kiln.square(layers.GlobalMaxPooling2D()(conv(x))))
        got = tape.gradient(loss, [x] + conv.trainable_variables)
        k, b = kiln.constant(conv.weights[0].numpy()), kiln.constant(conv.weights[1].numpy())
        with kiln.GradientTape() as ref:
            for t in (x, k, b):
                ref.watch(t)
            y = kiln.tanh(kiln.bias_add(kiln.nn.conv2d(x, k, 2, "SAME"), b))
            want_loss = kiln.reduce_sum(kiln.square(kiln.reduce_max(y, axis=[1, 2])))
        want = ref.gradient(want_loss, [x, k, b])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-6)

    def test_sequential_conv_relu_and_pooling_match_numpy_and_the_layers_one_by_one(self):
        # A Sequential runs Conv2D(relu) + MaxPooling2D as one fused op; the layers called one by
        # one run apart. Same output (NumPy's loops too) and gradients.
        x = kiln.constant(self.x(3, 10, 9, 2))
        model = layers.Sequential([layers.Conv2D(5, 3, activation="relu"), layers.MaxPooling2D(),
                                   layers.Flatten()])
        model.build((None, 10, 9, 2))
        randomize(model.layers[0], 6)
        k, b = (w.numpy() for w in model.layers[0].weights)
        want = ref_pool(np.maximum(ref_conv2d(x.numpy(), k, b, (1, 1), False), 0), (2, 2), (2, 2), False, np.max)
        np.testing.assert_allclose(model(x).numpy(), want.reshape(3, -1), rtol=1e-4, atol=1e-5)

        def grads(call):
            with kiln.GradientTape() as tape:
                tape.watch(x)
                loss = kiln.reduce_sum(kiln.square(call(x)))
            return tape.gradient(loss, [x] + model.trainable_variables)

        def one_by_one(t):
            for layer in model.layers:
                t = layer(t)
            return t

        np.testing.assert_array_equal(model(x).numpy(), one_by_one(x).numpy())
        for g, w in zip(grads(model), grads(one_by_one)):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)

    def test_errors_name_the_layer(self):
        conv = layers.Conv2D(2, 3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'conv2d' \(Conv2D\).*expected rank 4"):
            conv(self.x(2, 5, 5))
        conv(self.x(1, 5, 5, 3))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected the last axis to be 3"):
            conv(self.x(1, 5, 5, 4))
        with self.assertRaisesRegex(kiln.UnimplementedError, "channels_first"):
            layers.Conv2D(2, 3, data_format="channels_first")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "padding 'full'"):
            layers.MaxPooling2D(padding="full")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "kernel_size must be an int or a tuple of 2 ints"):
            layers.Conv2D(2, (3, 3, 3))
        with self.assertRaises(TypeError):
            layers.Conv2D(2, 3, bogus=1)

    def test_small_cnn_counts_like_keras_and_trains_one_step(self):
        model = layers.Sequential([
            layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(), layers.Conv2D(16, 3, activation="relu"),
            layers.GlobalAveragePooling2D(), layers.Dense(10)])
        model.build((None, 28, 28, 1))
        self.assertEqual(model.count_params(), 1418)
        self.assertEqual([l.count_params() for l in model.layers], [80, 0, 1168, 0, 170])
        self.assertEqual([l.name for l in model.layers],
                         ["conv2d", "max_pooling2d", "conv2d_1", "global_average_pooling2d", "dense"])
        lines = []
        model.summary(print_fn=lines.append)
        self.assertIn(" conv2d_1 (Conv2D)           (None, 11, 11, 16)        1168      ", lines)
        self.assertIn("Total params: 1418 (5.54 KB)", lines)

        x = self.rng.uniform(0, 1, (4, 28, 28, 1)).astype(np.float32)
        labels = np.array([1, 7, 3, 0], np.int32)

        def loss_fn():
            logits = model(x, training=True)
            return kiln.reduce_mean(kiln.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

        with kiln.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, model.trainable_variables)
        self.assertEqual(len(grads), 6)
        for v, g in zip(model.trainable_variables, grads):
            self.assertEqual(g.shape, v.shape)
            v.assign_sub(0.05 * g.numpy())
        self.assertLess(float(loss_fn().numpy()), float(loss.numpy()))


if __name__ == "__main__":
    unittest.main()
