"""Keras's training API through the Python binding: compile / fit (validation_split,
validation_freq) / evaluate / predict with NumPy and kiln inputs, *_on_batch, fit on a Dataset, a
Model subclass overriding train_step (and an exception raised there), the seed's GradientTape loop
over a shuffled, batched Dataset with a Mean metric, and bad input."""
import os
import tempfile
import unittest

import numpy as np

import kiln

SAMPLES, FEATURES, CLASSES = 40, 4, 3


def problem(n=SAMPLES, seed=0):
    """A separable problem: the class is the index of the largest of the first three features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    return x, np.argmax(x[:, :CLASSES], axis=1).astype(np.int32)


def classifier():
    return kiln.Sequential([kiln.layers.Dense(16, activation="relu"), kiln.layers.Dense(CLASSES)])


def logits_loss():
    return kiln.losses.SparseCategoricalCrossentropy(from_logits=True)


class CompileFitTest(unittest.TestCase):
    def setUp(self):
        kiln.layers.clear_session()
        kiln.set_seed(1)

    def test_fit_with_validation_then_evaluate_and_predict(self):
        x, y = problem()
        model = classifier()
        self.assertIsNone(model.optimizer)
        self.assertEqual(model.metrics_names, [])
        opt = kiln.optimizers.Adam(learning_rate=0.02)
        model.compile(optimizer=opt, loss=logits_loss(), metrics=["accuracy"])
        self.assertIs(model.optimizer, opt)
        history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, validation_split=0.2, validation_freq=2)
        self.assertIs(model.history, history)
        h = history.history
        self.assertEqual(len(h["loss"]), 4)
        self.assertEqual(len(h["accuracy"]), 4)
        self.assertEqual(len(h["val_loss"]), 2)  # after epochs 2 and 4
        self.assertEqual(len(h["val_accuracy"]), 2)
        self.assertLess(h["loss"][-1], h["loss"][0])
        self.assertEqual(history.epoch, [0, 1, 2, 3])
        self.assertEqual(model.metrics_names, ["loss", "accuracy"])

        loss, acc = model.evaluate(x, y, verbose=0)
        self.assertTrue(0.0 <= acc <= 1.0)
        logs = model.evaluate(x, y, verbose=0, return_dict=True)
        self.assertEqual(list(logs), ["loss", "accuracy"])
        self.assertAlmostEqual(logs["loss"], loss, places=5)

        pred = model.predict(x, batch_size=16, verbose=0)
        self.assertIsInstance(pred, np.ndarray)
        self.assertEqual(pred.shape, (SAMPLES, CLASSES))
        np.testing.assert_allclose(pred, model(x).numpy(), rtol=1e-5, atol=1e-5)

    def test_mixed_metrics_keep_the_compile_order(self):
        # Keras: logs, metrics_names and evaluate's list follow compile(metrics=[...]) as written
        x, y = problem()
        model = classifier()
        model.compile(optimizer="sgd", loss=logits_loss(),
                      metrics=[kiln.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2"), "accuracy",
                               kiln.metrics.SparseCategoricalAccuracy(name="acc2"), "crossentropy"])
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_split=0.25)
        order = ["loss", "top2", "accuracy", "acc2", "crossentropy"]
        self.assertEqual(model.metrics_names, order)
        self.assertEqual(list(history.history), order + ["val_" + n for n in order])
        values = model.evaluate(x, y, verbose=0)
        self.assertEqual(list(model.evaluate(x, y, verbose=0, return_dict=True).values()), values)
        with tempfile.TemporaryDirectory() as d:  # the saved compile config keeps the order too
            path = os.path.join(d, "m")
            model.save(path)
            loaded = kiln.models.load_model(path)
            loaded.evaluate(x, y, verbose=0)
            self.assertEqual(loaded.metrics_names, order)

    def test_compiled_metrics_are_not_weighted(self):
        # Keras: compile(metrics=...) ignore sample_weight and class_weight (only the loss, and
        # Keras's weighted_metrics, see them)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((50, 4)).astype(np.float32)
        y = rng.integers(0, 3, 50)
        model = kiln.Sequential([kiln.layers.Dense(3)])
        model.compile(kiln.optimizers.SGD(0.0), logits_loss(), metrics=["accuracy"])
        model.build((None, 4))
        correct = model.predict(x, verbose=0).argmax(1) == y
        h = model.fit(x, y, class_weight={0: 1.0, 1: 2.0, 2: 0.5}, batch_size=50, verbose=0)
        self.assertAlmostEqual(h.history["accuracy"][0], correct.mean(), places=6)
        sw = np.zeros(50, np.float32)
        sw[:10] = 1.0
        r = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
        self.assertAlmostEqual(r["accuracy"], correct.mean(), places=6)
        plain = model.evaluate(x, y, verbose=0, return_dict=True)
        self.assertNotAlmostEqual(r["loss"], plain["loss"], places=4)  # the loss is weighted

    def test_weighted_metrics_see_sample_and_class_weights(self):
        # Keras's weighted_metrics: updated with sample_weight (class_weight folded in by fit); they
        # follow `metrics` in the logs, and one whose name is taken becomes "weighted_<name>".
        rng = np.random.default_rng(1)
        x = rng.standard_normal((50, 4)).astype(np.float32)
        y = rng.integers(0, 3, 50)
        model = kiln.Sequential([kiln.layers.Dense(3)])
        same_name = kiln.metrics.SparseCategoricalAccuracy(name="accuracy")
        model.compile(kiln.optimizers.SGD(0.0), logits_loss(), metrics=["accuracy"],
                      weighted_metrics=[same_name, kiln.metrics.SparseCategoricalAccuracy(name="wacc")])
        model.build((None, 4))
        correct = (model.predict(x, verbose=0).argmax(1) == y).astype(np.float64)
        sw = np.linspace(0.0, 2.0, 50).astype(np.float32)
        r = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
        self.assertEqual(list(r), ["loss", "accuracy", "weighted_accuracy", "wacc"])
        self.assertEqual(model.metrics_names, ["loss", "accuracy", "weighted_accuracy", "wacc"])
        self.assertAlmostEqual(r["accuracy"], correct.mean(), places=6)
        want = (correct * sw).sum() / sw.sum()
        self.assertGreater(abs(want - correct.mean()), 1e-3)  # the weights change the value
        self.assertAlmostEqual(r["weighted_accuracy"], want, places=5)
        self.assertAlmostEqual(r["wacc"], want, places=5)
        # Logged under another name, the object itself is the one updated, as Keras's.
        self.assertEqual(same_name.name, "accuracy")
        self.assertAlmostEqual(float(same_name.result()), want, places=5)
        cw = {0: 1.0, 1: 2.0, 2: 0.5}
        h = model.fit(x, y, class_weight=cw, batch_size=50, verbose=0)
        w = np.array([cw[int(c)] for c in y])
        self.assertAlmostEqual(h.history["accuracy"][0], correct.mean(), places=6)
        self.assertAlmostEqual(h.history["weighted_accuracy"][0], (correct * w).sum() / w.sum(), places=5)
        plain = model.evaluate(x, y, verbose=0, return_dict=True)  # no weights: all metrics agree
        self.assertAlmostEqual(plain["weighted_accuracy"], correct.mean(), places=6)
        with tempfile.TemporaryDirectory() as d:  # the saved compile config keeps them weighted
            path = os.path.join(d, "m")
            model.save(path)
            loaded = kiln.models.load_model(path)
            again = loaded.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
            self.assertEqual(list(again), list(r))
            self.assertAlmostEqual(again["weighted_accuracy"], want, places=5)

    def test_validation_freq_list_names_epochs(self):
        x, y = problem()
        model = classifier()
        model.compile("adam", "sparse_categorical_crossentropy")
        h = model.fit(x, y, epochs=3, verbose=0, validation_data=(x[:8], y[:8]), validation_freq=[1, 3]).history
        self.assertEqual(len(h["val_loss"]), 2)
        # Keras: a list names epochs even with one entry ([2]: only after epoch 2).
        h = model.fit(x, y, epochs=3, verbose=0, validation_data=(x[:8], y[:8]), validation_freq=[2]).history
        self.assertEqual(len(h["val_loss"]), 1)

    def test_kiln_tensors_sample_weight_and_class_weight(self):
        x, y = problem(24)
        model = classifier()
        model.compile(optimizer=kiln.optimizers.SGD(0.05), loss=logits_loss(),
                      metrics=[kiln.metrics.SparseCategoricalAccuracy(name="acc")])
        h = model.fit(kiln.constant(x), kiln.constant(y), epochs=2, verbose=0, shuffle=False,
                      class_weight={0: 2.0, 2: 0.5}, validation_data=(x, y, np.ones(24, np.float32))).history
        self.assertEqual(len(h["acc"]), 2)
        self.assertEqual(len(h["val_acc"]), 2)
        model.fit(kiln.constant(x), kiln.constant(y), verbose=0, sample_weight=np.ones(24, np.float32))
        # Keras 3 refuses the two together, in fit (arrays or a dataset of weights) and train_on_batch.
        both = {"sample_weight": np.ones(24, np.float32), "class_weight": {0: 2.0}}
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "class_weight and sample_weight"):
            model.fit(x, y, verbose=0, **both)
        ds = kiln.data.Dataset.from_tensor_slices((x, y, np.ones(24, np.float32))).batch(8)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "class_weight and sample_weight"):
            model.fit(ds, verbose=0, class_weight={0: 2.0})
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "class_weight and sample_weight"):
            model.train_on_batch(x, y, **both)

    def test_sequential_on_batch_and_properties(self):
        model = kiln.Sequential([kiln.layers.Dense(1)])
        model.compile("sgd", "mse")
        self.assertIsInstance(model.optimizer, kiln.optimizers.SGD)
        x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(16, 2)
        y = x @ np.array([[1.0], [-2.0]], np.float32)
        before = model.evaluate(x, y, verbose=0)
        self.assertIsInstance(before, float)  # only the loss: a float, as Keras
        model.fit(x, y, epochs=3, batch_size=4, verbose=0)
        self.assertLess(model.evaluate(x, y, verbose=0), before)
        self.assertIsInstance(model.train_on_batch(x, y), float)
        self.assertEqual(list(model.test_on_batch(x, y, sample_weight=np.ones(16, np.float32), return_dict=True)),
                         ["loss"])
        self.assertEqual(model.predict_on_batch(x).shape, (16, 1))
        self.assertFalse(model.stop_training)
        model.stop_training = True
        self.assertTrue(model.stop_training)
        model.stop_training = False
        self.assertTrue(hasattr(kiln.keras.Model, "fit"))

    def test_fit_on_dataset(self):
        x, y = problem()
        ds = kiln.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=7).batch(10)
        model = classifier()
        model.compile("adam", logits_loss(), ["accuracy"])
        h = model.fit(ds, epochs=3, verbose=0, validation_data=ds.take(1)).history
        self.assertEqual(len(h["loss"]), 3)
        self.assertLess(h["loss"][-1], h["loss"][0])
        self.assertEqual(len(h["val_accuracy"]), 3)
        self.assertIn("accuracy", model.evaluate(ds, verbose=0, return_dict=True))
        pred = model.predict(ds, verbose=0)  # the x of (x, y) elements
        self.assertEqual(pred.shape, (SAMPLES, CLASSES))
        x_only = model.predict(kiln.data.Dataset.from_tensor_slices(x).batch(16), verbose=0)
        self.assertEqual(x_only.shape, (SAMPLES, CLASSES))
        # An endless dataset with steps_per_epoch; initial_epoch numbers the epochs on.
        history = model.fit(ds.repeat(), steps_per_epoch=2, initial_epoch=1, epochs=3, verbose=0)
        self.assertEqual(history.epoch, [1, 2])
        self.assertEqual(int(model.optimizer.iterations.numpy()), 4 * 3 + 2 * 2)

    def test_steps_per_epoch_go_on_through_a_pass_then_start_anew(self):
        # Keras 3's EpochIterator: one pass serves epochs until it ends; the epoch reaching the end
        # stops short, the next starts a new pass, and training goes on, for data of known or unknown
        # size (the probe's three batches, two steps per epoch: [0, 1], [2], [0, 1]).
        x, y = problem(12)
        marks = np.repeat(np.arange(3, dtype=np.float32), 4)  # batch b's rows hold b
        seen = []

        class Marks(kiln.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                seen.append([])

        class Recording(CountingModel):
            def train_step(self, data):
                seen[-1].append(int(data[0].numpy()[0, 0]))
                return super().train_step(data)
        known = kiln.data.Dataset.from_tensor_slices((np.tile(marks[:, None], (1, x.shape[1])), y)).batch(4)
        unknown = known.filter(lambda a, b: True)
        for ds in (known, unknown):
            del seen[:]
            model = Recording()
            model.compile(optimizer="sgd", loss=logits_loss())
            h = model.fit(ds, epochs=4, steps_per_epoch=2, verbose=0, callbacks=[Marks()])
            self.assertEqual(seen, [[0, 1], [2], [0, 1], [2]])
            self.assertEqual(h.epoch, [0, 1, 2, 3])

    def test_calls_overlapping_fit_from_another_thread_are_refused(self):
        # fit / evaluate / train_on_batch / test_on_batch of a model in fit on another thread:
        # FailedPreconditionError naming both; predict runs beside it, and the fit's own thread may
        # evaluate (a callback's nested call).
        import threading
        x, y = problem()
        model = classifier()
        model.compile("sgd", logits_loss())
        errors, shapes, nested = [], [], []

        class Overlap(kiln.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch != 1:
                    return

                def other():
                    for call in (lambda: model.evaluate(x, y, verbose=0), lambda: model.train_on_batch(x, y),
                                 lambda: model.test_on_batch(x, y), lambda: model.fit(x, y, verbose=0),
                                 lambda: model.compile("adam", logits_loss())):
                        try:
                            call()
                        except kiln.errors.FailedPreconditionError as e:
                            errors.append(str(e))
                    shapes.append(model.predict(x, verbose=0).shape)
                t = threading.Thread(target=other)
                t.start()
                t.join()
                nested.append(model.evaluate(x, y, verbose=0))
        model.fit(x, y, batch_size=16, verbose=0, callbacks=[Overlap()])
        self.assertEqual(len(errors), 5, errors)
        for e in errors:
            self.assertIn("is in fit on another thread", e)
        self.assertEqual(shapes, [(SAMPLES, CLASSES)])
        self.assertEqual(len(nested), 1)
        model.evaluate(x, y, verbose=0)  # free again

    def test_steps_without_batch_size_divide_the_samples(self):
        # Keras's ArrayDataAdapter: batch_size None with steps given is ceil(samples / steps).
        x, y = problem(10)
        sizes = []

        class Sizes(CountingModel):
            def train_step(self, data):
                sizes.append(data[0].shape[0])
                return super().train_step(data)
        model = Sizes()
        model.compile(optimizer="sgd", loss=logits_loss())
        model.fit(x, y, steps_per_epoch=2, epochs=1, verbose=0)
        self.assertEqual(sizes, [5, 5])
        del sizes[:]
        model.fit(x, y, steps_per_epoch=3, epochs=1, verbose=0)
        self.assertEqual(sizes, [4, 4, 2])
        self.assertEqual(model.predict(x, steps=2, verbose=0).shape, (10, CLASSES))
        test_before = model.test_steps
        model.evaluate(x, y, steps=5, verbose=0)
        self.assertEqual(model.test_steps - test_before, 5)  # five batches of 2 (32 would make one)
        del sizes[:]
        model.fit(x, y, epochs=1, verbose=0, validation_split=0.2, validation_steps=2)
        self.assertEqual(sizes, [8])  # None alone: batches of 32 (the 8 training samples in one)


class TwoInputs(kiln.Model):
    """A model subclass with two inputs and Keras's default steps."""

    def __init__(self):
        super().__init__()
        self.a = kiln.layers.Dense(8, activation="relu")
        self.b = kiln.layers.Dense(CLASSES)

    def call(self, inputs):
        left, right = inputs
        return self.b(self.a(left) + self.a(right))


class TwoOutputs(kiln.Model):
    """A model subclass with two outputs: class scores and a regression value."""

    def __init__(self):
        super().__init__()
        self.scores = kiln.layers.Dense(CLASSES)
        self.value = kiln.layers.Dense(1)

    def call(self, x):
        return [self.scores(x), self.value(x)]


class CountingModel(kiln.Model):
    """Keras's custom train_step: its own step body with compute_loss / compute_metrics."""

    def __init__(self):
        super().__init__()
        self.dense = kiln.layers.Dense(CLASSES)
        self.train_steps = self.test_steps = 0
        self.fail_with = None

    def call(self, x, training=None):
        return self.dense(x)

    def train_step(self, data):
        self.train_steps += 1
        if self.fail_with is not None:
            raise self.fail_with
        x, y = data
        with kiln.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        logs = self.compute_metrics(x, y, y_pred)
        logs["steps"] = self.train_steps
        return logs

    def test_step(self, data):
        self.test_steps += 1
        return super().test_step(data)


class OneDense(kiln.Model):
    """A subclassed model of one Dense(1), for custom steps."""

    def __init__(self):
        super().__init__()
        self.d = kiln.layers.Dense(1)

    def call(self, x):
        return self.d(x)


class CustomStepTest(unittest.TestCase):
    def setUp(self):
        kiln.layers.clear_session()
        kiln.set_seed(2)

    def test_train_step_override(self):
        x, y = problem(32)
        model = CountingModel()
        model.compile(kiln.optimizers.Adam(0.05), logits_loss(), ["accuracy"])
        h = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.25).history
        self.assertEqual(model.train_steps, 6)  # 24 samples in batches of 8, two epochs
        self.assertEqual(model.test_steps, 2)   # the validation pass of each epoch
        self.assertEqual(h["steps"][-1], 6.0)
        self.assertEqual(len(h["val_loss"]), 2)
        self.assertEqual(model.train_on_batch(x, y, return_dict=True)["steps"], 7.0)

    def test_train_step_over_self_metrics(self):
        # Keras's custom-fit guide: `for metric in self.metrics` in train_step, with the compiled
        # loss tracker and compile_metrics; then with the model's own trackers in a `metrics` property.
        class GuideModel(OneDense):
            def train_step(self, data):
                x, y = data
                with kiln.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                for metric in self.metrics:
                    if metric.name == "loss":
                        metric.update_state(loss)
                    else:
                        metric.update_state(y, y_pred)
                return {m.name: m.result() for m in self.metrics}

        rng = np.random.default_rng(1)
        x, y = rng.random((32, 3), np.float32), rng.random((32, 1), np.float32)
        m = GuideModel()
        self.assertEqual(m.metrics, [])
        m.compile(kiln.optimizers.SGD(0.0), "mse", metrics=["mae"])  # lr 0: the weights stay
        self.assertEqual([x.name for x in m.metrics], ["loss", "compile_metrics"])
        h = m.fit(x, y, epochs=2, batch_size=8, verbose=0).history
        pred = m.predict(x, verbose=0)
        self.assertAlmostEqual(h["mae"][-1], float(np.mean(np.abs(pred - y))), places=5)
        self.assertAlmostEqual(h["loss"][-1], float(np.mean((pred - y) ** 2)), places=5)

        class OwnTrackers(GuideModel):
            def __init__(self):
                super().__init__()
                self.loss_tracker = kiln.metrics.Mean(name="loss")
                self.mae_metric = kiln.metrics.MeanAbsoluteError(name="mae")

            def train_step(self, data):
                x, y = data
                y_pred = self(x, training=True)
                self.loss_tracker.update_state(kiln.reduce_mean(kiln.square(y - y_pred)))
                self.mae_metric.update_state(y, y_pred)
                return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

            @property
            def metrics(self):
                return [self.loss_tracker, self.mae_metric]

        o = OwnTrackers()
        o.compile(kiln.optimizers.SGD(0.0))
        h = o.fit(x, y, epochs=2, batch_size=8, verbose=0).history
        pred = o.predict(x, verbose=0)
        # Reset at each epoch as Keras resets them: each epoch's mean is over its own 4 batches.
        self.assertAlmostEqual(h["mae"][0], h["mae"][1], places=6)
        self.assertAlmostEqual(h["mae"][1], float(np.mean(np.abs(pred - y))), places=5)
        self.assertEqual(float(o.loss_tracker.variables[1].numpy()), 4.0)  # the count of the last epoch
        o.reset_metrics()
        self.assertEqual(float(o.mae_metric.result()), 0.0)

    def test_a_step_that_logs_its_own_loss(self):
        # A train_step / test_step that returns {"loss": ...} without compute_loss: fit's epoch
        # logs and evaluate report that loss (tf.keras 2), not the unused loss tracker's 0.
        class OwnLoss(OneDense):
            def train_step(self, data):
                return {"loss": kiln.constant(2.5)}

            def test_step(self, data):
                return {"loss": 1.25}

        x, y = problem(8)
        model = OwnLoss()
        model.compile(kiln.optimizers.SGD(0.0), "mse")
        h = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y)).history
        self.assertEqual(h["loss"], [2.5, 2.5])
        self.assertEqual(h["val_loss"], [1.25, 1.25])
        self.assertEqual(model.evaluate(x, y, verbose=0, return_dict=True), {"loss": 1.25})

    def test_exception_in_train_step_propagates(self):
        class Boom(Exception):
            pass

        x, y = problem(16)
        model = CountingModel()
        model.compile("adam", logits_loss())
        model.fail_with = Boom("from train_step")
        with self.assertRaises(Boom) as ctx:
            model.fit(x, y, epochs=1, verbose=0)
        self.assertIs(ctx.exception, model.fail_with)
        model.fail_with = None
        self.assertEqual(len(model.fit(x, y, epochs=1, verbose=0).history["loss"]), 1)  # still usable

    def test_exception_in_call_during_fit_propagates(self):
        class Broken(kiln.Model):
            def __init__(self):
                super().__init__()
                self.dense = kiln.layers.Dense(CLASSES)

            def call(self, x):
                if x.shape[0] == 3:
                    raise KeyError("a batch of 3")
                return self.dense(x)

        x, y = problem(11)
        model = Broken()
        model.compile("sgd", logits_loss())
        with self.assertRaises(KeyError):
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)  # the last batch has 3

    def test_default_steps_with_two_inputs(self):
        x, y = problem()
        model = TwoInputs()
        model.compile("adam", logits_loss(), ["accuracy"])
        h = model.fit([x, x * 0.5], y, batch_size=10, epochs=3, verbose=0).history
        self.assertLess(h["loss"][-1], h["loss"][0])
        self.assertEqual(model.predict([x, x], verbose=0).shape, (SAMPLES, CLASSES))

    def test_two_outputs_with_a_loss_each(self):
        x, y = problem()
        target = x[:, :1] * 2.0
        model = TwoOutputs()
        model.compile("adam", loss=[logits_loss(), "mse"], loss_weights=[1.0, 0.5])
        h = model.fit(x, [y, target], batch_size=10, epochs=2, verbose=0).history
        self.assertEqual(len(h["loss"]), 2)
        # Keras's individual loss trackers: each output's loss before its weight, after the metrics.
        self.assertEqual(list(h), ["loss", "output_1_loss", "output_2_loss"])
        r = model.evaluate(x, [y, target], verbose=0, return_dict=True)
        scores, value = model.predict(x, verbose=0)
        shifted = scores - scores.max(axis=1, keepdims=True)
        ce = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y])
        mse = np.mean((value - target) ** 2)
        self.assertAlmostEqual(r["output_1_loss"], ce, places=4)
        self.assertAlmostEqual(r["output_2_loss"], mse, places=4)
        self.assertAlmostEqual(r["loss"], ce + 0.5 * mse, places=4)
        scores, value = model.predict(x, verbose=0)
        self.assertEqual((scores.shape, value.shape), ((SAMPLES, CLASSES), (SAMPLES, 1)))
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(x, y, verbose=0)  # one y for two outputs

    def test_gradient_tape_loop_over_dataset_with_mean_metric(self):
        x, y = problem()
        model = classifier()
        opt = kiln.optimizers.Adam(learning_rate=0.02)
        loss_fn = logits_loss()
        train_loss = kiln.metrics.Mean(name="train_loss")
        ds = kiln.data.Dataset.from_tensor_slices((x, y)).shuffle(SAMPLES, seed=3).batch(8)
        losses = []
        for _ in range(3):
            train_loss.reset_state()
            for xb, yb in ds:
                with kiln.GradientTape() as tape:
                    loss = loss_fn(yb, model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                opt.apply_gradients(zip(grads, model.trainable_variables))
                train_loss.update_state(loss)
            losses.append(float(train_loss.result()))
        self.assertLess(losses[-1], losses[0])
        self.assertEqual(int(opt.iterations.numpy()), 15)


class AutoEncoder(kiln.Model):
    """Adds its reconstruction error with add_loss, so it trains by fit(x) without y; records the
    data its steps see."""

    def __init__(self):
        super().__init__()
        self.encode = kiln.layers.Dense(2, activation="tanh")
        self.decode = kiln.layers.Dense(FEATURES)
        self.seen = []

    def call(self, x):
        out = self.decode(self.encode(x))
        self.add_loss(kiln.reduce_mean(kiln.square(out - x)))
        return out


class WatchingAutoEncoder(AutoEncoder):
    def train_step(self, data):
        self.seen.append(data)
        return super().train_step(data)


class WithoutTargetsTest(unittest.TestCase):
    """Keras's fit(x) / evaluate(x) / train_on_batch(x) without y."""

    def setUp(self):
        kiln.layers.clear_session()
        kiln.set_seed(3)

    @staticmethod
    def reconstruction(model, x):
        return float(np.mean(np.square(model.predict(x, verbose=0) - x)))

    def test_autoencoder_trains_on_its_add_loss(self):
        x, _ = problem()
        model = AutoEncoder()
        model.compile(optimizer=kiln.optimizers.Adam(0.05))
        h = model.fit(x, epochs=5, batch_size=8, verbose=0, validation_data=(x[:10],)).history
        self.assertEqual(len(h["loss"]), 5)
        self.assertLess(h["loss"][-1], h["loss"][0])
        self.assertEqual(len(h["val_loss"]), 5)
        self.assertAlmostEqual(model.evaluate(x, batch_size=SAMPLES, verbose=0), self.reconstruction(model, x),
                               places=5)
        self.assertAlmostEqual(model.test_on_batch(x), self.reconstruction(model, x), places=5)
        before = self.reconstruction(model, x)
        model.fit(kiln.data.Dataset.from_tensor_slices(x).batch(10), epochs=3, verbose=0)
        for _ in range(3):
            self.assertIsInstance(model.train_on_batch(x), float)
        self.assertLess(self.reconstruction(model, x), before)

    def test_the_steps_see_x_as_keras_packs_it(self):
        x, _ = problem()
        model = WatchingAutoEncoder()
        model.compile(optimizer="adam")
        model.fit(x, batch_size=SAMPLES, shuffle=False, verbose=0)  # x alone, not (x,)
        model.fit(kiln.data.Dataset.from_tensor_slices(x).batch(SAMPLES), verbose=0)
        model.train_on_batch(x)
        w = np.ones(SAMPLES, np.float32)
        model.fit(x, sample_weight=w, batch_size=SAMPLES, shuffle=False, verbose=0)  # Keras drops the weight
        self.assertEqual(len(model.seen), 4)
        for data in model.seen:
            self.assertNotIsInstance(data, tuple)
            np.testing.assert_allclose(np.asarray(data), x)

    def test_validation_steps_see_the_validation_layout(self):
        x, y = problem()
        seen = []

        class Watching(TwoInputs):
            def train_step(self, data):
                seen.append(("train", data))
                x_, y_ = data
                return super().train_step(([x_["a"], x_["b"]], y_))

            def test_step(self, data):
                seen.append(("test", data))
                return super().test_step(data)

        model = Watching()
        model.compile("adam", logits_loss())
        # Training elements ({"a": x, "b": x}, y) and validation data ([x, x], y): three tensors each,
        # in two structures; each step gets its own.
        train = kiln.data.Dataset.from_tensor_slices(({"a": x, "b": x}, y)).batch(SAMPLES)
        model.fit(train, validation_data=([x, x], y), verbose=0)
        self.assertEqual([kind for kind, _ in seen], ["train", "test", "test"])  # validation in batches of 32
        (tx, ty), (vx, vy) = seen[0][1], seen[1][1]
        self.assertIsInstance(tx, dict)
        self.assertIsInstance(vx, tuple)
        np.testing.assert_array_equal(np.asarray(vy), y[:32])

    def test_two_inputs_without_y(self):
        x, _ = problem()

        class TwoInputAutoEncoder(TwoInputs):
            def call(self, inputs):
                out = super().call(inputs)
                self.add_loss(kiln.reduce_mean(kiln.square(out)))
                return out

        model = TwoInputAutoEncoder()
        model.compile(optimizer=kiln.optimizers.SGD(0.1))
        h = model.fit([x, x * 0.5], batch_size=10, epochs=3, verbose=0).history
        self.assertLess(h["loss"][-1], h["loss"][0])

    def test_what_needs_y_says_so(self):
        x, y = problem()
        model = classifier()
        model.compile("adam", logits_loss())
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError,
                                    "fit: no y given, but the compiled loss 'sparse_categorical_crossentropy'"):
            model.fit(x, verbose=0)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "no y given"):
            model.evaluate(x, verbose=0)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "no y given"):
            model.train_on_batch(x)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "no y given"):
            model.fit(kiln.data.Dataset.from_tensor_slices(x).batch(8), verbose=0)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "no y given"):
            model.fit(x, y, validation_data=(x,), verbose=0)
        auto = AutoEncoder()
        auto.compile("adam")
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "class_weight needs y"):
            auto.fit(x, class_weight={0: 1.0, 1: 2.0}, verbose=0)
        auto.compile("adam", metrics=["mae"])
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "compiled metric"):
            auto.fit(x, verbose=0)


class BadInputTest(unittest.TestCase):
    def test_errors(self):
        x, y = problem(10)
        model = classifier()
        with self.assertRaises(kiln.errors.FailedPreconditionError):
            model.fit(x, y, verbose=0)
        with self.assertRaises(kiln.errors.NotFoundError):
            model.compile("adam", "no_such_loss")
        with self.assertRaises(kiln.errors.NotFoundError):
            model.compile("no_such_optimizer", "mse")
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.compile("adam", {"out": "mse"})
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "is not a loss"):
            model.compile("adam", 3.5)
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "cannot interpret 3.5 as a metric"):
            model.compile("adam", "mse", metrics=[3.5])
        model.compile("adam", logits_loss())
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(x, y[:3], verbose=0)
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(x, y, verbose=0, validation_split=1.5)
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(x, y, verbose="loud")
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(x, y, verbose=0, class_weight={-1: 1.0})
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(kiln.data.Dataset.from_tensor_slices((x, y)).batch(4), y, verbose=0)
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            model.fit(x, y, verbose=0, callbacks=["not a callback"])


if __name__ == "__main__":
    unittest.main()
