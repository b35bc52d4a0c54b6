"""The PyTorch peer of W1 (benchmarks/README.md): GEMM C = A·B of square n x n matrices through
torch.matmul, float32 at n = 64, 256, 1024, 2048 and bfloat16 at n = 1024, in GFLOP/s (2 n³ per call).

Inputs are fixed: A[i, j] = ((i * n + j) mod 255) / 255 - 0.5, B its transpose's pattern shifted by
one, so every run multiplies the same numbers. Per size: a block of calls long enough to take
--min-time seconds, timed --repetitions times (as Google Benchmark times kiln's side); each block
gives one GFLOP/s figure. Prints one line per size:

  RESULT w1_f32_<n> median G min A max B unit gflops ...
  RESULT w1_bf16_1024 median G min A max B unit gflops ...

2 threads (torch.set_num_threads; run it with OMP_NUM_THREADS=2 and the fair environment of
compare_all.py). Exits 0 with a message when torch is not installed."""
import argparse
import os
import sys

from peer_util import import_torch, result_line, time_per_call, torch_facts

os.environ.setdefault("OMP_NUM_THREADS", "2")

F32_SIZES = (64, 256, 1024, 2048)
BF16_SIZES = (1024,)


def operands(torch, n, dtype):
    i = torch.arange(n * n)
    a = ((i % 255).float() / 255.0 - 0.5).reshape(n, n)
    b = (((i + 1) % 255).float() / 255.0 - 0.5).reshape(n, n)
    return a.to(dtype).contiguous(), b.to(dtype).contiguous()


def measure(torch, item, n, dtype, args):
    a, b = operands(torch, n, dtype)
    for _ in range(3):  # oneDNN / BLAS set-up, caches
        torch.matmul(a, b)
    seconds = time_per_call(lambda: torch.matmul(a, b), args.repetitions, args.min_time)
    flops = 2.0 * n * n * n
    print(result_line(item, [flops / s / 1e9 for s in seconds], "gflops", n=n, **torch_facts(torch)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="w1", choices=["w1"])
    parser.add_argument("--repetitions", type=int, default=5, help="timed blocks per size (default 5)")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timed block (default 0.5)")
    parser.add_argument("--sizes", default=",".join(str(n) for n in F32_SIZES),
                        help="float32 sizes, comma-separated (default 64,256,1024,2048)")
    parser.add_argument("--no-bf16", action="store_true", help="leave out the bfloat16 GEMM")
    args = parser.parse_args()
    torch = import_torch()
    if torch is None:
        return 0
    with torch.no_grad():
        for n in (int(s) for s in args.sizes.split(",") if s):
            measure(torch, "w1_f32_%d" % n, n, torch.float32, args)
        if not args.no_bf16:
            for n in BF16_SIZES:
                measure(torch, "w1_bf16_%d" % n, n, torch.bfloat16, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
