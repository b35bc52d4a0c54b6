"""kiln.callbacks.TensorBoard and kiln.callbacks.HParams from Python: model.fit with validation
writes log_dir/train and log_dir/validation, read back with kiln.summary.read_events: every
epoch_* scalar equals history.history's value at its epoch, the learning rate, batch_* every
update_freq batches, weight histograms counting every weight, weight images decoding to TF 2.13's
sizes, evaluation_*_vs_iterations at the optimizer's iterations, the Keras JSON graph; summaries
written in a callback during the batches land in the train run; the HParams session; Keras's
argument checks."""
import glob
import os
import shutil
import struct
import tempfile
import unittest
import zlib

import numpy as np

import kiln
from kiln.errors import InvalidArgumentError


def problem(n=64):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int32) + (x[:, 2] > 0).astype(np.int32)
    return x, y


def model():
    kiln.set_seed(1)
    m = kiln.Sequential([kiln.layers.Dense(8, activation="relu", name="dense"),
                         kiln.layers.Dense(3, activation="softmax", name="dense_1")])
    m.build((None, 4))
    m.compile(optimizer=kiln.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def read_run(run_dir):
    files = glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))
    assert len(files) == 1, files
    return kiln.summary.read_events(files[0])


def series(events, tag):
    """[(step, value dict)] of a tag, in file order."""
    return [(e["step"], v) for e in events["events"] for v in e.get("values", []) if v["tag"] == tag]


def tags(events):
    return {v["tag"] for e in events["events"] for v in e.get("values", [])}


def png_size(data):
    """(width, height) from a PNG's IHDR, after checking its signature and CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29]) & 0xFFFFFFFF
    return struct.unpack(">II", data[16:24])


class Recorder(kiln.callbacks.Callback):
    """The batch logs, and a summary of its own at each batch (no writer, no step given)."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_begin(self, batch, logs=None):
        kiln.summary.scalar("custom", float(batch))

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(dict(logs))


class TensorBoardCallbackTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_tb_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_fit_writes_what_keras_writes(self):
        x, y = problem()
        m = model()
        tb = kiln.callbacks.TensorBoard(log_dir=self.dir, histogram_freq=1, write_images=True, update_freq=2)
        rec = Recorder()
        epochs = 3
        h = m.fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, shuffle=False, verbose=0,
                  callbacks=[tb, rec])
        self.assertEqual(sorted(os.listdir(self.dir)), ["train", "validation"])
        train, val = read_run(os.path.join(self.dir, "train")), read_run(os.path.join(self.dir, "validation"))
        self.assertEqual(train["events"][0]["file_version"], "brain.Event:2")
        self.assertTrue(tb.train_event_file.startswith(os.path.join(self.dir, "train", "events.out.tfevents.")))
        self.assertEqual(tb.histogram_freq, 1)
        self.assertEqual(tb.update_freq, 2)

        weights = ["dense/kernel_0", "dense/bias_0", "dense_1/kernel_0", "dense_1/bias_0"]
        expected = {"keras", "epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss",
                    "batch_accuracy", "custom"}
        expected |= {w + "/histogram" for w in weights} | {w + "/image" for w in weights}
        self.assertEqual(tags(train), expected)

        graph = series(train, "keras")
        self.assertEqual(len(graph), 1)
        self.assertEqual(graph[0][0], 0)
        self.assertEqual(graph[0][1]["plugin"], "graph_keras_model")

        for name in ("loss", "accuracy"):
            s = series(train, "epoch_" + name)
            self.assertEqual([step for step, _ in s], list(range(epochs)))
            np.testing.assert_array_equal([v["scalar"] for _, v in s],
                                          np.float32(h.history[name]).astype(np.float64))
            s = series(val, "epoch_" + name)
            self.assertEqual([step for step, _ in s], list(range(epochs)))
            np.testing.assert_array_equal([v["scalar"] for _, v in s],
                                          np.float32(h.history["val_" + name]).astype(np.float64))
            s = series(val, "evaluation_%s_vs_iterations" % name)
            self.assertEqual([step for step, _ in s], [3, 6, 9])  # 3 training batches an epoch
            np.testing.assert_array_equal([v["scalar"] for _, v in s],
                                          np.float32(h.history["val_" + name]).astype(np.float64))
            s = series(train, "batch_" + name)
            self.assertEqual([step for step, _ in s], [2, 4, 6, 8])
            np.testing.assert_array_equal([v["scalar"] for _, v in s],
                                          [np.float32(rec.batches[step - 1][name]) for step, _ in s])
        self.assertEqual([v["scalar"] for _, v in series(train, "epoch_learning_rate")], [np.float32(0.01)] * 3)
        self.assertEqual([step for step, _ in series(train, "custom")], [2, 4, 6, 8])
        self.assertEqual(tags(val), {"epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations",
                                     "evaluation_accuracy_vs_iterations"})

        sizes = {"dense/kernel_0": (8, 4), "dense/bias_0": (1, 8), "dense_1/kernel_0": (8, 3),
                 "dense_1/bias_0": (1, 3)}
        for w, var in zip(weights, m.weights):
            hist = series(train, w + "/histogram")
            self.assertEqual([step for step, _ in hist], list(range(epochs)))
            for _, v in hist:
                self.assertEqual(sum(row[2] for row in v["histogram"]), var.numpy().size)
            images = series(train, w + "/image")
            self.assertEqual([step for step, _ in images], list(range(epochs)))
            for _, v in images:
                self.assertEqual((v["width"], v["height"]), sizes[w])
                self.assertEqual(len(v["images"]), 1)
                self.assertGreater(v["images"][0]["png_bytes"], 0)  # the PNG's length

    def test_weight_images_are_pngs_of_tf_sizes(self):
        x, y = problem()
        m = model()
        m.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False,
              callbacks=[kiln.callbacks.TensorBoard(self.dir, histogram_freq=1, write_images=True,
                                                    write_graph=False)])
        path = glob.glob(os.path.join(self.dir, "train", "events.out.tfevents.*"))[0]
        # The PNGs straight from the file's records (the image tensors' string_val), walked chunk
        # by chunk with every chunk's CRC checked.
        with open(path, "rb") as f:
            raw = f.read()
        sizes = []
        i = raw.find(b"\x89PNG\r\n\x1a\n")
        while i >= 0:
            sizes.append(png_size(raw[i:i + 33]))
            j = i + 8
            while True:
                length, kind = struct.unpack(">I4s", raw[j:j + 8])
                crc = struct.unpack(">I", raw[j + 8 + length:j + 12 + length])[0]
                self.assertEqual(crc, zlib.crc32(raw[j + 4:j + 8 + length]) & 0xFFFFFFFF)
                j += 12 + length
                if kind == b"IEND":
                    break
            i = raw.find(b"\x89PNG\r\n\x1a\n", j)
        self.assertEqual(sorted(sizes), sorted([(8, 4), (1, 8), (8, 3), (1, 3)]))

    def test_epoch_mode_and_no_validation(self):
        x, y = problem()
        m = model()
        m.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[kiln.callbacks.TensorBoard(self.dir, write_steps_per_second=True)])
        self.assertEqual(os.listdir(self.dir), ["train"])
        train = read_run(os.path.join(self.dir, "train"))
        self.assertEqual(tags(train), {"keras", "epoch_loss", "epoch_accuracy", "epoch_learning_rate",
                                       "epoch_steps_per_second"})
        graph = series(train, "keras")[0][1]
        self.assertEqual((graph["plugin"], graph["dtype"], graph["shape"]), ("graph_keras_model", 7, []))
        self.assertGreater(graph["blobs"][0]["bytes"], 0)  # the JSON's length (the C++ test reads it)

    def test_hparams(self):
        x, y = problem()
        m = model()
        hp = kiln.callbacks.HParams(self.dir, {"learning_rate": 0.01, "optimizer": "adam", "units": np.int64(8)},
                                    trial_id="trial-1")
        m.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[kiln.callbacks.TensorBoard(self.dir), hp])
        self.assertEqual(sorted(n for n in os.listdir(self.dir) if not n.startswith("events.")), ["train"])
        run = read_run(self.dir)
        start = series(run, "_hparams_/session_start_info")
        self.assertEqual(len(start), 1)
        info = start[0][1]["hparams"]["session_start_info"]
        self.assertEqual(info["group_name"], "trial-1")
        self.assertEqual(info["hparams"], {"learning_rate": 0.01, "optimizer": "adam", "units": 8})
        end = series(run, "_hparams_/session_end_info")
        self.assertEqual(end[0][1]["hparams"]["session_end_info"]["status"], "STATUS_SUCCESS")
        self.assertEqual(hp.trial_id, "trial-1")
        with self.assertRaisesRegex(InvalidArgumentError, "hparam 'a'"):
            kiln.callbacks.HParams(self.dir, {"a": [1, 2]})
        with self.assertRaises(InvalidArgumentError):
            kiln.callbacks.HParams(None, {"a": 1})

    def test_arguments(self):
        tb = kiln.callbacks.TensorBoard()
        self.assertEqual(tb.log_dir, "logs")
        self.assertEqual(tb.update_freq, "epoch")
        self.assertEqual(tb.class_name, "TensorBoard")
        kiln.callbacks.TensorBoard(self.dir, update_freq="batch", profile_batch=(2, 3), write_grads=True)
        kiln.callbacks.TensorBoard(self.dir, profile_batch="2,3")
        with self.assertRaisesRegex(InvalidArgumentError, "Unrecognized arguments"):
            kiln.callbacks.TensorBoard(self.dir, histogram_frequency=1)
        with self.assertRaisesRegex(InvalidArgumentError, "not supported"):
            kiln.callbacks.TensorBoard(self.dir, embeddings_freq=1)
        with self.assertRaisesRegex(InvalidArgumentError, "update_freq"):
            kiln.callbacks.TensorBoard(self.dir, update_freq="sometimes")
        with self.assertRaisesRegex(InvalidArgumentError, "profile_batch"):
            kiln.callbacks.TensorBoard(self.dir, profile_batch=(5, 2))
        with self.assertRaisesRegex(InvalidArgumentError, "profile_batch"):
            kiln.callbacks.TensorBoard(self.dir, profile_batch=-1)


if __name__ == "__main__":
    unittest.main()
