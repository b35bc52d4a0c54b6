"""Built-in layers through kiln.layers against PyTorch's golden values (tests/golden/layers_golden.json,
made by tests/golden/make_layer_golden.py; see its docstring for the schema): forward outputs, tape
gradients of sum(output * upstream) for the inputs and trainable weights, and the variables after
the call. The C++ test (tests/unit/test_layer_golden.cc) runs every case; this one runs the classes
below, so that the binding's config, weight and tape paths are checked against the same numbers."""
import json
import os
import unittest

import numpy as np

import kiln
from kiln import layers

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "golden", "layers_golden.json")
CLASSES = ("Dense", "LayerNormalization", "Embedding", "BatchNormalization")


def load_cases():
    with open(GOLDEN) as f:
        golden = json.load(f)
    assert golden["format"] == "kiln.layer_golden" and golden["version"] == 1
    return golden["cases"]


def array(t):
    # Each float is the shortest decimal of a float32, so the float32 cast is exact.
    return np.array(t["data"], np.float64 if t["dtype"] == "float32" else np.int32).astype(
        np.float32 if t["dtype"] == "float32" else np.int32).reshape(t["shape"])


def run_case(test, c):
    """Checks one case; returns the largest |diff| / (atol + rtol * |golden|) seen."""
    tol = c["tolerance"]
    worst = [0.0]

    def check(got, want, what):
        want = array(want)
        got = np.asarray(got)
        test.assertEqual(got.shape, want.shape, what)
        d = np.abs(got.astype(np.float64) - want)
        bound = tol["atol"] + tol["rtol"] * np.abs(want.astype(np.float64))
        bad = d > bound
        if d.size:
            worst[0] = max(worst[0], float(np.max(np.where(bound > 0, d / np.where(bound > 0, bound, 1),
                                                           np.where(d > 0, np.inf, 0.0)))))
        test.assertFalse(bad.any(), "%s: kiln %s, golden %s at %s" % (what, got[bad], want[bad],
                                                                       np.argwhere(bad)[:4].tolist()))

    layer = layers.deserialize({"class_name": c["class_name"], "config": c["config"]})
    inputs = [kiln.constant(array(t)) for t in c["inputs"]]
    layer.build([tuple(t["shape"]) for t in c["inputs"]])
    variables = layer.variables
    test.assertEqual(len(variables), len(c["weights"]))
    for v, w, g in zip(variables, c["weights"], c["weight_grads"]):
        v.assign(array(w))
        test.assertEqual(v.trainable, g is not None, v.name)

    float_inputs = [x for x, t in zip(inputs, c["inputs"]) if t["dtype"] == "float32"]
    trainable = [v for v, g in zip(variables, c["weight_grads"]) if g is not None]
    with kiln.GradientTape() as tape:
        for x in float_inputs:
            tape.watch(x)
        out = layer(inputs if len(inputs) > 1 else inputs[0], training=c["training"])
    outputs = out if isinstance(out, list) else [out]
    test.assertEqual(len(outputs), len(c["outputs"]))
    for y, want in zip(outputs, c["outputs"]):
        check(y.numpy(), want, "output")
    sources = float_inputs + trainable
    if sources:
        upstream = [kiln.constant(array(u)) for u in c["upstream"]]
        grads = tape.gradient(outputs, sources, output_gradients=upstream, unconnected_gradients="zero")
        wants = [g for g in c["input_grads"] if g is not None] + [g for g in c["weight_grads"] if g is not None]
        names = ["d/dinput"] * len(float_inputs) + ["d/d" + v.name for v in trainable]
        for g, want, what in zip(grads, wants, names):
            check(g.numpy(), want, what)
    for v, want in zip(variables, c["extra"].get("weights_after", [None] * len(variables))):
        if want is not None:
            check(v.numpy(), want, v.name + " after the call")
    return worst[0]


class LayerGoldenTest(unittest.TestCase):
    def setUp(self):
        layers.clear_session()

    def test_builtin_layers_match_pytorch(self):
        cases = [c for c in load_cases() if c["class_name"] in CLASSES]
        self.assertEqual({c["class_name"] for c in cases}, set(CLASSES))
        for c in cases:
            with self.subTest(case=c["name"]):
                self.assertLessEqual(run_case(self, c), 1.0)


if __name__ == "__main__":
    unittest.main()
