"""The PyTorch peer of benchmarks/bench_training*.cc: the W3 MLP (784-512-256-10, ReLU, logits).

  --workload w3   one training step at batch 128 (zero_grad, forward, mean cross-entropy of the
                  logits, backward, Adam(1e-3)), after --warmup untimed steps; prints
                  `torch w3 step ms: median M min A max B steps N ...` and
                  `RESULT w3_step median M min A max B unit ms ...` (compare_all.py).
  --workload w6   Fashion-MNIST end to end: reads Debian's dataset-fashion-mnist, trains the MLP for
                  5 epochs of shuffled batches of 128 on the 60,000 training images (Adam 1e-3),
                  evaluates on the 10,000 test images; prints
                  `torch w6 train_seconds T test_accuracy A epochs 5 ...` and
                  `RESULT w6 median T min T max T unit s accuracy A ...` (T: training alone).

Inputs of W3: x[i, j] = ((i * 784 + j) mod 255) / 255, labels i mod 10 (as bench_training.h).
2 threads (torch.set_num_threads, OMP_NUM_THREADS). Exits 0 with a message when torch is not
installed. Run it with Debian's /usr/bin/python3 (python3-torch); see peer/compare_training.py for
the fair configuration (OpenMP OpenBLAS, malloc thresholds, OPENBLAS_CORETYPE)."""
import argparse
import gzip
import os
import struct
import sys
import time

from peer_util import loaded_blas, result_line, step_line, time_steps, torch_facts

os.environ.setdefault("OMP_NUM_THREADS", "2")

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def read_idx(torch, path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def idx_file(name):
    for suffix in (".gz", ""):
        path = os.path.join(FASHION_MNIST, name + suffix)
        if os.path.exists(path):
            return path
    sys.exit("Fashion-MNIST not found in %s (Debian: apt-get install dataset-fashion-mnist)" % FASHION_MNIST)


def w3(torch, args):
    model = mlp(torch).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    i = torch.arange(128 * 784)
    x = ((i % 255).float() / 255.0).reshape(128, 784)
    y = torch.arange(128) % 10

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    times = time_steps(step, args.warmup, args.steps)
    print(step_line("w3", times, torch))
    print(result_line("w3_step", times, "ms", steps=len(times), **torch_facts(torch)))


def w6(torch, args):
    # uint8 / 255.0 is one float32 division (as kiln's x_train / 255): no float copy beside it.
    x_train = read_idx(torch, idx_file("train-images-idx3-ubyte")).reshape(-1, 784) / 255.0
    y_train = read_idx(torch, idx_file("train-labels-idx1-ubyte")).long()
    x_test = read_idx(torch, idx_file("t10k-images-idx3-ubyte")).reshape(-1, 784) / 255.0
    y_test = read_idx(torch, idx_file("t10k-labels-idx1-ubyte")).long()
    model = mlp(torch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x_train.shape[0]
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, 128):
            idx = order[start:start + 128]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
    train_seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    print("torch w6 train_seconds %.3f test_accuracy %.4f epochs %d threads %d torch %s blas %s"
          % (train_seconds, accuracy, args.epochs, torch.get_num_threads(), torch.__version__, loaded_blas()))
    # The table's W6 figure is the whole process, timed by the driver; this is training alone.
    print(result_line("w6", [train_seconds], "s", accuracy="%.4f" % accuracy, epochs=args.epochs,
                      **torch_facts(torch)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["w3", "w6"], required=True)
    parser.add_argument("--steps", type=int, default=200, help="W3 timed steps (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="W3 untimed steps first (default 10)")
    parser.add_argument("--epochs", type=int, default=5, help="W6 epochs (default 5)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the PyTorch peer (Debian: apt-get install python3-torch)")
        return 0
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    (w3 if args.workload == "w3" else w6)(torch, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
