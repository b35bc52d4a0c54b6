"""kiln.distributed under `mpirun -np 2` (and as one process): the collectives, MirroredStrategy's
fit and a GradientTape loop with DistributedOptimizer reaching the weights one process reaches on
the same global batches, and only rank 0 writing checkpoints and TensorBoard logs. Not named
test_*.py: ctest runs it under mpirun (tests/distributed/CMakeLists.txt)."""
import os
import shutil
import tempfile
import unittest

import kiln
import kiln.distributed as kd

kd.init(timeout_seconds=120)
RANK, SIZE = kd.rank(), kd.size()
N, F, C, B = 1280, 6, 3, 64


def problem():
    rng = [5]

    def nxt():
        rng[0] = (rng[0] * 1664525 + 1013904223) % (1 << 32)
        return (rng[0] >> 8) / 8388608.0 - 1.0
    x = [[nxt() for _ in range(F)] for _ in range(N)]
    y = []
    for r in x:
        a, b, c = r[0] - r[1], r[2] + r[3], r[4] - r[5]
        y.append(0 if a >= b and a >= c else (1 if b >= c else 2))
    return kiln.constant(x, kiln.float32), kiln.constant(y, kiln.int64)


X, Y = problem()


def make_model():
    kiln.set_seed(7)
    model = kiln.Sequential([kiln.layers.Dense(16, activation="relu"), kiln.layers.Dense(C, activation="softmax")])
    model.build((None, F))
    return model


def weights(model):
    return [v.numpy().tolist() if hasattr(v.numpy(), "tolist") else v.numpy() for v in model.variables]


def max_difference(a, b):
    def flat(w):
        out = []
        for t in w:
            stack = [t]
            while stack:
                e = stack.pop()
                if isinstance(e, list):
                    stack.extend(e)
                else:
                    out.append(float(e))
        return out
    fa, fb = flat(a), flat(b)
    assert len(fa) == len(fb)
    return max(abs(p - q) for p, q in zip(fa, fb))


class Collectives(unittest.TestCase):
    def test_rank_and_size(self):
        self.assertTrue(0 <= RANK < SIZE)
        self.assertTrue(0 <= kd.local_rank() < kd.local_size())
        self.assertTrue(kd.is_initialized())

    def test_allreduce_broadcast_allgather(self):
        t = kiln.constant([RANK + 1.0, -0.0, 2.5], kiln.float32)
        s = kd.allreduce(t, op="sum").numpy()
        self.assertEqual(float(s[0]), SIZE * (SIZE + 1) / 2)
        self.assertEqual(float(s[2]), 2.5 * SIZE)
        m = kd.allreduce(t).numpy()  # "mean", Horovod's default
        self.assertAlmostEqual(float(m[0]), (SIZE + 1) / 2, places=6)
        i = kd.allreduce(kiln.constant([RANK], kiln.int64), op="sum").numpy()
        self.assertEqual(int(i[0]), SIZE * (SIZE - 1) // 2)
        b = kd.broadcast(kiln.constant([[RANK * 10.0, 1.0]]), root_rank=SIZE - 1).numpy()
        self.assertEqual(float(b[0][0]), (SIZE - 1) * 10.0)
        g = kd.allgather(kiln.constant([[float(RANK)]] * (RANK + 1)))
        self.assertEqual(g.shape[0], SIZE * (SIZE + 1) // 2)
        self.assertEqual(float(g.numpy()[-1][0]), SIZE - 1.0)
        v = kiln.Variable([float(RANK)])
        kd.allreduce_(v, op="sum")
        self.assertEqual(float(v.numpy()[0]), SIZE * (SIZE - 1) / 2)
        kd.barrier()
        with self.assertRaises(kiln.InvalidArgumentError):
            kd.allreduce(t, op="max")
        with self.assertRaises(kiln.InvalidArgumentError):
            kd.allreduce(kiln.constant([1], kiln.int32), op="mean")
        if SIZE > 1:
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "differ in dtype or shape"):
                kd.broadcast(kiln.constant([1.0] * (RANK + 1)))


class Training(unittest.TestCase):
    def fit_model(self, strategy, optimizer, callbacks=None):
        model = make_model()
        if strategy is not None:
            with strategy.scope():
                model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        else:
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(X, Y, batch_size=B, epochs=1, verbose=0, shuffle=True, callbacks=callbacks)
        return model, history

    def test_fit_under_mirrored_strategy_matches_one_process(self):
        strategy = kd.MirroredStrategy()
        self.assertEqual(strategy.num_replicas_in_sync, SIZE)
        dist, h_dist = self.fit_model(strategy, kiln.optimizers.Adam(learning_rate=0.01))
        one, h_one = self.fit_model(None, kiln.optimizers.Adam(learning_rate=0.01))
        self.assertLess(max_difference(weights(dist), weights(one)), 2e-5)
        self.assertAlmostEqual(h_dist.history["loss"][0], h_one.history["loss"][0], places=4)
        self.assertAlmostEqual(h_dist.history["accuracy"][0], h_one.history["accuracy"][0], places=5)

    def test_fit_on_a_dataset_splits_each_batch(self):
        ds = kiln.data.Dataset.from_tensor_slices((X, Y)).batch(B)
        strategy = kd.MirroredStrategy()
        runs = []
        for dist in (strategy, None):
            model = make_model()
            model.compile(optimizer=kiln.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            history = model.fit(ds, epochs=2, verbose=0, distribution=dist)
            runs.append((model, history))
        self.assertLess(max_difference(weights(runs[0][0]), weights(runs[1][0])), 2e-5)
        self.assertAlmostEqual(runs[0][1].history["accuracy"][1], runs[1][1].history["accuracy"][1], places=5)

    def tape_loop(self, optimizer, distributed, wrap_tape=None):
        model = make_model()
        if distributed:
            if wrap_tape is None:
                kd.DistributedOptimizer(optimizer)
            kd.broadcast_variables(model.variables, root_rank=0)
        loss_fn = kiln.losses.SparseCategoricalCrossentropy()
        for step in range(20):
            lo, hi = step * B, (step + 1) * B
            if distributed:  # this rank's share of the global batch
                lo, hi = lo + B * RANK // SIZE, lo + B * (RANK + 1) // SIZE
            x, y = X[lo:hi], Y[lo:hi]
            with kiln.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            if distributed and wrap_tape is not None:
                tape = wrap_tape(tape)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return model

    def test_gradient_tape_loop_with_distributed_optimizer(self):
        for make in (lambda: kiln.optimizers.SGD(learning_rate=0.1),
                     lambda: kiln.optimizers.Adam(learning_rate=0.01)):
            dist = self.tape_loop(make(), True)
            one = self.tape_loop(make(), False)
            self.assertLess(max_difference(weights(dist), weights(one)), 2e-5)

    def test_gradient_tape_loop_with_distributed_gradient_tape(self):
        # Horovod's DistributedGradientTape with a plain optimizer: the gradients are averaged in
        # buckets during the backward pass (one per gradient here, so several overlap), or after it.
        wraps = (lambda t: kd.DistributedGradientTape(t, fusion_threshold_bytes=0),
                 lambda t: kd.DistributedGradientTape(t, overlap=False))
        for wrap in wraps:
            dist = self.tape_loop(kiln.optimizers.Adam(learning_rate=0.01), True, wrap)
            one = self.tape_loop(kiln.optimizers.Adam(learning_rate=0.01), False)
            self.assertLess(max_difference(weights(dist), weights(one)), 2e-5)
        # Wrapped before it is entered: the setting applies once the tape exists.
        tape = kd.DistributedGradientTape(kiln.GradientTape(), op="sum")
        v = kiln.Variable([1.0, 2.0])
        with tape:
            y = kiln.reduce_sum(v * v)
        self.assertEqual(tape.gradient(y, v).numpy().tolist(), [2.0 * SIZE, 4.0 * SIZE])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "op is 'max'"):
            kd.DistributedGradientTape(kiln.GradientTape(), op="max")
        if SIZE > 1:  # b's gradient exists on rank 0 only: every rank raises, no weights part
            a, b = kiln.Variable([1.0]), kiln.Variable([2.0])
            with kiln.GradientTape() as tape:
                y = kiln.reduce_sum(a * b) if RANK == 0 else kiln.reduce_sum(a * a)
            tape = kd.DistributedGradientTape(tape)
            with self.assertRaisesRegex(kiln.FailedPreconditionError, "defined on 1 of %d" % SIZE):
                tape.gradient(y, [a, b])

    def test_only_rank_0_writes_files(self):
        base = tempfile.mkdtemp(prefix="kiln_dist_rank%d_" % RANK)
        try:
            cbs = [kiln.callbacks.ModelCheckpoint(os.path.join(base, "ckpt-{epoch}"),
                                                  save_weights_only=True),
                   kiln.callbacks.TensorBoard(log_dir=os.path.join(base, "logs")),
                   kiln.callbacks.CSVLogger(os.path.join(base, "log.csv"))]
            self.fit_model(kd.MirroredStrategy(), "sgd", cbs)
            written = sorted(os.listdir(base))
            if RANK == 0:
                self.assertIn("logs", written)
                self.assertIn("log.csv", written)
                self.assertTrue(any(n.startswith("ckpt-1") for n in written), written)
            elif SIZE > 1:
                self.assertEqual(written, [])
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2 if RANK == 0 else 0)
