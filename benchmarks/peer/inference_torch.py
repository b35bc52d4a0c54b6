"""The PyTorch peer of W7 (benchmarks/README.md): inference with the W3 MLP (784-512-256-10, ReLU,
logits; mlp_torch.py's model) in eval mode under torch.inference_mode(), at batch 1 and batch 256,
in µs per forward call.

Inputs: x[i, j] = ((i * 784 + j) mod 255) / 255, as bench_training.h. Per batch: a block of calls
long enough to take --min-time seconds, timed --repetitions times (as Google Benchmark times kiln's
side). Prints

  RESULT w7_b1 median M min A max B unit us ...
  RESULT w7_b256 median M min A max B unit us ...

2 threads. Exits 0 with a message when torch is not installed."""
import argparse
import os
import sys

from mlp_torch import mlp
from peer_util import import_torch, result_line, time_per_call, torch_facts

os.environ.setdefault("OMP_NUM_THREADS", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="w7", choices=["w7"])
    parser.add_argument("--repetitions", type=int, default=5, help="timed blocks per batch size (default 5)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timed block (default 0.5)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch = import_torch()
    if torch is None:
        return 0
    torch.manual_seed(args.seed)
    model = mlp(torch).eval()
    with torch.inference_mode():
        for batch in (1, 256):
            i = torch.arange(batch * 784)
            x = ((i % 255).float() / 255.0).reshape(batch, 784)
            for _ in range(20):
                model(x)
            seconds = time_per_call(lambda: model(x), args.repetitions, args.min_time)
            print(result_line("w7_b%d" % batch, [s * 1e6 for s in seconds], "us", batch=batch, **torch_facts(torch)),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
