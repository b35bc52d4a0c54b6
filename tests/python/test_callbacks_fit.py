"""Python callbacks inside fit (kiln_model_fit through ctypes, as kiln's Model.fit calls it): a
Callback subclass sees every epoch with self.model the user's model, a raising hook stops fit
with that exception before any update, LearningRateScheduler's Python function sets the rate,
EarlyStopping restores the best weights, and the progress bar reaches sys.stdout. With
kiln.Model.fit present (the Keras-level API), the same through model.fit."""
import contextlib
import ctypes
import io
import unittest

import numpy as np

import kiln
from kiln import _lib

L = _lib.lib


def problem(n=40):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    return x, y


def compiled_model(learning_rate=0.05):
    model = kiln.Sequential([kiln.layers.Dense(1)])
    model.build((None, 3))
    opt = kiln.optimizers.SGD(learning_rate=learning_rate)
    co = _lib.CompileOptions()
    kiln.layers._c(L.kiln_compile_options_init, ctypes.byref(co), ctypes.sizeof(co))
    co.optimizer = opt._h
    names = (ctypes.c_char_p * 1)(b"mse")
    co.loss_names = names
    co.num_loss_names = 1
    kiln.layers._c(L.kiln_model_compile, model._handle(), ctypes.byref(co))
    model._test_optimizer = opt
    return model


def fit(model, x, y, callbacks, epochs=3, verbose=0):
    """kiln_model_fit(x, y, batch_size=10, validation_split=0.25, shuffle=False)."""
    keep = [kiln.constant(x), kiln.constant(y)]
    xs = kiln.layers._to_list([keep[0]._h])
    ys = kiln.layers._to_list([keep[1]._h])
    try:
        fo = _lib.FitOptions()
        kiln.layers._c(L.kiln_fit_options_init, ctypes.byref(fo), ctypes.sizeof(fo))
        fo.x, fo.y = xs, ys
        fo.batch_size, fo.epochs, fo.verbose = 10, epochs, verbose
        fo.validation_split, fo.shuffle = 0.25, False
        hs = (ctypes.c_void_p * max(1, len(callbacks)))(*[cb._h for cb in callbacks])
        fo.callbacks, fo.num_callbacks = ctypes.cast(hs, ctypes.POINTER(ctypes.c_void_p)), len(callbacks)
        kiln.layers._c(L.kiln_model_fit, None, model._handle(), ctypes.byref(fo))
    finally:
        L.kiln_tensor_list_free(xs)
        L.kiln_tensor_list_free(ys)


def first_weight(model):
    return float(model.weights[0].numpy().flat[0])


class Recorder(kiln.callbacks.Callback):
    def __init__(self, stop_at=None, raise_at_batch=None):
        super().__init__()
        self.stop_at, self.raise_at_batch = stop_at, raise_at_batch
        self.epochs, self.models, self.rates, self.weights = [], [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.raise_at_batch:
            raise ZeroDivisionError("a bug in my callback")

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, sorted(logs)))
        self.models.append(self.model)
        self.rates.append(logs.get("learning_rate"))
        self.weights.append(first_weight(self.model))
        if epoch == self.stop_at:
            kiln.layers._c(L.kiln_model_set_stop_training, self.model._handle(), True)


class FitCallbacksTest(unittest.TestCase):
    def setUp(self):
        self.x, self.y = problem()

    def test_subclass_sees_every_epoch_and_the_users_model(self):
        model = compiled_model()
        r = Recorder()
        fit(model, self.x, self.y, [r], epochs=3)
        self.assertEqual(r.epochs, [(e, ["loss", "val_loss"]) for e in range(3)])
        self.assertTrue(all(m is model for m in r.models))
        self.assertEqual(r.params["epochs"], 3)
        stopper = Recorder(stop_at=1)
        fit(model, self.x, self.y, [stopper], epochs=5)
        self.assertEqual(len(stopper.epochs), 2)

    def test_hooks_share_one_logs_dict(self):
        class Writer(kiln.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs["epoch_x10"] = 10.0 * epoch
                del logs["val_loss"]

        class Reader(kiln.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seen = []

            def on_epoch_end(self, epoch, logs=None):
                self.seen.append(dict(logs))

        model = compiled_model()
        reader, history = Reader(), kiln.callbacks.History()
        fit(model, self.x, self.y, [Writer(), reader, history], epochs=2)
        self.assertEqual([sorted(s) for s in reader.seen], [["epoch_x10", "loss"]] * 2)
        self.assertEqual(history.history["epoch_x10"], [0.0, 10.0])
        self.assertNotIn("val_loss", history.history)

        class Bad(kiln.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs["note"] = "not a number"

        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"Bad.on_epoch_end: logs\['note'\] is 'not a number'"):
            fit(model, self.x, self.y, [Bad()], epochs=1)

    def test_every_hook_gets_a_dict(self):
        # Keras's CallbackList hands each hook a dict, {} where there is nothing to log, so a
        # begin hook may read and write it as any other.
        class Starter(kiln.callbacks.Callback):
            def on_train_begin(self, logs=None):
                logs["started"] = 1.0

        class Seer(kiln.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seen = {}

            def on_train_begin(self, logs=None):
                self.seen["on_train_begin"] = dict(logs)

            def on_epoch_begin(self, epoch, logs=None):
                self.seen["on_epoch_begin"] = logs.get("loss", "absent")

            def on_test_begin(self, logs=None):
                self.seen["on_test_begin"] = dict(logs)

            def on_predict_begin(self, logs=None):
                self.seen["on_predict_begin"] = dict(logs)

            def on_predict_end(self, logs=None):
                self.seen["on_predict_end"] = dict(logs)

        model = compiled_model()
        seer = Seer()
        fit(model, self.x, self.y, [Starter(), seer], epochs=1)
        model.evaluate(self.x, self.y, verbose=0, callbacks=[seer])
        model.predict(self.x, verbose=0, callbacks=[seer])
        self.assertEqual(seer.seen, {"on_train_begin": {"started": 1.0}, "on_epoch_begin": "absent",
                                     "on_test_begin": {}, "on_predict_begin": {}, "on_predict_end": {}})

    def test_the_trainers_own_logs_stay(self):
        # Keras hands the callbacks a copy: evaluate's result and the epoch's metrics are the
        # trainer's, whatever a hook writes.
        class Meddler(kiln.callbacks.Callback):
            def on_test_end(self, logs=None):
                logs["foo"] = 1.0
                del logs["loss"]

            def on_train_batch_end(self, batch, logs=None):
                logs["loss"] = 1e6

        K = kiln.keras
        model = K.Sequential([K.Input((3,)), K.layers.Dense(1)])
        model.compile("sgd", "mse")
        self.assertEqual(sorted(model.evaluate(self.x, self.y, verbose=0, return_dict=True,
                                               callbacks=[Meddler()])), ["loss"])
        hist = model.fit(self.x, self.y, epochs=1, verbose=0, validation_split=0.25, callbacks=[Meddler()])
        self.assertLess(hist.history["loss"][0], 1e6)
        self.assertIn("val_loss", hist.history)
        self.assertNotIn("val_foo", hist.history)

    def test_a_raising_hook_stops_fit_with_its_exception(self):
        model = compiled_model()
        before = [w.numpy().copy() for w in model.weights]
        self.assertEqual(len(before), 2)
        with self.assertRaisesRegex(ZeroDivisionError, "a bug in my callback"):
            fit(model, self.x, self.y, [Recorder(raise_at_batch=0)])
        for w, b in zip(model.weights, before):
            np.testing.assert_array_equal(w.numpy(), b)  # no step ran
        fit(model, self.x, self.y, [Recorder()], epochs=1)  # and the model still trains

    def test_learning_rate_scheduler(self):
        model = compiled_model()
        r = Recorder()
        fit(model, self.x, self.y, [kiln.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1)), r])
        np.testing.assert_allclose(r.rates, [0.1, 0.05, 0.1 / 3])
        old = Recorder()
        fit(model, self.x, self.y, [kiln.callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1)), old],
            epochs=2)
        np.testing.assert_allclose(old.rates, [0.01, 0.02])

        def bad(epoch, lr):
            raise RuntimeError("no rate today")
        with self.assertRaisesRegex(RuntimeError, "no rate today"):
            fit(model, self.x, self.y, [kiln.callbacks.LearningRateScheduler(bad)])
        with self.assertRaisesRegex(ValueError, "should be a float"):
            fit(model, self.x, self.y, [kiln.callbacks.LearningRateScheduler(lambda e, lr: "fast")])

    def test_early_stopping_restores_best_weights(self):
        model = compiled_model()
        r = Recorder()
        es = kiln.callbacks.EarlyStopping(min_delta=100, patience=1, restore_best_weights=True)
        fit(model, self.x, self.y, [r, es], epochs=6)
        self.assertEqual(len(r.epochs), 2)
        self.assertEqual(es.stopped_epoch, 1)
        self.assertNotEqual(r.weights[0], r.weights[1])
        self.assertEqual(first_weight(model), r.weights[0])

    def test_progress_bar_on_sys_stdout(self):
        model = compiled_model()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            fit(model, self.x, self.y, [], epochs=2, verbose=2)
        text = buf.getvalue()
        self.assertIn("Epoch 1/2", text)
        self.assertIn("Epoch 2/2", text)
        self.assertIn("val_loss:", text)


@unittest.skipUnless(hasattr(kiln.Model, "fit"), "kiln.Model.fit (the Keras-level fit) is not in this build")
class KerasFitTest(unittest.TestCase):
    def test_model_fit_with_callbacks(self):
        x, y = problem()
        model = kiln.Sequential([kiln.layers.Dense(1)])
        model.compile(optimizer=kiln.optimizers.SGD(learning_rate=0.05), loss="mse")

        class Stop(kiln.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                self.seen_model = self.model
                if epoch == 1:
                    self.model.stop_training = True

        stop = Stop()
        history = model.fit(x, y, epochs=5, batch_size=10, validation_split=0.25, verbose=0,
                            callbacks=[stop, kiln.callbacks.TerminateOnNaN()])
        self.assertEqual(len(history.history["loss"]), 2)
        self.assertIs(stop.seen_model, model)

        class Raises(kiln.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                raise KeyError("boom")

        with self.assertRaisesRegex(KeyError, "boom"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[Raises()])


if __name__ == "__main__":
    unittest.main()
