"""kiln.optimizers and kiln.optimizers.schedules: every golden trajectory (tests/golden/
optimizers_golden.json, made by tests/golden/make_optimizer_golden.py from Keras's formulas),
Keras's API (apply_gradients(zip(...)), iterations, learning_rate get/set, variables, slots,
exclude_from_weight_decay, get/serialize/deserialize), a GradientTape loop, and errors."""
import json
import os
import unittest

import numpy as np

import kiln
from kiln import optimizers
from kiln.optimizers import schedules

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "golden", "optimizers_golden.json")


def load_golden():
    with open(GOLDEN) as f:
        return json.load(f)


class GoldenTest(unittest.TestCase):
    def test_trajectories(self):
        g = load_golden()
        self.assertGreaterEqual(len(g["cases"]), 20)
        for case in g["cases"]:
            with self.subTest(case=case["name"]):
                variables = [kiln.Variable(np.array(v["init"], np.float32).reshape(v["shape"]), name=v["name"])
                             for v in g["variables"]]
                opt = optimizers.deserialize({"class_name": case["class_name"], "config": case["config"]})
                if "exclude_var_names" in case:
                    opt.exclude_from_weight_decay(var_names=case["exclude_var_names"])
                changes = dict((int(k), v) for k, v in case.get("set_learning_rate", []))
                for step, want in enumerate(case["trajectory"]):
                    if step in changes:
                        opt.learning_rate = changes[step]
                    self.assertAlmostEqual(opt.learning_rate, case["learning_rates"][step], places=12)
                    grads = [None if gr is None else np.array(gr, np.float32).reshape(v.shape)
                             for gr, v in zip(g["gradients"][step], variables)]
                    opt.apply_gradients(zip(grads, variables))
                    for v, w in zip(variables, want):
                        np.testing.assert_allclose(v.numpy().reshape(-1), w, rtol=2e-5, atol=2e-5,
                                                   err_msg="%s step %d %s" % (case["name"], step, v.name))
                self.assertEqual(int(opt.iterations), len(case["trajectory"]))

    def test_float32_adam_bit_for_bit_as_keras(self):
        """Keras 3's Adam.update_step on float32 variables, every scalar and element op in float32
        (alpha from beta_1, beta_2 and the step cast to float32), as NumPy float32 computes it."""
        f = np.float32
        rng = np.random.default_rng(5)
        w0 = rng.normal(0, 1, (7, 33)).astype(f)
        grads = [rng.normal(0, 1.5, w0.shape).astype(f) for _ in range(12)]
        # A warm-up then a linear decay, which Keras computes in float32 (Model Garden's
        # LinearWarmup over PolynomialDecay with power 1, so no pow).
        warmup = schedules.LinearWarmup(schedules.PolynomialDecay(0.01, 7, end_learning_rate=0.001), 3, 0.002)

        def poly(s):
            return (f(0.01) - f(0.001)) * (f(1) - min(f(s), f(7)) / f(7)) + f(0.001)

        def warm(s):
            return f(0.002) + f(s) / f(3) * (poly(3) - f(0.002)) if s < 3 else poly(s)
        for kw in (dict(learning_rate=0.01), dict(learning_rate=0.003, beta_1=0.8, beta_2=0.95, amsgrad=True),
                   dict(learning_rate=0.01, weight_decay=0.1), dict(learning_rate=warmup, weight_decay=0.1)):
            with self.subTest(**kw):
                var = kiln.Variable(w0.copy(), name="dense/kernel")
                opt = optimizers.AdamW(**kw) if "weight_decay" in kw else optimizers.Adam(**kw)
                b1, b2 = kw.get("beta_1", 0.9), kw.get("beta_2", 0.999)
                w, m, v, vhat = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
                for t, g in enumerate(grads, start=1):
                    lr = warm(t - 1) if kw["learning_rate"] is warmup else f(kw["learning_rate"])
                    self.assertEqual(f(opt.learning_rate), lr)
                    opt.apply_gradients([(g, var)])
                    if "weight_decay" in kw:
                        w = w - w * f(kw["weight_decay"]) * lr
                    alpha = lr * np.sqrt(f(1) - f(b2) ** f(t)) / (f(1) - f(b1) ** f(t))
                    m = m + (g - m) * f(1 - b1)
                    v = v + (np.square(g) - v) * f(1 - b2)
                    if kw.get("amsgrad"):
                        vhat = np.maximum(vhat, v)
                        w = w - (m * alpha) / (np.sqrt(vhat) + f(1e-7))
                    else:
                        w = w - (m * alpha) / (np.sqrt(v) + f(1e-7))
                    np.testing.assert_array_equal(var.numpy(), w, err_msg="step %d" % t)

    def test_float32_nadam_bit_for_bit_as_keras(self):
        """Keras 3's Nadam on float32 variables: u_product a float32 variable, the momentum
        schedule, products and 1 - beta_2^t in float32 from the settings and steps cast to it."""
        f = np.float32
        rng = np.random.default_rng(9)
        w0 = rng.normal(0, 1, (5, 19)).astype(f)
        grads = [rng.normal(0, 1.5, w0.shape).astype(f) for _ in range(12)]
        for kw in (dict(learning_rate=0.002), dict(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-6)):
            with self.subTest(**kw):
                var = kiln.Variable(w0.copy(), name="dense/kernel")
                opt = optimizers.Nadam(**kw)
                lr, b1, b2 = f(kw["learning_rate"]), f(kw.get("beta_1", 0.9)), f(kw.get("beta_2", 0.999))
                eps, decay = f(kw.get("epsilon", 1e-7)), f(0.96)
                w, m, v, prod = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), f(1)
                for t, g in enumerate(grads, start=1):
                    opt.apply_gradients([(g, var)])
                    prod = prod * b1 * (f(1) - f(0.5) * decay ** f(t))
                    u_t = b1 * (f(1) - f(0.5) * decay ** f(t))
                    u_next = b1 * (f(1) - f(0.5) * decay ** f(t + 1))
                    prod_next = prod * u_next
                    m = m + (g - m) * (f(1) - b1)
                    v = v + (np.square(g) - v) * (f(1) - b2)
                    m_hat = (u_next * m) / (f(1) - prod_next) + ((f(1) - u_t) * g) / (f(1) - prod)
                    v_hat = v / (f(1) - b2 ** f(t))
                    w = w - (m_hat * lr) / (np.sqrt(v_hat) + eps)
                    np.testing.assert_array_equal(var.numpy(), w, err_msg="step %d" % t)
                u_product = opt.variables[1]
                self.assertEqual(u_product.dtype, "float32")
                self.assertEqual(u_product.numpy(), prod)

    def test_schedules(self):
        for s in load_golden()["schedules"]:
            sched = schedules.deserialize(s["schedule"])
            for step, want in zip(s["steps"], s["values"]):
                # Keras's float32 arithmetic in its order, with the C library's cosf/powf/logf.
                self.assertEqual(sched(step), want, msg="%s at %d" % (s["schedule"], step))
            again = schedules.deserialize({"class_name": s["schedule"]["class_name"], "config": sched.get_config()})
            self.assertEqual(again.get_config(), sched.get_config())


class TransformerSchedule(schedules.LearningRateSchedule):
    """The TensorFlow Transformer tutorial's CustomSchedule, as a Keras user writes it."""

    def __init__(self, d_model, warmup_steps=4):
        super().__init__()
        self.d_model = kiln.cast(kiln.constant(d_model), "float32")
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = kiln.cast(step, "float32") + 1.0
        arg1 = kiln.math.rsqrt(step)
        arg2 = step * (self.warmup_steps ** -1.5)
        return kiln.math.rsqrt(self.d_model) * kiln.minimum(arg1, arg2)


class CustomScheduleTest(unittest.TestCase):
    def want(self, step, d_model=16.0, warmup=4):
        s = np.float32(step + 1)
        return float(np.float32(1 / np.sqrt(np.float32(d_model))) *
                     min(np.float32(1 / np.sqrt(s)), np.float32(s * np.float32(warmup ** -1.5))))

    def test_adamax_and_lion(self):
        # Keras 3's names, defaults, slots and configs (their trajectories are golden cases).
        self.assertEqual(type(optimizers.get("adamax")).__name__, "Adamax")
        self.assertEqual(type(optimizers.get("lion")).__name__, "Lion")
        lion = optimizers.Lion(0.1)
        self.assertEqual((lion.get_config()["beta_1"], lion.get_config()["beta_2"]), (0.9, 0.99))
        w = kiln.Variable(np.array([1.0, -2.0, 0.5], np.float32))
        lion.apply_gradients([(kiln.constant([0.3, -4.0, 0.0]), w)])
        # sign(0.9 m + 0.1 g) with m = 0: each weight moves by the learning rate against its gradient's sign
        np.testing.assert_allclose(w.numpy(), [0.9, -1.9, 0.5], rtol=1e-7)
        self.assertEqual(len(lion.variables), 2)  # iterations, momentum
        with self.assertRaisesRegex(ValueError, "beta_1 must be in the \\(0, 1\\] range"):
            optimizers.Lion(beta_1=0.0)
        adamax = optimizers.Adamax(0.1)
        v = kiln.Variable(np.array([1.0], np.float32))
        adamax.apply_gradients([(kiln.constant([2.0]), v)])
        # m = 0.1 g, u = |g|: w -= lr * m / ((1 - 0.9) * (u + eps))
        self.assertAlmostEqual(float(v.numpy()[0]), 1.0 - 0.1 * 0.2 / (0.1 * (2.0 + 1e-7)), places=6)
        self.assertEqual(optimizers.deserialize(optimizers.serialize(adamax)).get_config(), adamax.get_config())

    def test_ftrl(self):
        # Keras 3's Ftrl: names, defaults, config order, one step by hand, slots, Keras's ValueErrors.
        self.assertEqual(type(optimizers.get("ftrl")).__name__, "Ftrl")
        ftrl = optimizers.Ftrl(0.1, -0.5, 0.1, 0.5)  # positional: learning_rate_power, initial_accumulator_value, l1
        c = ftrl.get_config()
        self.assertEqual((c["learning_rate_power"], c["initial_accumulator_value"], c["l1_regularization_strength"],
                          c["l2_regularization_strength"], c["l2_shrinkage_regularization_strength"], c["beta"]),
                         (-0.5, 0.1, 0.5, 0.0, 0.0, 0.0))
        w0, g = np.array([1.0, -0.5], np.float64), np.array([2.0, 0.01], np.float64)
        w = kiln.Variable(w0)
        ftrl.apply_gradients([(kiln.constant(g), w)])
        lr = float(np.float32(0.1))
        n = 0.1 + g * g
        linear = g - (np.sqrt(n) - np.sqrt(0.1)) / lr * w0
        np.testing.assert_allclose(w.numpy(), (np.clip(linear, -0.5, 0.5) - linear) / (np.sqrt(n) / lr), rtol=1e-12)
        self.assertEqual(w.numpy()[1], 0.0)  # inside the l1 band
        self.assertEqual(len(ftrl.variables), 3)  # iterations, accumulator, linear
        self.assertEqual(optimizers.deserialize(optimizers.serialize(ftrl)).get_config(), c)
        for bad in ({"learning_rate_power": 0.5}, {"initial_accumulator_value": -1.0},
                    {"l2_regularization_strength": -0.1}):
            with self.assertRaisesRegex(ValueError, next(iter(bad))):
                optimizers.Ftrl(**bad)

    def test_lamb(self):
        # Keras 3's Lamb: Adam's bias-corrected direction r, each variable moved by lr * |w| / |r| * r;
        # a zero weight (|w| = 0) takes ratio 1.
        self.assertEqual(type(optimizers.get("lamb")).__name__, "Lamb")
        lamb = optimizers.Lamb(0.1)
        self.assertEqual(lamb.get_config()["beta_1"], 0.9)
        w0, g = np.array([3.0, -4.0], np.float64), np.array([0.5, 2.0], np.float64)
        w, z = kiln.Variable(w0), kiln.Variable(np.zeros(2))
        lamb.apply_gradients([(kiln.constant(g), w), (kiln.constant(g), z)])
        lr = float(np.float32(0.1))
        m, v = 0.1 * g, 0.001 * g * g
        r = (m / 0.1) / (np.sqrt(v / (1 - 0.999)) + 1e-7)
        np.testing.assert_allclose(w.numpy(), w0 - 5.0 / np.linalg.norm(r) * lr * r, rtol=1e-9)
        np.testing.assert_allclose(z.numpy(), -lr * r, rtol=1e-9)
        self.assertEqual(len(lamb.variables), 5)  # iterations, then momentum and velocity of each

    def test_adafactor(self):
        # Keras 3's Adafactor: a matrix's second moment factored into r (mean over the columns)
        # and c (over the rows); a vector keeps a full velocity, its r and c int32 placeholders that
        # optimizer.variables leaves out. At step 1 beta_2 is 0.
        self.assertEqual(type(optimizers.get("adafactor")).__name__, "Adafactor")
        opt = optimizers.Adafactor(0.1, clip_threshold=10.0)
        self.assertEqual(opt.get_config()["beta_2_decay"], -0.8)
        self.assertTrue(opt.get_config()["relative_step"])
        rng = np.random.default_rng(3)
        w0, b0 = rng.normal(0, 1, (2, 3, 4)), rng.normal(0, 1, 5)
        g, gb = rng.normal(0, 1, w0.shape), rng.normal(0, 1, 5)
        w, b = kiln.Variable(w0), kiln.Variable(b0)
        opt.apply_gradients([(kiln.constant(g), w), (kiln.constant(gb), b)])
        lr = float(np.float32(0.1))
        sq = g * g + 1e-30
        r, c = sq.mean(axis=-1), sq.mean(axis=-2)
        v = (r / r.mean(axis=-1, keepdims=True))[..., None] * c[..., None, :]
        np.testing.assert_allclose(opt.get_slot(w, "r").numpy(), r, rtol=1e-12)
        np.testing.assert_allclose(opt.get_slot(w, "c").numpy(), c, rtol=1e-12)
        np.testing.assert_allclose(opt.get_slot(w, "velocity").numpy(), v, rtol=1e-12)
        u = g / np.sqrt(v)
        want = w0 - np.sqrt(np.mean(w0 * w0)) * lr * u / max(1.0, np.sqrt(np.mean(u * u)) / 10.0)
        np.testing.assert_allclose(w.numpy(), want, rtol=1e-12)
        ub = gb / np.sqrt(gb * gb + 1e-30)
        np.testing.assert_allclose(b.numpy(), b0 - np.sqrt(np.mean(b0 * b0)) * lr * ub, rtol=1e-12)
        placeholder = opt.get_slot(b, "r").numpy()
        self.assertEqual((placeholder.dtype, placeholder.shape, int(placeholder)), (np.int32, (), 0))
        self.assertEqual(len(opt.variables), 5)  # iterations; r, c, velocity of w; velocity of b
        with self.assertRaisesRegex(ValueError, "not recognized"):
            optimizers.Adafactor(beta_2=0.9)

    def test_build(self):
        # Keras's optimizer.build(var_list): the slots of each variable, in the list's order,
        # without a step; a second build makes nothing new.
        w, b = kiln.Variable(np.ones((2, 3), np.float32), name="w"), kiln.Variable([0.5], name="b")
        opt = optimizers.Adam(0.1)
        opt.build([b, w])
        self.assertEqual(int(opt.iterations), 0)
        self.assertEqual(len(opt.variables), 5)
        self.assertEqual(opt.get_slot(b, "momentum")._unique_id, opt.variables[1]._unique_id)
        np.testing.assert_array_equal(opt.get_slot(w, "velocity").numpy(), np.zeros((2, 3), np.float32))
        opt.build([w, b])
        self.assertEqual(len(opt.variables), 5)
        with self.assertRaises(kiln.InvalidArgumentError):
            opt.build([np.ones(2)])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "'step'"):
            opt.build([kiln.Variable(np.array([1], np.int64), name="step", trainable=False)])

    def test_float_learning_rate_is_float32_as_keras(self):
        # Keras keeps a float learning rate in a float32 variable: a float64 weight moves by
        # float32(0.1), not by the double 0.1.
        w = kiln.Variable(np.array([1.0], np.float64))
        optimizers.SGD(0.1).apply_gradients([(kiln.constant(np.array([1.0], np.float64)), w)])
        self.assertEqual(w.numpy()[0], 1.0 - float(np.float32(0.1)))

    def test_subclass_drives_every_step(self):
        w = kiln.Variable([1.0, 2.0], name="w")
        opt = optimizers.SGD(TransformerSchedule(16.0))
        expected = w.numpy().astype(np.float32)
        for step in range(6):
            lr = opt.learning_rate
            self.assertAlmostEqual(lr, self.want(step), places=6)
            opt.apply_gradients([(kiln.constant([1.0, -1.0]), w)])
            expected = expected - np.float32(lr) * np.array([1, -1], np.float32)
            np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
        # No get_config: serializing the optimizer is Keras's NotImplementedError, naming the class.
        with self.assertRaisesRegex(NotImplementedError, "TransformerSchedule.*get_config"):
            opt.get_config()

    def test_get_config_serializes_and_errors_propagate(self):
        class Halving(schedules.LearningRateSchedule):
            def __init__(self, start):
                super().__init__()
                self.start = start

            def __call__(self, step):
                if int(step) >= 3:
                    raise ZeroDivisionError("no step 3")
                return self.start / 2 ** int(step)

            def get_config(self):
                return {"start": self.start}

        opt = optimizers.Adam(Halving(0.5))
        self.assertEqual(opt.get_config()["learning_rate"], {"class_name": "Halving", "config": {"start": 0.5}})
        self.assertEqual(schedules.serialize(Halving(0.25)), {"class_name": "Halving", "config": {"start": 0.25}})
        w = kiln.Variable([1.0], name="w")
        for _ in range(3):
            opt.apply_gradients([(kiln.constant([1.0]), w)])
        self.assertEqual(int(opt.iterations), 3)
        with self.assertRaisesRegex(ZeroDivisionError, "no step 3"):  # the schedule's own exception
            opt.apply_gradients([(kiln.constant([1.0]), w)])
        self.assertEqual(int(opt.iterations), 3)  # the failed step changed nothing
        with self.assertRaisesRegex(ZeroDivisionError, "no step 3"):
            opt.learning_rate

    def test_callable_learning_rate_and_setter(self):
        # Keras calls a callable learning rate with no arguments at each step.
        rates = iter([0.5, 0.25])
        sgd = optimizers.SGD(lambda: next(rates))
        w = kiln.Variable([1.0], name="w")
        sgd.apply_gradients([(kiln.constant([1.0]), w)])
        sgd.apply_gradients([(kiln.constant([1.0]), w)])
        self.assertEqual(float(w.numpy()[0]), 0.25)
        with self.assertRaises(kiln.errors.FailedPreconditionError):  # as with a built-in schedule
            sgd.learning_rate = 0.1
        sgd.learning_rate = TransformerSchedule(16.0)
        self.assertAlmostEqual(sgd.learning_rate, self.want(2), places=6)
        with self.assertRaisesRegex(TypeError, "expected a float"):
            optimizers.SGD(lambda: "fast").learning_rate
        # The schedule runs without the optimizer's lock: it may read the optimizer (this hung).
        sgd = optimizers.SGD(lambda: 0.5 / (1 + int(sgd.iterations)))
        v = kiln.Variable([1.0], name="v")
        sgd.apply_gradients([(kiln.constant([1.0]), v)])
        sgd.apply_gradients([(kiln.constant([1.0]), v)])
        self.assertEqual(float(v.numpy()[0]), 0.25)
        self.assertEqual(sgd.learning_rate, 0.5 / 3)

    def test_subclass_of_a_builtin_schedule(self):
        class Shifted(schedules.ExponentialDecay):
            def __call__(self, step):
                return super().__call__(int(step) + 1)

        lr = Shifted(1.0, 1, 0.5)
        self.assertEqual(lr(0), 0.5)
        opt = optimizers.SGD(lr)
        self.assertEqual(opt.learning_rate, 0.5)
        # get_config is the parent's, as Keras's
        self.assertEqual(opt.get_config()["learning_rate"]["class_name"], "Shifted")
        self.assertEqual(opt.get_config()["learning_rate"]["config"]["decay_rate"], 0.5)


class ApiTest(unittest.TestCase):
    def test_keras_names_and_defaults(self):
        self.assertIs(kiln.keras.optimizers, optimizers)
        self.assertIs(kiln.keras.optimizers.schedules, schedules)
        self.assertEqual(optimizers.SGD().get_config()["learning_rate"], 0.01)
        self.assertAlmostEqual(optimizers.AdamW().get_config()["weight_decay"], 0.004)
        self.assertIsNone(optimizers.Adam().get_config()["weight_decay"])
        c = optimizers.Adam(0.01, 0.8, amsgrad=True, clipnorm=1.0, name="my_adam").get_config()
        self.assertEqual((c["learning_rate"], c["beta_1"], c["amsgrad"], c["clipnorm"], c["name"]),
                         (0.01, 0.8, True, 1.0, "my_adam"))
        self.assertEqual(optimizers.RMSprop().get_config()["rho"], 0.9)
        self.assertEqual(optimizers.Adagrad().get_config()["initial_accumulator_value"], 0.1)
        self.assertEqual(optimizers.Adadelta().get_config()["rho"], 0.95)
        for cls, base in ((optimizers.SGD, "sgd"), (optimizers.AdamW, "adam_w"), (optimizers.RMSprop, "rm_sprop")):
            a, b = cls().name, cls().name  # Keras's auto names: to_snake_case, made unique
            self.assertTrue(a.startswith(base) and b.startswith(base + "_") and a != b, (a, b))
        self.assertIsInstance(optimizers.get("adam"), optimizers.Adam)
        self.assertIsInstance(optimizers.get("nadam"), optimizers.Nadam)
        opt = optimizers.SGD(0.1, momentum=0.9, nesterov=True)
        back = optimizers.deserialize(optimizers.serialize(opt))
        self.assertIsInstance(back, optimizers.SGD)
        self.assertEqual(back.get_config(), opt.get_config())
        self.assertIs(optimizers.get(opt), opt)
        with self.assertRaisesRegex(ValueError, "not recognized.*beta1"):  # Keras's ValueError
            optimizers.Adam(beta1=0.5)

    def test_keras_signatures(self):
        # Positional arguments in Keras's order: AdamW's weight_decay second, the base optimizer's
        # arguments after a class's own.
        adamw = optimizers.AdamW(1e-3, 0.01).get_config()
        self.assertAlmostEqual(adamw["weight_decay"], 0.01)
        self.assertAlmostEqual(adamw["beta_1"], 0.9)
        adam = optimizers.Adam(1e-3, 0.8, 0.99, 1e-6, False, 0.05).get_config()
        self.assertEqual((adam["beta_1"], adam["weight_decay"]), (0.8, 0.05))
        with self.assertRaisesRegex(TypeError, "multiple values.*beta_1"):
            optimizers.Adam(1e-3, 0.8, beta_1=0.7)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "weight_decay must be a float"):
            optimizers.AdamW(weight_decay=None)
        with self.assertWarnsRegex(UserWarning, "`decay` is no longer supported"):
            sgd = optimizers.SGD(0.1, decay=0.01)  # tf.keras 2's argument: Keras 3 warns and ignores it
        self.assertNotIn("decay", sgd.get_config())
        with self.assertWarnsRegex(UserWarning, "`decay`"):  # a tf.keras 2 config carries "decay": 0.0
            old = optimizers.deserialize({"class_name": "SGD", "config": {"learning_rate": 0.5, "decay": 0.0}})
        self.assertEqual(old.get_config()["learning_rate"], 0.5)
        lr = schedules.deserialize({"class_name": "exponential_decay",
                                    "config": {"initial_learning_rate": 1.0, "decay_steps": 1, "decay_rate": 0.5}})
        self.assertIsInstance(lr, schedules.ExponentialDecay)
        self.assertEqual(lr(2), 0.25)

    def test_apply_gradients_state_and_slots(self):
        w = kiln.Variable([1.0, 2.0, 3.0], name="dense/kernel")
        b = kiln.Variable([0.5], name="dense/bias")
        opt = optimizers.Adam(learning_rate=0.1)
        self.assertEqual(len(opt.variables), 1)
        opt.apply_gradients(zip([kiln.constant([0.1, 0.2, 0.3]), None], [w, b]))
        self.assertEqual(int(opt.iterations), 1)
        self.assertEqual(opt.iterations.dtype, "int64")
        self.assertEqual(b.numpy().tolist(), [0.5])  # None skips
        # As Keras builds: every variable given gets its slots, gradient or not.
        self.assertEqual(len(opt.variables), 5)
        self.assertEqual(opt.get_slot(b, "m").numpy().tolist(), [0.0])
        m = opt.get_slot(w, "m").numpy()
        np.testing.assert_allclose(m, [0.01, 0.02, 0.03], rtol=1e-6)
        self.assertEqual(opt.get_slot(w, "momentum")._unique_id, opt.variables[1]._unique_id)
        # The learning rate changes mid-run without resetting the moments.
        opt.learning_rate = 0.01
        self.assertEqual(opt.learning_rate, 0.01)
        np.testing.assert_array_equal(opt.get_slot(w, "m").numpy(), m)
        # A value read before a step keeps its value.
        before = w.value()
        copy = before.numpy().copy()
        opt.apply_gradients([(np.array([1.0, 1.0, 1.0], np.float32), w)])
        np.testing.assert_array_equal(before.numpy(), copy)
        self.assertFalse(np.array_equal(w.numpy(), copy))
        with self.assertRaises(kiln.NotFoundError):
            opt.get_slot(kiln.Variable([1.0]), "m")  # never given

    def test_schedule_learning_rate(self):
        sched = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
        self.assertEqual(sched(2), 0.25)
        opt = optimizers.SGD(learning_rate=sched)
        self.assertEqual(opt.get_config()["learning_rate"]["class_name"], "ExponentialDecay")
        w = kiln.Variable([1.0])
        opt.apply_gradients([(kiln.constant([1.0]), w)])
        self.assertEqual(opt.learning_rate, 0.5)
        np.testing.assert_allclose(w.numpy(), [0.0])
        with self.assertRaises(kiln.FailedPreconditionError):
            opt.learning_rate = 0.1
        back = optimizers.SGD.from_config(opt.get_config())
        self.assertEqual(back.learning_rate, 1.0)
        warm = schedules.LinearWarmup(schedules.PolynomialDecay(1.0, 100, end_learning_rate=0.0), 10)
        self.assertAlmostEqual(warm(5), 0.45)
        self.assertAlmostEqual(warm(50), 0.5)
        self.assertAlmostEqual(schedules.CosineDecay(0.0, 100, warmup_target=1.0, warmup_steps=10)(5), 0.5)
        self.assertEqual(schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])(15), 0.5)
        # Model Garden's WarmUp, which create_optimizer wraps around its PolynomialDecay.
        up = schedules.WarmUp(0.05, schedules.PolynomialDecay(0.05, 150, end_learning_rate=0.0), 10)
        self.assertEqual(up(5), float(np.float32(0.05) * (np.float32(5) / np.float32(10))))
        bert = optimizers.create_optimizer(0.05, num_train_steps=150, num_warmup_steps=10)
        self.assertEqual(bert.get_config()["learning_rate"]["class_name"], "WarmUp")
        self.assertEqual(schedules.deserialize(bert.get_config()["learning_rate"])(5), up(5))
        sgdr = schedules.CosineDecayRestarts(0.1, 5, 2.0, 0.5)
        self.assertEqual(sgdr(15), float(np.float32(0.025)))  # computed in float32, as Keras does
        self.assertEqual(sgdr.get_config()["name"], "SGDRDecay")
        self.assertEqual(schedules.deserialize(schedules.serialize(sgdr))(10), sgdr(10))
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "first_decay_steps must be > 0"):
            schedules.CosineDecayRestarts(0.1, 0)(1)

    def test_weight_decay_exclusion(self):
        k = kiln.Variable([1.0, 1.0], name="encoder/dense/kernel")
        b = kiln.Variable([1.0, 1.0], name="encoder/dense/bias")
        ln = kiln.Variable([1.0, 1.0], name="encoder/LayerNorm/gamma")
        opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
        opt.exclude_from_weight_decay(var_list=[ln], var_names=["bias"])
        zero = np.zeros(2, np.float32)
        opt.apply_gradients(zip([zero, zero, zero], [k, b, ln]))
        np.testing.assert_allclose(k.numpy(), [0.95, 0.95], rtol=1e-6)
        self.assertEqual(b.numpy().tolist(), [1.0, 1.0])
        self.assertEqual(ln.numpy().tolist(), [1.0, 1.0])
        with self.assertRaises(kiln.FailedPreconditionError):
            opt.exclude_from_weight_decay(var_names=["x"])
        # Patterns, as Keras's re.search("|".join(var_names), variable.name).
        opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5, exclude_from_weight_decay=[r"dense/k\w+l$"])
        k.assign([1.0, 1.0])
        b.assign([1.0, 1.0])
        opt.apply_gradients(zip([zero, zero], [k, b]))
        self.assertEqual(k.numpy().tolist(), [1.0, 1.0])
        np.testing.assert_allclose(b.numpy(), [0.95, 0.95], rtol=1e-6)
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "regular expression"):
            optimizers.AdamW().exclude_from_weight_decay(var_names=["(unclosed"])

    def test_errors(self):
        w = kiln.Variable(np.zeros((2, 3), np.float32), name="dense/kernel")
        opt = optimizers.Adam()
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "dense/kernel"):
            opt.apply_gradients([(np.zeros((3, 2), np.float32), w)])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "no gradients"):
            opt.apply_gradients([(None, w)])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "only one of"):
            optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
        with self.assertRaises(kiln.NotFoundError):
            schedules.LearningRateSchedule.__call__(type("X", (schedules.LearningRateSchedule,),
                                                         {"_class_name": "Nope"})(), 1)
        self.assertEqual(int(opt.iterations), 0)


class TrainingLoopTest(unittest.TestCase):
    def test_gradient_tape_loop_lowers_the_loss(self):
        kiln.set_seed(3)
        model = kiln.Sequential([kiln.layers.Dense(4, activation="tanh"), kiln.layers.Dense(1)])
        x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(32, 1)
        y = (0.8 * x + 0.3).astype(np.float32)
        opt = optimizers.create_optimizer(0.05, num_train_steps=150, num_warmup_steps=10)
        self.assertIsInstance(opt, optimizers.AdamW)
        losses = []
        for _ in range(150):
            with kiln.GradientTape() as tape:
                d = model(x) - y
                loss = kiln.mean(d * d)
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            losses.append(float(loss))
        self.assertLess(losses[-1], 0.1 * losses[0])
        self.assertEqual(int(opt.iterations), 150)
        # Slots for every trainable variable, after iterations.
        self.assertEqual(len(opt.variables), 1 + 2 * len(model.trainable_variables))


    def test_minimize_and_compute_gradients(self):
        w = kiln.Variable([0.0, 0.0, 0.0], name="w")
        unused = kiln.Variable([5.0], name="unused")
        target = kiln.constant([1.0, -1.0, 2.0])
        opt = optimizers.SGD(learning_rate=0.25)

        def loss():
            d = w - target
            return kiln.reduce_sum(d * d)
        opt.minimize(loss, [w, unused])  # unused gets no gradient: skipped, as Keras skips None
        self.assertEqual(w.numpy().tolist(), [0.5, -0.5, 1.0])
        self.assertEqual(unused.numpy().tolist(), [5.0])
        opt.minimize(loss, lambda: [w])  # var_list as a callable
        self.assertEqual(w.numpy().tolist(), [0.75, -0.75, 1.5])
        with kiln.GradientTape() as tape:  # a Tensor loss with its tape
            value = loss()
        pairs = opt.compute_gradients(value, [w], tape=tape)
        self.assertEqual(pairs[0][1] is w, True)
        self.assertEqual(pairs[0][0].numpy().tolist(), [-0.5, 0.5, -1.0])
        with self.assertRaises(kiln.InvalidArgumentError):
            opt.minimize(value, [w])  # a Tensor loss without its tape
        self.assertEqual(int(opt.iterations), 2)

class KerasBaseOptionsTest(unittest.TestCase):
    """Keras 3's use_ema, gradient_accumulation_steps and loss_scale_factor, against a NumPy copy of
    Keras's BaseOptimizer.apply (float32, one rounding per op) with SGD's assign_sub(g * lr)."""

    @staticmethod
    def keras_sgd(w, grads, lr, n_acc=None, ema=None, freq=None, scale=None):
        f32 = np.float32
        w, acc, avg, raw = w.astype(f32), np.zeros_like(w, f32), np.zeros_like(w, f32), 0
        for g in grads:
            g = g.astype(f32)
            if scale is not None:
                g = g / f32(scale)
            steps = raw // n_acc if n_acc else raw
            if n_acc and (raw + 1) % n_acc != 0:
                acc = g + acc
            else:
                if n_acc:
                    g = (g + acc) / f32(n_acc)
                    acc = np.zeros_like(acc)
                w = w - g * f32(lr)
            if ema is not None:
                m = f32(steps != 0) * f32(ema)
                avg = m * avg + (f32(1) - m) * w
                if freq and (steps + 1) % freq == 0:
                    w = avg.copy()
            raw += 1
        return w, avg, acc

    def test_against_kerass_apply(self):
        rng = np.random.RandomState(5)
        w0 = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
        grads = [rng.uniform(-2, 2, (3, 4)).astype(np.float32) for _ in range(9)]
        cases = [dict(n_acc=3), dict(ema=0.9), dict(ema=0.8, freq=2), dict(n_acc=2, ema=0.7),
                 dict(scale=8.0), dict(scale=3.0, n_acc=2, ema=0.5, freq=3)]
        for case in cases:
            with self.subTest(**case):
                kwargs = {}
                if "n_acc" in case:
                    kwargs["gradient_accumulation_steps"] = case["n_acc"]
                if "ema" in case:
                    kwargs.update(use_ema=True, ema_momentum=case["ema"])
                if "freq" in case:
                    kwargs["ema_overwrite_frequency"] = case["freq"]
                if "scale" in case:
                    kwargs["loss_scale_factor"] = case["scale"]
                opt = optimizers.SGD(0.1, **kwargs)
                w = kiln.Variable(w0, name="w")
                for g in grads:
                    opt.apply_gradients([(g, w)])
                want_w, want_avg, want_acc = self.keras_sgd(w0, grads, 0.1, **case)
                np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-6, atol=1e-7)
                if "ema" in case:
                    np.testing.assert_allclose(opt.get_slot(w, "average").numpy(), want_avg, rtol=1e-6, atol=1e-7)
                    opt.finalize_variable_values([w])
                    np.testing.assert_allclose(w.numpy(), want_avg, rtol=1e-6, atol=1e-7)
                if "n_acc" in case:
                    np.testing.assert_allclose(opt.get_slot(w, "gradient_accumulator").numpy(), want_acc,
                                               rtol=1e-6, atol=1e-7)
                    self.assertEqual(int(opt.iterations), len(grads) // case["n_acc"])
                    self.assertEqual(int(opt._iterations), len(grads))
                config = opt.get_config()
                for k, v in kwargs.items():
                    self.assertEqual(config[k], v)
                self.assertEqual(optimizers.SGD.from_config(config).get_config(), config)

    def test_scale_loss_and_compute_gradients(self):
        opt = optimizers.SGD(1.0, loss_scale_factor=4.0)
        self.assertEqual(float(opt.scale_loss(kiln.constant(1.5))), 6.0)
        self.assertEqual(float(optimizers.SGD().scale_loss(kiln.constant(1.5))), 1.5)
        w = kiln.Variable([1.0, 2.0], name="w")
        target = kiln.constant([0.0, 0.0])

        def loss():
            d = w - target
            return kiln.reduce_sum(d * d)
        pairs = opt.compute_gradients(loss, [w])  # of the scaled loss, which apply unscales
        self.assertEqual(pairs[0][0].numpy().tolist(), [8.0, 16.0])
        opt.apply_gradients(pairs)
        self.assertEqual(w.numpy().tolist(), [-1.0, -2.0])
        with kiln.GradientTape() as tape:
            value = loss()
        self.assertEqual(opt.compute_gradients(value, [w], tape=tape)[0][0].numpy().tolist(), [-8.0, -16.0])
        opt.minimize(loss, [w])
        self.assertEqual(w.numpy().tolist(), [1.0, 2.0])

    def test_fit_uses_them(self):
        x = np.linspace(-1, 1, 48, dtype=np.float32).reshape(16, 3)
        y = (x @ np.array([[0.5], [-1.0], [2.0]], np.float32)).astype(np.float32)

        def fit(opt):
            kiln.set_seed(7)
            model = kiln.Sequential([kiln.layers.Dense(4, activation="tanh"), kiln.layers.Dense(1)])
            model.compile(optimizer=opt, loss="mse")
            model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
            return model
        opt = optimizers.Adam(0.05, use_ema=True)
        model = fit(opt)
        for v in model.trainable_variables:  # fit ends with finalize_variable_values
            self.assertEqual(v.numpy().tolist(), opt.get_slot(v, "average").numpy().tolist())
        opt = optimizers.Adam(0.05, gradient_accumulation_steps=4)
        fit(opt)
        self.assertEqual(int(opt.iterations), 2)  # 8 batches, 2 updates
        a = fit(optimizers.Adam(0.05, loss_scale_factor=256.0))
        b = fit(optimizers.Adam(0.05))
        for va, vb in zip(a.trainable_variables, b.trainable_variables):
            self.assertEqual(va.numpy().tobytes(), vb.numpy().tobytes())

        class Counting(kiln.Model):  # super().train_step differentiates the scaled loss too
            def __init__(self):
                super().__init__()
                self.hidden, self.out = kiln.layers.Dense(4, activation="tanh"), kiln.layers.Dense(1)

            def call(self, inputs, training=None):
                return self.out(self.hidden(inputs))

            def train_step(self, data):
                return super().train_step(data)

        def fit_sub(opt):
            kiln.set_seed(7)
            model = Counting()
            model.compile(optimizer=opt, loss="mse")
            model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
            return [v.numpy().tobytes() for v in model.trainable_variables]
        self.assertEqual(fit_sub(optimizers.SGD(0.1, loss_scale_factor=32.0)), fit_sub(optimizers.SGD(0.1)))

    def test_ema_of_a_variable_without_a_gradient_at_step_0(self):
        # Keras builds every variable given into the optimizer: b's average starts as b at step 0
        # and moves every step, gradient or not.
        opt = optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9)
        a, b = kiln.Variable([1.0], name="a"), kiln.Variable([1.0], name="b")
        one = np.ones(1, np.float32)
        opt.apply_gradients([(one, a), (None, b)])
        self.assertEqual(opt.get_slot(b, "average").numpy().tolist(), [1.0])
        self.assertEqual(int(opt.apply_gradients([(one, a), (one, b)])), 2)  # the raw counter, as Keras
        f32 = np.float32
        want = f32(0.9) * f32(1.0) + (f32(1) - f32(0.9)) * (f32(1.0) - f32(1.0) * f32(0.1))
        self.assertEqual(opt.get_slot(b, "average").numpy().tolist(), [float(want)])
        opt.finalize_variable_values([a, b])
        self.assertEqual(b.numpy().tolist(), [float(want)])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "floating loss"):
            optimizers.SGD(loss_scale_factor=2.0).scale_loss(kiln.constant(3))

    def test_checkpoint_keeps_averages_and_accumulators(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="kiln_py_ema_")
        try:
            grads = [np.full((2,), v, np.float32) for v in (0.5, -1.0, 2.0, 0.25, 1.5)]
            make = lambda: optimizers.SGD(0.1, use_ema=True, gradient_accumulation_steps=2)  # noqa: E731
            a_opt, a = make(), kiln.Variable([1.0, -1.0], name="w")
            for g in grads[:3]:  # mid-accumulation: the accumulator holds grads[2]
                a_opt.apply_gradients([(g, a)])
            path = kiln.train.Checkpoint(w=a, optimizer=a_opt).save(os.path.join(d, "ckpt"))
            b_opt, b = make(), kiln.Variable([0.0, 0.0], name="w")
            status = kiln.train.Checkpoint(w=b, optimizer=b_opt).restore(path)
            for g in grads[3:]:
                a_opt.apply_gradients([(g, a)])
                b_opt.apply_gradients([(g, b)])
            status.assert_consumed()  # the slots' values waited for b_opt's first step
            self.assertEqual(a.numpy().tobytes(), b.numpy().tobytes())
            self.assertEqual([v.numpy().tobytes() for v in a_opt.variables],
                             [v.numpy().tobytes() for v in b_opt.variables])
            self.assertEqual(len(a_opt.variables), 3)  # iterations, average, gradient_accumulator
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_bad_values(self):
        for kwargs, words in ((dict(use_ema=True, ema_momentum=1.5), "ema_momentum"),
                              (dict(use_ema=True, ema_overwrite_frequency=-2), "ema_overwrite_frequency"),
                              (dict(gradient_accumulation_steps=1), "gradient_accumulation_steps must be"),
                              (dict(loss_scale_factor=0.0), "loss_scale_factor")):
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(kiln.InvalidArgumentError, words):
                    optimizers.Adam(**kwargs)


if __name__ == "__main__":
    unittest.main()
