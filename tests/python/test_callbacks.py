"""Callbacks through the Python binding: the built-in classes with Keras's arguments (their hooks
run by hand, as calling a Keras callback's hooks does), Callback subclasses called from C with
self.model set and exceptions carried back, LambdaCallback, LearningRateScheduler's function,
progress text on sys.stdout and warnings through the warnings module."""
import contextlib
import io
import math
import os
import tempfile
import unittest
import warnings

import kiln
from kiln import _lib

L = _lib.lib


def dense_model():
    m = kiln.layers.Dense(2)
    m.build((None, 3))
    return m


def run_hook(cb, hook, index=0, logs=None):
    """Runs a hook through C (kiln_callback_call_hook), as fit does."""
    with kiln.callbacks._logs_to_c(logs) as c:
        kiln.layers._c(L.kiln_callback_call_hook, cb._h, hook.encode(), index, c)


class CallbacksTest(unittest.TestCase):
    def test_history(self):
        h = kiln.callbacks.History()
        self.assertEqual(h.class_name, "History")
        self.assertIs(kiln.keras.callbacks.History, kiln.callbacks.History)
        self.assertIn("History", repr(h))

    def test_history_record(self):
        h = kiln.callbacks.History()
        self.assertEqual(h.history, {})
        self.assertEqual(h.epoch, [])

    def test_errors(self):
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            kiln.callbacks.History(patience=3)
        with self.assertRaises(TypeError):
            kiln.callbacks.Callback(3)

    def test_builtins_take_keras_arguments(self):
        es = kiln.callbacks.EarlyStopping(monitor="val_accuracy", patience=3, baseline=None, restore_best_weights=True)
        self.assertEqual((es.class_name, es.monitor, es.patience, es.min_delta), ("EarlyStopping", "val_accuracy", 3, 0))
        self.assertEqual((es.stopped_epoch, es.wait, es.best), (0, 0, None))
        rl = kiln.callbacks.ReduceLROnPlateau("loss", 0.5, cooldown=2)
        self.assertEqual((rl.monitor, rl.factor, rl.patience, rl.cooldown, rl.min_lr), ("loss", 0.5, 10, 2, 0.0))
        self.assertEqual(kiln.callbacks.TerminateOnNaN().class_name, "TerminateOnNaN")
        self.assertEqual(kiln.callbacks.ProgbarLogger().class_name, "ProgbarLogger")
        for name in ("EarlyStopping", "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN", "LambdaCallback",
                     "LearningRateScheduler", "ProgbarLogger", "Callback"):
            self.assertIs(getattr(kiln.keras.callbacks, name), getattr(kiln.callbacks, name))
        with self.assertRaises(kiln.errors.InvalidArgumentError) as cm:
            kiln.callbacks.EarlyStopping(patiense=3)
        self.assertIn("patiense", str(cm.exception))
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "mode='max'"):
            kiln.callbacks.EarlyStopping(monitor="my_score")
        with self.assertRaisesRegex(kiln.errors.InvalidArgumentError, "factor"):
            kiln.callbacks.ReduceLROnPlateau(factor=1.5)

    def test_early_stopping_hooks_stop_and_restore(self):
        model = dense_model()
        es = kiln.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
        es.set_model(model)
        es.on_train_begin()
        for epoch, val_loss in enumerate([0.9, 0.3, 0.5, 0.4]):
            for v in model.weights:
                v.assign(kiln.ops.ones(v.shape) * float(epoch))
            es.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
            if es.stopped_epoch:
                break
        es.on_train_end()
        self.assertEqual((es.stopped_epoch, es.best_epoch, es.best), (2, 1, 0.3))
        self.assertEqual(float(model.weights[0].numpy().flat[0]), 1.0)

    def test_missing_monitor_warns(self):
        es = kiln.callbacks.EarlyStopping()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            es.on_epoch_end(0, {"loss": 1.0})
        self.assertTrue(any("`val_loss` which is not available" in str(w.message) for w in caught), caught)

    def test_csv_logger(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "log.csv")
            cb = kiln.callbacks.CSVLogger(path, separator=";")
            cb.on_train_begin()
            cb.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.75})
            cb.on_train_end()
            with open(path, newline="") as f:
                self.assertEqual(f.read(), "epoch;loss;val_loss\r\n0;0.5;0.75\r\n")
        with self.assertRaises(TypeError):
            kiln.callbacks.CSVLogger()

    def test_terminate_on_nan(self):
        cb = kiln.callbacks.TerminateOnNaN(raise_error=True)
        cb.on_train_batch_end(0, {"loss": 0.5})
        with self.assertRaisesRegex(kiln.errors.FailedPreconditionError, "batch 3"):
            cb.on_train_batch_end(3, {"loss": math.nan})
        with self.assertRaisesRegex(RuntimeError, "NaN or Inf loss encountered at batch 4"):  # as Keras's
            cb.on_train_batch_end(4, {"loss": math.inf})

    def test_swap_ema_weights_evaluates_on_the_averages_and_gives_the_weights_back(self):
        import numpy as np
        kiln.set_seed(3)
        rng = np.random.RandomState(0)
        x = rng.normal(size=(64, 4)).astype(np.float32)
        y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)).astype(np.float32)
        model = kiln.keras.Sequential([kiln.layers.Input((4,)), kiln.layers.Dense(1)])
        model.compile(optimizer=kiln.keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.9), loss="mse")
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_data=(x, y),
                  callbacks=[kiln.callbacks.SwapEMAWeights(swap_on_epoch=True)])
        for _ in range(3):  # train_on_batch does not finalize: the weights move off their averages
            model.train_on_batch(x, y)
        raw = [w.numpy().copy() for w in model.trainable_weights]
        plain = model.evaluate(x, y, verbose=0)
        swapped = model.evaluate(x, y, verbose=0, callbacks=[kiln.callbacks.SwapEMAWeights()])
        self.assertNotAlmostEqual(plain, swapped, places=6)
        for before, after in zip(raw, model.trainable_weights):
            np.testing.assert_array_equal(after.numpy(), before)  # given back after the evaluation
        self.assertEqual(model.evaluate(x, y, verbose=0), plain)
        model.compile(optimizer="sgd", loss="mse")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "use_ema=True"):
            model.evaluate(x, y, verbose=0, callbacks=[kiln.callbacks.SwapEMAWeights()])

    def test_reduce_lr_on_plateau_needs_a_compiled_model(self):
        cb = kiln.callbacks.ReduceLROnPlateau()
        cb.set_model(dense_model())
        with self.assertRaisesRegex(kiln.errors.FailedPreconditionError, "compile"):
            cb.on_epoch_end(0, {"val_loss": 1.0})


class Recorder(kiln.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.seen.append(("train_begin", logs))

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 9:
            raise KeyError("epoch nine")
        self.seen.append(("epoch_end", epoch, dict(logs), self.model))

    def on_batch_end(self, batch, logs=None):  # Keras's TF1 name of on_train_batch_end
        self.seen.append(("batch_end", batch))


class NoInit(kiln.callbacks.Callback):
    def __init__(self):  # forgets super().__init__(), which Keras tolerates too
        self.count = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.count += 1


class SubclassTest(unittest.TestCase):
    def test_hooks_model_and_aliases(self):
        r = Recorder()
        self.assertEqual(r.class_name, "Recorder")
        self.assertEqual(r.params, {"verbose": 1, "epochs": 1, "steps": -1})
        model = dense_model()
        L.kiln_callback_set_model(r._h, model._handle())
        run_hook(r, "on_train_begin")
        run_hook(r, "on_epoch_end", 2, {"loss": 0.25})
        run_hook(r, "on_train_batch_end", 4, {"loss": 0.5})
        run_hook(r, "on_test_begin")  # not overridden: nothing
        self.assertEqual(r.seen[0], ("train_begin", {}))  # NULL logs reach the hook as Keras's {}
        self.assertEqual(r.seen[1][:3], ("epoch_end", 2, {"loss": 0.25}))
        self.assertIs(r.seen[1][3], model)  # the user's own Python object
        self.assertEqual(r.seen[2], ("batch_end", 4))

    def test_exception_in_a_hook_comes_back(self):
        r = Recorder()
        with self.assertRaisesRegex(KeyError, "epoch nine"):
            run_hook(r, "on_epoch_end", 9, {"loss": 1.0})
        # the C status names the class and the hook
        with kiln.callbacks._logs_to_c({"loss": 1.0}) as c:
            st = L.kiln_callback_call_hook(r._h, b"on_epoch_end", 9, c)
        msg = L.kiln_status_get_message(st).decode()
        L.kiln_status_free(st)
        kiln.layers._tls.pending = None
        self.assertIn("Recorder on_epoch_end", msg)
        self.assertIn("KeyError", msg)

    def test_without_super_init(self):
        n = NoInit()
        run_hook(n, "on_epoch_begin", 0)
        self.assertEqual(n.count, 1)

    def test_lambda_callback(self):
        seen = []
        cb = kiln.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])),
                                           on_batch_begin=lambda batch, logs: seen.append(("batch", batch)))
        self.assertEqual(cb.class_name, "LambdaCallback")
        run_hook(cb, "on_epoch_end", 1, {"loss": 0.5})
        run_hook(cb, "on_train_batch_begin", 7)
        run_hook(cb, "on_train_end")
        self.assertEqual(seen, [(1, 0.5), ("batch", 7)])

    def test_lr_scheduler_function(self):
        cb = kiln.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5, verbose=1)
        self.assertEqual(cb.class_name, "LearningRateScheduler")
        cb.set_model(dense_model())
        with self.assertRaisesRegex(kiln.errors.FailedPreconditionError, "compile"):
            run_hook(cb, "on_epoch_begin", 0)
        with self.assertRaises(TypeError):
            kiln.callbacks.LearningRateScheduler(0.1)


class OutputTest(unittest.TestCase):
    def test_progress_text_reaches_sys_stdout(self):
        es = kiln.callbacks.EarlyStopping(verbose=1)
        es.set_model(dense_model())
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            es.on_train_begin()
            es.on_epoch_end(0, {"val_loss": 1.0})
            es.on_epoch_end(1, {"val_loss": 2.0})
            es.on_train_end()
        self.assertEqual(buf.getvalue(), "Epoch 2: early stopping\n")


if __name__ == "__main__":
    unittest.main()
