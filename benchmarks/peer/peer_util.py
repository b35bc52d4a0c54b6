"""What the PyTorch peers (bert_encoder_torch.py, mlp_torch.py) and their drivers
(compare_bert_encoder.py, compare_training.py) share."""
import os
import statistics
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


def step_line(name, times, torch):
    """The peer's one-line report: `torch <name> step ms: median M min A max B steps N ...`."""
    return ("torch %s step ms: median %.4f min %.4f max %.4f steps %d threads %d torch %s blas %s"
            % (name, statistics.median(times), min(times), max(times), len(times), torch.get_num_threads(),
               torch.__version__, loaded_blas()))


def summary(rounds, key="median", lo="min", hi="max"):
    """Over rounds (dicts): the median of their key values, the smallest lo and the largest hi."""
    return statistics.median(r[key] for r in rounds), min(r[lo] for r in rounds), max(r[hi] for r in rounds)
