"""Python callbacks that C calls (layer call, fit hooks, dataset functions) never crash the process.

Each scenario runs in its own interpreter: a crash (SIGSEGV, abort at exit) fails the test instead
of killing the runner. The scenarios are the audit's: a layer whose call() recurses into itself
must raise RecursionError (ctypes must not get an uninitialised status pointer from a callback
whose error formatting failed); a fit callback re-entering fit likewise; a live parallel-map /
prefetch iterator at interpreter exit, and an exception out of a parallel map, exit cleanly.
"""
import os
import subprocess
import sys
import textwrap
import unittest

import kiln
from kiln import errors


def run(code, timeout=300):
    """Runs code in a fresh interpreter with this one's environment; returns (returncode, output)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=dict(os.environ), capture_output=True,
                         text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr


class CallbackRecursionTest(unittest.TestCase):
    def test_recursive_layer_call_raises_recursion_error(self):
        rc, text = run("""
            import kiln as k
            class L(k.layers.Layer):
                def call(self, x):
                    return self(x)
            try:
                L()(k.ones([1]))
            except RecursionError:
                print("RecursionError")
            # Starting at other depths moves where the limit falls inside the callback chain.
            def at(n, fn):
                return at(n - 1, fn) if n else fn()
            caught = 0
            for n in range(12):
                try:
                    at(n, lambda: L()(k.ones([1])))
                except RecursionError:
                    caught += 1
            print("caught", caught)
            print(k.add(k.ones([2]), 1.0).numpy().tolist())  # the binding still works afterwards
            """)
        self.assertEqual(rc, 0, text)
        self.assertIn("RecursionError", text)
        self.assertIn("caught 12", text)
        self.assertIn("[2.0, 2.0]", text)

    def test_fit_callback_reentering_fit_raises_recursion_error(self):
        rc, text = run("""
            import numpy as np, kiln as k
            m = k.Sequential([k.layers.Dense(1)]); m.compile("sgd", "mse")
            x = np.ones((4, 3), np.float32); y = np.ones((4, 1), np.float32)
            class C(k.callbacks.Callback):
                def on_train_begin(self, logs=None):
                    self.model.fit(x, y, epochs=1, callbacks=[self], verbose=0)
            try:
                m.fit(x, y, epochs=1, callbacks=[C()], verbose=0)
            except RecursionError:
                print("RecursionError")
            """)
        self.assertEqual(rc, 0, text)
        self.assertIn("RecursionError", text)

    def test_unformattable_exception_still_reported(self):
        # An exception whose __str__ raises: formatting the status message fails; the exception
        # itself still comes out of the call.
        class Bad(Exception):
            def __str__(self):
                raise RuntimeError("no str")

        class L(kiln.layers.Layer):
            def call(self, x):
                raise Bad()

        with self.assertRaises(Bad):
            L()(kiln.ones([1]))

    def test_callback_status_never_raises(self):
        class Bad(Exception):
            def __str__(self):
                raise RecursionError("formatting fails")

        s = errors.callback_status(Bad(), "a test")
        self.assertTrue(s)
        self.assertIn("Bad", kiln._lib.lib.kiln_status_get_message(s).decode())
        kiln._lib.lib.kiln_status_free(s)

    def test_dataset_map_exception_is_reraised(self):
        def f(x):
            if int(x) == 3:
                raise KeyError("three")
            return x
        with self.assertRaises(KeyError):
            list(kiln.data.Dataset.range(6).map(f))


class PipelineExitTest(unittest.TestCase):
    def test_live_parallel_map_iterator_at_exit(self):
        rc, text = run("""
            import time, kiln as k
            def f(x):
                time.sleep(0.01)
                return x
            it = iter(k.data.Dataset.range(1000).map(f, num_parallel_calls=4))
            next(it)
            print("exiting")
            """)
        self.assertEqual(rc, 0, text)
        self.assertIn("exiting", text)

    def test_live_prefetch_over_generator_at_exit(self):
        rc, text = run("""
            import kiln as k
            def gen():
                i = 0
                while True:
                    yield float(i)
                    i += 1
            ds = k.data.Dataset.from_generator(gen, output_signature=k.data.TensorSpec([], "float32"))
            it = iter(ds.map(lambda v: v * 2.0, num_parallel_calls=2).prefetch(8))
            print(float(next(it)), float(next(it)))
            """)
        self.assertEqual(rc, 0, text)
        self.assertIn("0.0 2.0", text)

    def test_parallel_map_exception_then_exit(self):
        rc, text = run("""
            import kiln as k
            def f(x):
                if int(x) == 7:
                    raise ValueError("seven")
                return x
            for _ in range(3):
                try:
                    list(k.data.Dataset.range(20).map(f, num_parallel_calls=4))
                except ValueError as e:
                    print("caught", e)
            it = iter(k.data.Dataset.range(20).map(f, num_parallel_calls=4).prefetch(2))
            try:
                while True:
                    next(it)
            except ValueError as e:
                print("caught again", e)
            """)
        self.assertEqual(rc, 0, text)
        self.assertEqual(text.count("caught seven"), 3, text)
        self.assertIn("caught again seven", text)

    def test_exit_hook_frees_live_iterators(self):
        # The binding's own part (independent of the C side's forced-unwind handling): live
        # iterators and datasets are freed by an atexit hook while Python still works.
        rc, text = run("""
            import time, kiln as k
            def f(x):
                time.sleep(0.001)
                return x
            ds = k.data.Dataset.range(100).map(f, num_parallel_calls=2).prefetch(4)
            it = iter(ds)
            next(it)
            assert it in k.data._LIVE_ITERATORS and ds in k.data._LIVE_DATASETS
            k.data._free_at_exit()
            print("freed", it._h is None, ds._h is None)
            try:
                next(it)
            except StopIteration:
                print("stopped")
            """)
        self.assertEqual(rc, 0, text)
        self.assertIn("freed True True", text)
        self.assertIn("stopped", text)

    def test_exception_does_not_keep_iterator_alive(self):
        import gc
        import weakref

        def f(x):
            if int(x) == 2:
                raise ValueError("two")
            return x
        it = iter(kiln.data.Dataset.range(10).map(f, num_parallel_calls=2))
        ref = weakref.ref(it)
        gc.disable()
        try:
            try:
                while True:
                    next(it)
            except ValueError:
                pass
            del it
            self.assertIsNone(ref(), "the iterator is kept alive by the exception's traceback")
        finally:
            gc.enable()


class InterruptTest(unittest.TestCase):
    def test_ctrl_c_ends_fit_evaluate_and_predict_with_keyboard_interrupt(self):
        # SIGINT, sent as Ctrl-C sends it, many times while Python callbacks run at every batch:
        # KeyboardInterrupt leaves each call at a batch boundary, never a crash, and the model
        # still works afterwards. The default handler is back once the call is over.
        rc, text = run("""
            import os, signal, threading, time
            import numpy as np, kiln as k
            m = k.Sequential([k.layers.Dense(4, activation="relu"), k.layers.Dense(2)])
            m.compile("adam", "sparse_categorical_crossentropy")
            x = np.random.rand(64, 8).astype(np.float32); y = (np.arange(64) % 2).astype(np.int64)
            class Busy(k.callbacks.Callback):
                def on_train_batch_end(self, batch, logs=None):
                    sum(range(50))
            def ctrl_c(after):
                threading.Timer(after, os.kill, (os.getpid(), signal.SIGINT)).start()
            calls = {
                "fit": lambda: m.fit(x, y, epochs=100000, verbose=0, callbacks=[Busy()]),
                "evaluate": lambda: m.evaluate(np.repeat(x, 20000, 0), np.repeat(y, 20000), batch_size=4, verbose=0),
                "predict": lambda: m.predict(np.repeat(x, 20000, 0), batch_size=4, verbose=0),
            }
            for name, call in calls.items():
                for after in (0.05, 0.2, 0.31):
                    ctrl_c(after)
                    t0 = time.time()
                    try:
                        call()
                        print(name, "not interrupted")
                    except KeyboardInterrupt:
                        print(name, "interrupted", time.time() - t0 < after + 5)
            print(m.predict(x[:2], verbose=0).shape, signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            """)
        self.assertEqual(rc, 0, text)
        for name in ("fit", "evaluate", "predict"):
            self.assertEqual(text.count("%s interrupted True" % name), 3, text)
        self.assertIn("(2, 2) True", text)

    def test_ctrl_c_in_layer_and_dataset_callbacks_never_crashes(self):
        # Outside fit, C calls back into Python from a custom layer's call and from a dataset's
        # map function on the calling thread. SIGINT, sent again and again until it lands, ends
        # each loop with KeyboardInterrupt, never a crash; afterwards the default handler is back
        # and both still work. (A KeyboardInterrupt that lands in a __del__ is swallowed by Python,
        # hence the repeats; each loop is bounded. The first thing each branch does is to swap in a
        # handler that ignores the SIGINTs still in flight, so that none escapes the test's loop.)
        rc, text = run("""
            import faulthandler, os, signal, threading, time
            import numpy as np, kiln as k
            faulthandler.enable()
            class Twice(k.layers.Layer):
                def call(self, x):
                    return x * 2.0 + sum(range(30))
            layer = Twice()
            x = k.constant(np.ones((2, 3), np.float32))
            ds = k.data.Dataset.range(10 ** 9).map(lambda v: v * 3 + sum(range(30)))
            class Sender:
                stop = False
            def interrupt_until(s):
                while not s.stop:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.003)
            def ignore(signum, frame):
                pass
            def loop(name, step):
                for _ in range(4):
                    s = Sender()
                    t = threading.Thread(target=interrupt_until, args=(s,))
                    try:
                        t.start()
                        deadline = time.time() + 30
                        while time.time() < deadline:
                            step()
                        signal.signal(signal.SIGINT, ignore)
                        result = "not interrupted"
                    except KeyboardInterrupt:
                        signal.signal(signal.SIGINT, ignore)
                        result = "interrupted"
                    s.stop = True
                    t.join()
                    time.sleep(0.05)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    print(name, result)
            loop("layer", lambda: layer(x))
            it = iter(ds)
            loop("dataset", lambda: next(it))
            print(float(layer(x).numpy()[0, 0]), int(next(iter(ds)).numpy()),
                  signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            """)
        self.assertEqual(rc, 0, text)
        self.assertEqual(text.count("layer interrupted"), 4, text)
        self.assertEqual(text.count("dataset interrupted"), 4, text)
        self.assertIn("437.0 435 True", text)


    def test_ctrl_c_stops_a_stuck_callback(self):
        # Python code of the user's that a callback runs takes Ctrl-C at once (it becomes the
        # callback's status and comes out of the call that entered C), so a custom layer's call or
        # a map function that never returns still stops.
        rc, text = run("""
            import os, signal, threading, time
            import numpy as np, kiln as k
            class Stuck(k.layers.Layer):
                def call(self, x):
                    while True:
                        time.sleep(0.001)
            def stuck_map(v):
                while True:
                    time.sleep(0.001)
            x = k.constant(np.ones((2, 3), np.float32))
            for name, call in (("layer", lambda: Stuck()(x)),
                               ("dataset", lambda: next(iter(k.data.Dataset.range(3).map(stuck_map))))):
                threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
                t0 = time.time()
                try:
                    call()
                except KeyboardInterrupt:
                    print(name, "interrupted", time.time() - t0 < 10)
            print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            """, timeout=120)
        self.assertEqual(rc, 0, text)
        self.assertIn("layer interrupted True", text)
        self.assertIn("dataset interrupted True", text)
        self.assertIn("True", text.splitlines()[-1])

if __name__ == "__main__":
    unittest.main()
