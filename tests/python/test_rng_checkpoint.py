"""The global random state in checkpoints from Python (kiln.random.get_global_generator()): a
Checkpoint(rng=...) gives back the draws that followed its save; a shuffled fit with Dropout
(unseeded and seeded) saved with the model, its optimizer and the random state continues bit for
bit in a fresh Python process; BackupAndRestore resumes such a fit bit for bit; the state is no
part of a model's own keys; wrong objects raise."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

import kiln

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")

# Shared by the parent and the child process: the model and the data.
COMMON = textwrap.dedent('''
    import numpy as np
    import kiln

    def dropout_model():
        m = kiln.Sequential([kiln.layers.Dense(8, activation="relu"), kiln.layers.Dropout(0.3),
                             kiln.layers.Dropout(0.25, seed=11), kiln.layers.Dense(3, activation="softmax")])
        m.build((None, 5))
        m.compile(optimizer=kiln.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy")
        return m

    def data():
        x = np.array([((i * 7) % 17) / 17.0 - 0.5 for i in range(200)], dtype=np.float32).reshape(40, 5)
        y = np.array([(i * 5) % 3 for i in range(40)], dtype=np.int64)
        return x, y

    def fit(model, epochs, callbacks=None):
        x, y = data()
        return model.fit(x, y, batch_size=8, epochs=epochs, shuffle=True, verbose=0, callbacks=callbacks)
''')
exec(COMMON)  # noqa: S102 - the same definitions here as in the child

CHILD = COMMON + textwrap.dedent('''
    import sys
    directory = sys.argv[1]
    kiln.set_num_threads(int(sys.argv[2]))
    kiln.set_seed(12345)  # a fresh process, and another seed on top
    m = dropout_model()
    ckpt = kiln.train.Checkpoint(model=m, rng=kiln.random.get_global_generator())
    status = ckpt.restore(directory)
    fit(m, 2)
    status.assert_consumed()
    ckpt.write(directory + "/child")
''')


def draws():
    ones = kiln.constant(np.ones([16], dtype=np.float32))
    return [kiln.random.uniform([16]).numpy().tobytes(), kiln.random.normal([16], seed=5).numpy().tobytes(),
            kiln.nn.dropout(ones, 0.5).numpy().tobytes(), kiln.nn.dropout(ones, 0.5, seed=9).numpy().tobytes()]


def values(variables):
    return [v.numpy().tobytes() for v in variables]


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_rng_ckpt_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *names):
        return os.path.join(self.dir, *names)


@needs_numpy
class GlobalGeneratorTest(TempDirTest):
    def test_draws_after_a_restore_are_the_draws_after_the_save(self):
        kiln.set_seed(31)
        draws()
        rng = kiln.random.get_global_generator()
        self.assertIsInstance(rng, kiln.random.GlobalGenerator)
        self.assertEqual(rng, kiln.random.get_global_generator())  # one state
        ckpt = kiln.train.Checkpoint(rng=rng)
        path = ckpt.write(self.path("w"))
        want = draws()
        kiln.set_seed(2)
        draws()
        ckpt.read(path).assert_consumed()
        self.assertEqual(draws(), want)
        # One int64 value: (seed, unseeded draws), then (op seed, calls) for op seeds 5 and 9.
        reader = kiln.train.load_checkpoint(path)
        state = reader.get_tensor("rng/_state-2/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertEqual(state.dtype, np.int64)
        self.assertEqual(state.tolist(), [[31, 2], [5, 1], [9, 1]])

    def test_generator_draws_from_the_global_sequence(self):
        kiln.set_seed(4)
        a = kiln.random.get_global_generator().uniform([3]).numpy()
        kiln.set_seed(4)
        self.assertEqual(a.tobytes(), kiln.random.uniform([3]).numpy().tobytes())

    def test_attribute_assignment_tracks_it_and_wrong_objects_raise(self):
        ckpt = kiln.train.Checkpoint()
        ckpt.rng = kiln.random.get_global_generator()
        path = ckpt.write(self.path("attr"))
        self.assertIn("rng/_state-", " ".join(name for name, _ in kiln.train.list_variables(path)))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "get_global_generator"):
            kiln.train.Checkpoint(rng=object())

    def test_never_part_of_a_models_keys(self):
        m = dropout_model()
        fit(m, 1)
        m.save_weights(self.path("weights"))
        kiln.train.Checkpoint(model=m, optimizer=m.optimizer).write(self.path("ckpt"))
        for prefix in ("weights", "ckpt"):
            for name, _ in kiln.train.list_variables(self.path(prefix)):
                self.assertNotIn("_state", name)


@needs_numpy
class ExactResumeTest(TempDirTest):
    def test_shuffled_dropout_fit_resumes_bit_for_bit_in_a_fresh_process(self):
        kiln.set_seed(3)
        m = dropout_model()
        fit(m, 2)
        ckpt = kiln.train.Checkpoint(model=m, rng=kiln.random.get_global_generator())
        ckpt.save(self.path("ckpt"))
        fit(m, 2)
        ckpt.write(self.path("expected"))

        # The same library (KILN_LIBRARY, PYTHONPATH in the environment) and thread count.
        child = subprocess.run([sys.executable, "-c", CHILD, self.dir, str(kiln.get_num_threads())],
                               env=dict(os.environ), capture_output=True, text=True, timeout=300)
        self.assertEqual(child.returncode, 0, child.stderr)
        want = kiln.train.load_checkpoint(self.path("expected"))
        got = kiln.train.load_checkpoint(self.path("child"))
        names = sorted(want.get_variable_to_shape_map())
        self.assertEqual(sorted(got.get_variable_to_shape_map()), names)
        compared = 0
        for name in names:
            if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
                continue
            self.assertEqual(got.get_tensor(name).tobytes(), want.get_tensor(name).tobytes(), name)
            compared += 1
        self.assertGreater(compared, 10)

    def test_backup_and_restore_resumes_a_shuffled_dropout_fit_bit_for_bit(self):
        kiln.set_seed(42)
        straight = dropout_model()
        fit(straight, 4)

        class Crash(kiln.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 2:
                    raise RuntimeError("the machine went down")

        backup = self.path("backup")
        kiln.set_seed(42)
        with self.assertRaisesRegex(Exception, "the machine went down"):
            fit(dropout_model(), 4, [kiln.callbacks.BackupAndRestore(backup), Crash()])

        kiln.set_seed(999)
        resumed = dropout_model()
        history = fit(resumed, 4, [kiln.callbacks.BackupAndRestore(backup)])
        self.assertEqual(history.epoch, [2, 3])
        self.assertEqual(values(resumed.variables), values(straight.variables))
        self.assertEqual(values(resumed.optimizer.variables), values(straight.optimizer.variables))


if __name__ == "__main__":
    unittest.main()
