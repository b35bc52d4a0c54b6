"""Sizes and values at the limits through the Python binding (issue 5, section 2).

Each call must raise the matching kiln error with a message naming the op and the offending value:
never crash the interpreter, hang, or return a tensor with no memory behind it. A watchdog ends the
process if a test hangs (as requests above 2^63 bytes used to), so the suite fails instead of stalling.
Also checks that kiln.empty_cache() hands freed tensor memory back to the system.
"""
import ctypes
import faulthandler
import os
import unittest

import kiln
from kiln import _lib
from kiln.tensor import _new, dims_array

P62, P32, MAX = 2 ** 62, 2 ** 32, 2 ** 63 - 1
NAN, INF = float("nan"), float("inf")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class LimitCase(unittest.TestCase):
    def setUp(self):
        faulthandler.dump_traceback_later(120, exit=True)

    def tearDown(self):
        faulthandler.cancel_dump_traceback_later()

    def assertLimit(self, error, fn, *fragments):
        with self.assertRaises(error) as cm:
            fn()
        for frag in fragments:
            self.assertIn(frag, str(cm.exception))


class CreationTest(LimitCase):
    def test_beyond_the_byte_limit(self):
        # 2^62 elements crashed the process with SIGSEGV.
        E = kiln.ResourceExhaustedError
        self.assertLimit(E, lambda: kiln.zeros([P62]), "kiln_zeros", "18446744073709551616 bytes")
        self.assertLimit(E, lambda: kiln.ones([P62]), "kiln_ones", "float32[4611686018427387904]")
        self.assertLimit(E, lambda: kiln.fill([P62], 1.0), "kiln_fill", "4611686018427387904")
        self.assertLimit(E, lambda: kiln.random_uniform([P62]), "kiln_random_uniform", "4611686018427387904")
        self.assertLimit(E, lambda: kiln.random_normal([P62]), "kiln_random_normal", "4611686018427387904")
        self.assertLimit(E, lambda: kiln.truncated_normal([P62]), "kiln_truncated_normal", "4611686018427387904")
        self.assertLimit(E, lambda: kiln.range(0, P62, 1, kiln.int64), "kiln_range", "int64[4611686018427387904]")
        # Above 2^63 bytes (the size-class loop never ended) and beyond any address space.
        self.assertLimit(E, lambda: kiln.zeros([2 ** 60 + 1], kiln.int64), "kiln_zeros", "9223372036854775816")
        self.assertLimit(E, lambda: kiln.zeros([2 ** 59]), "kiln_zeros", "2305843009213693952 bytes")
        self.assertTrue(issubclass(E, MemoryError))

    def test_overflowing_shapes_are_invalid(self):
        E = kiln.InvalidArgumentError
        # zeros([2^32, 2^32]) returned a tensor of that shape with 0 elements.
        self.assertLimit(E, lambda: kiln.zeros([P32, P32]), "kiln_zeros", "[4294967296, 4294967296]")
        self.assertLimit(E, lambda: kiln.zeros([0, P32, P32]), "kiln_zeros", "[0, 4294967296, 4294967296]")
        dims, rank = dims_array([2 ** 31, 2 ** 31])
        self.assertLimit(E, lambda: _new(_lib.lib.kiln_tensor_create, 1, dims, rank, None, 0), "kiln_tensor_create",
                         "18446744073709551616 bytes")

    def test_range_needs_finite_arguments(self):
        E = kiln.InvalidArgumentError
        self.assertLimit(E, lambda: kiln.range(0, NAN, 1, kiln.int64), "range", "limit nan")
        self.assertLimit(E, lambda: kiln.range(NAN, 3.0), "range", "start nan")
        self.assertLimit(E, lambda: kiln.range(0, INF, 1, kiln.int32), "range", "limit inf")
        self.assertLimit(E, lambda: kiln.range(-INF, 0.0), "range", "start -inf")
        self.assertLimit(E, lambda: kiln.range(0.0, 3.0, NAN), "range", "delta nan")
        self.assertLimit(E, lambda: kiln.range(0.0, 1e30, 1e-30), "range", "inf elements, more than")
        self.assertLimit(E, lambda: kiln.range(0.0, 1e30, 1e-30, kiln.float64), "range", "1e+60 elements, more than")


class ShapeOpTest(LimitCase):
    def test_reshape_broadcast_tile(self):
        E, R = kiln.InvalidArgumentError, kiln.ResourceExhaustedError
        empty = kiln.zeros([0])
        self.assertLimit(E, lambda: kiln.reshape(empty, [P32, P32]), "reshape", "[4294967296, 4294967296]")
        self.assertLimit(E, lambda: kiln.reshape(empty, [-1, P32, P32]), "reshape", "4294967296")
        self.assertLimit(R, lambda: kiln.broadcast_to(kiln.zeros([1]), [P62]), "kiln_broadcast_to",
                         "4611686018427387904")
        self.assertLimit(R, lambda: kiln.tile(kiln.zeros([1]), [P62]), "kiln_tile", "4611686018427387904")
        self.assertLimit(E, lambda: kiln.tile(kiln.zeros([4]), [P62]), "tile", "4 x 4611686018427387904")

    def test_one_hot_matmul_concat_stack(self):
        E = kiln.InvalidArgumentError
        idx = kiln.constant([0, 1], dtype=kiln.int32)
        self.assertLimit(E, lambda: kiln.one_hot(idx, P62), "one_hot", "depth 4611686018427387904")
        self.assertLimit(kiln.ResourceExhaustedError, lambda: kiln.one_hot(kiln.constant([0], dtype=kiln.int32), P62),
                         "kiln_one_hot", "4611686018427387904")
        self.assertLimit(E, lambda: kiln.matmul(kiln.zeros([2 ** 40, 0]), kiln.zeros([0, 2 ** 40])), "matmul",
                         "[1099511627776, 1099511627776]")
        tall = kiln.zeros([P62, 0])
        self.assertLimit(E, lambda: kiln.concat([tall, tall], 0), "concat", "4611686018427387904")
        half = kiln.zeros([2 ** 61, 0])
        self.assertLimit(E, lambda: kiln.stack([half] * 4), "stack", "[4, 2305843009213693952, 0]")

    def test_split_and_slice_cannot_wrap(self):
        E = kiln.InvalidArgumentError
        x = kiln.range(0.0, 4.0)
        # Four sizes of 2^62 + 1 wrapped to 4 and gave 2^62-element views of a 16-byte buffer.
        self.assertLimit(E, lambda: kiln.split(x, [P62 + 1] * 4), "split", "4611686018427387905")
        self.assertLimit(E, lambda: kiln.split(x, [MAX, 5]), "split", "9223372036854775807")
        self.assertLimit(E, lambda: kiln.slice(x, [1], [MAX]), "slice", "9223372036854775807")
        self.assertLimit(E, lambda: kiln.slice(x, [MAX], [1]), "slice", "9223372036854775807")

    def test_huge_windows(self):
        E = kiln.InvalidArgumentError
        x = kiln.reshape(kiln.range(0.0, 50.0), [1, 5, 5, 2])
        f = kiln.ones([2, 2, 2, 1])
        want = kiln.conv2d(x, f, strides=4).numpy().tolist()
        # INT64_MAX strides gave INTERNAL from oneDNN; one window fits, as with a stride of 4.
        self.assertEqual(kiln.conv2d(x, f, strides=MAX).numpy().tolist(), want)
        self.assertEqual(kiln.conv2d(x, f, strides=MAX, padding="SAME").numpy().tolist(), want)
        self.assertEqual(kiln.max_pool2d(x, 2, MAX).numpy().tolist(), kiln.max_pool2d(x, 2, 4).numpy().tolist())
        self.assertLimit(E, lambda: kiln.conv2d(x, f, dilations=MAX), "conv2d", "9223372036854775807")
        self.assertLimit(E, lambda: kiln.conv2d(x, f, dilations=2 ** 40, padding="SAME"), "conv2d", "1099511627776")
        self.assertLimit(E, lambda: kiln.max_pool2d(x, MAX, 1), "max_pool2d", "9223372036854775807")
        self.assertLimit(E, lambda: kiln.avg_pool2d(x, MAX, 1, "SAME"), "avg_pool2d", "9223372036854775807")


class LibraryLimitTest(LimitCase):
    def test_thread_count_is_bounded(self):
        before = kiln.get_num_threads()
        # libgomp killed the process at the next kernel.
        self.assertLimit(kiln.InvalidArgumentError, lambda: kiln.set_num_threads(1 << 30), "set_num_threads",
                         "1073741824")
        self.assertEqual(kiln.get_num_threads(), before)

    def test_integers_beyond_the_c_parameter_are_refused(self):
        """ctypes would pass only the low bits (2**64 + 3 as 3, 2**32 + 2 as 2): every C call with an
        integer parameter refuses a value its type cannot hold, naming the function and the value."""
        import numpy as np
        before = kiln.get_num_threads()
        d = kiln.data.Dataset.range(10)
        big = 2 ** 64 + 3
        for fn, name in [(lambda: d.batch(big), "batch: batch_size is 18446744073709551619"),
                         (lambda: d.take(big), "take: count"),
                         (lambda: kiln.data.Dataset.range(2 ** 64), "range: stop is 18446744073709551616"),
                         (lambda: d.shard(big, 1), "shard: num_shards"),
                         (lambda: kiln.one_hot(kiln.constant(np.array([1], np.int32)), big), "one_hot"),
                         (lambda: kiln.gather(kiln.zeros((2, 3)), [0], axis=big), "gather"),
                         (lambda: kiln.set_num_threads(2 ** 32 + 2), "kiln_set_num_threads")]:
            with self.subTest(name):
                self.assertLimit(kiln.InvalidArgumentError, fn, name)
        self.assertLimit(kiln.InvalidArgumentError, lambda: kiln.set_num_threads(2 ** 40), "1099511627776")
        self.assertEqual(kiln.get_num_threads(), before)
        self.assertEqual(len(list(d.batch(3))), 4)  # values in range pass as before

    def test_integers_in_shapes_and_options_are_refused_too(self):
        """The same for shapes built into int64 arrays and for the option structs' fields."""
        import numpy as np
        big = 2 ** 64 + 2
        model = kiln.Sequential([kiln.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        x, y = np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)
        for fn, name in [(lambda: kiln.keras.initializers.Zeros()(shape=(big, 3)), "18446744073709551618"),
                         (lambda: kiln.layers.Dense(3).build((None, big)), "build"),
                         (lambda: kiln.layers.Dense(3).compute_output_shape((None, big)), "compute_output_shape"),
                         (lambda: kiln.nn.dropout(kiln.ones((2, 3)), 0.5, noise_shape=[big, 3]), "noise_shape"),
                         (lambda: model.fit(x, y, epochs=2 ** 64 + 1, verbose=0), "FitOptions.epochs"),
                         (lambda: model.fit(x, y, batch_size=big, verbose=0), "18446744073709551618"),
                         (lambda: model.fit(x, y, validation_data=(x, y), validation_freq=2 ** 64 + 1, verbose=0),
                          "validation_freq")]:
            with self.subTest(name):
                self.assertLimit(kiln.InvalidArgumentError, fn, name)

    def test_strings_with_a_nul_are_refused(self):
        """ctypes ends a bytes string at its first NUL: a path or name holding one would be cut short
        (a file written under another name). Every such string is refused instead."""
        import tempfile
        model = kiln.Sequential([kiln.layers.Dense(1)])
        model.build((None, 2))
        with tempfile.TemporaryDirectory() as d:
            for fn, name in [(lambda: model.save_weights(os.path.join(d, "w\x00evil")), "NUL byte"),
                             (lambda: kiln.layers.Dense(3, name="a\x00b"), "NUL byte"),
                             (lambda: kiln.summary.create_file_writer(os.path.join(d, "l\x00x")), "NUL byte")]:
                with self.subTest(name):
                    self.assertLimit(kiln.InvalidArgumentError, fn, name)
            self.assertEqual(os.listdir(d), [])  # nothing written under the cut name
            writer = kiln.summary.create_file_writer(os.path.join(d, "logs"))
            with writer.as_default():
                self.assertLimit(kiln.InvalidArgumentError, lambda: kiln.summary.scalar("a\x00b", 1.0, step=0), "NUL")
                self.assertLimit(kiln.InvalidArgumentError, lambda: kiln.summary.scalar("a", 1.0, step=1.5), "step")
                self.assertLimit(kiln.InvalidArgumentError, lambda: kiln.summary.scalar("a", 1.0, step=2 ** 64),
                                 "step is 18446744073709551616")
            writer.close()
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "NUL"):
            model.compile(optimizer="sgd", loss="mse\x00junk")
        # other config strings keep their NULs (only names go back to C as C strings)
        from kiln import config as kiln_config
        self.assertEqual(kiln_config.round_trip({"sep": "a\x00b"}), {"sep": "a\x00b"})

        # a callback's exception whose message holds a NUL still comes out as itself
        def bad(x):
            raise KeyError("bad\x00byte")
        with self.assertRaises(KeyError):
            for _ in kiln.data.Dataset.from_tensor_slices(kiln.constant([1.0, 2.0])).map(bad):
                pass

    def test_negative_enum_values(self):
        lib = _lib.lib
        dims, rank = dims_array([2])
        x = kiln.ones([1, 2, 2, 1])
        def pool_options(padding):  # a 1x1 window with strides 1 and this padding, as kiln_pool2d_options
            o = kiln.ops.Pool2dOptions()
            kiln.errors.check(lib.kiln_pool2d_options_init(ctypes.byref(o), ctypes.sizeof(o)))
            o.ksize[:], o.strides[:], o.padding = [1, 1], [1, 1], padding
            return ctypes.byref(o)

        for v in (-1, -2 ** 31):
            n = str(v)
            for name, call in [
                    ("kiln_zeros: dtype", lambda: _new(lib.kiln_zeros, dims, rank, v)),
                    ("kiln_fill: dtype", lambda: _new(lib.kiln_fill, dims, rank, 1.0, v)),
                    ("kiln_range: dtype", lambda: _new(lib.kiln_range, 0.0, 2.0, 1.0, v)),
                    ("kiln_cast: dtype", lambda: _new(lib.kiln_cast, x._h, v)),
                    ("kiln_max_pool2d: padding", lambda: _new(lib.kiln_max_pool2d, x._h, pool_options(v))),
                    ("kiln_avg_pool2d: padding", lambda: _new(lib.kiln_avg_pool2d, x._h, pool_options(v)))]:
                self.assertLimit(kiln.InvalidArgumentError, call, name, n)

    def test_empty_cache_returns_memory(self):
        kiln.empty_cache()
        before = rss_bytes()
        ts = [kiln.zeros([1 << 18]) for _ in range(256)]  # 256 x 1 MiB, written, so resident
        filled = rss_bytes()
        del ts
        released = kiln.empty_cache()
        after = rss_bytes()
        self.assertGreater(filled - before, 200 << 20)
        self.assertGreater(filled - after, 200 << 20)
        self.assertTrue(released == 0 or released >= 256 << 20)  # 0 when a sanitizer build disables the cache
        self.assertEqual(kiln.empty_cache(), 0)
        s0 = kiln.allocator_stats()
        kiln.zeros([1 << 18])
        s1 = kiln.allocator_stats()
        self.assertEqual(s1["system_allocs"], s0["system_allocs"] + 1)
        self.assertEqual(s1["cache_hits"], s0["cache_hits"])


class HostileFileTest(LimitCase):
    def test_fifos_and_devices_are_refused_at_once(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "data.fifo")
            os.mkfifo(fifo)
            for path in (fifo, "/dev/zero"):
                with self.subTest(path=path):
                    self.assertLimit(kiln.FailedPreconditionError, lambda: kiln.data.read_idx(path), path,
                                     "not a regular file")
                    self.assertLimit(kiln.FailedPreconditionError, lambda: kiln.data.read_csv(path), path,
                                     "not a regular file")
                    self.assertLimit(kiln.InvalidArgumentError, lambda: kiln.summary.read_events(path), path,
                                     "not a regular file")

    def test_uniform_bounds_whose_width_overflows(self):
        self.assertLimit(kiln.InvalidArgumentError,
                         lambda: kiln.random.uniform([2], -1.7e308, 1.7e308, dtype="float64"), "overflows")


if __name__ == "__main__":
    unittest.main()
