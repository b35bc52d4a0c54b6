"""kiln.saved_model and model.save / kiln.models.load_model: round trips (bit for bit, compiled,
training on), signatures by name and position, custom Python classes through the registry,
8-thread serving, and errors for damaged or foreign directories."""
import os
import shutil
import tempfile
import threading
import unittest

import numpy as np

import kiln

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def _mlp():
    m = kiln.Sequential([kiln.layers.Dense(8, activation="relu"), kiln.layers.Dense(3, activation="softmax")])
    m.build((None, 4))
    return m


def _data(n=16):
    x = kiln.constant([[((i * 4 + j) * 37 % 129 - 64) / 64.0 for j in range(4)] for i in range(n)])
    y = kiln.constant([(i * 7 + 1) % 3 for i in range(n)], dtype="int64")
    return x, y


def _same(a, b):
    return bytes(kiln.convert_to_tensor(a).numpy().tobytes()) == bytes(kiln.convert_to_tensor(b).numpy().tobytes()) \
        if np is not None else kiln.convert_to_tensor(a).tolist() == kiln.convert_to_tensor(b).tolist()


@kiln.saving.register_keras_serializable(package="PyTest")
class Scale(kiln.layers.Layer):
    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(), initializer="ones")

    def call(self, inputs):
        return inputs * self.w

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class SavedModelTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_saved_model_py_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_round_trip_compiled_and_training_on(self):
        m = _mlp()
        m.compile(optimizer=kiln.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        x, y = _data()
        for _ in range(3):
            m.train_on_batch(x, y)
        path = os.path.join(self.dir, "export")
        m.save(path)
        self.assertEqual(sorted(os.listdir(path)), ["fingerprint.pb", "saved_model.pb", "variables"])
        loaded = kiln.models.load_model(path)
        self.assertIsInstance(loaded, kiln.Sequential)
        saved_predictions = m.predict_on_batch(x)
        self.assertTrue(_same(saved_predictions, loaded.predict_on_batch(x)))
        a = m.train_on_batch(x, y, return_dict=True)
        b = loaded.train_on_batch(x, y, return_dict=True)
        self.assertEqual(a, b)
        for va, vb in zip(m.variables, loaded.variables):
            self.assertTrue(_same(va, vb))
        self.assertEqual(int(loaded.optimizer.iterations), 4)
        unc = kiln.models.load_model(path, compile=False)
        self.assertTrue(_same(saved_predictions, unc.predict_on_batch(x)))

    def test_signatures(self):
        m = _mlp()
        path = os.path.join(self.dir, "export")
        kiln.saved_model.save(m, path)
        loaded = kiln.saved_model.load(path)
        self.assertEqual(list(loaded.signatures), ["serving_default"])
        serve = loaded.signatures["serving_default"]
        in_name = m.layers[0].name + "_input"
        out_name = m.layers[1].name
        self.assertEqual(serve.inputs, [kiln.saved_model.TensorSpec((None, 4), "float32", in_name)])
        self.assertEqual(serve.outputs, [kiln.saved_model.TensorSpec((None, 3), "float32", out_name)])
        x, _ = _data(5)
        want = m(x)
        self.assertTrue(_same(serve(**{in_name: x})[out_name], want))
        self.assertTrue(_same(serve(x)[out_name], want))
        self.assertTrue(_same(loaded(x), want))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "no input named 'pixels'"):
            serve(pixels=x)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, r"has shape \(5, 3\); expected \(None, 4\)"):
            serve(kiln.zeros((5, 3)))
        # Named specs at save time.
        kiln.saved_model.save(m, os.path.join(self.dir, "named"),
                              signatures=[kiln.saved_model.TensorSpec((None, 4), "float32", "features")],
                              output_names=["probabilities"])
        named = kiln.saved_model.load(os.path.join(self.dir, "named")).signatures["serving_default"]
        self.assertEqual(list(named(features=x)), ["probabilities"])

    def test_sequential_input_dtype_in_the_signature(self):
        # An Input of int32 ids (an Embedding's) gives the signature its dtype, as Keras's trace.
        L = kiln.layers
        m = kiln.Sequential([L.Input(shape=(5,), dtype="int32"), L.Embedding(10, 4), L.Flatten(), L.Dense(2)])
        ids = np.array([[1, 2, 3, 4, 5]], np.int32)
        want = m.predict(ids, verbose=0)
        path = os.path.join(self.dir, "ids")
        kiln.saved_model.save(m, path)
        serve = kiln.saved_model.load(path).signatures["serving_default"]
        self.assertEqual(serve.inputs[0].dtype, "int32")
        np.testing.assert_array_equal(np.asarray(list(serve(ids).values())[0]), want)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "float32.*expected int32"):
            serve(ids.astype(np.float32))

    def test_save_over_an_export_keeps_other_files(self):
        # tf.saved_model.save writes into the directory: a TF Serving warm-up file stays.
        path = os.path.join(self.dir, "over")
        kiln.saved_model.save(_mlp(), path)
        os.makedirs(os.path.join(path, "assets.extra"))
        with open(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"), "wb") as f:
            f.write(b"warm")
        kiln.saved_model.save(_mlp(), path)
        with open(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"), "rb") as f:
            self.assertEqual(f.read(), b"warm")
        self.assertEqual(sorted(os.listdir(path)), ["assets.extra", "fingerprint.pb", "saved_model.pb", "variables"])
        kiln.saved_model.load(path)

    def test_eight_threads_serve_identical_results(self):
        m = _mlp()
        path = os.path.join(self.dir, "export")
        m.save(path)
        serve = kiln.saved_model.load(path).signatures["serving_default"]
        inputs = [kiln.random.uniform((1 + 3 * t, 4), seed=t) for t in range(8)]
        expected = [list(serve(x).values())[0] for x in inputs]
        bad = []

        def run(t):
            for _ in range(10):
                out = list(serve(inputs[t]).values())[0]
                if not _same(out, expected[t]):
                    bad.append(t)

        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(bad, [])

    def test_inference_weights(self):
        m = _mlp()
        path = os.path.join(self.dir, "export")
        m.save(path)
        x1, _ = _data(1)
        x9, _ = _data(9)
        f32 = kiln.saved_model.load(path)
        bf16 = kiln.saved_model.load(path, inference_weights="bfloat16")
        self.assertTrue(_same(kiln.saved_model.load(path, inference_weights="float32")(x1), f32(x1)))
        self.assertFalse(_same(bf16(x1), f32(x1)))  # the rounded kernels change the low bits
        a, b = f32(x1).tolist(), bf16(x1).tolist()
        for p, q in zip(a[0], b[0]):
            self.assertAlmostEqual(p, q, delta=0.02)
        # Nine rows, more than the gemv kernel takes: the float32 product, bit for bit.
        self.assertTrue(_same(bf16(x9), f32(x9)))
        model = kiln.models.load_model(path, inference_weights="bfloat16")
        self.assertTrue(_same(model(x1), bf16(x1)))
        # int8: dynamic-range quantization, close to float32; nine rows are float32's bits.
        int8 = kiln.saved_model.load(path, inference_weights="int8")
        self.assertFalse(_same(int8(x1), f32(x1)))
        for p, q in zip(f32(x1).tolist()[0], int8(x1).tolist()[0]):
            self.assertAlmostEqual(p, q, delta=0.02)
        self.assertTrue(_same(int8(x9), f32(x9)))
        self.assertTrue(_same(kiln.models.load_model(path, inference_weights="int8")(x1), int8(x1)))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "inference_weights.*'float16'.*\"bfloat16\" or \"int8\""):
            kiln.saved_model.load(path, inference_weights="float16")
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "inference_weights"):
            kiln.saved_model.load_model(path, inference_weights=16)

    def test_custom_python_class(self):
        m = kiln.Sequential([Scale(2.0), kiln.layers.Dense(2)])
        m.build((None, 3))
        m.layers[0].w.assign(4.0)
        path = os.path.join(self.dir, "export")
        m.save(path)
        loaded = kiln.models.load_model(path)
        self.assertIsInstance(loaded.layers[0], Scale)
        self.assertEqual(loaded.layers[0].factor, 2.0)
        x = kiln.constant([[1.0, 2.0, 3.0]])
        self.assertTrue(_same(m(x), loaded(x)))

    def test_errors(self):
        with self.assertRaisesRegex(kiln.NotFoundError, "has no saved_model.pb"):
            kiln.models.load_model(self.dir)
        m = _mlp()
        path = os.path.join(self.dir, "export")
        m.save(path)
        with open(os.path.join(path, "saved_model.pb"), "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x20
            f.seek(0)
            f.write(data)
        with self.assertRaisesRegex(kiln.DataLossError, "changed or damaged"):
            kiln.saved_model.load(path)
        with self.assertRaises(kiln.UnimplementedError):
            m.save(os.path.join(self.dir, "model.keras"))
        other = os.path.join(self.dir, "other")
        os.makedirs(other)
        with open(os.path.join(other, "notes.txt"), "w") as f:
            f.write("mine")
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "is not a SavedModel"):
            m.save(other)
        unbuilt = kiln.Sequential([kiln.layers.Dense(2)])
        with self.assertRaisesRegex(kiln.FailedPreconditionError, "is not built"):
            unbuilt.save(os.path.join(self.dir, "unbuilt"))


def half_squared(y_true, y_pred):
    return kiln.reduce_mean(kiln.square(y_pred - y_true) * 0.5, axis=-1)


class ScaledLoss(kiln.losses.Loss):
    """A Keras-3-style Loss subclass: its own call, Keras's from_config (cls(**config))."""

    def __init__(self, name="scaled_loss", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        return kiln.reduce_mean(kiln.square(y_pred - y_true), axis=-1) * 2.0


@kiln.saving.register_keras_serializable(package="PyTest")
def quarter_squared(y_true, y_pred):
    return kiln.reduce_mean(kiln.square(y_pred - y_true) * 0.25, axis=-1)


class CustomLossLoadTest(unittest.TestCase):
    """load_model of a model compiled with losses and metrics of the user's: custom_objects,
    custom_object_scope and register_keras_serializable find them by name, as in Keras."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln_saved_model_loss_py_")
        self.x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4)
        self.y = np.linspace(0, 1, 24, dtype=np.float32).reshape(8, 3)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def _saved(self, loss, metrics=()):
        m = kiln.Sequential([kiln.layers.Dense(3)])
        m.build((None, 4))
        m.compile(optimizer=kiln.optimizers.SGD(0.1), loss=loss, metrics=list(metrics))
        m.train_on_batch(self.x, self.y)
        path = os.path.join(self.dir, "m%d" % len(os.listdir(self.dir)))
        m.save(path)
        return m, path

    def _same_training(self, m, loaded):
        self.assertEqual(m.test_on_batch(self.x, self.y, return_dict=True),
                         loaded.test_on_batch(self.x, self.y, return_dict=True))
        self.assertEqual(m.train_on_batch(self.x, self.y), loaded.train_on_batch(self.x, self.y))
        np.testing.assert_array_equal(m.predict(self.x, verbose=0), loaded.predict(self.x, verbose=0))

    def test_a_function_loss_and_metric_by_custom_objects(self):
        m, path = self._saved(half_squared, [half_squared, "mae"])
        with self.assertRaisesRegex(kiln.errors.NotFoundError, "'half_squared'.*custom_objects"):
            kiln.models.load_model(path)
        loaded = kiln.models.load_model(path, custom_objects={"half_squared": half_squared})
        self._same_training(m, loaded)
        self.assertEqual(loaded.metrics_names, ["loss", "half_squared", "mae"])
        # the registration ends with the call, and custom_object_scope gives it again
        with self.assertRaises(kiln.errors.NotFoundError):
            kiln.models.load_model(path)
        with kiln.saving.custom_object_scope({"half_squared": half_squared}):
            again = kiln.models.load_model(path)
            by_name = kiln.Sequential([kiln.layers.Dense(3)])
            by_name.compile("sgd", loss="half_squared", metrics=["half_squared"])
            self.assertIn("half_squared", by_name.train_on_batch(self.x, self.y, return_dict=True))
        self.assertTrue(again.compiled)
        self.assertEqual(kiln.models.load_model(path, compile=False).compiled, False)

    def test_a_loss_subclass_by_custom_objects(self):
        m, path = self._saved(ScaledLoss(reduction="sum"))
        with self.assertRaisesRegex(kiln.errors.NotFoundError, "ScaledLoss"):
            kiln.models.load_model(path)
        loaded = kiln.models.load_model(path, custom_objects={"ScaledLoss": ScaledLoss})
        self._same_training(m, loaded)
        import gc
        gc.collect()  # the loaded model's loss object lives as long as the model
        self.assertEqual(loaded.train_on_batch(self.x, self.y), m.train_on_batch(self.x, self.y))

    def test_a_registered_function_needs_no_custom_objects(self):
        m, path = self._saved(quarter_squared, [quarter_squared])
        self.assertIn("quarter_squared", m.metrics_names)
        self._same_training(m, kiln.models.load_model(path))

    def test_built_in_names_stay_built_in(self):
        def mse(y_true, y_pred):
            return kiln.reduce_mean(kiln.square(y_pred - y_true) * 10.0, axis=-1)

        plain = kiln.Sequential([kiln.layers.Dense(3)])
        plain.build((None, 4))
        with kiln.saving.custom_object_scope({"mse": mse}):
            shadowed = kiln.Sequential([kiln.layers.Dense(3)])
            shadowed.build((None, 4))
            shadowed.set_weights(plain.get_weights())
            shadowed.compile("sgd", loss="mse", metrics=["mse"])
        plain.compile("sgd", loss="mse", metrics=["mse"])
        self.assertEqual(shadowed.test_on_batch(self.x, self.y), plain.test_on_batch(self.x, self.y))

    def test_metric_names_outlive_the_scope(self):
        with kiln.saving.custom_object_scope({"half_squared": half_squared}):
            m = kiln.Sequential([kiln.layers.Dense(3)])
            m.build((None, 4))
            m.compile(kiln.optimizers.SGD(0.1), loss="half_squared", metrics=["half_squared"])
        logs = m.train_on_batch(self.x, self.y, return_dict=True)  # the metric was made at compile
        self.assertAlmostEqual(logs["loss"], logs["half_squared"], places=6)
        path = os.path.join(self.dir, "by_name")
        m.save(path)
        loaded = kiln.models.load_model(path, custom_objects={"half_squared": half_squared})
        self._same_training(m, loaded)

    def test_a_wrapped_built_in_function_loads(self):
        m, path = self._saved(kiln.losses.LossFunctionWrapper(kiln.losses.mean_squared_error))
        self._same_training(m, kiln.models.load_model(path))
        # with the function's arguments, as Keras saves them
        m, path = self._saved(kiln.losses.LossFunctionWrapper(kiln.losses.huber, delta=0.25))
        self._same_training(m, kiln.models.load_model(path))

    def test_a_function_of_a_built_in_name_never_loads_as_the_built_in(self):
        def mse(y_true, y_pred):
            return kiln.reduce_mean(kiln.square(y_pred - y_true) * 10.0, axis=-1)

        _, path = self._saved(mse)
        with self.assertRaisesRegex(kiln.errors.NotFoundError, ">mse'"):
            kiln.models.load_model(path, custom_objects={"mse": mse})

    def test_a_registered_function_keeps_its_arguments(self):
        def scaled_squared(y_true, y_pred, scale=1.0):
            return kiln.reduce_mean(kiln.square(y_pred - y_true) * scale, axis=-1)

        m, path = self._saved(kiln.losses.LossFunctionWrapper(scaled_squared, scale=3.0))
        self._same_training(m, kiln.models.load_model(path, custom_objects={"scaled_squared": scaled_squared}))

    def test_metric_names_of_two_outputs_outlive_the_scope(self):
        class TwoHeads(kiln.Model):
            def __init__(self):
                super().__init__()
                self.a, self.b = kiln.layers.Dense(3), kiln.layers.Dense(3)

            def call(self, x):
                return self.a(x), self.b(x)

        with kiln.saving.custom_object_scope({"half_squared": half_squared}):
            m = TwoHeads()
            m.compile("sgd", loss="mse", metrics=["half_squared"])
        logs = m.train_on_batch(self.x, [self.y, self.y], return_dict=True)
        self.assertIn("output_1_half_squared", logs)
        self.assertIn("output_2_half_squared", logs)

    def test_a_loss_subclass_with_its_own_config_works_by_name(self):
        class Weighted(ScaledLoss):
            def get_config(self):
                return {**super().get_config(), "extra": 1}

        with kiln.saving.custom_object_scope({"Weighted": Weighted}):
            m = kiln.Sequential([kiln.layers.Dense(3)])
            m.compile("sgd", loss="Weighted", metrics=["Weighted"])
            self.assertIn("Weighted", m.train_on_batch(self.x, self.y, return_dict=True))

    def test_a_loss_subclass_with_its_own_config_is_refused_at_load(self):
        class Weighted(ScaledLoss):
            def __init__(self, factor=10.0, **kwargs):
                super().__init__(**kwargs)
                self.factor = factor

            def get_config(self):
                return {**super().get_config(), "factor": self.factor}

        _, path = self._saved(Weighted(factor=3.0))
        with self.assertRaisesRegex(kiln.errors.UnimplementedError, "Weighted overrides get_config.*compile=False"):
            kiln.models.load_model(path, custom_objects={"ScaledLoss": Weighted, "Weighted": Weighted})
        self.assertFalse(kiln.models.load_model(path, compile=False).compiled)


if __name__ == "__main__":
    unittest.main()
