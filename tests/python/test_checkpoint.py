"""kiln.train's checkpoint writing and restoring from Python: Checkpoint(**kwargs) with
save / write / restore / read, the load status's checks and warning, CheckpointManager,
latest_checkpoint, Model.save_weights / load_weights, a subclassed model's keys by attribute
(lists and dicts filled after they were assigned too), the Keras fixture (../shared/fixtures;
skipped when absent) loaded into the same model built in Python, and the errors as kiln
exceptions."""
import copy
import gc
import json
import os
import pickle
import shutil
import tempfile
import threading
import unittest
import warnings

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

import kiln

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURE = os.path.join(ROOT, "..", "shared", "fixtures", "tf2_checkpoint", "keras_embedding.ckpt-0")
DATA = ".data-00000-of-00001"

needs_numpy = unittest.skipUnless(np is not None, "numpy not importable")


def small_model(first_units=8):
    m = kiln.Sequential([kiln.layers.Dense(first_units, activation="relu"),
                         kiln.layers.Dense(3, activation="softmax")])
    m.build((None, 5))
    return m


def batch(step):
    x = np.array([((i * 7 + step * 13) % 17) / 17.0 - 0.5 for i in range(30)], dtype=np.float32).reshape(6, 5)
    y = np.array([(i * 7 + step) % 3 for i in range(6)], dtype=np.int64)
    return x, y


def train_steps(model, start, steps):
    for s in range(start, start + steps):
        x, y = batch(s)
        model.train_on_batch(x, y)


def values(variables):
    return [v.numpy().tobytes() for v in variables]


def compiled(model, lr=0.01):
    model.compile(optimizer=kiln.optimizers.Adam(learning_rate=lr), loss="sparse_categorical_crossentropy")
    return model


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_py_ckpt_save_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def saved_keys(self, model, name):
        """model.save_weights to name in the test's directory; the checkpoint's keys and shapes."""
        model.save_weights(self.path(name))
        return kiln.train.load_checkpoint(self.path(name)).get_variable_to_shape_map()


class AttributeNet(kiln.Model):
    """A subclassed model keeping its layers in attributes, a list and a dict, as Keras guides do."""

    def __init__(self):
        super().__init__()
        self.d1 = kiln.layers.Dense(4, activation="relu")
        self.blocks = [kiln.layers.Dense(4, activation="relu"), kiln.layers.Dense(3)]
        self.heads = {"out": kiln.layers.Dense(2)}

    def call(self, x):
        x = self.d1(x)
        for b in self.blocks:
            x = b(x)
        return self.heads["out"](x)


class FilledNet(AttributeNet):
    """AttributeNet with its list and dict filled after they were assigned (append, +=, a new key)."""

    def __init__(self):
        kiln.Model.__init__(self)
        self.d1 = kiln.layers.Dense(4, activation="relu")
        self.blocks = []
        self.blocks.append(kiln.layers.Dense(4, activation="relu"))
        self.blocks += [kiln.layers.Dense(3)]
        self.heads = {}
        self.heads["out"] = kiln.layers.Dense(2)


def logits_compiled(model):
    model.compile(optimizer=kiln.optimizers.Adam(0.01),
                  loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@needs_numpy
class AttributeNamesTest(TempDirTest):
    def test_subclassed_models_key_sub_layers_by_attribute(self):
        x = np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5)
        y = np.array([0, 1, 1], dtype=np.int64)
        a = logits_compiled(AttributeNet())
        a.train_on_batch(x, y)
        keys = self.saved_keys(a, "w")
        # Keras 2.13's keys for the same model: attribute names, lists and dicts by index and key.
        for k, shape in [("d1/kernel", [5, 4]), ("blocks/0/kernel", [4, 4]), ("blocks/1/bias", [3]),
                         ("heads/out/kernel", [3, 2])]:
            self.assertEqual(keys.get(k + "/.ATTRIBUTES/VARIABLE_VALUE"), shape, k)
        self.assertFalse(any(k.startswith("layer") for k in keys), sorted(keys))
        self.assertIn("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", keys)

        b = logits_compiled(AttributeNet())
        b.build((None, 5))
        status = b.load_weights(self.path("w"))
        status.assert_existing_objects_matched()
        self.assertEqual(values(a.variables), values(b.variables))
        np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
        # The optimizer's moments land at the next step: both models then train alike.
        a.train_on_batch(x, y)
        b.train_on_batch(x, y)
        self.assertEqual(values(a.variables), values(b.variables))

    def test_reassigned_attributes_and_nested_lists(self):
        class Swap(kiln.Model):
            def __init__(self):
                super().__init__()
                old = kiln.layers.Dense(2)
                old.build((None, 4))
                self.first = old
                self.first = kiln.layers.Dense(3)  # the attribute now holds this one; old goes
                self.blocks = [kiln.layers.Dense(3), kiln.layers.Dense(3), kiln.layers.Dense(3)]
                self.blocks = [kiln.layers.Dense(3)]  # shorter: the old three go
                self.nested = [[kiln.layers.Dense(3), "relu", kiln.layers.Dense(3)], [kiln.layers.Dense(2)]]

            def call(self, x):
                x = self.blocks[0](self.first(x))
                for layer in self.nested[0][::2] + self.nested[1]:
                    x = layer(x)
                return x

        m = Swap()
        m.build((None, 4))
        self.assertEqual(len(m.layers), 5)
        self.assertEqual(len(m.trainable_weights), 10)  # the built old Dense(2) is not among them
        keys = self.saved_keys(m, "s")
        self.assertEqual(kernel_paths(keys), ["blocks/0", "first", "nested/0/0", "nested/0/2", "nested/1/0"])
        self.assertEqual(keys["first/kernel/.ATTRIBUTES/VARIABLE_VALUE"], [4, 3])


def kernel_paths(keys):
    """The attribute paths of the layers with a kernel among a checkpoint's keys, sorted."""
    return sorted(k[:-len("/kernel/.ATTRIBUTES/VARIABLE_VALUE")] for k in keys if "/kernel/" in k)


class Stack(kiln.Model):
    """Calls the layers of self.blocks, then of self.heads (nested lists and dicts flattened) in turn."""

    def __init__(self):
        super().__init__()
        self.blocks = []
        self.heads = {}

    def call(self, x):
        for layer in flatten([self.blocks, self.heads]):
            x = layer(x)
        return x


def flatten(value):
    if isinstance(value, (list, dict)):
        return [layer for v in (value.values() if isinstance(value, dict) else value) for layer in flatten(v)]
    return [value] if isinstance(value, kiln.layers.Layer) else []


@needs_numpy
class FilledContainersTest(TempDirTest):
    """Lists and dicts filled after they were assigned to a subclassed model's attributes track
    their layers as the same containers assigned whole do (Keras's ListWrapper / _DictWrapper)."""

    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(8, 5)
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=np.int64)

    def test_a_list_appended_then_filled(self):
        """Keras 3's TrackedList keeps what is appended as given: a list appended and filled
        afterwards is the one call loops over, and kiln finds its layers when the model builds."""
        class Staged(kiln.Model):
            def __init__(self):
                super().__init__()
                self.stages = []
                for _ in range(2):
                    stage = []
                    self.stages.append(stage)
                    stage.append(kiln.layers.Dense(4, activation="relu"))
                    stage.append(kiln.layers.Dense(4))
                self.head = kiln.layers.Dense(2)
                self.history_values = []

            def call(self, x):
                for stage in self.stages:
                    for layer in stage:
                        x = layer(x)
                return self.head(x)

        m = logits_compiled(Staged())
        self.assertIs(type(m.stages[0]), list)  # the caller's own list
        m.fit(self.x, self.y, batch_size=4, epochs=1, verbose=0)
        self.assertEqual(len(m.trainable_variables), 10)
        self.assertEqual(kernel_paths(self.saved_keys(m, "staged")),
                         ["head", "stages/0/0", "stages/0/1", "stages/1/0", "stages/1/1"])
        for v in (np.float32(1), (1, 2), [3, 4], np.zeros(2)):  # plain data stays plain data
            m.history_values.append(v)
        self.assertEqual(len(m.history_values), 4)

    def test_containers_keep_lists_semantics_and_changes_after_the_build_are_refused(self):
        class Holder(kiln.Model):
            def __init__(self):
                super().__init__()
                self.nums, self.names = [1, 2, 3], {}
                self.pair = ([], [])  # a tuple of lists filled afterwards: found at the build
                self.pair[0].append(kiln.layers.Dense(2))
                self.spare, self.moved = [[], []], []
                self.moved.append(self.spare.pop())  # another attribute's tracked list
                self.moved[0].append(kiln.layers.Dense(2))
                self.groups = {}
                self.groups.setdefault("g", []).append(kiln.layers.Dense(2))

            def call(self, x):
                return self.pair[0][0](x) + self.moved[0][0](x) + self.groups["g"][0](x)

        m = Holder()
        # Iterators are read once, as list's and dict's own methods read them.
        m.nums[0:2] = (v for v in (7, 8))
        m.names.update((k, v) for k, v in [("a", 1)])
        m.names |= iter([("b", 2)])
        self.assertEqual((m.nums, m.names), ([7, 8, 3], {"a": 1, "b": 2}))
        m(np.ones((1, 3), np.float32))
        self.assertEqual(kernel_paths(self.saved_keys(m, "holder")), ["groups/g/0", "moved/0/0", "pair/0/0"])
        for change in (lambda: m.moved[0].clear(), lambda: m.groups["g"].append(kiln.layers.Dense(1))):
            with self.assertRaises(kiln.FailedPreconditionError):
                change()
        self.assertEqual(len(m.trainable_variables), 6)

    def test_keys_and_fit_as_the_assigned_containers(self):
        a, f = logits_compiled(AttributeNet()), logits_compiled(FilledNet())
        self.assertIsInstance(f.blocks, list)
        self.assertIsInstance(f.heads, dict)
        for m in (a, f):
            m.build((None, 5))
        # The weights in the order of the assigned model: d1, blocks, heads.
        self.assertEqual([v.name for v in f.trainable_variables],
                         [v.name for layer in (f.d1, *f.blocks, f.heads["out"]) for v in layer.trainable_variables])
        f.set_weights(a.get_weights())
        before = values(f.trainable_variables)
        for m in (a, f):
            m.fit(self.x, self.y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        # fit trains every weight of the appended layers, exactly as the assigned model's.
        after = values(f.trainable_variables)
        self.assertTrue(all(b != v for b, v in zip(before, after)))
        self.assertEqual(after, values(a.trainable_variables))
        keys = self.saved_keys(f, "filled")
        self.assertEqual(keys, self.saved_keys(a, "assigned"))
        self.assertEqual(kernel_paths(keys), ["blocks/0", "blocks/1", "d1", "heads/out"])
        self.assertEqual(keys["heads/out/kernel/.ATTRIBUTES/VARIABLE_VALUE"], [3, 2])
        # Each model's checkpoint loads into the other.
        b = logits_compiled(AttributeNet())
        b.build((None, 5))
        b.load_weights(self.path("filled")).assert_existing_objects_matched().expect_partial()  # not Adam's moments
        self.assertEqual(values(b.variables), values(f.variables))

    def test_nested_lists_dicts_and_other_elements(self):
        m = Stack()
        m.blocks = [[kiln.layers.Dense(3)]]            # assigned with a layer, then filled further
        m.blocks[0].append(kiln.layers.Dense(3))      # a list inside the list
        m.blocks.insert(0, "relu")                    # not a layer: the layers move to blocks/1/...
        m.blocks.extend([[], kiln.layers.Dense(2)])
        m.blocks[2].append(kiln.layers.Dense(3))
        m.blocks[2] += [kiln.layers.Dense(3)]
        m.heads = {"a": {}}
        m.heads["a"]["b"] = kiln.layers.Dense(2)
        m.heads.setdefault("c", []).append(kiln.layers.Dense(2))
        m.sizes = [3, 1]
        m.sizes.append(2)
        m.sizes.sort()
        m.names = []
        m.names += ["x", "y"]
        m.build((None, 5))
        keys = self.saved_keys(m, "n")
        self.assertEqual(kernel_paths(keys), ["blocks/1/0", "blocks/1/1", "blocks/2/0", "blocks/2/1", "blocks/3",
                                              "heads/a/b", "heads/c/0"])
        self.assertEqual(keys["blocks/3/kernel/.ATTRIBUTES/VARIABLE_VALUE"], [3, 2])
        # The same containers assigned whole give the same keys.
        s = Stack()
        s.blocks = ["relu", [kiln.layers.Dense(3), kiln.layers.Dense(3)],
                    [kiln.layers.Dense(3), kiln.layers.Dense(3)], kiln.layers.Dense(2)]
        s.heads = {"a": {"b": kiln.layers.Dense(2)}, "c": [kiln.layers.Dense(2)]}
        s.build((None, 5))
        self.assertEqual(self.saved_keys(s, "s"), keys)
        # Lists of other values stay lists.
        self.assertEqual(m.sizes, [1, 2, 3])
        self.assertEqual(m.names, ["x", "y"])
        self.assertIsInstance(m.sizes, list)
        self.assertIs(type(m.sizes[:2]), list)
        self.assertIs(type(copy.copy(m.sizes)), list)
        self.assertIs(type(m.heads.copy()), dict)
        self.assertEqual(pickle.loads(pickle.dumps(m.names)), ["x", "y"])
        self.assertEqual(json.dumps(m.sizes), "[1, 2, 3]")
        self.assertEqual(repr(m.sizes), "[1, 2, 3]")
        self.assertEqual(m.sizes + [4], [1, 2, 3, 4])
        m.sizes.pop()  # after the build: no layer moves
        m.sizes[0] = 7
        del m.names[:]
        self.assertEqual((m.sizes, m.names), ([7, 2], []))

    def test_removed_before_the_build(self):
        m = Stack()
        m.blocks = [kiln.layers.Dense(3), kiln.layers.Dense(4), kiln.layers.Dense(5)]
        m.blocks.pop(1)                                   # blocks/1 is now the Dense(5)
        m.blocks.append(kiln.layers.Dense(6))
        m.blocks.remove(m.blocks[0])
        m.blocks[0:0] = [kiln.layers.Dense(2)]
        self.assertEqual(len(m.layers), 3)
        m.heads = {"a": kiln.layers.Dense(2), "b": kiln.layers.Dense(2)}
        del m.heads["a"]
        m.build((None, 5))
        keys = self.saved_keys(m, "r")
        self.assertEqual(kernel_paths(keys), ["blocks/0", "blocks/1", "blocks/2", "heads/b"])
        self.assertEqual([keys["blocks/%d/kernel/.ATTRIBUTES/VARIABLE_VALUE" % i][1] for i in range(3)], [2, 5, 6])
        self.assertEqual(len(m.layers), 4)

        # kiln cannot forget an attribute: an emptied container leaves its layers tracked (a
        # warning says so) until layers go in it again.
        e = Stack()
        e.blocks = [kiln.layers.Dense(3), kiln.layers.Dense(3)]
        with self.assertWarns(UserWarning) as cm:
            e.blocks.clear()
        self.assertIn("Stack.blocks holds no layers now", str(cm.warning))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            e.blocks.append("relu")  # no second warning
        e.blocks.append(kiln.layers.Dense(4))
        e.build((None, 5))
        self.assertEqual(kernel_paths(self.saved_keys(e, "e")), ["blocks/1"])
        self.assertEqual(len(e.layers), 1)

    def test_layers_change_after_the_build_raises(self):
        m = logits_compiled(FilledNet())
        m.fit(self.x, self.y, batch_size=4, epochs=1, verbose=0)
        weights = values(m.variables)
        blocks, heads = list(m.blocks), dict(m.heads)
        for change in (lambda: m.blocks.append(kiln.layers.Dense(2)), lambda: m.blocks.pop(),
                       lambda: m.blocks.reverse(), lambda: m.blocks.__setitem__(0, kiln.layers.Dense(4)),
                       lambda: m.blocks.clear(), lambda: m.heads.__setitem__("extra", kiln.layers.Dense(2)),
                       lambda: m.heads.pop("out"),
                       lambda: setattr(m, "blocks", [kiln.layers.Dense(4), kiln.layers.Dense(3)])):
            with self.assertRaises(kiln.FailedPreconditionError) as cm:
                change()
            self.assertRegex(str(cm.exception), r"^FilledNet\.(blocks|heads): the layers in it cannot change once "
                                                r"the layer is built")
            # Nothing changed: the containers, the layers, the weights.
            self.assertEqual((m.blocks, m.heads), (blocks, heads))
            self.assertEqual(len(m.layers), 4)
        self.assertEqual(values(m.variables), weights)
        m.blocks[0] = m.blocks[0]  # the same layers in the same places: allowed
        m.blocks = list(m.blocks)
        m.fit(self.x, self.y, batch_size=4, epochs=1, verbose=0)
        self.assertEqual(kernel_paths(self.saved_keys(m, "b")), ["blocks/0", "blocks/1", "d1", "heads/out"])

    def test_sub_layers_appended_in_build(self):
        class Tower(kiln.layers.Layer):
            def __init__(self, depth):
                super().__init__()
                self.depth = depth
                self.parts = []

            def build(self, input_shape):
                for _ in range(self.depth):  # allowed until the build ends
                    self.parts.append(kiln.layers.Dense(int(input_shape[-1]), activation="relu"))

            def call(self, x):
                for part in self.parts:
                    x = part(x)
                return x

        class Net(kiln.Model):
            def __init__(self):
                super().__init__()
                self.tower = Tower(2)
                self.out = kiln.layers.Dense(2)

            def call(self, x):
                return self.out(self.tower(x))

        m = logits_compiled(Net())
        m.fit(self.x, self.y, batch_size=4, epochs=1, verbose=0)
        self.assertEqual(len(m.trainable_variables), 6)
        self.assertEqual(kernel_paths(self.saved_keys(m, "t")), ["out", "tower/parts/0", "tower/parts/1"])


@needs_numpy
class RoundTripTest(TempDirTest):
    def test_resumed_training_is_bit_identical(self):
        a, b, c = compiled(small_model()), compiled(small_model()), compiled(small_model())
        for src, dst in zip(a.variables, c.variables):
            dst.assign(src.numpy())
        train_steps(a, 0, 3)
        ckpt_a = kiln.train.Checkpoint(model=a, optimizer=a.optimizer)
        self.assertEqual(ckpt_a.save(self.path("ckpt")), self.path("ckpt-1"))

        # A fresh process: other initial weights, an optimizer without slots.
        ckpt_b = kiln.train.Checkpoint(model=b, optimizer=b.optimizer)
        self.assertEqual(ckpt_b.save_counter, 0)
        status = ckpt_b.restore(self.dir)  # the directory's latest checkpoint
        self.assertIsInstance(status, kiln.train.CheckpointLoadStatus)
        self.assertEqual(ckpt_b.save_counter, 1)
        self.assertEqual(int(b.optimizer.iterations.numpy()), 3)
        status.assert_existing_objects_matched()
        with self.assertRaises(kiln.FailedPreconditionError) as cm:
            status.assert_consumed()  # Adam's moments wait for the slots of b's first step
        self.assertIn("not made yet", str(cm.exception))
        self.assertEqual(len(status.pending_values), 8)
        train_steps(b, 3, 2)
        self.assertIs(status.assert_consumed(), status)
        self.assertEqual(status.pending_values, [])

        train_steps(c, 0, 5)
        self.assertEqual(values(b.variables), values(c.variables))
        self.assertEqual(values(b.optimizer.variables), values(c.optimizer.variables))
        self.assertEqual(int(b.optimizer.iterations.numpy()), 5)

    def test_save_weights_and_load_weights(self):
        a, b = compiled(small_model()), compiled(small_model())
        train_steps(a, 0, 2)
        a.save_weights(self.path("w"))
        self.assertEqual(kiln.train.latest_checkpoint(self.dir), self.path("w"))
        status = b.load_weights(self.path("w"))
        self.assertEqual(values(b.variables), values(a.variables))
        self.assertEqual(int(b.optimizer.iterations.numpy()), 2)
        train_steps(a, 2, 1)
        train_steps(b, 2, 1)
        status.assert_consumed()
        self.assertEqual(values(b.variables), values(a.variables))
        b.load_weights(self.dir).expect_partial()  # a directory: its latest checkpoint
        with self.assertRaises(kiln.UnimplementedError):
            a.save_weights(self.path("w.h5"))
        with self.assertRaises(kiln.UnimplementedError):
            a.save_weights(self.path("w2"), save_format="h5")
        with self.assertRaises(kiln.FailedPreconditionError):
            a.save_weights(self.path("w"), overwrite=False)
        # An unbuilt model takes the weights when it builds (Keras's deferred restoration).
        unbuilt = kiln.Sequential([kiln.layers.Dense(8, activation="relu"),
                                   kiln.layers.Dense(3, activation="softmax")])
        status = unbuilt.load_weights(self.path("w"))
        with self.assertRaises(kiln.FailedPreconditionError) as cm:
            status.assert_consumed()
        self.assertIn("unbuilt model", str(cm.exception))
        status.expect_partial()  # the optimizer's values: this model is not compiled
        unbuilt.build((None, 5))
        built = small_model()
        built.load_weights(self.path("w")).expect_partial()
        self.assertEqual(values(unbuilt.variables), values(built.variables))
        # Dropped before the build, the status warns that its values wait for their variables (not
        # that no object took them), and the build still takes them.
        plain = kiln.Sequential([kiln.layers.Dense(3)])
        plain(np.ones((1, 5), np.float32))
        plain.save_weights(self.path("plain"))
        later = kiln.Sequential([kiln.layers.Dense(3)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            later.load_weights(self.path("plain"))
            gc.collect()
        messages = [str(w.message) for w in caught]
        self.assertTrue(any("waiting for their variables" in m for m in messages), messages)
        self.assertFalse(any("no object took" in m for m in messages), messages)
        later.build((None, 5))
        self.assertEqual(values(later.variables), values(plain.variables))


class SaveAndStateTest(TempDirTest):
    def test_threads_saving_weights_to_one_prefix(self):
        # Saves from two threads to one prefix take turns: none fails, and the prefix loads.
        model = small_model()
        errors = []

        def save_many():
            for _ in range(15):
                try:
                    model.save_weights(self.path("w"))
                except kiln.KilnError as e:  # pragma: no cover - the failure being tested
                    errors.append(str(e))

        threads = [threading.Thread(target=save_many) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        other = small_model()
        other.load_weights(self.path("w"))
        self.assertEqual(values(other.weights), values(model.weights))

    def test_save_numbering_state_file_and_latest_checkpoint(self):
        self.assertIsNone(kiln.train.latest_checkpoint(self.dir))
        v = kiln.Variable(1.0, name="v")
        ckpt = kiln.train.Checkpoint(v=v)
        ckpt.step = kiln.Variable(41, name="step", trainable=False, dtype="int64")  # tracked, as in TF
        self.assertEqual(ckpt.save(self.path("ckpt")), self.path("ckpt-1"))
        v.assign(2.0)
        self.assertEqual(ckpt.save(self.path("ckpt")), self.path("ckpt-2"))
        self.assertEqual(ckpt.save_counter, 2)
        self.assertTrue(os.path.exists(self.path("ckpt-2.index")) and os.path.exists(self.path("ckpt-2" + DATA)))
        with open(self.path("checkpoint")) as f:
            self.assertIn('model_checkpoint_path: "ckpt-2"', f.read())
        self.assertEqual(kiln.train.latest_checkpoint(self.dir), self.path("ckpt-2"))
        reader = kiln.train.load_checkpoint(self.dir)
        self.assertEqual(int(reader.get_tensor("save_counter/.ATTRIBUTES/VARIABLE_VALUE")), 2)
        self.assertEqual(int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")), 41)

        # write: exactly the prefix; the counter and the state file stay.
        self.assertEqual(ckpt.write(self.path("exact")), self.path("exact"))
        self.assertEqual(ckpt.save_counter, 2)
        self.assertEqual(kiln.train.latest_checkpoint(self.dir), self.path("ckpt-2"))

        # A new Checkpoint restored from the directory continues the numbering.
        v2, step2 = kiln.Variable(0.0, name="v"), kiln.Variable(0, name="step", trainable=False, dtype="int64")
        again = kiln.train.Checkpoint(step=step2, v=v2)
        again.restore(self.dir).assert_consumed()
        self.assertEqual(v2.value().item(), 2.0)
        self.assertEqual(step2.value().item(), 41)
        self.assertEqual(again.save_counter, 2)
        self.assertEqual(again.save(self.path("ckpt")), self.path("ckpt-3"))
        self.assertIs(again.v, v2)
        # read: exactly a prefix; restore(None): nothing (the first run of a restore-or-start loop).
        v2.assign(5.0)
        again.read(self.path("exact")).assert_existing_objects_matched()
        self.assertEqual(v2.value().item(), 2.0)
        self.assertIsNotNone(again.restore(None).expect_partial())
        with self.assertRaises(kiln.FailedPreconditionError):
            again.restore(None).assert_consumed()

        # Nesting: another Checkpoint's objects under a name.
        outer = kiln.train.Checkpoint(inner=ckpt)
        outer.write(self.path("outer"))
        self.assertTrue(kiln.train.load_checkpoint(self.path("outer")).has_tensor("inner/v/.ATTRIBUTES/VARIABLE_VALUE"))

    def test_manager_leaves_checkpoints_without_timestamps(self):
        # Checkpoint.save records no timestamps: TF's manager counts such checkpoints as preserved
        # and never deletes them (it manages those stamped after last_preserved_timestamp).
        ckpt = kiln.train.Checkpoint(v=kiln.Variable(1.0, name="v"))
        ckpt.save(self.path("ckpt"))
        manager = kiln.train.CheckpointManager(ckpt, self.dir, max_to_keep=1)
        self.assertEqual(manager.checkpoints, [])
        self.assertEqual(manager.latest_checkpoint, self.path("ckpt-1"))
        manager.save()
        manager.save()
        self.assertTrue(os.path.exists(self.path("ckpt-1.index")))
        self.assertFalse(os.path.exists(self.path("ckpt-2.index")))
        self.assertEqual(manager.checkpoints, [self.path("ckpt-3")])

    def test_failed_save_leaves_the_counter(self):
        # The state file cannot be written (a directory stands in its place): the save fails and
        # save_counter, as the manager's list, is as before.
        ckpt = kiln.train.Checkpoint(v=kiln.Variable(1.0, name="v"))
        manager = kiln.train.CheckpointManager(ckpt, self.dir, max_to_keep=2)
        os.makedirs(self.path("checkpoint"))
        with self.assertRaises(kiln.KilnError):
            ckpt.save(self.path("ckpt"))
        self.assertEqual(ckpt.save_counter, 0)
        with self.assertRaises(kiln.KilnError):
            manager.save()
        self.assertEqual((ckpt.save_counter, manager.checkpoints, manager.latest_checkpoint), (0, [], None))

    def test_manager_keeps_the_newest(self):
        v = kiln.Variable(1.0, name="v")
        ckpt = kiln.train.Checkpoint(v=v)
        manager = kiln.train.CheckpointManager(ckpt, self.dir, max_to_keep=2)
        self.assertEqual(manager.directory, self.dir)
        self.assertIs(manager.checkpoint, ckpt)
        self.assertIsNone(manager.latest_checkpoint)
        self.assertIsNone(manager.restore_or_initialize())
        ckpt.restore(manager.latest_checkpoint).expect_partial()  # None: a fresh start
        for i in range(1, 5):
            self.assertEqual(manager.save(), self.path("ckpt-%d" % i))
        self.assertEqual(manager.checkpoints, [self.path("ckpt-3"), self.path("ckpt-4")])
        self.assertEqual(manager.latest_checkpoint, self.path("ckpt-4"))
        for i in (1, 2):
            self.assertFalse(os.path.exists(self.path("ckpt-%d.index" % i)))
            self.assertFalse(os.path.exists(self.path("ckpt-%d%s" % (i, DATA))))
        self.assertTrue(os.path.exists(self.path("ckpt-3.index")))
        self.assertEqual(manager.save(checkpoint_number=100), self.path("ckpt-100"))
        self.assertEqual(ckpt.save_counter, 5)
        self.assertFalse(os.path.exists(self.path("ckpt-3.index")))
        with self.assertRaises(kiln.InvalidArgumentError):
            manager.save(checkpoint_number=-2)

        # A later process carries on with the directory's list, and restores the newest.
        v2 = kiln.Variable(0.0, name="v")
        ckpt2 = kiln.train.Checkpoint(v=v2)
        later = kiln.train.CheckpointManager(ckpt2, self.dir, max_to_keep=2)
        self.assertEqual(later.checkpoints, [self.path("ckpt-4"), self.path("ckpt-100")])
        self.assertEqual(later.restore_or_initialize(), self.path("ckpt-100"))
        self.assertEqual(v2.value().item(), 1.0)
        self.assertEqual(later.save(), self.path("ckpt-6"))
        self.assertFalse(os.path.exists(self.path("ckpt-4.index")))

        named = kiln.train.CheckpointManager(ckpt, self.path("named"), None, checkpoint_name="model",
                                             keep_checkpoint_every_n_hours=2)
        for _ in range(3):
            named.save()
        self.assertEqual(len(named.checkpoints), 3)
        self.assertTrue(os.path.exists(self.path("named", "model-6.index")))
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            kiln.train.CheckpointManager(ckpt, self.dir, max_to_keep=0)
        self.assertIn("max_to_keep", str(cm.exception))
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.CheckpointManager(ckpt, self.dir, 1, keep_checkpoint_every_n_hours=-1)
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.CheckpointManager(object(), self.dir, 1)


class LoadStatusTest(TempDirTest):
    def test_checks_name_what_did_not_match_and_warn(self):
        v, w = kiln.Variable(1.0, name="v"), kiln.Variable(2.0, name="w")
        kiln.train.Checkpoint(v=v, w=w).write(self.path("vw"))
        extra = kiln.Variable(0.0, name="extra")
        partial = kiln.train.Checkpoint(v=kiln.Variable(0.0, name="v"), extra=extra)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status = partial.read(self.path("vw"))
            with self.assertRaises(kiln.FailedPreconditionError) as cm:
                status.assert_consumed()
            self.assertIn("variable 'extra' at 'extra'", str(cm.exception))
            with self.assertRaises(kiln.FailedPreconditionError):
                status.assert_existing_objects_matched()
            status.assert_nontrivial_match()
            self.assertEqual(status.unmatched_values, ["w"])
            self.assertEqual(len(status.unmatched_objects), 1)
            self.assertEqual(status.path, self.path("vw"))
            self.assertEqual(status.restored_count, 1)
            self.assertEqual(caught, [])
            del status
            gc.collect()
            # Dropped with a value no object took: TF's warning, as a Python UserWarning.
            self.assertEqual(len(caught), 1)
            self.assertIn("expect_partial", str(caught[0].message))
            partial.read(self.path("vw")).expect_partial()
            gc.collect()
            self.assertEqual(len(caught), 1)


class ErrorsTest(TempDirTest):
    def test_shape_mismatch_names_both_shapes_and_changes_nothing(self):
        saved, wrong = small_model(8), small_model(9)
        saved.save_weights(self.path("w"))
        before = wrong.variables[0].value().tolist()
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            wrong.load_weights(self.path("w"))
        self.assertIn("[5, 9]", str(cm.exception))
        self.assertIn("[5, 8]", str(cm.exception))
        self.assertEqual(wrong.variables[0].value().tolist(), before)

    def test_corrupt_file_is_data_loss(self):
        v = kiln.Variable([1.0, 2.0, 3.0], name="v")
        kiln.train.Checkpoint(v=v).write(self.path("c"))
        with open(self.path("c" + DATA), "r+b") as f:
            f.seek(2)
            b = f.read(1)
            f.seek(2)
            f.write(bytes([b[0] ^ 0xFF]))
        v2 = kiln.Variable([0.0, 0.0, 0.0], name="v")
        with self.assertRaises(kiln.DataLossError):
            kiln.train.Checkpoint(v=v2).read(self.path("c"))
        self.assertEqual(v2.value().tolist(), [0.0, 0.0, 0.0])
        with self.assertRaises(kiln.NotFoundError):
            kiln.train.Checkpoint(v=v2).restore(self.path("missing"))

    def test_bad_objects_and_names(self):
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.Checkpoint(model="not a model")
        with self.assertRaises(kiln.InvalidArgumentError):
            kiln.train.Checkpoint(save_counter=kiln.Variable(1.0))
        with self.assertRaises(kiln.UnimplementedError):
            kiln.train.Checkpoint(root=small_model())
        with self.assertRaises(kiln.UnimplementedError):
            kiln.train.latest_checkpoint(self.dir, latest_filename="state")


@unittest.skipUnless(os.path.exists(FIXTURE + ".index"), "the Keras checkpoint fixture is not in " + FIXTURE)
@needs_numpy
class KerasFixtureTest(unittest.TestCase):
    def test_loads_into_the_same_model(self):
        # The fixture's model: Keras Sequential [Flatten, Dense(200, relu), Dropout, Dense(10)] on 28x28.
        m = kiln.Sequential([kiln.layers.Flatten(), kiln.layers.Dense(200, activation="relu"),
                             kiln.layers.Dropout(0.2), kiln.layers.Dense(10, activation="softmax")])
        m.build((None, 28, 28))
        m.compile(optimizer=kiln.optimizers.Adam(learning_rate=0.5), loss="sparse_categorical_crossentropy")
        status = m.load_weights(FIXTURE)
        self.assertEqual(int(m.optimizer.iterations.numpy()), 1500)
        status.assert_existing_objects_matched()
        reader = kiln.train.load_checkpoint(FIXTURE)
        kernel = reader.get_tensor("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertEqual(m.variables[0].numpy().tobytes(), kernel.tobytes())
        bias = reader.get_tensor("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertEqual(m.variables[3].numpy().tobytes(), bias.tobytes())
        lr = reader.get_tensor("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
        self.assertEqual(m.optimizer.learning_rate, float(lr))
        self.assertEqual(len(status.pending_values), 8)  # Adam's moments, until the first step
        m.train_on_batch(np.full((2, 28, 28), 0.25, dtype=np.float32), np.array([1, 7], dtype=np.int64))
        status.assert_consumed()
        self.assertEqual(int(m.optimizer.iterations.numpy()), 1501)


if __name__ == "__main__":
    unittest.main()
