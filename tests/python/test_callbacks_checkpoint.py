"""ModelCheckpoint and BackupAndRestore from Python: model.fit writes checkpoints under names
formatted as Keras formats them ({epoch:02d}, {val_loss:.2f}, per-batch {batch}) with Keras 2's
verbose lines; save_best_only keeps the best; a name the logs lack raises; a fit that dies in its
second epoch resumes from BackupAndRestore's backup with a fresh model and optimizer at that epoch
and ends bit-identical to an uninterrupted fit; the arguments are checked as Keras checks them."""
import contextlib
import io
import os
import shutil
import tempfile
import unittest

import numpy as np

import kiln
from kiln import _lib
from kiln._handles import new_handle

L = _lib.lib


def problem(n=40):
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    return x, y


def model(seed=1):
    """Dense(4, relu) -> Dense(1), built, compiled with Adam (whose slots and step count a resume
    must restore) and mse."""
    kiln.set_seed(seed)
    m = kiln.Sequential([kiln.layers.Dense(4, activation="relu"), kiln.layers.Dense(1)])
    m.build((None, 3))
    m.compile(optimizer=kiln.optimizers.Adam(learning_rate=0.01), loss="mse")
    return m


def weights(m):
    return [w.numpy().copy() for w in m.weights]


class Crash(kiln.callbacks.Callback):
    """Records the epochs run; raises at (epoch, batch), as a crash would."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.epochs, self.epoch = at, [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epochs.append(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise OSError("the machine went down")


class CheckpointCallbacksTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_cbckpt_")
        self.x, self.y = problem()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def fit(self, m, callbacks, epochs=3, validation=False):
        return m.fit(self.x, self.y, batch_size=10, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks,
                     validation_split=0.25 if validation else 0.0)

    def test_model_checkpoint_names_files_as_keras(self):
        m = model()
        path = os.path.join(self.dir, "ckpt", "weights.{epoch:02d}-{val_loss:.2f}")
        mc = kiln.callbacks.ModelCheckpoint(path, verbose=1, save_weights_only=True)
        ends = []
        rec = kiln.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: ends.append((logs["val_loss"], weights(m))))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.fit(m, [mc, rec], epochs=2, validation=True)
        for epoch, (val_loss, w) in enumerate(ends, start=1):
            name = os.path.join(self.dir, "ckpt", "weights.%02d-%.2f" % (epoch, val_loss))
            self.assertTrue(os.path.exists(name + ".index"), name)
            self.assertIn("\nEpoch %d: saving model to %s\n" % (epoch, name), out.getvalue())
            if hasattr(kiln, "train"):  # the keys Keras's save_weights writes, with the optimizer
                names = [n for n, _ in kiln.train.list_variables(name)]
                self.assertIn("layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE", names)
                self.assertIn("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", names)
            if hasattr(kiln.Model, "load_weights"):
                fresh = model(seed=9)
                fresh.load_weights(name).expect_partial()
                for a, b in zip(weights(fresh), w):
                    np.testing.assert_array_equal(a, b)
        self.assertEqual(mc.filepath, path)
        self.assertEqual(mc.epochs_since_last_save, 0)

    def test_per_batch_saves_count_across_epochs(self):
        mc = kiln.callbacks.ModelCheckpoint(os.path.join(self.dir, "b{epoch}-{batch}"), save_freq=3)
        self.fit(model(), [mc], epochs=2)  # 4 batches an epoch: batches 3 and 6 overall
        # save_weights_only False: model.save's SavedModel directories.
        self.assertEqual(sorted(f for f in os.listdir(self.dir)
                                if os.path.exists(os.path.join(self.dir, f, "saved_model.pb"))), ["b1-3", "b2-2"])

    def test_save_best_only(self):
        m = model()
        path = os.path.join(self.dir, "best")
        mc = kiln.callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True, verbose=1)
        self.assertEqual(mc.best, float("inf"))
        mc.set_model(m)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for epoch, value in enumerate([0.5, 0.7, 0.25]):
                mc.on_epoch_end(epoch, {"loss": 1.0, "val_loss": value})
        self.assertEqual(out.getvalue(),
                         "\nEpoch 1: val_loss improved from inf to 0.50000, saving model to %s\n"
                         "\nEpoch 2: val_loss did not improve from 0.50000\n"
                         "\nEpoch 3: val_loss improved from 0.50000 to 0.25000, saving model to %s\n" % (path, path))
        self.assertEqual(mc.best, 0.25)
        self.assertEqual(mc.last_saved_filepath, path)
        high = kiln.callbacks.ModelCheckpoint(path + "2", monitor="val_accuracy", save_best_only=True,
                                              initial_value_threshold=0.9)
        self.assertEqual(high.best, 0.9)
        high.set_model(m)
        high.on_epoch_end(0, {"val_accuracy": 0.8})
        self.assertFalse(os.path.exists(path + "2"))

    def test_a_name_the_logs_lack_raises(self):
        mc = kiln.callbacks.ModelCheckpoint(os.path.join(self.dir, "w{val_acc:.2f}"))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "KeyError: 'val_acc'"):
            self.fit(model(), [mc], epochs=1, validation=True)

    def test_backup_and_restore_resumes_bit_for_bit(self):
        straight = model(seed=4)
        self.fit(straight, [])
        expected = weights(straight)

        backup = os.path.join(self.dir, "backup")
        crash = Crash(at=(1, 2))
        with self.assertRaisesRegex(OSError, "the machine went down"):
            self.fit(model(seed=4), [kiln.callbacks.BackupAndRestore(backup), crash])
        self.assertEqual(crash.epochs, [0, 1])
        self.assertTrue(os.path.exists(os.path.join(backup, "chief", "checkpoint")))

        resumed = model(seed=4)  # fresh weights and a fresh Adam
        log = Crash()
        bar = kiln.callbacks.BackupAndRestore(backup)
        history = self.fit(resumed, [bar, log])
        self.assertEqual(history.epoch, [1, 2])
        self.assertEqual(log.epochs, [1, 2])
        self.assertEqual(bar.resumed_epoch, 1)
        for a, b in zip(weights(resumed), expected):
            np.testing.assert_array_equal(a, b)
        self.assertFalse(os.path.exists(backup))  # fit completed: the backup is deleted

    def test_backup_kept_and_every_n_batches(self):
        backup = os.path.join(self.dir, "keep")
        bar = kiln.callbacks.BackupAndRestore(backup, save_freq=2, delete_checkpoint=False)
        self.assertEqual((bar.backup_dir, bar.save_freq, bar.delete_checkpoint), (backup, 2, False))
        self.fit(model(), [bar], epochs=1)
        self.assertTrue(os.path.exists(os.path.join(backup, "chief", "checkpoint")))
        # The backup is of the epoch's last batch: the next fit starts at epoch 1.
        history = self.fit(model(), [kiln.callbacks.BackupAndRestore(backup)], epochs=2)
        self.assertEqual(history.epoch, [1])

    def test_arguments(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "save_freq"):
            kiln.callbacks.ModelCheckpoint("w", save_freq="batch")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "save_freq"):
            kiln.callbacks.ModelCheckpoint("w", save_freq=0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "save_freq"):
            kiln.callbacks.ModelCheckpoint("w", save_freq=True)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "mode 'up' is unknown"):
            kiln.callbacks.ModelCheckpoint("w", mode="up")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "options"):
            kiln.callbacks.ModelCheckpoint("w", options=object())
        # The Keras 3 guides' "model_{epoch}.keras": kiln writes SavedModel directories, which
        # load_model would refuse under that name, so the callback refuses it at once.
        with self.assertRaisesRegex(kiln.UnimplementedError, r"model_\{epoch\}\.keras.*HDF5 or \.keras"):
            kiln.callbacks.ModelCheckpoint(os.path.join(self.dir, "model_{epoch}.keras"))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "save_freq"):
            kiln.callbacks.BackupAndRestore("b", save_freq="often")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "save_before_preemption"):
            kiln.callbacks.BackupAndRestore("b", save_before_preemption=True)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "backup_dir is empty"):
            kiln.callbacks.BackupAndRestore("")
        self.assertEqual(kiln.callbacks.BackupAndRestore("b", save_freq=False).save_freq, False)
        # A C handle of either class comes back as its Python class.
        mc = kiln.callbacks.ModelCheckpoint(os.path.join(self.dir, "w"))
        again = kiln.callbacks.Callback._adopt(new_handle(L.kiln_callback_clone, mc._h))
        self.assertIsInstance(again, kiln.callbacks.ModelCheckpoint)
        self.assertIs(kiln.keras.callbacks.BackupAndRestore, kiln.callbacks.BackupAndRestore)


if __name__ == "__main__":
    unittest.main()
