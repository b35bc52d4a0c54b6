#!/usr/bin/env python3
"""Writes optimizers_golden.json: 20-step optimizer trajectories computed in float64 NumPy, and
schedule values computed in float32 as Keras computes them (floatx), from Keras 3's formulas (keras/src/optimizers/*.py, base_optimizer.py,
schedules/learning_rate_schedule.py) and TF Model Garden's LinearWarmup.

Run from anywhere: python3 tests/golden/make_optimizer_golden.py. The C++, C and Python tests
read the JSON and need no NumPy.
"""
import ctypes
import ctypes.util
import json
import math
import os

import numpy as np

STEPS = 20
VARIABLES = [("dense/kernel", (3, 4)), ("dense/bias", (4,)), ("layer_norm/gamma", (2,))]


# ------------------------------------------------------------------ schedules

# Keras computes a schedule in floatx (float32): settings and the step cast to float32, each
# operation rounded to float32 in Keras's order; TensorFlow's scalar kernels take cos, pow and
# log from the C library, so these do too (glibc's cosf, powf, logf through ctypes).
F = np.float32
_LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
for _fn in ("cosf", "powf", "logf"):
    getattr(_LIBM, _fn).restype = ctypes.c_float
    getattr(_LIBM, _fn).argtypes = [ctypes.c_float] * (2 if _fn == "powf" else 1)


def cosf(x):
    return F(_LIBM.cosf(x))


def powf(x, y):
    return F(_LIBM.powf(x, y))


def logf(x):
    return F(_LIBM.logf(x))


PI = F(math.pi)


def schedule_value(s, step):
    """The schedule's float32 value at the integer step, as a Python float."""
    return float(schedule_f32(s, step))


def schedule_f32(s, step):
    c, name = s["config"], s["class_name"]
    st = F(step)
    if name == "ExponentialDecay" or name == "InverseTimeDecay":
        p = st / F(c["decay_steps"])
        if c.get("staircase", False):
            p = np.floor(p)
        init, rate = F(c["initial_learning_rate"]), F(c["decay_rate"])
        if name == "ExponentialDecay":
            return init * powf(rate, p)
        return init / (F(1) + rate * p)
    if name == "PiecewiseConstantDecay":
        # An int boundary stays exact; a float one goes through float32 to the step's int64.
        b = [int(x) if float(x).is_integer() else int(F(x)) for x in c["boundaries"]]
        v = [F(x) for x in c["values"]]
        r = F(0)
        if step <= b[0]:
            r += v[0]
        if step > b[-1]:
            r += v[-1]
        for lo, hi, val in zip(b[:-1], b[1:], v[1:-1]):
            if lo < step <= hi:
                r += val
        return r
    if name == "PolynomialDecay":
        init, steps = F(c["initial_learning_rate"]), F(c["decay_steps"])
        end, power = F(c.get("end_learning_rate", 0.0001)), F(c.get("power", 1.0))
        if c.get("cycle", False):
            steps = steps * (F(1) if st == 0 else np.ceil(st / F(c["decay_steps"])))
        else:
            st = min(st, steps)
        return (init - end) * powf(F(1) - st / steps, power) + end
    if name == "CosineDecay":
        init, steps, alpha = F(c["initial_learning_rate"]), F(c["decay_steps"]), c.get("alpha", 0.0)
        target, wsteps = c.get("warmup_target"), F(c.get("warmup_steps", 0))

        def decay(s_, frm):
            cosine = F(0.5) * (F(1) + cosf(PI * (s_ / steps)))
            return frm * (F(1 - alpha) * cosine + F(alpha))  # Keras: (1 - self.alpha) in Python
        if target is None:
            return decay(min(st, steps), init)
        target = F(target)
        st = min(st, steps + wsteps)
        if st < wsteps:
            return (target - init) * (st / wsteps) + init
        return decay(st - wsteps, target)
    if name == "CosineDecayRestarts":
        init, first = F(c["initial_learning_rate"]), F(c["first_decay_steps"])
        t_mul, m_mul, alpha = F(c.get("t_mul", 2.0)), F(c.get("m_mul", 1.0)), F(c.get("alpha", 0.0))
        fraction = st / first
        if t_mul == F(1):
            restart = np.floor(fraction)
            fraction -= restart
        else:
            restart = np.floor(logf(F(1) - fraction * (F(1) - t_mul)) / logf(t_mul))
            sum_r = (F(1) - powf(t_mul, restart)) / (F(1) - t_mul)
            fraction = (fraction - sum_r) / powf(t_mul, restart)
        cosine = F(0.5) * powf(m_mul, restart) * (F(1) + cosf(PI * fraction))
        return init * ((F(1) - alpha) * cosine + alpha)
    if name == "LinearWarmup":
        # TF Model Garden: init + step / warmup_steps * (final - init), in float32.
        after, wsteps = c["after_warmup_lr_sched"], F(c["warmup_steps"])
        wlr = F(c.get("warmup_learning_rate", 0.0))
        at = (lambda k: schedule_f32(after, k)) if isinstance(after, dict) else (lambda k: F(after))
        if st < wsteps:
            return wlr + st / wsteps * (at(int(c["warmup_steps"])) - wlr)
        return at(step)
    if name == "WarmUp":
        # TF Model Garden's official.nlp.optimization.WarmUp, in float32.
        init, wsteps, power = F(c["initial_learning_rate"]), F(c["warmup_steps"]), F(c.get("power", 1.0))
        after = c["decay_schedule_fn"]
        if st < wsteps:
            return init * powf(st / wsteps, power)
        return schedule_f32(after, step) if isinstance(after, dict) else F(after)
    raise ValueError(name)


# ----------------------------------------------------------------- optimizers

DEFAULT_LR = {"SGD": 0.01}


class Reference:
    """One optimizer, float64, Keras 3's formulas."""

    def __init__(self, class_name, config, exclude):
        self.cls, self.c = class_name, dict(config)
        self.lr = self.c.get("learning_rate", DEFAULT_LR.get(class_name, 0.001))
        self.wd = self.c.get("weight_decay", 0.004 if class_name == "AdamW" else None)
        self.exclude = exclude
        self.iterations = 0
        self.slots = {}
        self.u_product = 1.0

    def current_lr(self):
        return schedule_value(self.lr, self.iterations) if isinstance(self.lr, dict) else self.lr

    def slot(self, name, key, like, init=0.0):
        return self.slots.setdefault((name, key), np.full_like(like, init))

    def apply(self, grads, weights, names):
        pairs = [(g, i) for i, g in enumerate(grads) if g is not None]
        # Keras keeps a float learning rate in a float32 variable; the update reads it cast to the
        # variable's dtype (a schedule's value is float32 already).
        lr = float(np.float32(self.current_lr()))
        c = self.c
        gs = [g for g, _ in pairs]
        if c.get("clipnorm"):
            out = []
            for g in gs:
                n = math.sqrt(float(np.sum(g * g)))
                out.append(g * c["clipnorm"] / max(n, c["clipnorm"]))
            gs = out
        elif c.get("global_clipnorm"):
            n = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
            scale = c["global_clipnorm"] * min(1.0 / n, 1.0 / c["global_clipnorm"])
            gs = [g * scale for g in gs]
        elif c.get("clipvalue"):
            gs = [np.clip(g, -c["clipvalue"], c["clipvalue"]) for g in gs]
        t = self.iterations + 1
        if self.cls == "Nadam":
            self.u_product *= self._u(t)
        for g, (_, i) in zip(gs, pairs):
            w = weights[i]
            if self.wd and not any(x in names[i] for x in self.exclude):
                w = w - w * self.wd * lr
            weights[i] = self.update(g, w, names[i], lr, t)
        self.iterations += 1

    def _u(self, t):
        return self.c.get("beta_1", 0.9) * (1.0 - 0.5 * 0.96 ** t)

    def update(self, g, w, key, lr, t):
        c, cls = self.c, self.cls
        if cls == "SGD":
            mom = c.get("momentum", 0.0)
            if mom == 0:
                return w - g * lr
            m = self.slot("momentum", key, w)
            m[...] = m * mom - g * lr
            if c.get("nesterov", False):
                return w + (m * mom - g * lr)
            return w + m
        if cls in ("Adam", "AdamW"):
            b1, b2, eps = c.get("beta_1", 0.9), c.get("beta_2", 0.999), c.get("epsilon", 1e-7)
            alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m, v = self.slot("momentum", key, w), self.slot("velocity", key, w)
            m += (g - m) * (1 - b1)
            v += (g * g - v) * (1 - b2)
            if c.get("amsgrad", False):
                vh = self.slot("velocity_hat", key, w)
                vh[...] = np.maximum(vh, v)
                v = vh
            return w - (m * alpha) / (np.sqrt(v) + eps)
        if cls == "RMSprop":
            rho, mom, eps = c.get("rho", 0.9), c.get("momentum", 0.0), c.get("epsilon", 1e-7)
            vel = self.slot("velocity", key, w)
            vel[...] = rho * vel + (1 - rho) * g * g
            if c.get("centered", False):
                a = self.slot("average_gradient", key, w)
                a[...] = rho * a + (1 - rho) * g
                denom = vel - a * a + eps
            else:
                denom = vel + eps
            inc = lr * g / np.sqrt(denom)
            if mom > 0:
                m = self.slot("momentum", key, w)
                m[...] = mom * m + inc
                return w - m
            return w - inc
        if cls == "Adagrad":
            eps = c.get("epsilon", 1e-7)
            acc = self.slot("accumulator", key, w, c.get("initial_accumulator_value", 0.1))
            acc += g * g
            return w - lr * g / np.sqrt(acc + eps)
        if cls == "Adadelta":
            rho, eps = c.get("rho", 0.95), c.get("epsilon", 1e-7)
            ag, adv = self.slot("accumulated_grad", key, w), self.slot("accumulated_delta_var", key, w)
            ag[...] = rho * ag + (1 - rho) * g * g
            delta = -(np.sqrt(adv + eps) * g) / np.sqrt(ag + eps)
            adv[...] = rho * adv + (1 - rho) * delta * delta
            return w + lr * delta
        if cls == "Nadam":
            b1, b2, eps = c.get("beta_1", 0.9), c.get("beta_2", 0.999), c.get("epsilon", 1e-7)
            u_t, u_next = self._u(t), self._u(t + 1)
            prod, prod_next = self.u_product, self.u_product * u_next
            m, v = self.slot("momentum", key, w), self.slot("velocity", key, w)
            m += (g - m) * (1 - b1)
            v += (g * g - v) * (1 - b2)
            m_hat = u_next * m / (1 - prod_next) + (1 - u_t) * g / (1 - prod)
            v_hat = v / (1 - b2 ** t)
            return w - m_hat * lr / (np.sqrt(v_hat) + eps)
        if cls == "Adamax":
            b1, b2, eps = c.get("beta_1", 0.9), c.get("beta_2", 0.999), c.get("epsilon", 1e-7)
            m, u = self.slot("momentum", key, w), self.slot("norm", key, w)
            m += (g - m) * (1 - b1)
            u[...] = np.maximum(b2 * u, np.abs(g))
            return w - (lr * m) / ((1 - b1 ** t) * (u + eps))
        if cls == "Lion":
            b1, b2 = c.get("beta_1", 0.9), c.get("beta_2", 0.99)
            m = self.slot("momentum", key, w)
            out = w - lr * np.sign(m * b1 + g * (1 - b1))
            m[...] = m * b2 + g * (1 - b2)
            return out
        if cls == "Ftrl":
            power = -c.get("learning_rate_power", -0.5)
            l1 = c.get("l1_regularization_strength", 0.0)
            l2 = c.get("l2_regularization_strength", 0.0) + c.get("beta", 0.0) / (2.0 * lr)
            shrink = 2 * c.get("l2_shrinkage_regularization_strength", 0.0)
            n = self.slot("accumulator", key, w, c.get("initial_accumulator_value", 0.1))
            linear = self.slot("linear", key, w)
            n_new = n + g * g
            linear += (g + shrink * w) - (n_new ** power - n ** power) / lr * w
            n[...] = n_new
            return (np.clip(linear, -l1, l1) - linear) / (n_new ** power / lr + 2 * l2)
        if cls == "Lamb":
            b1, b2, eps = c.get("beta_1", 0.9), c.get("beta_2", 0.999), c.get("epsilon", 1e-7)
            m, v = self.slot("momentum", key, w), self.slot("velocity", key, w)
            m += (g - m) * (1 - b1)
            v += (g * g - v) * (1 - b2)
            r = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
            w_norm, r_norm = np.sqrt(np.sum(w * w)), np.sqrt(np.sum(r * r))
            ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
            return w - ratio * lr * r
        if cls == "Adafactor":
            decay, eps1 = c.get("beta_2_decay", -0.8), c.get("epsilon_1", 1e-30)
            eps2, clip = c.get("epsilon_2", 1e-3), c.get("clip_threshold", 1.0)
            rho = min(lr, 1 / math.sqrt(t))  # relative_step's min(lr, 1 / sqrt(t)) first changes nothing
            alpha = max(eps2, math.sqrt(np.mean(w * w))) * rho
            square = g * g + eps1
            beta = 1 - t ** decay
            v = self.slot("velocity", key, w)
            if w.ndim >= 2:  # factored over the last two axes
                r, col = self.slot("r", key, w[..., 0]), self.slot("c", key, w[..., 0, :])
                r[...] = beta * r + (1 - beta) * square.mean(axis=-1)
                col[...] = beta * col + (1 - beta) * square.mean(axis=-2)
                v[...] = (r / r.mean(axis=-1, keepdims=True))[..., None] * col[..., None, :]
            else:
                v[...] = beta * v + (1 - beta) * square
            u = g / np.sqrt(v)
            return w - alpha * (u / max(1.0, math.sqrt(np.mean(u * u)) / clip))
        raise ValueError(cls)


def poly(init, steps, end):
    return {"class_name": "PolynomialDecay",
            "config": {"initial_learning_rate": init, "decay_steps": steps, "end_learning_rate": end}}


CASES = [
    ("sgd", "SGD", {"learning_rate": 0.1}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd_weight_decay", "SGD", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("sgd_global_clipnorm", "SGD", {"learning_rate": 0.1, "global_clipnorm": 1.0}),
    ("adam", "Adam", {"learning_rate": 0.05}),
    ("adam_defaults", "Adam", {}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.05, "amsgrad": True}),
    ("adam_clipnorm", "Adam", {"learning_rate": 0.05, "clipnorm": 0.5}),
    ("adam_clipvalue", "Adam", {"learning_rate": 0.05, "clipvalue": 0.1}),
    ("adam_schedule", "Adam", {"learning_rate": {"class_name": "ExponentialDecay", "config": {
        "initial_learning_rate": 0.05, "decay_steps": 5, "decay_rate": 0.5}}}),
    ("adam_lr_change", "Adam", {"learning_rate": 0.05}),
    ("adamw", "AdamW", {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("adamw_exclude", "AdamW", {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("adamw_warmup", "AdamW", {"learning_rate": {"class_name": "LinearWarmup", "config": {
        "after_warmup_lr_sched": poly(0.05, STEPS, 0.0), "warmup_steps": 5, "warmup_learning_rate": 0.0}},
        "weight_decay": 0.01, "exclude_from_weight_decay": ["layer_norm", "bias"]}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.01}),
    ("rmsprop_momentum_centered", "RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    ("adagrad", "Adagrad", {"learning_rate": 0.1}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0}),
    ("nadam", "Nadam", {"learning_rate": 0.05}),
    ("adamax", "Adamax", {"learning_rate": 0.05}),
    ("adamax_weight_decay", "Adamax", {"learning_rate": 0.05, "beta_2": 0.9, "weight_decay": 0.1}),
    ("lion", "Lion", {"learning_rate": 0.01}),
    ("lion_clipnorm", "Lion", {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9, "clipnorm": 0.5}),
    ("ftrl", "Ftrl", {"learning_rate": 0.1}),
    ("lamb", "Lamb", {"learning_rate": 0.05}),
    ("lamb_weight_decay_clipnorm", "Lamb", {"learning_rate": 0.05, "weight_decay": 0.1, "clipnorm": 1.0}),
    ("adafactor", "Adafactor", {"learning_rate": 0.05}),
    ("adafactor_defaults", "Adafactor", {}),
    ("adafactor_schedule_weight_decay_clip", "Adafactor", {
        "learning_rate": {"class_name": "ExponentialDecay", "config": {
            "initial_learning_rate": 0.5, "decay_steps": 4, "decay_rate": 0.5}},
        "beta_2_decay": -0.5, "epsilon_2": 0.01, "clip_threshold": 0.5, "relative_step": False,
        "weight_decay": 0.1, "clipnorm": 1.0}),
    ("ftrl_regularized", "Ftrl", {"learning_rate": 0.2, "learning_rate_power": -0.7, "initial_accumulator_value": 0.5,
                                  "l1_regularization_strength": 1.5, "l2_regularization_strength": 0.02,
                                  "l2_shrinkage_regularization_strength": 0.03, "beta": 0.5}),
    ("ftrl_fixed_rate_weight_decay", "Ftrl", {"learning_rate": 0.05, "learning_rate_power": 0.0,
                                              "weight_decay": 0.1, "clipvalue": 1.0}),
]
# Cases with exclusions given by exclude_from_weight_decay(var_names=...), not by the config.
EXCLUDE_CALL = {"adamw_exclude": ["bias"]}
# Cases whose learning rate is set mid-run: {step index: new learning rate}.
LR_CHANGES = {"adam_lr_change": {10: 0.01}}

SCHEDULES = [
    {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9}},
    {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9,
                                                  "staircase": True}},
    {"class_name": "PiecewiseConstantDecay", "config": {"boundaries": [10, 20], "values": [1.0, 0.5, 0.1]}},
    {"class_name": "PolynomialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 20}},
    {"class_name": "PolynomialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 10,
                                                 "end_learning_rate": 0.01, "power": 2.0, "cycle": True}},
    {"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 20, "alpha": 0.1}},
    {"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.0, "decay_steps": 20,
                                             "warmup_target": 0.1, "warmup_steps": 5}},
    {"class_name": "CosineDecayRestarts", "config": {"initial_learning_rate": 0.1, "first_decay_steps": 5,
                                                     "m_mul": 0.5, "alpha": 0.1}},
    {"class_name": "CosineDecayRestarts", "config": {"initial_learning_rate": 0.1, "first_decay_steps": 10,
                                                     "t_mul": 1.0, "m_mul": 0.9}},
    {"class_name": "CosineDecayRestarts", "config": {"initial_learning_rate": 0.1, "first_decay_steps": 4,
                                                     "t_mul": 1.5}},
    {"class_name": "InverseTimeDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}},
    {"class_name": "InverseTimeDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5,
                                                  "staircase": True}},
    {"class_name": "LinearWarmup", "config": {"after_warmup_lr_sched": poly(0.1, 30, 0.0), "warmup_steps": 10,
                                              "warmup_learning_rate": 0.0}},
    {"class_name": "LinearWarmup", "config": {"after_warmup_lr_sched": 0.05, "warmup_steps": 4,
                                              "warmup_learning_rate": 0.01}},
    {"class_name": "WarmUp", "config": {"initial_learning_rate": 0.1, "decay_schedule_fn": poly(0.1, 30, 0.0),
                                        "warmup_steps": 10}},
    {"class_name": "WarmUp", "config": {"initial_learning_rate": 0.07, "decay_schedule_fn": 0.05,
                                        "warmup_steps": 7, "power": 2.0}},
    {"class_name": "PiecewiseConstantDecay", "config": {"boundaries": [-0.5, 20.0, 30], "values": [1.0, 0.5, 0.1, 0.01]}},
]
SCHEDULE_STEPS = [0, 1, 3, 4, 5, 9, 10, 11, 15, 19, 20, 21, 25, 30, 35]


def main():
    rng = np.random.default_rng(20261130)
    inits = [rng.normal(0, 1, shape).astype(np.float32).astype(np.float64) for _, shape in VARIABLES]
    grads = []
    for step in range(STEPS):
        gs = [(rng.normal(0, 1, shape) * 1.5).astype(np.float32).astype(np.float64) for _, shape in VARIABLES]
        if step == 3:
            gs[1] = None  # a missing gradient skips its variable, as Keras does
        grads.append(gs)
    names = [n for n, _ in VARIABLES]
    cases = []
    for case, cls, config in CASES:
        exclude = list(config.get("exclude_from_weight_decay", [])) + EXCLUDE_CALL.get(case, [])
        ref = Reference(cls, config, exclude)
        weights = [w.copy() for w in inits]
        trajectory, rates = [], []
        for step in range(STEPS):
            if step in LR_CHANGES.get(case, {}):
                ref.lr = LR_CHANGES[case][step]
            rates.append(ref.current_lr())
            ref.apply(grads[step], weights, names)
            trajectory.append([w.reshape(-1).tolist() for w in weights])
        entry = {"name": case, "class_name": cls, "config": config, "trajectory": trajectory,
                 "learning_rates": rates}
        if case in EXCLUDE_CALL:
            entry["exclude_var_names"] = EXCLUDE_CALL[case]
        if case in LR_CHANGES:
            entry["set_learning_rate"] = [[k, v] for k, v in LR_CHANGES[case].items()]
        cases.append(entry)
    schedules = [{"schedule": s, "steps": SCHEDULE_STEPS, "values": [schedule_value(s, st) for st in SCHEDULE_STEPS]}
                 for s in SCHEDULES]
    out = {
        "about": ("Generated by tests/golden/make_optimizer_golden.py from Keras 3's formulas: trajectories in "
                  "float64, schedules in float32 (Keras's floatx)."),
        "steps": STEPS,
        "variables": [{"name": n, "shape": list(s), "init": w.reshape(-1).tolist()}
                      for (n, s), w in zip(VARIABLES, inits)],
        "gradients": [[None if g is None else g.reshape(-1).tolist() for g in gs] for gs in grads],
        "cases": cases,
        "schedules": schedules,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizers_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote", path, "with", len(cases), "optimizer cases and", len(schedules), "schedules")


if __name__ == "__main__":
    main()
