"""Writes a kiln log directory (a GradientTape loop with kiln.summary, an hparams experiment, and
model.fit with the TensorBoard callback) and a JSON of what was logged, from kiln's side, for
scripts/check_with_tensorboard.py to compare with what TensorBoard's own loader reads:

    /usr/bin/python3 scripts/tensorboard_sample_logdir.py LOGDIR EXPECT.json
    /usr/bin/python3 scripts/check_with_tensorboard.py --tensorboard-src TB_SRC LOGDIR --expect EXPECT.json

(with PYTHONPATH=bindings/python and KILN_LIBRARY=build/capi/libkiln.so). The ctest
python.tensorboard_loader runs both when configured with -DKILN_TENSORBOARD_SRC=<a TensorBoard
source tree with its generated *_pb2.py>."""
import hashlib
import json
import math
import os
import shutil
import sys

import numpy as np

import kiln

LOGDIR = sys.argv[1] if len(sys.argv) > 1 else "/tmp/h4-kiln-logs"
EXPECT = sys.argv[2] if len(sys.argv) > 2 else "/tmp/h4-kiln-expect.json"
shutil.rmtree(LOGDIR, ignore_errors=True)
expect = {}


def add(run, tag, step, value):
    e = expect.setdefault(run, {}).setdefault(tag, {"steps": [], "values": []})
    e["steps"].append(int(step))
    e["values"].append(value)


def tf_histogram(data, buckets=30):
    """TensorBoard's summary_v2 _buckets, in float64 (what TF 2.x writes)."""
    d = np.asarray(data, dtype=np.float64).reshape(-1)
    if d.size == 0:
        return {"buckets": buckets, "count": 0.0}
    lo, hi = d.min(), d.max()
    if hi == lo:
        counts = [0.0] * (buckets - 1) + [float(d.size)]
        return {"buckets": buckets, "count": float(d.size), "min": float(hi), "max": float(hi), "counts": counts}
    width = (hi - lo) / buckets
    idx = np.minimum(np.floor((d - lo) / width).astype(np.int64), buckets - 1)
    counts = np.bincount(idx, minlength=buckets).astype(np.float64)
    return {"buckets": buckets, "count": float(d.size), "min": float(lo), "max": float(hi),
            "counts": [float(c) for c in counts]}


def tf_image_uint8(batch):
    """tf.image.convert_image_dtype(x, uint8, saturate=True) for float x: x * 255.5 in the input's
    float type, clamped to [0, 255], truncated. uint8 stays as is."""
    a = np.asarray(batch)
    if a.dtype == np.uint8:
        return a
    scaled = a.astype(np.float32) * np.float32(255.5)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def image_expect(batch, max_outputs=3):
    px = tf_image_uint8(batch)[:max_outputs]
    k, h, w, c = px.shape
    return {"count": int(k), "width": int(w), "height": int(h), "channels": int(c),
            "sha256": [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in px],
            "pixels": px.astype(int).tolist()}


# ------------------------------------------------------------------------------------------------
# 1. Custom training loop (TF2's metrics pattern)
kiln.set_seed(7)
rng = np.random.default_rng(3)
x_all = rng.uniform(-1, 1, size=(96, 4)).astype(np.float32)
y_all = (x_all @ np.array([1.0, -2.0, 0.5, 0.25], dtype=np.float32) > 0).astype(np.int32)

model = kiln.Sequential([kiln.layers.Dense(8, activation="relu"), kiln.layers.Dense(2)])
opt = kiln.optimizers.Adam(learning_rate=0.02)
loss_fn = kiln.losses.SparseCategoricalCrossentropy(from_logits=True)
mean_loss = kiln.metrics.Mean(name="loss")
run = "custom/train"
writer = kiln.summary.create_file_writer(os.path.join(LOGDIR, "custom", "train"))
with writer.as_default():
    kiln.summary.hparams({"lr": 0.02, "units": 8, "optimizer": "adam", "bn": True})
    add(run, "_hparams_/session_start_info", 0,
        {"hparams": {"lr": 0.02, "units": 8, "optimizer": "adam", "bn": True}})
    kiln.summary.experimental.set_step(opt.iterations)  # bound: read at each summary
    for i in range(12):
        xb = kiln.constant(x_all[i * 8:(i + 1) * 8])
        yb = kiln.constant(y_all[i * 8:(i + 1) * 8])
        with kiln.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        mean_loss.update_state(loss)
        step = int(opt.iterations)
        if step % 3 == 0:
            assert kiln.summary.scalar("loss", mean_loss.result(), step=opt.iterations)
            add(run, "loss", step, float(mean_loss.result().item()))
            mean_loss.reset_state()
            assert kiln.summary.scalar("loss_default_step", float(loss))  # step from set_step
            add(run, "loss_default_step", step, float(loss))
            kvar = model.layers[0].trainable_variables[0]
            kernel = kvar.numpy()
            assert kiln.summary.histogram("dense/kernel", kvar, step=opt.iterations)
            add(run, "dense/kernel", step, tf_histogram(kernel))
    # Special histograms: one value repeated, integers, a 1-bucket request.
    kiln.summary.histogram("const", kiln.constant([2.5] * 7), step=1)
    add(run, "const", 1, tf_histogram([2.5] * 7))
    ints = list(range(-5, 17))
    kiln.summary.histogram("ints", kiln.constant(ints, dtype="int32"), step=2, buckets=4)
    add(run, "ints", 2, tf_histogram(ints, 4))
    # Images: a uint8 RGB batch and a float grayscale batch (values chosen to tell x*255.5 truncated
    # from x*255 rounded), max_outputs cutting the float batch to 2.
    u8 = rng.integers(0, 256, size=(2, 4, 5, 3), dtype=np.uint8)
    assert kiln.summary.image("rgb_u8", kiln.constant(u8.tolist(), dtype="uint8"), step=5)
    add(run, "rgb_u8", 5, image_expect(u8))
    f = np.array([0.0, 0.5, 1.0, 0.25, 0.75, 1 / 255, 0.999, 0.002, -0.5, 1.5, 0.3, 0.7], dtype=np.float32)
    fb = np.stack([f.reshape(3, 4, 1), f[::-1].reshape(3, 4, 1), np.full((3, 4, 1), 0.5, np.float32)])
    assert kiln.summary.image("gray_float", kiln.constant(fb.tolist()), step=6, max_outputs=2)
    add(run, "gray_float", 6, image_expect(fb, 2))
    rgba = rng.uniform(0, 1, size=(1, 3, 2, 4)).astype(np.float32)
    assert kiln.summary.image("rgba_float", kiln.constant(rgba.tolist()), step=6)
    add(run, "rgba_float", 6, image_expect(rgba))
    table = "| metric | value |\n|---|---|\n| loss | %.4f |\n| steps | %d |" % (expect[run]["loss"]["values"][-1], 12)
    assert kiln.summary.text("notes", table, step=12)
    add(run, "notes", 12, table)
    uni = "température ✓ — **bold** `code`\n\n* item"
    assert kiln.summary.text("unicode", uni, step=3)
    add(run, "unicode", 3, uni)
    assert kiln.summary.scalar("int_value", 7, step=100)
    add(run, "int_value", 100, 7.0)
    assert kiln.summary.scalar("third", 1.0 / 3.0, step=-1 + 2)
    add(run, "third", 1, 1.0 / 3.0)
    big = 2 ** 40 + 5
    assert kiln.summary.scalar("big_step", 0.1, step=big)
    add(run, "big_step", big, 0.1)
    kiln.summary.hparams_end("success")
    add(run, "_hparams_/session_end_info", 0, {"status": "STATUS_SUCCESS"})
    kiln.summary.experimental.set_step(None)
writer.close()

# The experiment summary in the log directory itself (run ".").
root = kiln.summary.create_file_writer(LOGDIR)
with root.as_default():
    kiln.summary.hparams_config(
        hparams=[{"name": "lr", "min_value": 0.001, "max_value": 0.1}, {"name": "optimizer", "values": ["adam", "sgd"]}],
        metrics=[{"tag": "loss", "display_name": "Loss"}])
    add(".", "_hparams_/experiment", 0, {
        "hparam_infos": [{"name": "lr", "domain_interval": {"min_value": 0.001, "max_value": 0.1}},
                         {"name": "optimizer", "domain_discrete": ["adam", "sgd"]}],
        "metric_infos": [{"name": {"tag": "loss"}, "display_name": "Loss"}]})
root.close()

# ------------------------------------------------------------------------------------------------
# 2. model.fit with kiln.callbacks.TensorBoard
fit_status = "skipped: kiln.callbacks.TensorBoard does not exist yet"
if hasattr(kiln.callbacks, "TensorBoard"):
    kiln.set_seed(11)
    m = kiln.Sequential([kiln.layers.Dense(6, activation="relu", name="hidden"), kiln.layers.Dense(2, name="out")])
    m.build((None, 4))
    m.compile(optimizer=kiln.optimizers.Adam(learning_rate=0.01), loss=kiln.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    fit_dir = os.path.join(LOGDIR, "fit")
    batches = []  # (global batch number, logs) for every training batch
    epoch_weights = []  # {weight path: ndarray} at each epoch end
    epoch_iters = []

    def on_batch_end(batch, logs):
        batches.append((len(batches) + 1, dict(logs or {})))

    def on_epoch_end(epoch, logs):
        # Keras 2.13 names a weight "<layer>/<weight>:0" (no model prefix); the tags are built from that.
        epoch_weights.append([(layer.name + "/" + w.name.split("/")[-1].split(":")[0], w.numpy().copy())
                              for layer in m.layers for w in layer.weights])
        epoch_iters.append(int(m.optimizer.iterations))

    rec = kiln.callbacks.LambdaCallback(on_train_batch_end=on_batch_end, on_epoch_end=on_epoch_end)
    tb = kiln.callbacks.TensorBoard(fit_dir, histogram_freq=1, write_images=True, update_freq=2)
    hist = m.fit(x_all[:60], y_all[:60], batch_size=8, epochs=3, shuffle=False, verbose=0, validation_split=0.2,
                 callbacks=[rec, tb])
    h = hist.history
    epochs = list(hist.epoch)
    for name, values in h.items():
        if name.startswith("val_"):
            for e, v in zip(epochs, values):
                add("fit/validation", "epoch_" + name[4:], e, float(v))
                add("fit/validation", "evaluation_%s_vs_iterations" % name[4:], epoch_iters[e], float(v))
        else:
            for e, v in zip(epochs, values):
                add("fit/train", "epoch_" + name, e, float(v))
    for e in epochs:
        add("fit/train", "epoch_learning_rate", e, 0.01)
    for n, logs in batches:
        if n % 2 == 0:
            for name, v in logs.items():
                add("fit/train", "batch_" + name, n, float(v))
    add("fit/train", "keras", 0, {"class_name": "Sequential"})
    for e, ws in enumerate(epoch_weights):
        for wname, w in ws:
            base = wname.split(":")[0]
            add("fit/train", base + "_0/histogram", e, tf_histogram(w))
            img = np.squeeze(w)
            if img.ndim == 1:
                img = img.reshape(1, img.shape[0], 1, 1)
            elif img.ndim == 2:
                if img.shape[0] > img.shape[1]:
                    img = img.T
                img = img.reshape(1, img.shape[0], img.shape[1], 1)
            add("fit/train", base + "_0/image", e, image_expect(img))
    fit_status = "ran: %d epochs, %d batches, history %s, weights %s" % (
        len(epochs), len(batches), {k: [round(x, 6) for x in v] for k, v in h.items()}, [w.name for w in m.weights])

with open(EXPECT, "w") as fh:
    json.dump(expect, fh, indent=1)
print("logdir", LOGDIR, "expect", EXPECT)
print("fit:", fit_status)
for r in sorted(expect):
    print(" ", r, sorted(expect[r]))
