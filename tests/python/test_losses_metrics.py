"""kiln.losses and kiln.metrics (also as kiln.keras.losses / kiln.keras.metrics): every golden case of
tests/golden/losses_metrics_golden.json (NumPy references of Keras's formulas) through the binding,
hand-computed values, reductions and sample weights, gradients through GradientTape, metric
state, reset, variables and callability, the "accuracy" resolution, get / serialize /
deserialize, bad input, and one metric updated from four Python threads."""
import json
import math
import os
import threading
import unittest

import numpy as np

import kiln
from kiln import losses, metrics

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "golden", "losses_metrics_golden.json")


def array(t):
    if t is None:
        return None
    if t["dtype"] == "int64":
        return np.array(t["data"], np.int64).reshape(t["shape"])
    return np.array(t["data"], np.float64).astype(np.float32).reshape(t["shape"])


P = np.array([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]], np.float32)
Y = np.array([0, 1], np.int64)
A, B = -math.log(0.5), -math.log(0.25)


def keras_auc(y_true, y_pred, sample_weight=None, num_thresholds=200, curve="ROC", summation_method="interpolation",
              thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
    """A NumPy copy of Keras 3's AUC (update_confusion_matrix_variables' tiled path, then result) in float32."""
    del num_labels
    f = np.float32
    if thresholds is not None:
        inner = sorted(thresholds)
    else:
        inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    t = np.array([0.0 - 1e-7] + inner + [1.0 + 1e-7], f)
    p = np.asarray(y_pred, f)
    if from_logits:
        p = (1 / (1 + np.exp(-p.astype(np.float64)))).astype(f)
    pos = np.asarray(y_true) != 0
    w = np.ones_like(p) if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, f)[:, None], p.shape)
    lw = None if label_weights is None else np.asarray(label_weights, f)
    if lw is not None and not multi_label:
        w = w * np.broadcast_to(lw[None, :], p.shape)
    if not multi_label:
        p, pos, w = p.reshape(-1, 1), pos.reshape(-1, 1), w.reshape(-1, 1)
    pred = p[None, :, :] > t[:, None, None]  # [T, N, L]
    lab = pos[None]
    tp, fp = ((lab & pred) * w).sum(1, dtype=f), ((~lab & pred) * w).sum(1, dtype=f)
    tn, fn = ((~lab & ~pred) * w).sum(1, dtype=f), ((lab & ~pred) * w).sum(1, dtype=f)

    def div(a, b):
        return np.where(b == 0, f(0), a / np.where(b == 0, f(1), b)).astype(f)

    if curve == "PR" and summation_method == "interpolation":
        dtp = tp[:-1] - tp[1:]
        pp = tp + fp
        slope = div(dtp, np.maximum(pp[:-1] - pp[1:], 0))
        intercept = tp[1:] - slope * pp[1:]
        ratio = np.where((pp[:-1] > 0) & (pp[1:] > 0), div(pp[:-1], np.maximum(pp[1:], 0)), f(1))
        terms = div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
    else:
        recall = div(tp, tp + fn)
        x, y = (div(fp, fp + tn), recall) if curve == "ROC" else (recall, div(tp, tp + fp))
        h = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
             "majoring": np.maximum(y[:-1], y[1:])}[summation_method]
        terms = (x[:-1] - x[1:]) * h
    by_label = terms.sum(0)
    if not multi_label:
        return float(by_label.sum())
    if lw is None:
        return float(by_label.mean())
    return float(div(np.sum(by_label * lw), np.sum(lw)))


class GoldenTest(unittest.TestCase):
    def test_every_case(self):
        with open(GOLDEN) as f:
            cases = json.load(f)["cases"]
        self.assertGreater(len(cases), 100)
        for c in cases:
            with self.subTest(c["name"]):
                want = array(c["want"])
                tol = c["tolerance"]
                if c["kind"] == "loss":
                    b = c["batches"][0]
                    # deserialize takes class names and aliases, as the C++ test's create_loss.
                    loss = losses.deserialize({"class_name": c["class_name"], "config": c["config"]})
                    got = loss(array(b["y_true"]), array(b["y_pred"]), array(b["sample_weight"])).numpy()
                else:
                    m = metrics.deserialize({"class_name": c["class_name"], "config": c["config"]})
                    for b in c["batches"]:
                        if "values" in b:
                            m.update_state(array(b["values"]), sample_weight=array(b["sample_weight"]))
                        else:
                            m.update_state(array(b["y_true"]), array(b["y_pred"]),
                                           sample_weight=array(b["sample_weight"]))
                    got = m.result().numpy()
                np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"])


class LossesTest(unittest.TestCase):
    def test_reductions_and_weights(self):
        self.assertAlmostEqual(float(losses.SparseCategoricalCrossentropy()(Y, P).numpy()), (A + B) / 2, places=5)
        self.assertAlmostEqual(float(losses.SparseCategoricalCrossentropy(reduction="sum")(Y, P).numpy()), A + B,
                               places=5)
        np.testing.assert_allclose(losses.SparseCategoricalCrossentropy(reduction="none")(Y, P).numpy(), [A, B],
                                   rtol=1e-5)
        # sum_over_batch_size divides by the number of samples, not by the weights' sum.
        self.assertAlmostEqual(float(losses.SparseCategoricalCrossentropy()(Y, P, sample_weight=[2.0, 0.0]).numpy()),
                               A, places=5)
        np.testing.assert_allclose(losses.sparse_categorical_crossentropy(Y, P).numpy(), [A, B], rtol=1e-5)
        np.testing.assert_allclose(kiln.keras.losses.mse([[1.0, 2.0]], [[0.0, 0.0]]).numpy(), [2.5])
        self.assertAlmostEqual(float(losses.Huber(0.5)([[0.0]], [[2.0]]).numpy()), 0.875, places=6)

    def test_keras3_reductions(self):
        # None is "none" (no reduction); "mean" is sum_over_batch_size; "mean_with_sample_weight"
        # divides by the weights' sum.
        none = losses.SparseCategoricalCrossentropy(reduction=None)
        np.testing.assert_allclose(none(Y, P).numpy(), [A, B], rtol=1e-6)
        self.assertEqual(none.get_config()["reduction"], "none")
        w = np.array([1.0, 3.0], np.float32)
        mean = losses.SparseCategoricalCrossentropy(reduction="mean")
        self.assertAlmostEqual(float(mean(Y, P, sample_weight=w)), (A + 3 * B) / 2, places=5)
        mws = losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")
        self.assertAlmostEqual(float(mws(Y, P, sample_weight=w)), (A + 3 * B) / 4, places=5)
        self.assertEqual(mws.get_config()["reduction"], "mean_with_sample_weight")

    def test_from_logits_and_smoothing(self):
        logits = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32)
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        a = losses.SparseCategoricalCrossentropy(from_logits=True)(Y, logits).numpy()
        b = losses.SparseCategoricalCrossentropy()(Y, probs.astype(np.float32)).numpy()
        self.assertAlmostEqual(float(a), float(b), places=5)
        onehot = np.eye(3, dtype=np.float32)[Y]
        c = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(onehot, logits).numpy()
        t = onehot * 0.9 + 0.1 / 3
        ls = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        self.assertAlmostEqual(float(c), float(-(t * ls).sum(-1).mean()), places=5)
        z = np.array([[1.0, 0.0]], np.float32)
        x = np.array([[0.3, -1.2]], np.float32)
        d = losses.BinaryCrossentropy(from_logits=True)(z, x).numpy()
        e = losses.BinaryCrossentropy()(z, (1 / (1 + np.exp(-x))).astype(np.float32)).numpy()
        self.assertAlmostEqual(float(d), float(e), places=5)

    def test_gradient(self):
        x = kiln.constant([[0.0, 0.0]])
        with kiln.GradientTape() as tape:
            tape.watch(x)
            loss = losses.MeanSquaredError()([[1.0, 2.0]], x)
        np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [[-1.0, -2.0]], rtol=1e-6)
        logits = kiln.constant([[1.0, 2.0, 3.0]])
        with kiln.GradientTape() as tape:
            tape.watch(logits)
            loss = losses.SparseCategoricalCrossentropy(from_logits=True)([2], logits)
        e = np.exp([1.0, 2.0, 3.0])
        np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), [e / e.sum() - [0, 0, 1]], rtol=1e-5)

    def test_get_serialize_deserialize(self):
        self.assertIs(losses.get("mse"), losses.mean_squared_error)
        h = losses.get("Huber")
        self.assertIsInstance(h, losses.Huber)
        s = losses.serialize(losses.Huber(delta=0.3, name="h"))
        self.assertEqual(s["class_name"], "Huber")
        self.assertEqual(s["config"], {"name": "h", "reduction": "sum_over_batch_size", "delta": 0.3})
        back = losses.deserialize(s)
        self.assertIsInstance(back, losses.Huber)
        self.assertEqual(back.get_config(), s["config"])
        self.assertEqual(losses.Huber.from_config(back.get_config()).get_config(), s["config"])
        self.assertEqual(losses.serialize(losses.mae), "mean_absolute_error")
        self.assertIs(kiln.keras.losses, losses)

    def test_keras3_other_losses(self):
        yt = np.array([[1.0, 0.0, 1.0]], np.float32)
        yp = np.array([[0.5, 0.2, 2.0]], np.float32)
        want = {
            losses.Poisson: (yp - yt * np.log(yp + 1e-7)).mean(),
            losses.Hinge: np.maximum(1 - (2 * yt - 1) * yp, 0).mean(),  # 0/1 labels become -1/1
            losses.SquaredHinge: (np.maximum(1 - (2 * yt - 1) * yp, 0) ** 2).mean(),
            losses.LogCosh: np.log(np.cosh(yp - yt)).mean(),
            losses.MeanSquaredLogarithmicError: ((np.log(np.maximum(yp, 1e-7) + 1) -
                                                  np.log(np.maximum(yt, 1e-7) + 1)) ** 2).mean(),
            losses.MeanAbsolutePercentageError: 100 * (np.abs(yt - yp) / np.maximum(np.abs(yt), 1e-7)).mean(),
            losses.CategoricalHinge: max(0.2 - 2.5 + 1, 0.0),
        }
        for cls, value in want.items():
            with self.subTest(cls.__name__):
                self.assertAlmostEqual(float(cls()(yt, yp).numpy()), float(value), delta=1e-6 * max(1, abs(value)))
        for fn, cls in ((losses.mape, losses.MeanAbsolutePercentageError), (losses.msle, losses.MeanSquaredLogarithmicError),
                        (losses.logcosh, losses.LogCosh), (losses.poisson, losses.Poisson),
                        (losses.hinge, losses.Hinge), (losses.squared_hinge, losses.SquaredHinge),
                        (losses.categorical_hinge, losses.CategoricalHinge)):
            np.testing.assert_allclose(fn(yt, yp).numpy(), cls(reduction=None)(yt, yp).numpy())
            self.assertIs(losses.get(fn.__name__), fn)
        # gamma 0 makes the focal loss the binary crossentropy; its gradient goes through the tape.
        p = kiln.constant([[0.3, 0.6, 0.9]])
        with kiln.GradientTape() as tape:
            tape.watch(p)
            focal = losses.BinaryFocalCrossentropy(gamma=0.0)(yt, p)
        self.assertAlmostEqual(float(focal.numpy()), float(losses.BinaryCrossentropy()(yt, p).numpy()), places=6)
        pv = np.array([0.3, 0.6, 0.9])
        np.testing.assert_allclose(tape.gradient(focal, p).numpy()[0], (pv - yt[0]) / (pv * (1 - pv)) / 3, rtol=1e-4)
        f = losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=1.0, from_logits=True)
        self.assertEqual(losses.deserialize(losses.serialize(f)).get_config(), f.get_config())
        self.assertEqual(f.get_config()["alpha"], 0.4)
        with self.assertRaises(kiln.InvalidArgumentError):
            losses.BinaryFocalCrossentropy(gamma=-1.0)

    def test_segmentation_focal_and_metric_learning_losses(self):
        # Keras 3's docstring examples.
        yt = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]]
        yp = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
        np.testing.assert_allclose(losses.Dice(axis=(1, 2, 3), reduction=None)(yt, yp).numpy(), [0.5, 0.75757575],
                                   rtol=1e-6)
        self.assertAlmostEqual(float(losses.Dice()(yt, yp).numpy()), 0.6164384, places=6)
        np.testing.assert_allclose(losses.dice(yt, yp, axis=(1, 2, 3)).numpy(), [0.5, 0.75757575], rtol=1e-6)
        np.testing.assert_allclose(
            losses.categorical_focal_crossentropy([[0, 1, 0], [0, 0, 1]], [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]]).numpy(),
            [2.63401289e-04, 6.75912094e-01], rtol=1e-5)
        gce = losses.CategoricalGeneralizedCrossEntropy()(np.array([0, 1, 0, 1]),
                                                          np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]]))
        want = np.mean((1 - np.sqrt([0.7, 0.8, 0.6, 0.6])) / 0.5)
        self.assertAlmostEqual(float(gce.numpy()), want, places=6)
        # With alpha = beta = 0.5, Tversky is Dice (up to where epsilon enters).
        self.assertAlmostEqual(float(losses.Tversky()(yt, yp).numpy()), 0.6164384, places=5)
        # Configs as Keras writes them; get / serialize / deserialize.
        self.assertEqual(losses.Dice().get_config(), {"name": "dice", "reduction": "sum_over_batch_size", "axis": None})
        t = losses.Tversky(alpha=0.3, beta=0.7, axis=[1, 2])
        self.assertEqual(t.get_config(), {"name": "tversky", "reduction": "sum_over_batch_size", "alpha": 0.3,
                                          "beta": 0.7, "axis": [1, 2]})
        f = losses.CategoricalFocalCrossentropy(alpha=[0.2, 0.3, 0.5], gamma=1.0, from_logits=True)
        self.assertEqual(losses.deserialize(losses.serialize(f)).get_config(), f.get_config())
        self.assertEqual(f.get_config()["alpha"], [0.2, 0.3, 0.5])
        c = losses.Circle(gamma=32.0, margin=0.25, remove_diagonal=False)
        self.assertEqual(losses.deserialize(losses.serialize(c)).get_config(), c.get_config())
        for name in ("categorical_focal_crossentropy", "dice", "tversky", "circle", "bce", "BCE",
                     "categorical_generalized_cross_entropy"):
            self.assertTrue(callable(losses.get(name)), name)
        self.assertIs(losses.get("bce"), losses.binary_crossentropy)
        # Circle: a sample whose label no other sample has gets no loss and is left out of the mean;
        # the gradient stays finite.
        e = np.random.RandomState(3).normal(size=(5, 4)).astype(np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        ids = np.array([0, 1, 0, 2, 1])
        per = losses.circle(ids, e).numpy()
        self.assertEqual(per[3], 0.0)
        self.assertAlmostEqual(float(losses.Circle()(ids, e).numpy()), per.sum() / 4, places=4)
        x = kiln.constant(e)
        with kiln.GradientTape() as tape:
            tape.watch(x)
            value = losses.Circle()(ids, x)
        self.assertTrue(np.all(np.isfinite(tape.gradient(value, x).numpy())))
        # Errors name the loss and what was expected.
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            losses.CategoricalGeneralizedCrossEntropy(q=1.0)
        self.assertIn("(0, 1)", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            losses.CategoricalFocalCrossentropy(alpha=[0.5, 0.5])([[0, 1, 0]], [[0.2, 0.5, 0.3]])
        self.assertIn("one alpha per class", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            losses.Dice(axis=4)(yt, yp)
        self.assertIn("axis 4", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            losses.Circle()([0, 1, 1], e[:2])
        self.assertIn("expected integer labels [2] or [2, 1]", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            losses.Dice()(None, yp)
        self.assertIn("dice: y_true is None", str(cm.exception))
        # axis=() sums over no axis: one value per element, as Keras's ops.sum.
        self.assertEqual(losses.Dice(axis=(), reduction=None)([[1.0, 0.0]], [[0.5, 0.5]]).shape, (1, 2))

    def test_segmentation_and_focal_losses_train(self):
        kiln.set_seed(5)
        rng = np.random.RandomState(0)
        x = rng.uniform(size=(32, 6)).astype(np.float32)
        y_onehot = np.eye(3, dtype=np.float32)[(x[:, 0] * 3).astype(int) % 3]
        for loss in (losses.CategoricalFocalCrossentropy(), "dice", losses.Tversky(alpha=0.7, beta=0.3)):
            with self.subTest(str(loss)):
                model = kiln.keras.Sequential([kiln.keras.layers.Input((6,)), kiln.keras.layers.Dense(3, activation="softmax")])
                model.compile(optimizer=kiln.keras.optimizers.Adam(0.05), loss=loss)
                hist = model.fit(x, y_onehot, epochs=4, batch_size=8, verbose=0).history["loss"]
                self.assertLess(hist[-1], hist[0])
        # Circle trains embeddings: the loss falls.
        ids = np.arange(32) % 4
        xe = (rng.normal(size=(32, 6)) + ids[:, None]).astype(np.float32)
        model = kiln.keras.Sequential([kiln.keras.layers.Input((6,)), kiln.keras.layers.Dense(8),
                                       kiln.keras.layers.UnitNormalization()])
        model.compile(optimizer=kiln.keras.optimizers.Adam(0.01), loss=losses.Circle(gamma=16.0))
        hist = model.fit(xe, ids, epochs=5, batch_size=16, verbose=0, shuffle=False).history["loss"]
        self.assertLess(hist[-1], hist[0])

    def test_integer_predictions_compute_in_float32(self):
        # Keras converts y_pred to the loss's dtype: integer predictions (lists of ints too) are float32.
        for y_pred in ([[1, 3], [0, 1]], np.array([[1, 3], [0, 1]], np.int64), np.array([[1, 3], [0, 1]], np.uint8)):
            got = losses.MeanSquaredError()([[1.0, 2.0], [0.0, 1.0]], y_pred)
            self.assertEqual(got.dtype, kiln.float32)
            self.assertAlmostEqual(float(got.numpy()), 0.25)
        m = metrics.MeanAbsoluteError()
        m.update_state([[1.0, 2.0]], [[1, 4]])
        self.assertAlmostEqual(float(m.result().numpy()), 1.0)

    def test_ctc(self):
        # Uniform logits over two classes and two frames: [1] has the paths 11, _1 and 1_ (3 of 4),
        # no label only __ (1 of 4). Labels pad with 0, the blank; floats truncate.
        yp = np.zeros((2, 2, 2), np.float32)
        want = [-math.log(0.75), -math.log(0.25)]
        np.testing.assert_allclose(losses.ctc([[1, 0], [0, 0]], yp).numpy(), want, rtol=1e-6)
        np.testing.assert_allclose(losses.CTC(reduction="none")(np.array([[1.9, 0.0], [0.0, 0.0]]), yp).numpy(),
                                   want, rtol=1e-6)
        np.testing.assert_allclose(losses.CTC()([[1, 0], [0, 0]], yp, sample_weight=[2.0, 0.0]).numpy(),
                                   2 * want[0] / 2, rtol=1e-6)
        self.assertEqual(losses.CTC("sum", "seq").get_config(), {"name": "seq", "reduction": "sum"})
        self.assertIs(losses.get("ctc"), losses.ctc)
        self.assertIsInstance(losses.deserialize(losses.serialize(losses.CTC())), losses.CTC)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"ctc: y_true\[0\] has label 1 at 1 after a 0"):
            losses.ctc([[0, 1]], yp[:1])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected logits \\[batch, frames, classes\\]"):
            losses.ctc([[1]], np.zeros((1, 2), np.float32))
        # Trains: a Dense layer maps each frame's features to the logits of its class.
        kiln.set_seed(3)
        rng = np.random.RandomState(1)
        seq = rng.randint(1, 4, size=(32, 3))
        frames = np.repeat(seq, 2, axis=1)  # each label held for two frames
        x = (np.eye(4)[frames] + 0.1 * rng.normal(size=(32, 6, 4))).astype(np.float32)
        model = kiln.keras.Sequential([kiln.keras.layers.Input((6, 4)), kiln.keras.layers.Dense(4)])
        model.compile(optimizer=kiln.keras.optimizers.Adam(0.05), loss="ctc")
        hist = model.fit(x, seq, epochs=6, batch_size=8, verbose=0, shuffle=False).history["loss"]
        self.assertLess(hist[-1], hist[0] / 2)

    def test_errors(self):
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            losses.SparseCategoricalCrossentropy()([0, 3], P)
        self.assertIn("label 3", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError):
            losses.MeanSquaredError()([[1.0, 2.0, 3.0]], [[1.0, 2.0]])
        with self.assertRaises(kiln.NotFoundError) as cm:
            losses.get("nope")
        self.assertIn("known:", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError):
            losses.Huber(deltaa=1.0)
        with self.assertRaises(kiln.InvalidArgumentError):
            losses.MeanSquaredError(reduction="avg")

    def test_positional_arguments_take_keras_positions(self):
        # Keras 3's signatures: the class's own arguments, then reduction, name, dtype, except
        # SparseCategoricalCrossentropy (reduction before axis), Dice (reduction, name, axis) and
        # Tversky (alpha, beta, reduction, name, axis); a custom Loss takes Loss's (name, reduction).
        for loss, want in ((losses.MeanSquaredError("sum", "m"), {"reduction": "sum", "name": "m"}),
                           (losses.Huber(2.0, "sum"), {"delta": 2.0, "reduction": "sum"}),
                           (losses.KLDivergence("none", "kl"), {"reduction": "none", "name": "kl"}),
                           (losses.CategoricalCrossentropy(True, 0.1, 1, "sum"),
                            {"from_logits": True, "label_smoothing": 0.1, "axis": 1, "reduction": "sum"}),
                           (losses.SparseCategoricalCrossentropy(True, None, "sum", -1, "s"),
                            {"from_logits": True, "reduction": "sum", "axis": -1, "name": "s"}),
                           (losses.Dice("sum", "d", 1), {"reduction": "sum", "name": "d", "axis": 1}),
                           (losses.Tversky(0.3, 0.7, "sum", "t", [1]),
                            {"alpha": 0.3, "beta": 0.7, "reduction": "sum", "name": "t", "axis": [1]})):
            config = loss.get_config()
            for key, value in want.items():
                self.assertEqual(config[key], value, (type(loss).__name__, key))
        with self.assertRaisesRegex(TypeError, "multiple values for argument 'reduction'"):
            losses.MeanSquaredError("sum", reduction="none")
        with self.assertRaisesRegex(TypeError, "at most 3 positional"):
            losses.MeanSquaredError("sum", "m", None, 1)

        class Scaled(losses.Loss):
            def call(self, y_true, y_pred):
                return kiln.reduce_mean(kiln.square(y_true - y_pred), axis=-1)

        self.assertEqual(Scaled("scaled", "sum").get_config(), {"name": "scaled", "reduction": "sum"})
        # The functions take their own arguments in Keras's order, and not reduction or name.
        yt, yp = np.array([[0.0, 1.0]], np.float32), np.array([[0.2, 3.0]], np.float32)
        self.assertAlmostEqual(float(losses.huber(yt, yp, 0.1)[0]), float(losses.huber(yt, yp, delta=0.1)[0]))
        self.assertNotAlmostEqual(float(losses.huber(yt, yp, 0.1)[0]), float(losses.huber(yt, yp)[0]))
        self.assertAlmostEqual(float(losses.binary_crossentropy(yt, yp, True)[0]),
                               float(losses.binary_crossentropy(yt, yp, from_logits=True)[0]), places=6)
        with self.assertRaisesRegex(TypeError, "unexpected keyword argument 'name'"):
            losses.mean_squared_error(yt, yp, name="x")
        with self.assertRaisesRegex(TypeError, r"at most 1 positional arguments \(delta\)"):
            losses.huber(yt, yp, 0.1, 2)
        with self.assertRaisesRegex(TypeError, "multiple values for argument 'delta'"):
            losses.huber(yt, yp, 0.1, delta=0.2)

    def test_elementwise_losses_broadcast_as_keras(self):
        # Keras's ops broadcast y_true [B, 1] against y_pred [B, 3]; the crossentropies do not.
        t = np.array([[1.0], [2.0]], np.float32)
        q = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]], np.float32)
        self.assertAlmostEqual(float(losses.MeanSquaredError()(t, q)), float(np.mean((t - q) ** 2)), places=6)
        self.assertAlmostEqual(float(losses.MeanAbsoluteError()(t, q)), float(np.mean(np.abs(t - q))), places=6)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "do not broadcast"):
            losses.MeanSquaredError()(t[:, 0], q)  # as in Keras: [2] against [2, 3]
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "different shapes"):
            losses.BinaryCrossentropy()(t, q / 4.0)

    def test_losses_written_in_python(self):
        # Keras 3's custom Loss class (its own call) and LossFunctionWrapper of a function: the
        # per-sample losses come from Python, the weighing and reduction are kiln's.
        class CustomMSE(losses.Loss):
            def __init__(self, factor=2.0, name=None, reduction="sum_over_batch_size"):
                super().__init__(name=name, reduction=reduction)
                self.factor = factor

            def call(self, y_true, y_pred):
                return kiln.reduce_mean(kiln.square(y_true - y_pred), axis=-1) * self.factor

        def my_mse(y_true, y_pred, scale=1.0):
            return kiln.reduce_mean(kiln.square(y_true - y_pred), axis=-1) * scale

        yt = np.array([[1, 2], [3, 4], [0, 1]], np.float32)
        yp = np.array([[1.5, 2], [2, 4.5], [0, 0]], np.float32)
        sw = np.array([1, 0.5, 2], np.float32)
        per = np.mean((yt - yp) ** 2, axis=-1)
        c = CustomMSE()
        self.assertEqual(c.name, "custom_mse")
        self.assertEqual(c.get_config(), {"name": "custom_mse", "reduction": "sum_over_batch_size"})
        self.assertAlmostEqual(float(c(yt, yp)), float(np.mean(per * 2)), places=6)
        self.assertAlmostEqual(float(c(yt, yp, sample_weight=sw)), float(np.mean(per * 2 * sw)), places=6)
        np.testing.assert_allclose(CustomMSE(reduction=None)(yt, yp).numpy(), per * 2, rtol=1e-6)
        w = losses.LossFunctionWrapper(my_mse, reduction="sum", scale=3.0)
        self.assertEqual(w.name, "my_mse")
        self.assertEqual(w.get_config()["fn"], "my_mse")
        self.assertAlmostEqual(float(w(yt, yp)), float(np.sum(per * 3)), places=5)
        # y_true [B] against y_pred [B, 1]: squeezed to the same rank first, as Keras's wrapper.
        self.assertAlmostEqual(float(losses.LossFunctionWrapper(my_mse)(np.array([1, 2], np.float32),
                                                                        np.array([[1], [4]], np.float32))), 2.0)
        # Differentiable: the gradient of the mean squared error.
        v = kiln.Variable(yp)
        with kiln.GradientTape() as tape:
            loss = c(yt, v)
        np.testing.assert_allclose(tape.gradient(loss, v).numpy(), 2 * 2 * (yp - yt) / yt.size, rtol=1e-5)
        with self.assertRaisesRegex(kiln.NotFoundError, "LossFunctionWrapper of 'my_mse' cannot be made from its "
                                    "config.*compile=false"):
            losses.deserialize(losses.serialize(w))

        def fails(y_true, y_pred):
            raise ZeroDivisionError("from the loss")

        with self.assertRaisesRegex(ZeroDivisionError, "from the loss"):
            losses.LossFunctionWrapper(fails)(yt, yp)

        def gives_none(y_true, y_pred):
            kiln.reduce_mean(y_true - y_pred)  # forgot the return

        with self.assertRaisesRegex(TypeError, "the loss function gives_none gave None; expected the per-sample"):
            losses.LossFunctionWrapper(gives_none)(yt, yp)
        # As Keras: y_true cast to y_pred's dtype (float64 or int labels), bools and ints cast, and
        # one value for the batch weighed as every sample's.
        self.assertAlmostEqual(float(losses.LossFunctionWrapper(my_mse)(yt.astype(np.float64), yp)),
                               float(np.mean(per)), places=6)
        self.assertAlmostEqual(float(losses.LossFunctionWrapper(my_mse)(yt.astype(np.int64), yp)),
                               float(np.mean(per)), places=6)

        def batch_mse(y_true, y_pred):
            return kiln.reduce_mean(kiln.square(y_true - y_pred))

        self.assertAlmostEqual(float(losses.LossFunctionWrapper(batch_mse)(yt, yp, sample_weight=sw)),
                               float(np.mean(per) * np.mean(sw)), places=6)

        def exact(y_true, y_pred):
            return kiln.equal(y_true, y_pred)

        m = metrics.MeanMetricWrapper(exact)
        m.update_state(np.array([[1.0], [2.0]], np.float32), np.array([[1.0], [3.0]], np.float32))
        self.assertAlmostEqual(float(m.result()), 0.5)

        class HundredMAE(losses.MeanSquaredError):  # a built-in class's subclass with its own call
            def call(self, y_true, y_pred):
                return kiln.reduce_mean(kiln.abs(y_true - y_pred), axis=-1) * 100.0

        self.assertAlmostEqual(float(HundredMAE()([[0.0, 2.0]], [[0.0, 0.0]])), 100.0, places=4)
        with self.assertRaisesRegex(kiln.UnimplementedError, r"^Plain: custom Python loss classes \(subclasses of "
                                    r"kiln\.losses\.Loss\) need their own call"):
            type("Plain", (losses.Loss,), {})()
        with self.assertRaisesRegex(TypeError, r"^kiln\.losses\.Loss is the base class; make one of its built-in"):
            losses.Loss()

    def test_compile_and_fit_with_losses_and_metrics_written_in_python(self):
        class Scaled(losses.Loss):
            def call(self, y_true, y_pred):
                return kiln.reduce_mean(kiln.square(y_true - y_pred), axis=-1) * 2.0

        def half_mse(y_true, y_pred):
            return kiln.reduce_mean(kiln.square(y_true - y_pred), axis=-1) * 0.5

        rng = np.random.default_rng(0)
        x, y = rng.random((12, 3), np.float32), rng.random((12, 2), np.float32)
        model = kiln.Sequential([kiln.keras.Input((3,)), kiln.layers.Dense(2)])
        model.compile(kiln.optimizers.SGD(0.1), loss=Scaled(), metrics=[half_mse, "mse"])
        h = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history
        self.assertLess(h["loss"][-1], h["loss"][0])
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
        # The three measure the same squared error: 2x, 0.5x and 1x of it.
        self.assertAlmostEqual(logs["loss"], 4 * logs["half_mse"], places=5)
        self.assertAlmostEqual(logs["mse"], 2 * logs["half_mse"], places=5)
        model.compile(kiln.optimizers.SGD(0.1), loss=half_mse)  # a plain function: LossFunctionWrapper
        self.assertAlmostEqual(model.evaluate(x, y, verbose=0), logs["half_mse"], places=5)

        class Halved(losses.MeanSquaredError):  # a subclass of a built-in class without call is that C loss
            pass

        self.assertAlmostEqual(float(Halved()([[0.0, 2.0]], [[0.0, 0.0]])), 2.0)


class MetricsTest(unittest.TestCase):
    def test_state_reset_variables_call(self):
        m = metrics.SparseCategoricalAccuracy()
        self.assertAlmostEqual(float(m(Y, P).numpy()), 0.5)
        m.update_state(Y, P, sample_weight=[1.0, 3.0])
        self.assertAlmostEqual(float(m.result().numpy()), 2 / 6, places=6)
        self.assertEqual([v.name for v in m.variables],
                         ["sparse_categorical_accuracy/total", "sparse_categorical_accuracy/count"])
        self.assertFalse(m.variables[0].trainable)
        m.reset_states()
        self.assertEqual(float(m.result().numpy()), 0.0)
        mean = kiln.keras.metrics.Mean(name="loss")
        mean.update_state([1.0, 2.0, 6.0])
        mean.update_state(4.0)
        self.assertAlmostEqual(float(mean.result().numpy()), 3.25)
        self.assertEqual(mean.name, "loss")
        mean.reset_state()
        self.assertEqual(float(mean(5.0).numpy()), 5.0)
        rmse = metrics.RootMeanSquaredError()
        rmse.update_state([[0.0], [0.0]], [[3.0], [4.0]])
        self.assertAlmostEqual(float(rmse.result().numpy()), math.sqrt(12.5), places=5)
        p = metrics.Precision(thresholds=[0.3, 0.7])
        p.update_state([0, 1, 1, 0], [0.6, 0.9, 0.3, 0.2])
        np.testing.assert_allclose(p.result().numpy(), [0.5, 1.0])
        auc = metrics.AUC(curve="PR")
        auc.update_state([0, 1, 1, 0], [0.6, 0.9, 0.35, 0.2])
        self.assertEqual(len(auc.variables), 4)
        self.assertEqual(auc.get_config()["curve"], "PR")
        roc = metrics.AUC()
        roc.update_state([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        self.assertAlmostEqual(float(roc.result().numpy()), 0.75, places=3)

    def test_keras3_weights_and_thresholds(self):
        p = metrics.Precision(top_k=2)
        p.update_state(np.array([[1, 0, 0], [0, 1, 0]], np.float32),
                       np.array([[0.9, 0.8, 0.1], [0.7, 0.1, 0.9]], np.float32), sample_weight=np.array([1.0, 2.0]))
        self.assertAlmostEqual(float(p.result()), 1 / 6, places=6)
        yt, yp = np.array([0, 0, 1, 1, 0, 1], np.float32), np.array([0.1, 0.6, 0.35, 0.9, 0.3, 0.7], np.float32)
        a, b = metrics.AUC(thresholds=[0.8, 0.2, 0.5]), metrics.AUC(thresholds=[0.2, 0.5, 0.8])
        a.update_state(yt, yp)
        b.update_state(yt, yp)
        self.assertAlmostEqual(float(a.result()), float(b.result()), places=6)
        self.assertEqual(a.get_config()["thresholds"], [0.2, 0.5, 0.8])
        c = metrics.AUC()
        c.update_state(np.array([0, 1], np.float32), np.array([-0.3, 1.5], np.float32))
        self.assertAlmostEqual(float(c.result()), 1.0, places=5)
        acc = metrics.Accuracy()
        acc.update_state(np.array([[1, 0], [1, 1]], np.float32), np.ones((2, 2), np.float32),
                         sample_weight=np.array([[1, 2], [0, 3]], np.float32))
        self.assertAlmostEqual(float(acc.result()), 2 / 3, places=6)

    def test_auc_multi_label_and_label_weights(self):
        rng = np.random.default_rng(7)
        yt = (rng.random((12, 3)) < 0.5).astype(np.float32)
        yp = rng.random((12, 3)).astype(np.float32)
        sw = rng.random(12).astype(np.float32)
        cases = [dict(multi_label=True), dict(multi_label=True, label_weights=np.array([0.5, 1.0, 2.0])),
                 dict(multi_label=True, num_labels=3, curve="PR"),
                 dict(multi_label=True, curve="PR", summation_method="minoring", label_weights=[1, 0, 1]),
                 dict(multi_label=True, summation_method="majoring", thresholds=[0.3, 0.5, 0.9]),
                 dict(label_weights=[1.0, 0.0, 3.0]), dict(label_weights=(2.0,), curve="PR"),
                 dict(multi_label=True, from_logits=True, num_thresholds=50)]
        for kw in cases:
            for weight in (None, sw):
                with self.subTest(kw=kw, weighted=weight is not None):
                    m = metrics.AUC(**kw)
                    m.update_state(yt[:7], yp[:7], sample_weight=None if weight is None else weight[:7])
                    m.update_state(yt[7:], yp[7:], sample_weight=None if weight is None else weight[7:])
                    self.assertAlmostEqual(float(m.result()), keras_auc(yt, yp, weight, **kw), places=5)
        m = metrics.AUC(multi_label=True, label_weights=np.array([1.0, 3.0], np.float32))
        self.assertEqual(len(m.variables), 0)  # built at the first update
        m.update_state(yt[:, :2], yp[:, :2])
        self.assertEqual(m.variables[0].numpy().shape, (200, 2))
        config = m.get_config()
        self.assertEqual((config["multi_label"], config["num_labels"], config["label_weights"]), (True, None, [1.0, 3.0]))
        back = metrics.AUC.from_config(config)
        back.update_state(yt[:, :2], yp[:, :2])
        self.assertEqual(float(back.result()), float(m.result()))
        with self.assertRaises(kiln.InvalidArgumentError):
            m.update_state(yt, yp)  # 3 labels; the state counts 2

    def test_iou_metrics(self):
        m = metrics.MeanIoU(num_classes=2)
        m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
        self.assertAlmostEqual(float(m.result()), 1 / 3, places=6)
        self.assertEqual(m.name, "mean_io_u")
        self.assertEqual(m.get_config()["dtype"], "int64")
        self.assertEqual(m.variables[0].dtype, "int64")
        f = metrics.MeanIoU(num_classes=2, dtype="float32")  # float weights need a float matrix
        f.update_state([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[0.3, 0.3, 0.3, 0.1])
        self.assertAlmostEqual(float(f.result()), 0.23809525, places=6)
        self.assertEqual(f.get_config()["dtype"], "float32")
        b = metrics.BinaryIoU(target_class_ids=[0, 1], threshold=0.3, dtype="float32")
        b.update_state([0, 1, 0, 1], [0.1, 0.2, 0.4, 0.7], sample_weight=[0.2, 0.3, 0.4, 0.1])
        self.assertAlmostEqual(float(b.result()), 0.17361112, places=6)
        oh = metrics.OneHotIoU(num_classes=3, target_class_ids=[0, 2], dtype="float32")
        y_true = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]], np.float32)
        y_pred = np.array([[0.2, 0.3, 0.5], [0.1, 0.2, 0.7], [0.5, 0.3, 0.1], [0.1, 0.4, 0.5]], np.float32)
        oh.update_state(y_true, y_pred, sample_weight=[0.1, 0.2, 0.3, 0.4])
        self.assertAlmostEqual(float(oh.result()), 0.1 / 0.7 / 2, places=6)
        again = metrics.deserialize(metrics.serialize(oh))
        self.assertEqual(again.get_config(), oh.get_config())
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "target class id 3 is out of range"):
            metrics.IoU(num_classes=3, target_class_ids=[3])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "num_classes"):
            metrics.MeanIoU()
        named = metrics.IoU(3, [0], "my_iou", "float32")  # Keras's positions: name, then dtype
        self.assertEqual((named.name, named.get_config()["dtype"]), ("my_iou", "float32"))
        self.assertEqual(metrics.BinaryIoU([1], 0.3, "b").name, "b")
        # In compile/fit: softmax scores against sparse labels, a maximized history entry.
        K = kiln.keras
        model = K.Sequential([K.Input((4,)), K.layers.Dense(3, activation="softmax")])
        model.compile("sgd", "sparse_categorical_crossentropy",
                      metrics=[K.metrics.MeanIoU(num_classes=3, sparse_y_pred=False)])
        x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4)
        hist = model.fit(x, np.arange(8) % 3, epochs=2, verbose=0)
        self.assertEqual(len(hist.history["mean_io_u"]), 2)
        self.assertTrue(0.0 <= hist.history["mean_io_u"][-1] <= 1.0)

    def test_f_scores(self):
        # Keras's docstring examples, then every average against Keras's formula in NumPy.
        y_true = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.int32)
        y_pred = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32)
        fb = metrics.FBetaScore(beta=2.0, threshold=0.5)
        fb.update_state(y_true, y_pred)
        np.testing.assert_allclose(fb.result().numpy(), [0.3846154, 0.90909094, 0.8333334], rtol=1e-6)
        f1 = metrics.F1Score(threshold=0.5)
        np.testing.assert_allclose(f1(y_true, y_pred).numpy(), [0.5, 0.8, 0.6666667], rtol=1e-6)
        self.assertEqual((f1.name, fb.name), ("f1_score", "fbeta_score"))

        def keras_f(yt, yp, sw, average, beta, threshold):
            yt = yt.astype(np.float32)
            if threshold is None:
                pred = (yp >= yp.max(axis=-1, keepdims=True)) & (np.abs(yp) > 1e-9)
            else:
                pred = yp > threshold
            pred = pred.astype(np.float32)
            w = np.ones_like(yt) if sw is None else np.asarray(sw, np.float32).reshape(-1, 1)
            axis = None if average == "micro" else 0
            tp, fp = (pred * yt * w).sum(axis), (pred * (1 - yt) * w).sum(axis)
            fn, sup = ((1 - pred) * yt * w).sum(axis), (yt * w).sum(axis)
            eps = np.float32(1e-7)
            p, r = tp / (tp + fp + eps), tp / (tp + fn + eps)
            f = p * r / (np.float32(beta * beta) * p + r + eps) * np.float32(1 + beta * beta)
            if average == "weighted":
                return (f * (sup / (sup.sum() + eps))).sum()
            return f if average is None else f.mean()

        rng = np.random.default_rng(3)
        yt = (rng.uniform(size=(40, 5)) > 0.6).astype(np.float32)
        yp = rng.uniform(size=(40, 5)).astype(np.float32)
        sw = rng.uniform(size=40).astype(np.float32)
        for average in (None, "micro", "macro", "weighted"):
            for beta, threshold in ((1.0, None), (0.5, 0.4), (2.0, 0.7)):
                with self.subTest(average=average, beta=beta, threshold=threshold):
                    m = metrics.FBetaScore(average=average, beta=beta, threshold=threshold)
                    m.update_state(yt[:25], yp[:25], sample_weight=sw[:25])
                    m.update_state(yt[25:], yp[25:], sample_weight=sw[25:])
                    np.testing.assert_allclose(m.result().numpy(), keras_f(yt, yp, sw, average, beta, threshold),
                                               rtol=2e-5, atol=1e-6)
        cfg = metrics.F1Score("macro", 0.5, "f").get_config()  # Keras's positions
        self.assertEqual((cfg["name"], cfg["average"], cfg["threshold"]), ("f", "macro", 0.5))
        self.assertNotIn("beta", cfg)
        self.assertEqual(metrics.deserialize(metrics.serialize(fb)).get_config(), fb.get_config())
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "average is 'samples'"):
            metrics.F1Score(average="samples")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "threshold is 0"):
            metrics.F1Score(threshold=0.0)
        # In fit: an averaged score is one number a epoch; one score per class cannot be a log.
        K = kiln.keras
        model = K.Sequential([K.Input((4,)), K.layers.Dense(3, activation="softmax")])
        model.compile("sgd", "categorical_crossentropy", metrics=[K.metrics.F1Score(average="macro")])
        x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4)
        y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
        hist = model.fit(x, y, epochs=2, verbose=0)
        self.assertEqual(len(hist.history["f1_score"]), 2)
        model.compile("sgd", "categorical_crossentropy", metrics=[K.metrics.F1Score()])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"f1_score.*one value per class.*average"):
            model.fit(x, y, epochs=1, verbose=0)

    def test_confusion_counts_and_rates_at_a_constraint(self):
        # NumPy transcription of Keras 3's update_confusion_matrix_variables: evenly spaced thresholds
        # take the bucketed path (clip to [0, 1], ceil(p * (n - 1)) - 1, NaN dropped), others compare.
        def counts(yt, yp, sw, thresholds, even=None):
            yp = np.asarray(yp, np.float32).reshape(-1)
            lab = np.asarray(yt, np.float32).reshape(-1) != 0
            w = np.ones_like(yp) if sw is None else np.broadcast_to(np.asarray(sw, np.float32), yp.shape)
            th = np.asarray(thresholds, np.float32)
            n = len(th)
            if even is None:  # Keras's is_evenly_distributed_thresholds
                even = n >= 3 and np.allclose(th, np.arange(n, dtype=np.float32) / np.float32(n - 1))
            out = np.zeros((4, n), np.float64)  # tp, fp, tn, fn
            totals = np.zeros(2)  # Keras's sums of y * w and (1 - y) * w (the bucketed path)
            for p, l, wi in zip(yp, lab, w):
                if even:
                    totals += (wi * l, wi * (not l))
                    if np.isnan(p):  # no bucket: a negative at every threshold
                        continue
                    b = np.ceil(np.clip(p, np.float32(0), np.float32(1)) * np.float32(n - 1)) - np.float32(1)
                    above = np.arange(n) <= b
                    out[0] += np.where(above & l, wi, 0)
                    out[1] += np.where(above & ~l, wi, 0)
                    continue
                above = p > th
                out[0] += np.where(above & l, wi, 0)
                out[1] += np.where(above & ~l, wi, 0)
                out[2] += np.where(~above & ~l, wi, 0)
                out[3] += np.where(~above & l, wi, 0)
            if even:
                out[3], out[2] = totals[0] - out[0], totals[1] - out[1]
            return out.astype(np.float32)

        rng = np.random.default_rng(7)
        yt = (rng.random(60) < 0.4).astype(np.float32)
        yp = rng.random(60).astype(np.float32) * 1.2 - 0.1
        yp[[3, 17]] = np.nan
        yp[[5, 9, 40]] = (0.3, 0.15, 0.54)  # on thresholds that Keras's float32 buckets put below them
        sw = rng.integers(0, 4, 60).astype(np.float32)
        for thresholds in ([0.0, 0.5, 1.0], [i / 100 for i in range(101)], [0.1, 0.4, 0.45], 0.3, None):
            th = [0.5] if thresholds is None else np.atleast_1d(thresholds)
            want = counts(yt, yp, sw, th)
            for cell, cls in enumerate((metrics.TruePositives, metrics.FalsePositives, metrics.TrueNegatives,
                                        metrics.FalseNegatives)):
                m = cls(thresholds)
                m.update_state(yt[:30], yp[:30], sample_weight=sw[:30])
                m.update_state(yt[30:], yp[30:], sample_weight=sw[30:])
                got = m.result().numpy()
                self.assertEqual(got.shape, () if len(th) == 1 else (len(th),))
                np.testing.assert_array_equal(np.atleast_1d(got), want[cell], err_msg="%s %r" % (cls.__name__, th))
                self.assertEqual(m.get_config()["thresholds"], thresholds)  # as given, as Keras
        self.assertEqual(metrics.get("false_negatives").name, "false_negatives")
        self.assertIs(type(metrics.get("TruePositives")), metrics.TruePositives)

        def keras_at(kind, value, n, yt, yp, sw):
            th = [0.5] if n == 1 else [0.0] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1.0]
            tp, fp, tn, fn = counts(yt, yp, sw, th, even=n > 1)  # these take the bucketed path from n = 2

            def div(a, b):
                return np.where(b == 0, np.float32(0), a / np.where(b == 0, np.float32(1), b)).astype(np.float32)
            sens, spec, prec = div(tp, tp + fn), div(tn, tn + fp), div(tp, tp + fp)
            constrained, dependent = {"SensitivityAtSpecificity": (spec, sens),
                                      "SpecificityAtSensitivity": (sens, spec),
                                      "PrecisionAtRecall": (sens, prec),
                                      "RecallAtPrecision": (prec, sens)}[kind]
            return max(float(np.max(np.where(constrained >= np.float32(value), dependent, 0))), 0.0)

        yp_clean = np.nan_to_num(yp, nan=0.25)
        for kind in ("SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall",
                     "RecallAtPrecision"):
            cls = getattr(metrics, kind)
            for n in (1, 2, 3, 50, 200):
                for value in (0.0, 0.3, 0.8, 1.0):
                    m = cls(value, num_thresholds=n)
                    m.update_state(yt[:30], yp_clean[:30], sample_weight=sw[:30])
                    m.update_state(yt[30:], yp_clean[30:], sample_weight=sw[30:])
                    self.assertAlmostEqual(float(m.result().numpy()), keras_at(kind, value, n, yt, yp_clean, sw),
                                           places=6, msg="%s(%s, %d)" % (kind, value, n))
            m = cls(0.5, 10, 1, "mine")  # Keras's positions: value, num_thresholds, class_id, name
            cfg = m.get_config()
            self.assertEqual((cfg["name"], cfg["num_thresholds"], cfg["class_id"]), ("mine", 10, 1))
            self.assertEqual(metrics.deserialize(metrics.serialize(m)).get_config(), cfg)
            with self.assertRaisesRegex(kiln.InvalidArgumentError, r"is 1\.5; expected a number in \[0, 1\]"):
                cls(1.5)
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "num_thresholds is 0"):
                cls(0.5, num_thresholds=0)
        m = metrics.PrecisionAtRecall(0.5, class_id=1)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "class_id.*rank 2"):
            m.update_state([0.0, 1.0], [0.2, 0.7])
        # In fit, by object and by name, with their Keras names.
        K = kiln.keras
        model = K.Sequential([K.Input((2,)), K.layers.Dense(1, activation="sigmoid")])
        model.compile("sgd", "binary_crossentropy",
                      metrics=[K.metrics.RecallAtPrecision(0.5), "true_positives", "false_negatives"])
        x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(8, 2)
        y = (x[:, :1] > 0).astype(np.float32)
        hist = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y))
        self.assertEqual(sorted(hist.history), ["false_negatives", "loss", "recall_at_precision", "true_positives",
                                                "val_false_negatives", "val_loss", "val_recall_at_precision",
                                                "val_true_positives"])
        self.assertEqual(hist.history["true_positives"][-1] + hist.history["false_negatives"][-1], 4.0)

    def test_r2_score_and_correlations(self):
        def keras_r2(batches, aggregation, num_regressors):
            cols = batches[0][0].shape[1]
            s = np.zeros(cols, np.float32)
            sq, res, cnt = s.copy(), s.copy(), s.copy()
            n = np.float32(0)
            for t, p, w in batches:
                w = np.ones((t.shape[0], 1), np.float32) if w is None else np.asarray(w, np.float32)
                w = np.broadcast_to(w.reshape(-1, 1) if w.ndim == 1 else w, t.shape)
                s += (t * w).sum(0)
                sq += (t * t * w).sum(0)
                res += ((t - p) ** 2 * w).sum(0)
                cnt += w.sum(0)
                n += np.float32(np.any(w != 0, axis=-1).sum())
            with np.errstate(divide="ignore", invalid="ignore"):
                total = sq - s * (s / cnt)
                raw = np.float32(1) - res / total
            raw = np.where(np.isinf(raw), np.float32(0), raw)
            if aggregation == "uniform_average":
                score = raw.mean()
            elif aggregation == "variance_weighted_average":
                score = (total * raw).sum() / total.sum()
            else:
                score = raw
            if num_regressors and num_regressors < n - 1:
                score = 1 - (1 - score) * (n - 1) / (n - num_regressors - 1)
            return score

        rng = np.random.default_rng(3)
        t = rng.normal(size=(20, 3)).astype(np.float32)
        p = (t + rng.normal(scale=0.5, size=t.shape)).astype(np.float32)
        w = rng.integers(0, 3, 20).astype(np.float32)
        for aggregation in ("uniform_average", "variance_weighted_average", None):
            for k in (0, 2, 9, 30):
                m = metrics.R2Score(aggregation, k)
                m.update_state(t[:9], p[:9], sample_weight=w[:9])
                m.update_state(t[9:], p[9:], sample_weight=w[9:])
                want = keras_r2([(t[:9], p[:9], w[:9]), (t[9:], p[9:], w[9:])], aggregation, k)
                np.testing.assert_allclose(m.result().numpy(), want, rtol=1e-5, atol=1e-6)
                self.assertEqual(m.get_config()["class_aggregation"], aggregation)
        m = metrics.R2Score()
        self.assertEqual(m.name, "r2_score")
        m.update_state(np.array([[1], [4], [3]], np.float32), np.array([[2], [4], [4]], np.float32))
        self.assertAlmostEqual(float(m.result().numpy()), 0.57142854, places=6)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "2-D inputs"):
            m.update_state(np.ones((2, 2, 2), np.float32), np.ones((2, 2, 2), np.float32))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "class_aggregation is 'sum'"):
            metrics.R2Score("sum")

        def pearson(yt, yp, axis):
            tn = yt - yt.mean(axis, keepdims=True)
            pn = yp - yp.mean(axis, keepdims=True)
            tn = tn / tn.std(axis, keepdims=True)
            pn = pn / pn.std(axis, keepdims=True)
            return (tn * pn).mean(axis)

        def concordance(yt, yp, axis):
            tm, pm = yt.mean(axis, keepdims=True), yp.mean(axis, keepdims=True)
            norm = (yt - tm).var(axis, keepdims=True) + (yp - pm).var(axis, keepdims=True) + (tm - pm) ** 2
            return (2 * (yt - pm) * (yp - pm) / (norm + 1e-7)).mean(axis)

        x = rng.normal(size=(6, 5)).astype(np.float32)
        y = (x * 0.5 + rng.normal(size=x.shape)).astype(np.float32)
        for cls, ref in ((metrics.PearsonCorrelation, pearson), (metrics.ConcordanceCorrelation, concordance)):
            for axis in (-1, 0, [0, 1]):
                m = cls(axis=axis)
                m.update_state(x, y)
                want = ref(x.astype(np.float64), y.astype(np.float64), tuple(axis) if isinstance(axis, list) else axis)
                self.assertAlmostEqual(float(m.result().numpy()), float(np.mean(want)), places=5)
                self.assertEqual(m.get_config()["axis"], axis)
        glob = metrics.PearsonCorrelation(axis=None)  # Keras's None: every axis, one coefficient
        glob.update_state(x, y)
        self.assertAlmostEqual(float(glob.result().numpy()), float(np.corrcoef(x.ravel(), y.ravel())[0, 1]), places=5)
        self.assertIsNone(glob.get_config()["axis"])
        self.assertEqual(metrics.get("pearson_correlation").name, "pearson_correlation")
        # In fit: R2Score of a regression, monitored by EarlyStopping in auto mode (maximized).
        K = kiln.keras
        model = K.Sequential([K.Input((3,)), K.layers.Dense(2)])
        model.compile("sgd", "mse", metrics=[K.metrics.R2Score(), K.metrics.PearsonCorrelation()])
        stop = K.callbacks.EarlyStopping(monitor="r2_score", patience=5)
        hist = model.fit(t[:, :3], p[:, :2], epochs=2, verbose=0, callbacks=[stop])
        self.assertEqual(sorted(hist.history), ["loss", "pearson_correlation", "r2_score"])

    def test_loss_function_metric_classes(self):
        yt = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
        yp = np.array([[0.5, 0.5], [1.0, 1.0]], np.float32)
        m = metrics.MeanAbsoluteError()
        self.assertEqual(m.name, "mean_absolute_error")
        m.update_state(yt, yp, sample_weight=[1.0, 3.0])
        self.assertAlmostEqual(float(m.result().numpy()), (0.5 + 3 * 1.0) / 4, places=6)
        cos = metrics.CosineSimilarity(axis=-1)
        cos.update_state([[1.0, 0.0]], [[2.0, 0.0]])
        self.assertAlmostEqual(float(cos.result().numpy()), 1.0, places=6)  # the loss is its negative
        x = metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent")
        self.assertEqual((x.name, x.get_config()["from_logits"], x.get_config()["axis"]), ("xent", True, -1))
        x.update_state([0], [[0.0, 0.0]])
        self.assertAlmostEqual(float(x.result().numpy()), np.log(2), places=6)
        self.assertEqual(metrics.LogCoshError().name, "logcosh")
        for cls in (metrics.MeanAbsolutePercentageError, metrics.MeanSquaredLogarithmicError, metrics.Poisson,
                    metrics.KLDivergence, metrics.Hinge, metrics.SquaredHinge, metrics.CategoricalHinge,
                    metrics.BinaryCrossentropy, metrics.CategoricalCrossentropy):
            back = metrics.deserialize(metrics.serialize(cls()))
            self.assertIsInstance(back, cls)
            self.assertEqual(back.get_config(), cls().get_config())
        self.assertIs(kiln.keras.metrics.Poisson, metrics.Poisson)
        # In compile, by class.
        model = kiln.Sequential([kiln.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", metrics=[metrics.MeanAbsoluteError(), "msle"])
        h = model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), epochs=1, verbose=0)
        self.assertEqual(sorted(h.history), ["loss", "mean_absolute_error", "msle"])

    def test_mean_metric_wrapper_of_a_python_function(self):
        def mae100(y_true, y_pred, scale=100.0):
            return kiln.reduce_mean(kiln.abs(y_true - y_pred) * scale, axis=-1)

        m = metrics.MeanMetricWrapper(mae100)
        self.assertEqual(m.name, "mae100")
        m.update_state(np.zeros((2, 1), np.float32), np.ones((2, 1), np.float32))
        self.assertAlmostEqual(float(m.result()), 100.0)  # the function's values, not a built-in's
        m.update_state(np.zeros((2, 1), np.float32), np.full((2, 1), 3, np.float32), sample_weight=[1.0, 3.0])
        self.assertAlmostEqual(float(m.result()), (100 + 100 + 300 + 900) / 6, places=4)
        m2 = metrics.MeanMetricWrapper(mae100, name="scaled", scale=1.0)
        m2.update_state(np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32))
        self.assertEqual((m2.name, float(m2.result())), ("scaled", 1.0))

        def fails(y_true, y_pred):
            raise KeyError("from the metric")

        with self.assertRaisesRegex(KeyError, "from the metric"):
            metrics.MeanMetricWrapper(fails).update_state([[0.0]], [[1.0]])

    def test_metric_functions(self):
        # Keras 3's metric functions: the values each metric averages (accuracy and binary_accuracy
        # per element, the others per sample); keras.metrics re-exports the loss functions.
        yt = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
        yp = np.array([[0.8, 0.6, 0.4], [0.1, 0.2, 0.9]], np.float32)
        np.testing.assert_array_equal(metrics.binary_accuracy(yt, yp).numpy(), (yt == (yp > 0.5)).astype(np.float32))
        np.testing.assert_array_equal(metrics.binary_accuracy(yt, yp, 0.3).numpy(),
                                      (yt == (yp > 0.3)).astype(np.float32))
        P2 = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], np.float32)  # no ties
        labels = np.array([2, 0])
        self.assertEqual(metrics.sparse_categorical_accuracy(labels, P2).numpy().tolist(),
                         (np.argmax(P2, -1) == labels).astype(float).tolist())
        onehot = np.eye(P2.shape[-1], dtype=np.float32)[labels]
        self.assertEqual(metrics.categorical_accuracy(onehot, P2).numpy().tolist(),
                         (np.argmax(P2, -1) == labels).astype(float).tolist())
        top2 = np.argsort(-P2, axis=-1)[:, :2]
        want = [float(l in row) for l, row in zip(labels, top2)]
        self.assertEqual(metrics.top_k_categorical_accuracy(onehot, P2, k=2).numpy().tolist(), want)
        self.assertEqual(metrics.sparse_top_k_categorical_accuracy(labels, P2, 2).numpy().tolist(), want)
        a = np.array([[1, 2, 4], [3, 1, 0]], np.float32)
        b = np.array([[2, 3, 9], [0, 1, 5]], np.float32)
        want = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
        np.testing.assert_allclose(metrics.pearson_correlation(a, b).numpy(), want, rtol=1e-5)
        np.testing.assert_allclose(metrics.concordance_correlation(a, a).numpy(), [1, 1], rtol=1e-5)
        a64, b64 = a.astype(np.float64) + 0.1, b.astype(np.float64) / 3
        r64 = metrics.pearson_correlation(a64, b64).numpy()  # Keras keeps y_pred's float64
        self.assertEqual(r64.dtype, np.float64)
        np.testing.assert_allclose(r64, [np.corrcoef(x, y)[0, 1] for x, y in zip(a64, b64)], rtol=1e-12)
        self.assertIs(metrics.mean_squared_error, losses.mean_squared_error)
        np.testing.assert_allclose(metrics.mean_squared_error(yt, yp).numpy(), np.mean((yt - yp) ** 2, -1), rtol=1e-6)
        # A metric function as a metric: the C class of that name (Keras: a MeanMetricWrapper).
        m = metrics.MeanMetricWrapper(metrics.binary_accuracy, threshold=0.3)
        self.assertEqual((m.class_name, m.name, m.get_config()["threshold"]), ("BinaryAccuracy", "binary_accuracy", 0.3))
        m.update_state(yt, yp)
        self.assertAlmostEqual(float(m.result()), float(np.mean(yt == (yp > 0.3))), places=6)
        self.assertEqual(metrics.get(metrics.sparse_top_k_categorical_accuracy).class_name,
                         "SparseTopKCategoricalAccuracy")
        with self.assertRaises(TypeError):
            metrics.binary_accuracy(yt, yp, thresh=0.3)
        with self.assertRaisesRegex(TypeError, "multiple values for argument 'threshold'"):
            metrics.binary_accuracy(yt, yp, 0.3, threshold=0.4)
        with self.assertRaises(kiln.InvalidArgumentError):
            metrics.categorical_accuracy(onehot, P2[:, :2])

    def test_metric_name_and_dtype_take_keras_positions(self):
        self.assertEqual(metrics.Mean("m").name, "m")
        self.assertEqual(metrics.BinaryAccuracy("b", None, 0.7).get_config()["threshold"], 0.7)
        self.assertEqual(metrics.TopKCategoricalAccuracy(3, "top3").name, "top3")
        self.assertEqual(metrics.Precision(None, None, None, "p").name, "p")
        self.assertEqual(metrics.AUC(100, "PR", "interpolation", "pr_auc").name, "pr_auc")
        with self.assertRaisesRegex(TypeError, "multiple values for argument 'name'"):
            metrics.F1Score("macro", 0.5, "x", name="y")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"it takes average, threshold, name, dtype$"):
            metrics.F1Score(foo=1)
        self.assertIsInstance(metrics.get("f1_score"), metrics.F1Score)  # Keras's snake_case names
        self.assertIsInstance(metrics.get("f_beta_score"), metrics.FBetaScore)

    def test_resolution_and_get(self):
        self.assertIsInstance(metrics.resolve("accuracy", "sparse_categorical_crossentropy", (None, 3), (None, 3)),
                              metrics.SparseCategoricalAccuracy)
        self.assertIsInstance(metrics.resolve("acc", None, (None,), (None, 3)), metrics.SparseCategoricalAccuracy)
        self.assertIsInstance(metrics.resolve("accuracy", None, (None, 3), (None, 3)), metrics.CategoricalAccuracy)
        self.assertIsInstance(metrics.resolve("accuracy", losses.BinaryCrossentropy(), (None, 3), (None, 3)),
                              metrics.BinaryAccuracy)
        ce = metrics.resolve("crossentropy", None, (None, 1), (None, 1))
        self.assertEqual(ce.get_config()["fn"], "BinaryCrossentropy")
        self.assertEqual(metrics.get("acc").name, "acc")
        self.assertIsInstance(metrics.get("AUC"), metrics.AUC)
        w = metrics.get(losses.MeanSquaredError())
        w.update_state([[0.0]], [[2.0]])
        self.assertAlmostEqual(float(w.result().numpy()), 4.0)
        back = metrics.deserialize(metrics.serialize(metrics.TopKCategoricalAccuracy(k=2, name="top2")))
        self.assertIsInstance(back, metrics.TopKCategoricalAccuracy)
        self.assertEqual(back.get_config(), {"name": "top2", "dtype": "float32", "k": 2})
        self.assertIs(kiln.keras.metrics, metrics)

    def test_errors(self):
        with self.assertRaises(kiln.NotFoundError) as cm:
            metrics.get("accuracyy")
        self.assertIn("known:", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError):
            metrics.SparseCategoricalAccuracy().update_state([0, 1, 2], P)
        with self.assertRaises(kiln.InvalidArgumentError):
            metrics.AUC(num_labels=2)  # only with multi_label, as Keras
        with self.assertRaises(kiln.InvalidArgumentError):
            metrics.AUC(multi_label=True, num_labels=3, label_weights=[1, 2])
        with self.assertRaises(kiln.InvalidArgumentError):
            metrics.AUC(multi_label=True).update_state([0, 1], [0.2, 0.8])  # rank 1
        with self.assertRaises(kiln.InvalidArgumentError):
            metrics.BinaryAccuracy(treshold=0.2)
        with self.assertRaisesRegex(TypeError, r"^kiln\.metrics\.Metric is the base class"):
            metrics.Metric()

        class Counter(metrics.Metric):  # Keras's custom metric class
            def __init__(self, name="counter", **kwargs):
                super().__init__(name=name, **kwargs)

        with self.assertRaisesRegex(kiln.UnimplementedError, r"^Counter: custom Python metric classes \(subclasses "
                                    r"of kiln\.metrics\.Metric\) are not supported; .*kiln\.metrics\.Mean"):
            Counter()

    def test_four_threads(self):
        m = metrics.SparseCategoricalAccuracy()
        errors = []

        def work():
            try:
                for _ in range(50):
                    m.update_state(Y, P)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(float(m.variables[1].numpy()), 400.0)
        self.assertAlmostEqual(float(m.result().numpy()), 0.5)


if __name__ == "__main__":
    unittest.main()
