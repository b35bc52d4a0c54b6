"""kiln.summary (tf.summary): TF2's metrics pattern in a GradientTape loop, every summary kind read
back with kiln.summary.read_events, as_default scopes and the per-thread step, and errors."""
import os
import shutil
import tempfile
import threading
import unittest

import kiln


def data(step, n=8):
    x = [[((i * 4 + j + step) * 37 % 129 - 64) / 64.0 for j in range(4)] for i in range(n)]
    y = [(i + step) % 3 for i in range(n)]
    return kiln.constant(x), kiln.constant(y, dtype="int32")


def values(path):
    out = []
    for e in kiln.summary.read_events(path)["events"]:
        for v in e.get("values", []):
            v["step"] = e["step"]
            out.append(v)
    return out


class SummaryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_summary_py_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_metrics_pattern_in_a_gradient_tape_loop(self):
        kiln.set_seed(2)
        model = kiln.Sequential([kiln.layers.Dense(8, activation="relu"), kiln.layers.Dense(3)])
        opt = kiln.optimizers.Adam(learning_rate=0.02)
        loss_fn = kiln.losses.SparseCategoricalCrossentropy(from_logits=True)
        m = kiln.metrics.Mean(name="loss")
        writer = kiln.summary.create_file_writer(os.path.join(self.dir, "train"))
        expected = []
        acc = []
        with writer.as_default():
            for step in range(8):
                xb, yb = data(step)
                with kiln.GradientTape() as tape:
                    loss = loss_fn(yb, model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                opt.apply_gradients(zip(grads, model.trainable_variables))
                m.update_state(loss)
                acc.append(float(loss))
                if int(opt.iterations) % 4 == 0:  # every N = 4 steps
                    self.assertTrue(kiln.summary.scalar("loss", m.result(), step=opt.iterations))
                    expected.append(sum(acc) / len(acc))
                    acc = []
                    m.reset_states()
        writer.close()
        vs = values(writer.path)
        self.assertEqual([(v["tag"], v["step"]) for v in vs], [("loss", 4), ("loss", 8)])
        for v, want in zip(vs, expected):
            self.assertEqual(v["kind"], "scalar")
            self.assertAlmostEqual(v["scalar"], want, places=5)

    def test_kinds_defaults_and_threads(self):
        w = kiln.summary.create_file_writer(os.path.join(self.dir, "kinds"), max_queue=3, flush_millis=500)
        self.assertTrue(os.path.basename(w.path).startswith("events.out.tfevents."))
        self.assertTrue(w.path.endswith(".v2"))
        self.assertFalse(kiln.summary.should_record_summaries())
        self.assertFalse(kiln.summary.scalar("nowhere", 1.0, step=0))
        it = kiln.Variable(5, dtype="int64", trainable=False)
        with w.as_default(step=2):
            self.assertTrue(kiln.summary.should_record_summaries())
            self.assertEqual(kiln.summary.experimental.get_step(), 2)
            kiln.summary.histogram("h", kiln.constant([float(i) for i in range(20)]), buckets=4)
            kiln.summary.image("img", kiln.constant([[[[0.0], [1.0], [0.5]]]]))  # [1, 1, 3, 1]
            kiln.summary.text("notes", "| a | b |\n|---|---|\n| 1 | 2 |")
            kiln.summary.hparams({"lr": 0.01, "units": 64, "opt": "adam", "bn": True})
            with kiln.summary.record_if(False):
                self.assertFalse(kiln.summary.scalar("off", 1.0))
                with kiln.summary.record_if(False):
                    pass
                # Leaving a nested block gives back the enclosing condition, as tf.summary's.
                self.assertFalse(kiln.summary.should_record_summaries())
                self.assertFalse(kiln.summary.scalar("off", 2.0))
                with kiln.summary.record_if(True):
                    self.assertTrue(kiln.summary.should_record_summaries())
                self.assertFalse(kiln.summary.should_record_summaries())
            self.assertTrue(kiln.summary.should_record_summaries())
            seen = []
            t = threading.Thread(target=lambda: seen.append(kiln.summary.should_record_summaries()))
            t.start()
            t.join()
            self.assertEqual(seen, [False])
            kiln.summary.experimental.set_step(it)  # bound: read at each summary
            kiln.summary.scalar("bound", 1.0)
            it.assign_add(1)
            kiln.summary.scalar("bound", 2.0)
            kiln.summary.trace_on()
            a, _ = data(0, 4)
            kiln.matmul(a, kiln.transpose(a))
            self.assertTrue(kiln.summary.trace_export("trace"))
        self.assertIsNone(kiln.summary.experimental.get_step())
        w.flush()
        vs = values(w.path)
        kinds = [(v["tag"], v["kind"], v["step"]) for v in vs]
        self.assertEqual(kinds[:6], [("h", "histogram", 2), ("img", "image", 2), ("notes", "text", 2),
                                     ("_hparams_/session_start_info", "hparams", 0), ("bound", "scalar", 5),
                                     ("bound", "scalar", 6)])
        self.assertEqual(len(vs[0]["histogram"]), 4)
        self.assertEqual(sum(r[2] for r in vs[0]["histogram"]), 20)
        self.assertEqual((vs[1]["width"], vs[1]["height"]), (3, 1))
        self.assertEqual(vs[2]["text"], ["| a | b |\n|---|---|\n| 1 | 2 |"])
        self.assertEqual(vs[6]["tag"], "trace")
        self.assertIn("| op | output shape |", vs[6]["text"][0])
        w.close()

    def test_errors(self):
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.summary.create_file_writer(self.dir, max_queue=0)
        w = kiln.summary.create_file_writer(os.path.join(self.dir, "e"))
        with w.as_default():
            with self.assertRaises(kiln.InvalidArgumentError):
                kiln.summary.scalar("no step", 1.0)
            with self.assertRaises(kiln.InvalidArgumentError):
                kiln.summary.scalar("two", kiln.constant([1.0, 2.0]), step=0)
            with self.assertRaises(kiln.InvalidArgumentError):
                kiln.summary.image("bad", kiln.constant([1.0, 2.0]), step=0)
        w.close()
        with self.assertRaises(kiln.FailedPreconditionError):
            with w.as_default(step=1):
                kiln.summary.scalar("closed", 1.0)
        with open(w.path, "r+b") as f:  # one flipped byte
            f.seek(20)
            b = f.read(1)
            f.seek(20)
            f.write(bytes([b[0] ^ 1]))
        with self.assertRaises(kiln.DataLossError):
            kiln.summary.read_events(w.path)
        with self.assertRaises(kiln.NotFoundError):
            kiln.summary.read_events(os.path.join(self.dir, "missing"))


if __name__ == "__main__":
    unittest.main()
