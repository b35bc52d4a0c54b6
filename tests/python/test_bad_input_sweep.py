"""Bad input the December sweep found mishandled, each now a clear error (or tf.data's answer):
compute_output_shape of a built layer asked about another rank, a built normalization layer given two
inputs, predict / evaluate / fit validation over an infinite dataset without steps (they hung, growing
memory), a map function whose dtypes change, Normalization given a negative or NaN variance, an
enumerate counter at int64's end, and tf.data's cardinality of filter and take(0)."""
import faulthandler
import unittest

import numpy as np

import kiln
from kiln import layers
from kiln.data import Dataset


class BadInputSweepTest(unittest.TestCase):
    def setUp(self):
        faulthandler.dump_traceback_later(120, exit=True)  # a hang fails the suite instead of stalling it
        layers.clear_session()

    def tearDown(self):
        faulthandler.cancel_dump_traceback_later()

    def test_compute_output_shape_of_another_rank(self):
        cases = [(layers.Cropping1D(), (2, 5, 4)), (layers.Cropping2D(1), (2, 5, 5, 2)),
                 (layers.UpSampling1D(), (2, 5, 4)), (layers.UpSampling2D(), (2, 3, 3, 1)),
                 (layers.GroupNormalization(2), (2, 3, 4))]
        for layer, shape in cases:
            with self.subTest(layer=type(layer).__name__):
                layer(np.zeros(shape, np.float32))  # built
                for other in ((), (2,), (2, 5)):
                    with self.assertRaisesRegex(ValueError, "expected rank"):
                        layer.compute_output_shape(other)
                self.assertEqual(tuple(layer.compute_output_shape(shape)), tuple(layer(np.zeros(shape, np.float32)).shape))

    def test_built_normalization_takes_one_input(self):
        x = np.ones((2, 3), np.float32)
        for layer in (layers.LayerNormalization(), layers.BatchNormalization(), layers.GroupNormalization(3)):
            with self.subTest(layer=type(layer).__name__):
                layer(x)
                with self.assertRaisesRegex(ValueError, "expected 1"):
                    layer([x, x])

    def test_infinite_dataset_needs_steps(self):
        model = kiln.Sequential([layers.Input((2,)), layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        endless = Dataset.from_tensor_slices((np.ones((4, 2), np.float32), np.ones((4, 1), np.float32))).batch(2).repeat()
        with self.assertRaisesRegex(ValueError, "predict: the dataset is infinite; give steps"):
            model.predict(endless, verbose=0)
        with self.assertRaisesRegex(ValueError, "evaluate: the dataset is infinite; give steps"):
            model.evaluate(endless, verbose=0)
        with self.assertRaisesRegex(ValueError, "validation dataset is infinite"):
            model.fit(endless, steps_per_epoch=1, validation_data=endless, verbose=0)
        self.assertEqual(model.predict(endless, steps=3, verbose=0).shape, (6, 1))
        model.fit(endless, steps_per_epoch=1, validation_data=endless, validation_steps=1, verbose=0)

    def test_map_keeps_its_dtypes(self):
        def f(x):
            return np.float32(x) if int(x) == 0 else np.int32(x)
        with self.assertRaisesRegex(ValueError, "Dataset.map: the map function returned dtypes"):
            list(Dataset.range(3).map(f))

    def test_normalization_values(self):
        for mean, variance in ((0.0, -1.0), (float("nan"), 1.0), (0.0, float("inf"))):
            with self.subTest(mean=mean, variance=variance):
                with self.assertRaisesRegex(ValueError, "Normalization: (mean|variance) holds|key .(mean|variance). is"):
                    layers.Normalization(mean=mean, variance=variance)
        self.assertEqual(layers.Normalization(mean=1.0, variance=4.0)(np.array([[3.0]], np.float32)).numpy()[0, 0], 1.0)

    def test_enumerate_ends_before_it_wraps(self):
        got = [int(i) for i, _ in Dataset.range(3).enumerate(2 ** 63 - 2)]
        self.assertEqual(got, [2 ** 63 - 2])
        self.assertEqual(Dataset.range(10).enumerate(2 ** 63 - 4).cardinality(), 3)
        self.assertEqual(Dataset.range(10).repeat().enumerate(2 ** 63 - 4).cardinality(), 3)
        self.assertEqual(Dataset.range(10).repeat().enumerate().cardinality(), kiln.data.INFINITE_CARDINALITY)

    def test_small_review_items(self):
        with self.assertRaisesRegex(ValueError, "units must be an int; got 2.5"):
            layers.LSTM(2.5)
        with self.assertRaisesRegex(ValueError, r"input shape \(2, 5, 3\) is too small for a window of 7"):
            layers.SeparableConv1D(2, 7)(np.zeros((2, 5, 3), np.float32))

    def test_a_file_past_the_size_limit_is_out_of_range(self):
        # EFBIG (a file past RLIMIT_FSIZE) is TF's OUT_OF_RANGE; the save fails whole, in a child process
        # whose size limit does not reach this one.
        script = r"""
import resource, signal, sys, tempfile, os
import numpy as np
import kiln
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
v = kiln.Variable(np.zeros((4096,), np.float32))
d = tempfile.mkdtemp()
try:
    kiln.train.Checkpoint(v=v).write(os.path.join(d, "ckpt"))
except kiln.errors.OutOfRangeError as e:
    print("OutOfRange", "File too large" in str(e))
except Exception as e:
    print(type(e).__name__, e)
"""
        import subprocess
        import sys
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "OutOfRange True", out.stderr)

    def test_dilated_window_past_int64(self):
        # (kernel_size - 1) * dilation_rate overflowed int64 (undefined behaviour) before the error.
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "dilation_rate"):
            layers.Conv1D(2, 3, dilation_rate=2 ** 62, padding="causal")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "dilation_rate"):
            layers.Conv2D(2, (2, 3), dilation_rate=(1, 2 ** 62))

    def test_cardinality_as_tf_data(self):
        # tf.data's own docstring example, and take(0) of an input of unknown size.
        self.assertEqual(Dataset.range(42).repeat().filter(lambda x: True).cardinality(),
                         kiln.data.UNKNOWN_CARDINALITY)
        self.assertEqual(Dataset.range(4).filter(lambda x: True).take(0).cardinality(), kiln.data.UNKNOWN_CARDINALITY)
        self.assertEqual(Dataset.range(4).take(0).cardinality(), 0)


if __name__ == "__main__":
    unittest.main()
