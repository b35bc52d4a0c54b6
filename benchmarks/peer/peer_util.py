"""What the PyTorch peers (*_torch.py) and their drivers (compare_all.py, compare_training.py,
compare_bert_encoder.py) share: timing, the `RESULT` line the peers print, and the drivers' process
runner with issue 10's fair environments."""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def loaded_blas():
    """The BLAS library this process loaded (Debian's torch calls whichever libblas.so.3 is found)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if os.path.basename(line.split()[-1]).startswith("libblas")}
    except OSError:
        return "unknown"
    return ",".join(os.path.realpath(p) for p in sorted(paths)) or "none"


def time_steps(step, warmup, steps):
    """Runs step() warmup times untimed, then steps times; returns each timed step's milliseconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def time_per_call(fn, repetitions, min_time):
    """Google Benchmark's way for calls too short to time one by one: finds a number of calls that
    takes at least min_time seconds, then times repetitions blocks of that many calls. Returns each
    block's seconds per call (kiln's side is the median of its repetitions' means, the same thing)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        n = n * 10 if elapsed < min_time / 10 else max(n + 1, int(n * 1.4 * min_time / elapsed))
    per_call = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_call.append((time.perf_counter() - t0) / n)
    return per_call


def result_line(item, values, unit, **extra):
    """The line compare_all.py reads: `RESULT <item> median M min A max B unit U [key value]...`."""
    line = "RESULT %s median %.6g min %.6g max %.6g unit %s" % (item, statistics.median(values), min(values),
                                                              max(values), unit)
    return line + "".join(" %s %s" % (k, v) for k, v in extra.items())


def torch_facts(torch):
    """The key-value pairs every peer appends to its RESULT lines."""
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "blas": loaded_blas()}


def import_torch():
    """torch at 2 threads, or None after a message saying why it is skipped."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the PyTorch peer (Debian: apt-get install python3-torch)")
        return None
    torch.set_num_threads(2)
    return torch


def step_line(name, times, torch):
    """The peer's one-line report: `torch <name> step ms: median M min A max B steps N ...`."""
    return ("torch %s step ms: median %.4f min %.4f max %.4f steps %d threads %d torch %s blas %s"
            % (name, statistics.median(times), min(times), max(times), len(times), torch.get_num_threads(),
               torch.__version__, loaded_blas()))


def summary(rounds, key="median", lo="min", hi="max"):
    """Over rounds (dicts): the median of their key values, the smallest lo and the largest hi."""
    return statistics.median(r[key] for r in rounds), min(r[lo] for r in rounds), max(r[hi] for r in rounds)


# The drivers' side.

class RunFailed(Exception):
    """A benchmark process exited with a non-zero status; the message has its output."""


def run(cmd, env, check=True):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MiB). A non-zero exit ends the driver
    (check) or raises RunFailed."""
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = p.stdout.read()
        p.stdout.close()
        _, status, usage = os.wait4(p.pid, 0)  # the child's own rusage: its peak RSS
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            message = "%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, out, err.read())
            if check:
                sys.exit(message)
            raise RunFailed(message)
    return out, wall, usage.ru_maxrss / 1024.0


def kiln_env():
    return dict(os.environ, OMP_NUM_THREADS="2")


def has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return re.search(r"\bavx512f\b", f.read()) is not None
    except OSError:
        return False


def torch_env(library_path):
    """Issue 10's fair peer: 2 threads, the OpenMP OpenBLAS in library_path (LD_LIBRARY_PATH for
    torch alone), glibc's malloc thresholds at 1 GiB, OPENBLAS_CORETYPE=SkylakeX on AVX-512."""
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MALLOC_MMAP_THRESHOLD_="1073741824",
               MALLOC_TRIM_THRESHOLD_="1073741824")
    if has_avx512():
        env["OPENBLAS_CORETYPE"] = "SkylakeX"
    else:
        env.pop("OPENBLAS_CORETYPE", None)
    if library_path:
        env["LD_LIBRARY_PATH"] = library_path + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env
