"""The Python PyTorch peer of W2 (benchmarks/README.md): the eager overhead of `c = a + b` on float32
tensors of shape [1] and [1, 64], in µs per op, without autograd recording (plain tensors) and with
it (both inputs requires_grad=True, so every add records a graph node).

This is torch's Python-level figure: the interpreter's call into torch adds its own cost on top of
libtorch's. compare_all.py prefers overhead_libtorch.cc (the same loop in C++ against Debian's
libtorch-dev) and falls back to this script when libtorch cannot be built.

Per case: a block of adds long enough to take --min-time seconds, timed --repetitions times. Prints

  RESULT w2_add<elements>_tape<0|1> median M min A max B unit us impl python ...

Exits 0 with a message when torch is not installed."""
import argparse
import os
import sys

from peer_util import import_torch, result_line, time_per_call, torch_facts

os.environ.setdefault("OMP_NUM_THREADS", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="w2", choices=["w2"])
    parser.add_argument("--repetitions", type=int, default=5, help="timed blocks per case (default 5)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timed block (default 0.5)")
    args = parser.parse_args()
    torch = import_torch()
    if torch is None:
        return 0
    for elements, shape in ((1, [1]), (64, [1, 64])):
        for tape in (0, 1):
            a = torch.full(shape, 1.5, requires_grad=bool(tape))
            b = torch.full(shape, 2.5, requires_grad=bool(tape))

            def add():
                return a + b  # dropped by the caller at once, with its graph node

            for _ in range(1000):
                add()
            seconds = time_per_call(add, args.repetitions, args.min_time)
            print(result_line("w2_add%d_tape%d" % (elements, tape), [s * 1e6 for s in seconds], "us", impl="python",
                              **torch_facts(torch)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
