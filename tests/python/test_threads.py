"""Per-thread kernel thread counts through the Python binding (issue 5).

kiln.set_num_threads_for_this_thread and the kiln.thread_count context manager apply to the calling
thread only (OpenMP teams are per calling thread: pipeline workers can run kernels at 1 thread beside a
training thread using every core), give the same bits as the global-count run, and reject bad counts.
"""
import math
import struct
import threading
import unittest

import kiln


def filled(shape, scale):
    n = 1
    for d in shape:
        n *= d
    return kiln.reshape(kiln.constant([scale * math.sin(0.37 * i + 0.1) for i in range(n)]), shape)


def bits(t):
    """The float32 bits of t, row-major (tolist gives the exact float32 values as doubles)."""
    def flat(v):
        return [w for x in v for w in flat(x)] if isinstance(v, list) else [v]
    vals = flat(t.tolist())
    return struct.pack("%df" % len(vals), *vals)


class ThreadCountTest(unittest.TestCase):
    def setUp(self):
        kiln.set_num_threads(3)
        self.a, self.b = filled([48, 40], 1.0), filled([40, 56], 0.5)
        self.x, self.f = filled([2, 9, 9, 8], 1.0), filled([3, 3, 8, 16], 0.25)

    def tearDown(self):
        kiln.set_num_threads_for_this_thread(0)

    def run_ops(self):
        return [bits(kiln.matmul(self.a, self.b)),
                bits(kiln.conv2d(self.x, self.f, padding="SAME"))]

    def test_override_applies_to_its_thread_only(self):
        want = self.run_ops()
        seen, same, after = {}, {}, {}

        def work(i):
            if i < 2:
                kiln.set_num_threads_for_this_thread(i + 1)
            seen[i] = kiln.get_num_threads()
            same[i] = self.run_ops() == want
            kiln.set_num_threads_for_this_thread(0)
            after[i] = kiln.get_num_threads()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(seen, {0: 1, 1: 2, 2: 3})
        self.assertEqual(same, {0: True, 1: True, 2: True})
        self.assertEqual(after, {0: 3, 1: 3, 2: 3})
        self.assertEqual(kiln.get_num_threads(), 3)
        self.assertEqual(kiln.get_num_threads_for_this_thread(), 0)

    def test_context_manager_restores_the_previous_override(self):
        want = self.run_ops()
        with kiln.thread_count(2):
            self.assertEqual(kiln.get_num_threads(), 2)
            with kiln.thread_count(1):
                self.assertEqual(kiln.get_num_threads(), 1)
                self.assertEqual(self.run_ops(), want)
            self.assertEqual(kiln.get_num_threads_for_this_thread(), 2)
        self.assertEqual(kiln.get_num_threads_for_this_thread(), 0)
        self.assertEqual(kiln.get_num_threads(), 3)
        # Restored on an exception too.
        with self.assertRaises(ZeroDivisionError):
            with kiln.thread_count(1):
                1 / 0
        self.assertEqual(kiln.get_num_threads_for_this_thread(), 0)

    def test_bad_counts_are_rejected(self):
        kiln.set_num_threads_for_this_thread(2)
        for bad in (-1, 1 << 30, 100000):
            with self.assertRaises(kiln.InvalidArgumentError) as cm:
                kiln.set_num_threads_for_this_thread(bad)
            msg = str(cm.exception)
            self.assertIn("set_num_threads_for_this_thread", msg)
            self.assertIn("got %d" % bad, msg)
            self.assertIn("a count from 1 to", msg)
        with self.assertRaises(kiln.InvalidArgumentError):
            with kiln.thread_count(-5):
                pass
        self.assertEqual(kiln.get_num_threads_for_this_thread(), 2)



class OpenMpSpinCountTest(unittest.TestCase):
    """Loading kiln starts libgomp with a short spin count (src/openmp_env/openmp_env.c) unless the user
    chose one, and leaves the process environment as it was."""

    def child(self, extra_env):
        import os
        import subprocess
        import sys
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env.update(extra_env)
        env["OMP_DISPLAY_ENV"] = "verbose"
        code = ("import os, kiln; kiln.constant([1.0]); "
                "print('ENV', os.environ.get('GOMP_SPINCOUNT'))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = out.stdout + out.stderr
        start = text.find("GOMP_SPINCOUNT = '")
        self.assertGreaterEqual(start, 0, text)
        start += len("GOMP_SPINCOUNT = '")
        env_line = [line for line in out.stdout.splitlines() if line.startswith("ENV ")]
        return text[start:text.index("'", start)], env_line[0][4:]

    def test_kilns_spin_count_and_an_untouched_environment(self):
        self.assertEqual(self.child({}), ("10000", "None"))

    def test_the_users_choice_wins(self):
        self.assertEqual(self.child({"GOMP_SPINCOUNT": "777"}), ("777", "777"))
        self.assertEqual(self.child({"OMP_WAIT_POLICY": "passive"})[0], "0")


class ForkTest(unittest.TestCase):
    """libgomp's threads do not survive fork (os.fork, multiprocessing's default start method on Linux):
    in the child, the thread that forked runs kernels on one thread, with the same bits, instead of
    waiting for ever on its parent's OpenMP team; a thread the child starts has its full count."""

    def test_a_forked_child_runs_kernels_after_its_parents_threaded_ones(self):
        import os
        import time
        self.addCleanup(kiln.set_num_threads, kiln.get_num_threads())
        kiln.set_num_threads(2)
        a, b = filled([256, 320], 1.0), filled([320, 192], 0.5)
        x, f = filled([4, 16, 16, 8], 1.0), filled([3, 3, 8, 16], 0.25)
        want = [bits(kiln.matmul(a, b)), bits(kiln.conv2d(x, f, padding="SAME"))]
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                got = [bits(kiln.matmul(a, b)), bits(kiln.conv2d(x, f, padding="SAME"))]
                seen = {}

                def other():
                    seen["count"] = kiln.get_num_threads()
                    seen["same"] = bits(kiln.matmul(a, b)) == want[0]

                t = threading.Thread(target=other)
                t.start()
                t.join()
                report = "%d %d %d %d" % (kiln.get_num_threads(), got == want, seen["count"], seen["same"])
                os.write(write_end, report.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        deadline = time.time() + 60
        done, status = 0, 0
        while time.time() < deadline and done != pid:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done != pid:
                time.sleep(0.02)
        if done != pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        report = os.read(read_end, 100).decode()
        os.close(read_end)
        self.assertEqual(done, pid, "the child still waited after 60 s")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        # The forking thread: 1 thread, the same bits; a thread the child started: 2 threads, the same bits.
        self.assertEqual(report, "1 1 2 1")


if __name__ == "__main__":
    unittest.main()
