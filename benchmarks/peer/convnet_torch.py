"""The PyTorch peer of benchmarks/bench_w5_convnet.cc: W5, one training step of a small conv-net
(benchmarks/README.md, "The issue-10 suite").

  --workload w5   x [128, 1, 28, 28] -> Conv2d(32, 3x3) + ReLU -> MaxPool2d(2) -> Conv2d(64, 3x3) +
                  ReLU -> MaxPool2d(2) -> Flatten (1600) -> Linear(128) + ReLU -> Linear(10) logits,
                  no padding (kiln's "valid"); one step = zero_grad, forward, the mean cross-entropy
                  of the logits, backward, SGD(lr 0.01, momentum 0.9). Prints
                  `RESULT w5_step median M min A max B unit ms steps N ...`.

torch's own layout (NCHW) by default; --channels-last runs the model and the batch in
torch.channels_last (NHWC, kiln's layout) instead. Inputs: x = (i mod 255) / 255 over the flattened
batch, labels i mod 10 (as the kiln side). 2 threads (torch.set_num_threads, OMP_NUM_THREADS).
Exits 0 with a message when torch is not installed. Run it with Debian's /usr/bin/python3
(python3-torch) in peer_util.torch_env()'s fair configuration, as compare_all.py does."""
import argparse
import os
import sys

from peer_util import import_torch, result_line, time_steps, torch_facts

os.environ.setdefault("OMP_NUM_THREADS", "2")

BATCH, SIDE, CLASSES = 128, 28, 10


def convnet(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, CLASSES))


def w5(torch, args):
    model = convnet(torch).train()
    x = ((torch.arange(BATCH * SIDE * SIDE) % 255).float() / 255.0).reshape(BATCH, 1, SIDE, SIDE)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    y = torch.arange(BATCH) % CLASSES

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    times = time_steps(step, args.warmup, args.steps)
    print(result_line("w5_step", times, "ms", steps=len(times), layout="nhwc" if args.channels_last else "nchw",
                      **torch_facts(torch)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["w5"], default="w5")
    parser.add_argument("--steps", type=int, default=200, help="timed steps (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC (torch.channels_last) instead of NCHW")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch = import_torch()
    if torch is None:
        return 0
    torch.manual_seed(args.seed)
    w5(torch, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
