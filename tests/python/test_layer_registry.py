"""Custom layer classes by name: kiln.saving.register_keras_serializable and custom_objects, so a
Sequential holding a Python layer deserializes through C; the objects the factory makes live as
long as their C layers and no longer."""
import gc
import os
import tempfile
import unittest

import numpy as np

import kiln
from kiln import layers, saving


@saving.register_keras_serializable(package="KilnTest")
class ScaledDense(layers.Layer):
    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale

    def build(self, input_shape):
        self.w = self.add_weight(name="kernel", shape=(input_shape[-1], self.units), initializer="ones")

    def call(self, x):
        return kiln.matmul(x, self.w) * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


class Doubler(layers.Layer):
    def call(self, x):
        return x * 2.0


class GuideScale(layers.Layer):
    """The Keras "Save and load" guide's custom layer: get_config has only its own argument and
    __init__ takes no **kwargs."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {"factor": self.factor}


class Broken(layers.Layer):
    def __init__(self, **kwargs):
        raise ValueError("Broken cannot be made from a config")

    def call(self, x):
        return x


class LayerRegistryTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_registered_name_and_serialize(self):
        layer = ScaledDense(3, scale=0.5)
        self.assertEqual(saving.get_registered_name(layer), "KilnTest>ScaledDense")
        self.assertIs(saving.get_registered_object("KilnTest>ScaledDense"), ScaledDense)
        s = layers.serialize(layer)
        self.assertEqual(s["class_name"], "ScaledDense")
        self.assertEqual(s["registered_name"], "KilnTest>ScaledDense")
        self.assertEqual(s["config"]["units"], 3)
        self.assertEqual(type(layer).__name__, "ScaledDense")

    def test_sequential_with_custom_layer_round_trips(self):
        x = kiln.constant(np.arange(8, dtype=np.float32).reshape(2, 4))
        seq = kiln.Sequential([layers.Dense(5, kernel_initializer="ones"), ScaledDense(2, scale=0.25)])
        want = seq(x).numpy()
        config = layers.serialize(seq)
        del seq
        gc.collect()
        clone = layers.deserialize(config)
        self.assertIsInstance(clone.layers[1], ScaledDense)
        self.assertEqual(clone.layers[1].scale, 0.25)
        gc.collect()  # the factory-made ScaledDense lives on with its C layer
        np.testing.assert_array_equal(clone(x).numpy(), want)
        self.assertEqual([v.name for v in clone.trainable_variables][-1].split("/")[-1], "kernel")

    def test_factory_objects_die_with_their_layers(self):
        config = layers.serialize(kiln.Sequential([ScaledDense(2)]))
        clone = layers.deserialize(config)
        clone(kiln.constant(np.ones((1, 3), np.float32)))
        owned_before = len(layers._OWNED)
        self.assertGreaterEqual(owned_before, 1)
        del clone
        gc.collect()
        self.assertEqual(len(layers._OWNED), owned_before - 1)

    def test_root_custom_layer_belongs_to_the_caller(self):
        layer = layers.deserialize(layers.serialize(ScaledDense(2, scale=3.0)))
        self.assertIsInstance(layer, ScaledDense)
        self.assertNotIn(layer.__dict__["_kiln_key"], layers._OWNED)
        y = layer(kiln.constant(np.ones((1, 2), np.float32)))
        np.testing.assert_array_equal(y.numpy(), [[6.0, 6.0]])

    def test_custom_objects(self):
        config = {"class_name": "Sequential",
                  "config": {"name": "s", "layers": [{"class_name": "Doubler", "config": {"name": "d"}}]}}
        with self.assertRaises(kiln.NotFoundError) as cm:
            layers.deserialize(config)
        self.assertIn("Doubler", str(cm.exception))
        seq = layers.deserialize(config, custom_objects={"Doubler": Doubler})
        np.testing.assert_array_equal(seq(kiln.constant([1.0, 2.0])).numpy(), [2.0, 4.0])
        self.assertFalse(layers._class_registered("Doubler"))  # the scope ended
        with saving.custom_object_scope({"Doubler": Doubler}):
            self.assertTrue(layers._class_registered("Doubler"))
            layers.deserialize(config)
        self.assertFalse(layers._class_registered("Doubler"))
        # Nested scopes of one name (load(custom_objects=...) inside a scope): leaving the inner
        # one gives the outer one's class back, and leaving that one unregisters it.
        with saving.custom_object_scope({"Doubler": Doubler}):
            with saving.custom_object_scope({"Doubler": ScaledDense}):
                pass
            self.assertIsInstance(layers.deserialize(config).layers[0], Doubler)
            layers.deserialize(config, custom_objects={"Doubler": Doubler})
            self.assertTrue(layers._class_registered("Doubler"))
        self.assertFalse(layers._class_registered("Doubler"))

    def test_from_config_error_is_reraised(self):
        config = {"class_name": "Broken", "config": {}}
        with self.assertRaises(ValueError) as cm:
            layers.deserialize(config, custom_objects={"Broken": Broken})
        self.assertIn("cannot be made", str(cm.exception))

    def test_from_config_gets_no_base_keys_its_init_cannot_take(self):
        # C adds name, trainable and dtype to every layer's config; Keras passes from_config what
        # get_config returned, so a constructor without **kwargs must not get them.
        seq = kiln.Sequential([layers.Input((2,)), GuideScale(2.0)])
        config = layers.serialize(seq)
        copy = layers.deserialize(config, custom_objects={"GuideScale": GuideScale})
        self.assertIsInstance(copy.layers[0], GuideScale)
        self.assertEqual(copy.layers[0].factor, 2.0)
        np.testing.assert_array_equal(copy(kiln.constant([[1.0, 3.0]])).numpy(), [[2.0, 6.0]])
        # A constructor that takes **kwargs (and passes them on) gets them all: it keeps its name.
        named = kiln.Sequential([layers.Input((4,)), ScaledDense(2, name="kept")])
        copy = layers.deserialize(layers.serialize(named))
        self.assertEqual(copy.layers[0].name, "kept")

        class NamedScale(GuideScale):
            def __init__(self, factor, name=None):
                super().__init__(factor)
                self.given_name = name

        seq = kiln.Sequential([layers.Input((2,)), NamedScale(3.0)])
        copy = layers.deserialize(layers.serialize(seq), custom_objects={"NamedScale": NamedScale})
        self.assertEqual(copy.layers[0].given_name, seq.layers[0].name)  # a named parameter takes it

    def test_load_model_of_a_class_without_base_keys_and_its_errors(self):
        m = kiln.Sequential([layers.Input((2,)), GuideScale(2.0)])
        with tempfile.TemporaryDirectory() as d:
            m.save(os.path.join(d, "guide"))
            loaded = kiln.models.load_model(os.path.join(d, "guide"), custom_objects={"GuideScale": GuideScale})
            self.assertEqual(loaded.layers[0].factor, 2.0)
            x = kiln.constant([[1.0, 2.0]])
            np.testing.assert_array_equal(loaded(x).numpy(), m(x).numpy())

            # An exception from_config raises comes out of load_model and load as it was raised.
            class Refused(GuideScale):
                @classmethod
                def from_config(cls, config):
                    raise TypeError("Refused.from_config refuses %r" % sorted(config))

            kiln.Sequential([layers.Input((2,)), Refused(2.0)]).save(os.path.join(d, "refused"))
            for load in (kiln.models.load_model, kiln.saved_model.load):
                with self.assertRaisesRegex(TypeError, r"^Refused.from_config refuses \['factor'\]$"):
                    load(os.path.join(d, "refused"), custom_objects={"Refused": Refused})

            # So does one its call raises, served by the loaded signature.
            class Fragile(GuideScale):
                broken = False

                def call(self, x):
                    if Fragile.broken:
                        raise KeyError("Fragile is broken")
                    return super().call(x)

            kiln.Sequential([layers.Input((2,)), Fragile(2.0)]).save(os.path.join(d, "fragile"))
            serve = kiln.saved_model.load(os.path.join(d, "fragile"), custom_objects={"Fragile": Fragile})
            Fragile.broken = True
            with self.assertRaisesRegex(KeyError, "Fragile is broken"):
                serve.signatures["serving_default"](x)

    def test_builtin_names_cannot_be_registered(self):
        with self.assertRaises(kiln.InvalidArgumentError) as cm:
            layers.deserialize({"class_name": "Dense", "config": {"units": 1}}, custom_objects={"Dense": Doubler})
        self.assertIn("built-in", str(cm.exception))
        self.assertTrue(layers._class_registered("Dense"))


if __name__ == "__main__":
    unittest.main()
