"""Keras layers from Python over the C ABI: the seed's three examples, built-in layers, configs,
errors (a Python exception raised in call comes back unchanged), and the weak link."""
import gc
import unittest
import warnings

import numpy as np

import kiln
from kiln import layers


class MyDense(layers.Layer):
    def __init__(self, in_dim, out_dim, **kwargs):
        super().__init__(**kwargs)
        self.w = self.add_weight(shape=(in_dim, out_dim), initializer="random_normal", trainable=True, name="kernel")
        self.b = self.add_weight(shape=(out_dim,), initializer="zeros", trainable=True, name="bias")

    def call(self, inputs):
        return kiln.matmul(inputs, self.w) + self.b


class MyModel(kiln.Model):
    def __init__(self):
        super().__init__()
        self.dense1 = MyDense(4, 8)
        self.dense2 = MyDense(8, 3)

    def call(self, x, training=False):
        return self.dense2(kiln.relu(self.dense1(x)))


class SegPosEmbedding(layers.Layer):
    def __init__(self, type_vocab=2, max_len=16, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.type_vocab, self.max_len = type_vocab, max_len
        self.norm = layers.LayerNormalization()
        self.drop = layers.Dropout(rate)

    def build(self, input_shape):
        hidden = input_shape[0][-1]
        self.type_table = self.add_weight(shape=(self.type_vocab, hidden), initializer="truncated_normal",
                                          name="token_type_embeddings")
        self.pos_table = self.add_weight(shape=(self.max_len, hidden), initializer="truncated_normal",
                                         name="position_embeddings")

    def call(self, inputs, training=None):
        x, types = inputs
        seq = x.shape[1]
        y = x + kiln.gather(self.type_table, types) + kiln.gather(self.pos_table, kiln.range(0, seq, 1, kiln.int32))
        return self.drop(self.norm(y), training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"type_vocab": self.type_vocab, "max_len": self.max_len})
        return config


class LayersTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_my_dense_in_a_model_lists_weights_in_creation_order(self):
        m = MyModel()
        y = m(np.ones((5, 4), np.float32))
        self.assertEqual(y.shape, (5, 3))
        names = [v.name for v in m.trainable_variables]
        self.assertEqual(names, ["my_dense/kernel", "my_dense/bias", "my_dense_1/kernel", "my_dense_1/bias"])
        self.assertEqual(m.name, "my_model")
        with kiln.GradientTape() as tape:
            loss = kiln.reduce_sum(m(np.ones((2, 4), np.float32)))
        grads = tape.gradient(loss, m.trainable_variables)
        self.assertTrue(all(g is not None for g in grads))
        self.assertIs(m.layers[0], m.dense1)  # the same Python object back

    def test_seg_pos_embedding_builds_from_the_first_input(self):
        emb = SegPosEmbedding()
        self.assertFalse(emb.built)
        x = kiln.constant(np.random.RandomState(0).randn(2, 5, 8).astype(np.float32))
        types = kiln.constant(np.array([[0, 0, 1, 1, 1], [0, 1, 0, 1, 0]], np.int32))
        y = emb([x, types], training=False)
        self.assertEqual(y.shape, (2, 5, 8))
        self.assertTrue(emb.built)
        self.assertEqual([v.name for v in emb.weights][:3], ["seg_pos_embedding/token_type_embeddings",
                                                              "seg_pos_embedding/position_embeddings",
                                                              "seg_pos_embedding/layer_normalization/gamma"])
        np.testing.assert_array_equal(emb([x, types]).numpy(), y.numpy())  # inference is deterministic
        cfg = emb.get_config()
        self.assertEqual((cfg["name"], cfg["type_vocab"], cfg["max_len"]), ("seg_pos_embedding", 2, 16))
        self.assertEqual(layers.serialize(emb)["config"]["max_len"], 16)  # through C's get_config

    def test_nested_sequential_build_and_summary(self):
        inner = kiln.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10)])
        model = kiln.Sequential([inner, layers.Dense(2)])
        model.build((None, 784))
        lines = []
        model.summary(print_fn=lines.append)
        text = "\n".join(lines)
        self.assertIn('Model: "sequential_1"', text)
        self.assertIn(" sequential (Sequential)     (None, 10)                50890     ", text)
        self.assertIn(" dense_2 (Dense)             (None, 2)                 22        ", text)
        self.assertIn("Total params: 50912 (198.88 KB)", text)
        self.assertIn("Non-trainable params: 0 (0.00 Byte)", text)
        self.assertEqual(model.count_params(), 50912)
        self.assertEqual([v.name for v in model.trainable_variables][:2],
                         ["sequential_1/sequential/dense/kernel", "sequential_1/sequential/dense/bias"])
        self.assertIs(model.get_layer("sequential"), inner)

    def test_summary_of_a_model_not_built_raises(self):
        lines = []
        for model in (MyModel(), kiln.Sequential([layers.Dense(2)])):
            with self.assertRaises(ValueError) as cm:  # as Keras
                model.summary(print_fn=lines.append)
            self.assertIsInstance(cm.exception, kiln.InvalidArgumentError)
            self.assertEqual(str(cm.exception), "This model has not yet been built. Build the model first by calling "
                                                "`build()` or by calling the model on a batch of data.")
        self.assertEqual(lines, [])
        model(kiln.constant(np.ones((2, 4), np.float32)))  # called on a batch: built
        model.summary(print_fn=lines.append)
        self.assertIn("Total params: 10 (40.00 Byte)", lines)

    def test_model_build_builds_sub_layers(self):
        m = MyModel()
        m.build((None, 4))
        self.assertTrue(m.built)
        self.assertEqual(m.count_params(), 4 * 8 + 8 + 8 * 3 + 3)

    def test_builtin_layers_and_config_round_trip(self):
        d = layers.Dense(3, activation="tanh", kernel_regularizer="l2")
        y = d(np.ones((2, 4), np.float32))
        self.assertEqual(y.shape, (2, 3))
        cfg = d.get_config()
        self.assertEqual((cfg["units"], cfg["activation"]), (3, "tanh"))
        self.assertEqual(cfg["kernel_initializer"]["class_name"], "GlorotUniform")
        back = layers.Dense.from_config(cfg)
        self.assertEqual(back.get_config(), cfg)
        self.assertEqual(len(d.losses), 1)
        # An activity regularizer's loss is divided by the batch size (tf.keras, Keras >= 3.14):
        # y = 3 over [4, 2], 0.01 * 8 * 9 / 4.
        act = layers.Dense(2, activity_regularizer="l2", kernel_initializer="ones")
        act(np.ones((4, 3), np.float32))
        self.assertAlmostEqual(float(act.losses[0].numpy()), 0.18, places=6)
        again = layers.deserialize(layers.serialize(d))
        self.assertIsInstance(again, layers.Dense)
        bn = layers.BatchNormalization()
        bn(np.ones((4, 3), np.float32), training=True)
        self.assertEqual(len(bn.non_trainable_weights), 2)
        seq = kiln.Sequential([layers.Dense(2)])
        seq.trainable = False
        seq.build((None, 3))
        self.assertEqual(seq.trainable_weights, [])

    def test_errors_name_the_layer(self):
        d = layers.Dense(3)
        d(np.ones((2, 4), np.float32))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"layer 'dense' \(Dense\).*expected the last axis"):
            d(np.ones((2, 5), np.float32))
        with self.assertRaisesRegex(kiln.NotFoundError, "unknown layer class 'Nope'"):
            layers.deserialize({"class_name": "Nope", "config": {}})
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "unknown config key 'unitz'"):
            layers.Dense.from_config({"units": 2, "unitz": 3})

        class Late(layers.Layer):
            def call(self, x):
                self.add_weight(shape=(1,), name="late")
                return x
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "after the layer was built"):
            Late()(np.ones((1,), np.float32))

        class Dup(layers.Layer):
            def build(self, shape):
                self.add_weight(shape=(1,), name="w")
                self.add_weight(shape=(1,), name="w")

            def call(self, x):
                return x
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "a weight named 'w' already exists"):
            Dup()(np.ones((1,), np.float32))

    def test_tensors_after_the_inputs_go_on_to_call(self):
        # Keras 3: layer(a, b) calls call(a, b); a build of two shapes gets both, one of one shape the first.
        class Pair(layers.Layer):
            def build(self, a_shape, b_shape):
                self.shapes = (a_shape, b_shape)
                self.w = self.add_weight(shape=(a_shape[-1],), initializer="ones")

            def call(self, a, b, training=None):
                return a * self.w + b * (10.0 if training else 1.0)

        class Difference(layers.Layer):
            def build(self, input_shape):
                self.shape = input_shape

            def call(self, a, b):
                return a - b

        a, b = kiln.ones((2, 3)), np.full((2, 3), 2.0, np.float32)
        pair = Pair()
        np.testing.assert_array_equal(pair(a, b).numpy(), np.full((2, 3), 3.0))
        self.assertEqual(pair.shapes, ((2, 3), (2, 3)))
        np.testing.assert_array_equal(pair(a, b, training=True).numpy(), np.full((2, 3), 21.0))
        np.testing.assert_array_equal(pair(a, b, True).numpy(), np.full((2, 3), 21.0))  # then training
        built = Pair()
        built.build((None, 3), (None, 3))
        self.assertTrue(built.built)
        self.assertEqual(built.shapes, ((None, 3), (None, 3)))
        difference = Difference()
        np.testing.assert_array_equal(difference(a, b).numpy(), np.full((2, 3), -1.0))
        self.assertEqual(difference.shape, (2, 3))

        class Identity(layers.Layer):
            def call(self, inputs, training=None):
                return inputs

        # A tensor beyond what call takes is training, as before: a [2, 3] one is refused.
        with self.assertRaisesRegex(TypeError, r"Identity.__call__: training got a tensor of shape \(2, 3\); expected "
                                    r"a bool. Give several inputs as one list, layer\(\[a, b\]\)"):
            Identity()(a, b)
        with self.assertRaisesRegex(TypeError, r"Dense.__call__: training got a tensor of shape \(2, 3\)"):
            layers.Dense(2)(a, b)
        self.assertEqual(Identity()(a, kiln.constant(True)).shape, (2, 3))  # a scalar bool tensor: training
        self.assertEqual(layers.Dropout(0.5)(a, np.array(False)).shape, (2, 3))
        with self.assertRaisesRegex(TypeError, r"training got a tensor of shape \(2, 3\); expected a bool"):
            Identity()(a, training=kiln.ones((2, 3)))
        with self.assertRaisesRegex(TypeError, "got a list of inputs and 1 more positional tensors"):
            Pair()([a, b], b)
        self.assertEqual(Identity()(a, False).shape, (2, 3))  # training positionally, as before

    def test_python_exception_in_call_is_reraised(self):
        class Boom(layers.Layer):
            def call(self, x):
                raise ZeroDivisionError("boom in call")
        model = kiln.Sequential([layers.Dense(2), Boom()])
        with self.assertRaisesRegex(ZeroDivisionError, "boom in call"):
            model(np.ones((1, 3), np.float32))

    def test_no_reference_cycle(self):
        import weakref
        m = MyModel()
        m(np.ones((1, 4), np.float32))
        ref = weakref.ref(m)
        del m
        gc.collect()
        self.assertIsNone(ref())


class IdsAndFeatures(kiln.Model):
    """A model with an int32 input: built by its first call, it sees that call's real inputs."""

    def __init__(self):
        super().__init__()
        self.emb = layers.Embedding(10, 2)
        self.dense = layers.Dense(2)
        self.calls = 0

    def call(self, inputs):
        self.calls += 1
        x, ids = inputs
        return self.dense(x) + kiln.reduce_sum(self.emb(ids), axis=1)


class VariableAttributes(layers.Layer):
    """The subclassing guide's first Linear: weights as tf.Variable attributes, not add_weight."""

    def __init__(self, units=2, input_dim=3):
        super().__init__()
        self.w = kiln.Variable(kiln.random.normal((input_dim, units), seed=1), name="w")
        self.b = kiln.Variable(kiln.zeros((units,)), name="b", trainable=False)
        self.k = self.add_weight(name="k", shape=(units,), initializer="ones")  # tracked once

    def call(self, x):
        return kiln.matmul(x, self.w) * self.k + self.b


class VariableAttributesTest(unittest.TestCase):
    def test_variables_in_attributes_are_weights_and_train(self):
        layer = VariableAttributes()
        # Trainable first (w, then add_weight's k), then b, made non-trainable.
        self.assertEqual([v.name.split("/")[-1] for v in layer.weights], ["w", "k", "b"])
        self.assertEqual(len(layer.trainable_weights), 2)
        model = kiln.Sequential([kiln.keras.Input((3,)), layer])
        model.compile(kiln.optimizers.SGD(0.1), "mse")
        x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
        y = np.ones((4, 2), np.float32)
        w0 = layer.w.numpy().copy()
        h = model.fit(x, y, epochs=3, verbose=0).history
        self.assertFalse(np.array_equal(layer.w.numpy(), w0))  # fit trained it
        self.assertLess(h["loss"][-1], h["loss"][0])
        np.testing.assert_array_equal(layer.b.numpy(), np.zeros(2, np.float32))
        # Checkpoints name them by the attribute, as Keras's.
        import os, shutil, tempfile
        d = tempfile.mkdtemp(prefix="kiln_py_varattr_")
        try:
            model.save_weights(os.path.join(d, "w"))
            keys = kiln.train.load_checkpoint(os.path.join(d, "w")).get_variable_to_shape_map()
            self.assertEqual(keys.get("layer_with_weights-0/w/.ATTRIBUTES/VARIABLE_VALUE"), [3, 2])
            self.assertEqual(keys.get("layer_with_weights-0/b/.ATTRIBUTES/VARIABLE_VALUE"), [2])
        finally:
            shutil.rmtree(d, ignore_errors=True)
        # After the build a variable stays a plain attribute (a counter, say), with a warning.
        with self.assertWarnsRegex(UserWarning, "late: a variable assigned after the layer was built is not one of "
                                   "its weights"):
            layer.late = kiln.Variable(kiln.zeros((1,)))
        self.assertEqual(len(layer.weights), 3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            layer.w = layer.w  # one of its weights already: nothing to say


class ModelBuiltByCallTest(unittest.TestCase):
    def test_first_call_builds_from_the_real_inputs_once(self):
        m = IdsAndFeatures()
        x = kiln.constant(np.ones((2, 3), np.float32))
        ids = kiln.constant(np.array([[1, 2], [3, 4]], np.int32))
        y = m([x, ids])
        self.assertEqual(m.calls, 1)  # no extra call on float zeros (which Embedding would refuse)
        self.assertTrue(m.built)
        self.assertEqual(y.shape, (2, 2))
        self.assertEqual(len(m.trainable_variables), 3)
        np.testing.assert_array_equal(m([x, ids]).numpy(), y.numpy())


if __name__ == "__main__":
    unittest.main()


class InitializersTest(unittest.TestCase):
    def test_objects_names_and_seeds(self):
        from kiln import initializers, regularizers
        a = initializers.RandomNormal(stddev=0.5, seed=3)((4, 5)).numpy()
        b = initializers.RandomNormal(stddev=0.5, seed=3)((4, 5)).numpy()
        np.testing.assert_array_equal(a, b)  # a seeded initializer repeats
        self.assertAlmostEqual(float(np.std(initializers.RandomNormal(stddev=0.5, seed=4)((200, 200)).numpy())), 0.5,
                               delta=0.02)
        g = initializers.glorot_uniform()((30, 50)).numpy()
        limit = np.sqrt(6.0 / 80)
        self.assertLessEqual(float(np.abs(g).max()), limit)
        self.assertGreater(float(np.abs(g).max()), 0.9 * limit)
        q = initializers.Orthogonal(seed=1)((6, 4)).numpy()
        np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
        self.assertEqual(initializers.serialize(initializers.HeNormal(seed=2)),
                         {"class_name": "HeNormal", "config": {"seed": 2}})
        np.testing.assert_array_equal(initializers.get("ones")((2,)).numpy(), [1, 1])
        d = layers.Dense(3, kernel_initializer=initializers.Constant(value=0.5),
                         kernel_regularizer=regularizers.L1L2(l1=0.1, l2=0.2))
        d(np.ones((1, 2), np.float32))
        np.testing.assert_array_equal(d.trainable_variables[0].numpy(), np.full((2, 3), 0.5, np.float32))
        self.assertAlmostEqual(float(d.losses[0].numpy()), 0.1 * 3 + 0.2 * 1.5, places=5)
        self.assertEqual(d.get_config()["kernel_regularizer"], {"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}})


class ConcurrencyTest(unittest.TestCase):
    def test_built_model_called_from_four_threads(self):
        import threading
        model = kiln.Sequential([layers.Dense(16, activation="gelu"), layers.LayerNormalization(), MyDense(16, 4)])
        x = kiln.constant(np.random.RandomState(3).randn(8, 12).astype(np.float32))
        want = model(x).numpy()
        got, errors = [None] * 4, []

        def run(i):
            try:
                for _ in range(20):
                    got[i] = model(x).numpy()
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for g in got:
            np.testing.assert_array_equal(g, want)


class TrainingFromTheCallContextTest(unittest.TestCase):
    """Keras's call context: a layer called inside another's call without training= takes that call's."""

    class Block(layers.Layer):  # call() has no training argument and passes none on
        def __init__(self):
            super().__init__()
            self.drop = layers.Dropout(0.5)

        def call(self, x):
            return self.drop(x)

    class Net(kiln.Model):  # takes training but does not forward it
        def __init__(self):
            super().__init__()
            self.bn = layers.BatchNormalization()

        def call(self, x, training=None):
            return self.bn(x)

    def test_dropout_inside_a_custom_layer(self):
        x = np.ones((50, 40), np.float32)
        model = kiln.Sequential([self.Block()])
        zeros = (model(x, training=True).numpy() == 0).sum()
        self.assertTrue(700 < zeros < 1300, zeros)
        self.assertEqual((model(x, training=False).numpy() == 0).sum(), 0)
        self.assertEqual((model(x).numpy() == 0).sum(), 0)
        # fit calls the model in training: the Dropout inside drops (SGD(0) leaves the weights)
        model.compile(kiln.optimizers.SGD(0.0), "mse")
        loss = model.fit(x, x, batch_size=50, epochs=1, verbose=0).history["loss"][0]
        self.assertGreater(loss, 0.5)
        self.assertEqual(model.evaluate(x, x, batch_size=50, verbose=0), 0.0)

    def test_batch_norm_inside_a_model_learns_its_moving_mean(self):
        x = np.full((8, 4), 3.0, np.float32)
        net = self.Net()
        net(x, training=True)
        np.testing.assert_allclose(net.bn.get_weights()[2], np.full(4, 0.03, np.float32), rtol=1e-6)
        net(x)  # inference: the moving mean stays
        np.testing.assert_allclose(net.bn.get_weights()[2], np.full(4, 0.03, np.float32), rtol=1e-6)
        # an explicit training= still wins over the context
        inner = layers.Dropout(0.5)

        class Explicit(layers.Layer):
            def call(self, x):
                return inner(x, training=False)
        self.assertEqual((kiln.Sequential([Explicit()])(np.ones((10, 10), np.float32), training=True)
                          .numpy() == 0).sum(), 0)


class SequentialCloneTest(unittest.TestCase):
    def test_from_config_of_a_built_model_is_built(self):
        # Keras's clone pattern: from_config(get_config()), then set_weights(get_weights())
        model = kiln.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)])
        self.assertNotIn("build_input_shape", model.get_config())
        model.build((None, 3))
        self.assertEqual(model.get_config()["build_input_shape"], [None, 3])
        clone = kiln.Sequential.from_config(model.get_config())
        self.assertTrue(clone.built)
        clone.set_weights(model.get_weights())
        x = np.ones((2, 3), np.float32)
        np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())


class InputTest(unittest.TestCase):
    """keras.Input / InputLayer and the legacy input_shape arguments in a Sequential model."""

    def test_input_builds_the_model_as_it_is_made(self):
        K = kiln.keras
        model = K.Sequential([K.Input(shape=(3,)), K.layers.Dense(4, activation="relu"), K.layers.Dense(2)])
        self.assertTrue(model.built)
        self.assertEqual(len(model.layers), 2)  # the InputLayer is not listed, as Keras's
        self.assertEqual([tuple(w.shape) for w in model.weights], [(3, 4), (4,), (4, 2), (2,)])
        first = model.get_config()["layers"][0]
        self.assertEqual(first["class_name"], "InputLayer")
        self.assertEqual(first["config"]["batch_shape"], [None, 3])
        clone = K.Sequential.from_config(model.get_config())
        self.assertTrue(clone.built)
        clone.set_weights(model.get_weights())
        x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())
        model.compile("sgd", "mse")  # and it trains
        model.fit(x, np.zeros((2, 2), np.float32), verbose=0)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"already been configured to use input shape \(None, 3\)"):
            model.add(K.layers.InputLayer(shape=(3,)))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "unique names.*'%s'" % model.layers[0].name):
            model.add(K.layers.Dense(2, name=model.layers[0].name))
        self.assertEqual(len(model.layers), 2)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected the last axis to be 3"):
            model(np.ones((2, 4), np.float32))

    def test_input_layer_arguments(self):
        K = kiln.keras
        ids = K.Input(shape=(5,), batch_size=2, dtype="int32", name="ids")
        self.assertEqual(ids.batch_shape, (2, 5))
        self.assertEqual(ids.dtype, "int32")
        self.assertEqual(ids.name, "ids")
        emb = K.Sequential([ids, K.layers.Embedding(10, 3)])
        self.assertTrue(emb.built)
        self.assertEqual(emb(np.array([[1, 2, 3, 4, 5]] * 2, np.int32)).shape, (2, 5, 3))
        self.assertEqual(K.layers.InputLayer(batch_shape=(None, 7)).batch_shape, (None, 7))
        self.assertEqual(K.layers.InputLayer(input_shape=(7,)).batch_shape, (None, 7))  # Keras's old alias
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "not both"):
            K.layers.InputLayer(shape=(3,), batch_shape=(None, 3))
        with self.assertRaisesRegex(kiln.UnimplementedError, "sparse"):
            K.Input(shape=(3,), sparse=True)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "unknown dtype"):
            K.Input(shape=(3,), dtype="float16")

    def test_legacy_input_shape_arguments(self):
        K = kiln.keras
        for first in (K.layers.Dense(4, input_shape=(3,)), K.layers.Dense(4, input_dim=3),
                      K.layers.Dense(4, batch_input_shape=(None, 3))):
            model = K.Sequential([first, K.layers.Dense(2)])
            self.assertTrue(model.built)
            self.assertEqual(tuple(model.weights[0].shape), (3, 4))
        self.assertEqual(K.layers.Embedding(10, 2).get_config()["input_dim"], 10)  # its own argument

        class Scale(K.layers.Layer):
            def call(self, x):
                return x * 2.0

        model = K.Sequential([Scale(input_shape=(3,)), K.layers.Dense(2)])  # a custom layer too
        self.assertTrue(model.built)
        with self.assertRaisesRegex(TypeError, "Dense: got an unexpected keyword argument 'foo'"):
            K.layers.Dense(4, foo=1)
        with self.assertRaisesRegex(TypeError, "Dense: missing a required argument: 'units'"):
            K.layers.Dense()


class ConfigRoundTripsTest(unittest.TestCase):
    """keras.Model.to_json, keras.models.model_from_json and clone_model: the same config, new weights."""

    def test_to_json_model_from_json_and_clone_model(self):
        import json
        layers.clear_session()
        model = kiln.Sequential([layers.Input((3,)), layers.Dense(4, activation="relu"), layers.Dense(2)])
        text = model.to_json(indent=1)
        self.assertEqual(json.loads(text)["class_name"], "Sequential")
        again = kiln.keras.models.model_from_json(text)
        self.assertEqual(layers.serialize(again), layers.serialize(model))
        x = np.ones((2, 3), np.float32)
        for clone in (kiln.models.clone_model(model),
                      kiln.models.clone_model(model, clone_function=lambda l: l.__class__.from_config(l.get_config()))):
            self.assertEqual([l.name for l in clone.layers], [l.name for l in model.layers])
            self.assertEqual(clone.predict(x, verbose=0).shape, (2, 2))
            clone.layers[0].kernel.assign(np.zeros((3, 4), np.float32))  # no weight shared
            self.assertTrue(np.any(model.get_weights()[0] != 0))
        with self.assertRaises(kiln.UnimplementedError):
            kiln.models.clone_model(model, input_tensors=[x])
