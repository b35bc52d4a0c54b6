"""kiln.data from Python: structures, every transformation, Python map/filter/generator functions and
their exceptions re-raised from the for loop, NumPy adoption, readers, keras.datasets."""
import gc
import gzip
import os
import shutil
import struct
import tempfile
import threading
import time
import unittest

import numpy as np

import kiln
from kiln.data import AUTOTUNE, Dataset, TensorSpec


def values(ds):
    return [int(v) if not isinstance(v, tuple) else tuple(int(x) for x in v) for v in ds]


class Boom(Exception):
    pass


class StructureTest(unittest.TestCase):
    def test_tuple_dict_and_single(self):
        x = np.arange(12, dtype=np.float32).reshape(6, 2)
        y = np.arange(6, dtype=np.int64)
        pairs = list(Dataset.from_tensor_slices((x, y)))
        self.assertEqual(len(pairs), 6)
        xs, ys = pairs[4]
        self.assertIsInstance(xs, kiln.Tensor)
        self.assertEqual(xs.numpy().tolist(), [8.0, 9.0])
        self.assertEqual(int(ys), 4)
        d = list(Dataset.from_tensor_slices({"image": x, "label": y}).batch(4))
        self.assertEqual(sorted(d[0]), ["image", "label"])
        self.assertEqual(d[0]["image"].shape, (4, 2))
        self.assertEqual(d[1]["label"].numpy().tolist(), [4, 5])
        self.assertEqual([int(v) for v in Dataset.from_tensor_slices([1, 2, 3])], [1, 2, 3])
        self.assertEqual(Dataset.from_tensors((x, y)).cardinality(), 1)
        nested = next(iter(Dataset.from_tensor_slices(((x, y), {"z": y}))))
        self.assertEqual(int(nested[1]["z"]), 0)

    def test_numpy_adopted_without_copy(self):
        x = np.arange(6, dtype=np.float32).reshape(3, 2)
        ds = Dataset.from_tensor_slices(x)
        x[0, 0] = 42.0  # the dataset reads the array's own buffer
        self.assertEqual(next(iter(ds)).numpy().tolist(), [42.0, 1.0])
        # Non-contiguous and big-endian arrays are copied (and read right).
        self.assertEqual(next(iter(Dataset.from_tensor_slices(x[:, 1]))).item(), 1.0)
        be = np.arange(3, dtype=">i4")
        self.assertEqual([int(v) for v in Dataset.from_tensor_slices(be)], [0, 1, 2])
        del ds
        gc.collect()
        self.assertEqual(kiln.data._ADOPTED, {})  # the deleter released the array

    def test_errors(self):
        with self.assertRaises(kiln.InvalidArgumentError):
            Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
        with self.assertRaises(kiln.InvalidArgumentError):
            Dataset.range(3).batch(0)
        with self.assertRaises(kiln.InvalidArgumentError):
            Dataset.range(0, 5, 0)


class TransformTest(unittest.TestCase):
    def test_range_take_skip_repeat(self):
        self.assertEqual(values(Dataset.range(5)), [0, 1, 2, 3, 4])
        self.assertEqual(values(Dataset.range(2, 9, 3)), [2, 5, 8])
        self.assertEqual(values(Dataset.range(3).repeat(2)), [0, 1, 2, 0, 1, 2])
        self.assertEqual(values(Dataset.range(3).repeat().take(5)), [0, 1, 2, 0, 1])
        self.assertEqual(values(Dataset.range(5).skip(3)), [3, 4])
        self.assertEqual(values(Dataset.range(7).shard(3, 1)), [1, 4])
        self.assertEqual(Dataset.range(7).shard(3, 0).cardinality(), 3)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "index is 3"):
            Dataset.range(7).shard(3, 3)
        self.assertEqual(Dataset.range(3).repeat().cardinality(), kiln.data.INFINITE_CARDINALITY)
        self.assertEqual(Dataset.range(3).filter(lambda x: True).cardinality(), kiln.data.UNKNOWN_CARDINALITY)
        self.assertEqual(len(Dataset.range(10).batch(3)), 4)
        self.assertEqual(len(Dataset.range(10).batch(3, drop_remainder=True)), 3)
        with self.assertRaises(TypeError):
            len(Dataset.range(3).repeat())

    def test_integer_arguments(self):
        # tf.data converts these to int64 tensors: a float, a string or a bool is a TypeError naming the
        # argument (int() would have truncated batch(2.7) to 2); NumPy ints and integer tensors are ints.
        self.assertEqual(values(Dataset.range(np.int64(3))), [0, 1, 2])
        self.assertEqual(values(Dataset.range(5).take(kiln.constant(2, dtype="int64"))), [0, 1])
        self.assertEqual(values(Dataset.range(np.array(3))), [0, 1, 2])  # 0-d arrays too
        with self.assertRaisesRegex(TypeError, "take: count must be a scalar integer"):
            Dataset.range(5).take(kiln.constant([2], dtype="int64"))
        cases = [(lambda: Dataset.range(5).batch(2.7), "batch: batch_size"),
                 (lambda: Dataset.range(2.0), "range: stop"),
                 (lambda: Dataset.range(5).take("3"), "take: count"),
                 (lambda: Dataset.range(5).shuffle(True), "shuffle: buffer_size"),
                 (lambda: Dataset.range(5).repeat(1.5), "repeat: count"),
                 (lambda: Dataset.range(5).shard(2, 0.5), "shard: index"),
                 (lambda: Dataset.range(5).padded_batch(2, padded_shapes=[1.5]), "padded_batch: padded_shapes"),
                 (lambda: Dataset.range(5).prefetch(None), "prefetch: buffer_size")]
        for make, message in cases:
            with self.assertRaisesRegex(TypeError, message + " must be an integer"):
                make()

    def test_shuffle_seeded_and_reshuffled(self):
        ds = Dataset.range(50).shuffle(50, seed=3)
        a, b = values(ds), values(ds)
        self.assertEqual(sorted(a), list(range(50)))
        self.assertNotEqual(a, list(range(50)))
        self.assertNotEqual(a, b)
        self.assertEqual(values(Dataset.range(50).shuffle(50, seed=3)), a)
        fixed = Dataset.range(50).shuffle(50, seed=3, reshuffle_each_iteration=False)
        self.assertEqual(values(fixed), values(fixed))
        kiln.set_seed(5)
        c = values(Dataset.range(50).shuffle(10))
        kiln.set_seed(5)
        self.assertEqual(values(Dataset.range(50).shuffle(10)), c)

    def test_map_takes_components_and_keeps_order(self):
        ds = Dataset.from_tensor_slices((np.arange(20), np.arange(20) * 10))
        serial = [int(v) for v in ds.map(lambda x, y: x + y)]
        self.assertEqual(serial, [i * 11 for i in range(20)])

        def slow(x, y):
            time.sleep(0.001 * (int(x) % 3))
            return y, x

        par = list(ds.map(slow, num_parallel_calls=4))
        self.assertEqual([(int(a), int(b)) for a, b in par], [(i * 10, i) for i in range(20)])
        auto = [int(a) for a, b in ds.map(slow, num_parallel_calls=AUTOTUNE)]
        self.assertEqual(auto, [i * 10 for i in range(20)])
        d = Dataset.from_tensor_slices({"a": np.arange(3)}).map(lambda row: row["a"] * 2)
        self.assertEqual(values(d), [0, 2, 4])

    def test_map_workers_run_kernels_at_one_thread(self):
        counts = set()

        def probe(x):
            counts.add(kiln.get_num_threads())
            return x

        list(Dataset.range(8).map(probe, num_parallel_calls=2))
        self.assertEqual(counts, {1})

    def test_filter_batch_padded_unbatch(self):
        self.assertEqual(values(Dataset.range(10).filter(lambda x: x % 3 == 0)), [0, 3, 6, 9])
        b = [t.numpy().tolist() for t in Dataset.range(7).batch(3)]
        self.assertEqual(b, [[0, 1, 2], [3, 4, 5], [6]])
        ragged = Dataset.range(1, 4).map(lambda n: kiln.constant([int(n)] * int(n)))
        p = [t.numpy().tolist() for t in ragged.padded_batch(3, padded_shapes=[None], padding_values=-1)]
        self.assertEqual(p, [[[1, -1, -1], [2, 2, -1], [3, 3, 3]]])
        p5 = next(iter(ragged.padded_batch(2, padded_shapes=[5])))
        self.assertEqual(p5.shape, (2, 5))
        # Shapes as tf.data takes them: a 1-D NumPy array, NumPy ints in a tuple.
        self.assertEqual(next(iter(ragged.padded_batch(2, padded_shapes=np.array([5])))).shape, (2, 5))
        self.assertEqual(next(iter(ragged.padded_batch(2, padded_shapes=(np.int64(4),)))).shape, (2, 4))
        pairs = Dataset.zip((ragged, Dataset.range(3))).padded_batch(3, padded_shapes=([4], []))
        xs, ys = next(iter(pairs))
        self.assertEqual(xs.shape, (3, 4))
        self.assertEqual(ys.numpy().tolist(), [0, 1, 2])
        with self.assertRaises(kiln.InvalidArgumentError):
            list(ragged.batch(3))
        self.assertEqual(values(Dataset.range(7).batch(3).unbatch()), list(range(7)))

    def test_zip_concatenate_enumerate_cache_prefetch(self):
        z = list(Dataset.zip((Dataset.range(3), Dataset.range(10, 20))))
        self.assertEqual([(int(a), int(b)) for a, b in z], [(0, 10), (1, 11), (2, 12)])
        # tf.data: any nest of tuples and dicts of datasets
        a, b = Dataset.range(3), Dataset.range(10, 13)
        nested = list(Dataset.zip((a, {"y": b, "x": a.map(lambda t: t * 2)})).as_numpy_iterator())
        self.assertEqual([(int(p), int(q["x"]), int(q["y"])) for p, q in nested], [(0, 0, 10), (1, 2, 11), (2, 4, 12)])
        self.assertEqual(list(Dataset.zip({"k": a}).as_numpy_iterator())[0], {"k": 0})
        with self.assertRaisesRegex(TypeError, r"element 1\[0\] is a int"):
            Dataset.zip((a, (3, b)))
        self.assertEqual(values(Dataset.range(2).concatenate(Dataset.range(5, 7))), [0, 1, 5, 6])
        e = [(int(i), int(v)) for i, v in Dataset.range(3, 5).enumerate(start=1)]
        self.assertEqual(e, [(1, 3), (2, 4)])
        calls = []
        c = Dataset.range(4).map(lambda x: calls.append(1) or x).cache()
        self.assertEqual(values(c), values(c))
        self.assertEqual(len(calls), 4)
        self.assertEqual(values(Dataset.range(100).prefetch(4)), list(range(100)))
        self.assertEqual(values(Dataset.range(10).map(lambda x: x, num_parallel_calls=3).prefetch(AUTOTUNE)),
                         list(range(10)))


class CallbackTest(unittest.TestCase):
    def test_generator(self):
        def gen(n):
            for i in range(n):
                yield np.full([2], i, np.float32), i

        ds = Dataset.from_generator(gen, args=(4,), output_signature=(TensorSpec([2], kiln.float32),
                                                                      TensorSpec([], kiln.int64)))
        self.assertEqual(ds.cardinality(), kiln.data.UNKNOWN_CARDINALITY)
        got = list(ds.batch(3))
        self.assertEqual(got[0][0].shape, (3, 2))
        self.assertEqual(got[1][1].numpy().tolist(), [3])
        self.assertEqual(len(list(ds.repeat(2))), 8)  # every pass calls the generator anew
        old = Dataset.from_generator(lambda: iter([1, 2]), output_types=kiln.int32, output_shapes=[])
        self.assertEqual(values(old), [1, 2])
        bad_shape = Dataset.from_generator(lambda: iter([[1, 2]]), output_signature=TensorSpec([3], "int32"))
        with self.assertRaises(kiln.InvalidArgumentError):
            list(bad_shape)

    def test_python_exceptions_come_out_of_the_loop(self):
        def bad(x):
            if int(x) == 3:
                raise Boom("three")
            return x

        for workers in (None, 2, AUTOTUNE):
            seen = []
            with self.assertRaises(Boom) as cm:
                for v in Dataset.range(10).map(bad, num_parallel_calls=workers).prefetch(2):
                    seen.append(int(v))
            self.assertEqual(str(cm.exception), "three")
            self.assertEqual(seen, [0, 1, 2])

        def gen():
            yield 1
            raise Boom("generator")

        with self.assertRaises(Boom):
            list(Dataset.from_generator(gen, output_signature=TensorSpec([], "int32")))
        with self.assertRaises(ZeroDivisionError):
            list(Dataset.range(3).filter(lambda x: 1 / 0))
        # A KilnError raised in a callback keeps its class.
        with self.assertRaises(kiln.NotFoundError):
            list(Dataset.range(3).map(lambda x: (_ for _ in ()).throw(kiln.NotFoundError("gone"))))

    def test_early_break_with_threads_running(self):
        before = threading.active_count()
        for _ in range(5):
            for v in Dataset.range(1000000).map(lambda x: x * 2, num_parallel_calls=3).prefetch(8):
                self.assertEqual(int(v), 0)
                break
        gc.collect()
        self.assertEqual(threading.active_count(), before)  # no Python-visible thread leaked
        it = iter(Dataset.range(1000000).map(lambda x: x, num_parallel_calls=2))
        next(it)
        del it  # frees the iterator while workers run Python code: no hang
        gc.collect()
        self.assertEqual(kiln.data._PASSES, {})


def idx_bytes(type_code, dims, payload):
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


class ReaderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_data_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data, gz=False):
        path = os.path.join(self.dir, name)
        with (gzip.open if gz else open)(path, "wb") as f:
            f.write(data)
        return path

    def test_idx_and_fashion_mnist_loader(self):
        p = self.write("train-images-idx3-ubyte.gz", idx_bytes(8, [2, 2, 2], bytes(range(8))), gz=True)
        t = kiln.data.read_idx(p)
        self.assertEqual((t.dtype, t.shape), ("uint8", (2, 2, 2)))
        self.assertEqual(t.numpy().ravel().tolist(), list(range(8)))
        self.write("train-labels-idx1-ubyte", idx_bytes(8, [2], b"\x01\x02"))
        self.write("t10k-images-idx3-ubyte", idx_bytes(8, [1, 2, 2], bytes(4)))
        self.write("t10k-labels-idx1-ubyte", idx_bytes(8, [1], b"\x07"))
        (x, y), (xt, yt) = kiln.data.load_fashion_mnist(self.dir)
        self.assertEqual(y.numpy().tolist(), [1, 2])
        (nx, ny), _ = kiln.keras.datasets.fashion_mnist.load_data(self.dir)
        self.assertIsInstance(nx, np.ndarray)
        self.assertEqual(nx.dtype, np.uint8)
        f = self.write("f", idx_bytes(0x0D, [2], struct.pack(">ff", 1.5, -2.0)))
        self.assertEqual(kiln.data.read_idx(f).numpy().tolist(), [1.5, -2.0])

    def test_corrupt_files_are_data_loss(self):
        p = self.write("cut", idx_bytes(8, [10, 28, 28], bytes(100)))
        with self.assertRaises(kiln.DataLossError) as cm:
            kiln.data.read_idx(p)
        self.assertIn(p, str(cm.exception))
        self.assertIn("truncated", str(cm.exception))
        whole = gzip.compress(idx_bytes(8, [500], bytes(500)))
        g = self.write("cut.gz", whole[: len(whole) // 2])
        with self.assertRaises(kiln.DataLossError):
            kiln.data.read_idx(g)
        with self.assertRaises(kiln.DataLossError):
            kiln.data.read_idx(self.write("magic", b"\x12\x34\x08\x01\x00\x00\x00\x01x"))
        with self.assertRaises(kiln.NotFoundError):
            kiln.data.read_idx(os.path.join(self.dir, "missing"))

    def test_csv(self):
        p = self.write("a.csv", b"x,y,name\n1,0.5,a\n2,1.5,b\n3,2.5,c\n")
        cols = kiln.data.read_csv(p, skip_text_columns=True)
        self.assertEqual(sorted(cols), ["x", "y"])
        self.assertEqual(cols["x"].numpy().tolist(), [1, 2, 3])
        self.assertEqual(cols["y"].dtype, "float32")
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.data.read_csv(p)
        typed = kiln.data.read_csv(p, column_types=["float64", "skip", "skip"])
        self.assertEqual(typed["x"].dtype, "float64")
        ds = kiln.data.experimental.make_csv_dataset(p, batch_size=2, label_name="y", num_epochs=1, shuffle=False)
        features, labels = next(iter(ds))
        self.assertEqual(list(features), ["x"])
        self.assertEqual(labels.numpy().tolist(), [0.5, 1.5])
        bad = self.write("bad.csv", b"x,y\n1\n")
        with self.assertRaises(kiln.DataLossError):
            kiln.data.read_csv(bad)

    def test_make_csv_dataset_shuffles_within_each_epoch(self):
        # tf's shuffle_and_repeat: shuffled, then repeated, so each epoch is a permutation of the rows
        p = self.write("five.csv", b"x\n0\n1\n2\n3\n4\n")
        for seed in range(8):
            ds = kiln.data.experimental.make_csv_dataset(p, batch_size=1, num_epochs=3, shuffle=True,
                                                         shuffle_seed=seed)
            rows = [int(b["x"].numpy()[0]) for b in ds]
            self.assertEqual(len(rows), 15)
            for epoch in range(3):
                self.assertEqual(sorted(rows[5 * epoch:5 * epoch + 5]), [0, 1, 2, 3, 4], (seed, rows))


class MapStructureTest(unittest.TestCase):
    def test_a_map_function_keeps_one_structure(self):
        # tf traces map_func once; a call returning another structure is an error, not dropped data
        for f, want, got in ((lambda x: x if int(x) == 0 else (x, x * 10), "a tensor", "a tuple of 2"),
                             (lambda x: (x, x) if int(x) == 0 else x, "a tuple of 2", "a tensor"),
                             (lambda x: {"a": x, "b": x} if int(x) == 0 else {"b": x, "c": x}, "a dict {'a'",
                              "a dict {'b'")):
            with self.assertRaisesRegex(kiln.InvalidArgumentError,
                                        "map function returned %s.*first call returned %s" % (got, want)):
                list(Dataset.range(3).map(f))
        self.assertEqual(values(Dataset.range(3).map(lambda x: (x, x * 10))), [(0, 0), (1, 10), (2, 20)])
        # Dicts are matched by key, as tf.nest (sorted keys), whatever order they were written in.
        d = Dataset.range(2).map(lambda x: {"b": x * 10, "a": x} if int(x) == 0 else {"a": x, "b": x * 10})
        self.assertEqual([{k: int(v) for k, v in e.items()} for e in d], [{"a": 0, "b": 0}, {"a": 1, "b": 10}])
        # A list the function returns is a tuple (tf.data's map), not one stacked tensor.
        self.assertEqual([(int(a), b.numpy().tolist()) for a, b in Dataset.range(2).map(lambda x: [x, kiln.constant([1, 2])])],
                         [(0, [1, 2]), (1, [1, 2])])


class TfDataSemanticsTest(unittest.TestCase):
    """Behaviours a tf.data user relies on (found by an audit against tf.data)."""

    def test_dicts_match_by_key(self):
        def gen():
            yield {"b": 2, "a": 1}
        sig = {"a": kiln.data.TensorSpec((), "int64"), "b": kiln.data.TensorSpec((), "int64")}
        got = [{k: int(v) for k, v in e.items()} for e in Dataset.from_generator(gen, output_signature=sig)]
        self.assertEqual(got, [{"a": 1, "b": 2}])
        first = Dataset.from_tensor_slices({"a": [1], "b": [2]})
        second = Dataset.from_tensor_slices({"b": [10], "a": [20]})
        self.assertEqual([{k: int(v) for k, v in e.items()} for e in first.concatenate(second)],
                         [{"a": 1, "b": 2}, {"a": 20, "b": 10}])
        # padded_batch's dict arguments go by key, also before a map has run once.
        d = Dataset.range(1, 3).map(lambda n: {"b": kiln.constant([7] * int(n)), "a": kiln.constant([1] * int(n))})
        batch = next(iter(d.padded_batch(2, padded_shapes={"a": [4], "b": [3]}, padding_values={"a": 0, "b": 9})))
        self.assertEqual(batch["a"].numpy().tolist(), [[1, 0, 0, 0], [1, 1, 0, 0]])
        self.assertEqual(batch["b"].numpy().tolist(), [[7, 9, 9], [7, 7, 9]])

    def test_csv_columns_keep_their_order_and_concatenate_says_so(self):
        d = tempfile.mkdtemp(prefix="kiln_py_data_")
        try:
            path = os.path.join(d, "c.csv")
            with open(path, "w") as f:
                f.write("x,label\n1,10\n2,20\n")
            csv = kiln.data.Dataset.from_tensor_slices(kiln.data.read_csv(path))  # sorted keys
            self.assertEqual([{k: int(v) for k, v in e.items()} for e in csv.concatenate(csv)],
                             [{"label": 10, "x": 1}, {"label": 20, "x": 2}] * 2)
            raw = kiln.data._csv_dataset(path, None, True, ",", False)  # columns in file order
            self.assertEqual([{k: int(v) for k, v in e.items()} for e in raw], [{"x": 1, "label": 10},
                                                                              {"x": 2, "label": 20}])
            with self.assertRaisesRegex(TypeError, "another order"):
                raw.concatenate(csv)
            with self.assertRaisesRegex(TypeError, "not known yet"):
                raw.concatenate(csv.map(lambda row: row))
            sorted_rows = raw.map(lambda row: row)
            self.assertEqual([int(e["x"]) for e in sorted_rows.concatenate(csv)], [1, 2, 1, 2])
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_concatenate_refuses_other_structures(self):
        with self.assertRaisesRegex(TypeError, "different structures"):
            Dataset.from_tensor_slices({"a": [1]}).concatenate(Dataset.range(3))
        with self.assertRaisesRegex(TypeError, "expected a kiln.data.Dataset"):
            Dataset.range(3).concatenate([1, 2])

    def test_filter_predicate_must_be_a_bool_scalar(self):
        self.assertEqual(values(Dataset.range(4).filter(lambda x: x % 2 == 0)), [0, 2])
        self.assertEqual(values(Dataset.range(4).filter(lambda x: bool(int(x) % 2))), [1, 3])
        self.assertEqual(values(Dataset.range(4).filter(lambda x: np.array(int(x) > 1))), [2, 3])
        for bad, what in ((lambda x: x % 2, "int64"), (lambda x: (True, False), "tuple")):
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "%s.*expected a bool scalar" % what):
                list(Dataset.range(4).filter(bad))

    def test_repeat_runs_every_pass_and_small_things(self):
        state = {"pass": 0}

        def gen():
            state["pass"] += 1
            yield from {1: [10], 2: [], 3: [30]}.get(state["pass"], [])
        d = Dataset.from_generator(gen, output_signature=kiln.data.TensorSpec((), "int64"))
        self.assertEqual(values(d.repeat(3)), [10, 30])  # an empty pass in the middle does not end it
        self.assertTrue(bool(Dataset.range(0)))
        self.assertEqual(list(Dataset.range(3).as_numpy_iterator()), [0, 1, 2])
        self.assertEqual(type(next(Dataset.range(3).as_numpy_iterator())).__name__, "int64")
        self.assertEqual(values(Dataset.zip(Dataset.range(2))), [0, 1])
        # one padding value for every component
        pb = Dataset.from_tensor_slices(([[1, 2], [3, 4]], [[5], [6]])).padded_batch(2, padded_shapes=([3], [2]),
                                                                                       padding_values=-1)
        a, b = next(iter(pb))
        self.assertEqual((a.numpy().tolist(), b.numpy().tolist()), ([[1, 2, -1], [3, 4, -1]], [[5, -1], [6, -1]]))
        # ... also before a map has run (the structure not known yet)
        pm = Dataset.range(1, 3).map(lambda n: (kiln.constant([1] * int(n)), kiln.constant([2] * int(n))))
        a, b = next(iter(pm.padded_batch(2, padding_values=-1)))
        self.assertEqual((a.numpy().tolist(), b.numpy().tolist()), ([[1, -1], [1, 1]], [[2, -1], [2, 2]]))

    def test_get_next_at_the_end_raises_out_of_range(self):
        # TF: iterator.get_next() raises tf.errors.OutOfRangeError at the end; next(iterator) StopIteration.
        it = iter(Dataset.range(1))
        self.assertEqual(int(it.get_next()), 0)
        with self.assertRaisesRegex(kiln.OutOfRangeError, "End of sequence"):
            it.get_next()
        with self.assertRaises(StopIteration):
            next(it)
        self.assertEqual([int(x) for x in iter(Dataset.range(2))], [0, 1])


class SharedIteratorTest(unittest.TestCase):
    """One iterator shared by threads, as a tf.data iterator: each element once, every thread ends."""

    def pull_together(self, ds, n_threads):
        it = iter(ds)
        got, errors = [], []

        def run():
            try:
                for v in it:
                    got.append(int(v))
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)
        threads = [threading.Thread(target=run, daemon=True) for _ in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "a thread never got StopIteration")
        self.assertEqual(errors, [])
        return got

    def test_each_element_goes_to_one_caller(self):
        got = self.pull_together(Dataset.range(3000).shuffle(500, seed=1), 4)
        self.assertEqual(sorted(got), list(range(3000)))

    def test_parallel_map_and_prefetch_end_for_every_caller(self):
        for ds in (Dataset.range(200).map(lambda v: v, num_parallel_calls=2), Dataset.range(200).prefetch(2),
                   Dataset.range(200).map(lambda v: v).prefetch(2)):
            for _ in range(5):
                self.assertEqual(sorted(self.pull_together(ds, 2)), list(range(200)))


if __name__ == "__main__":
    unittest.main()
