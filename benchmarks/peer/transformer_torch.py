"""The PyTorch peer of benchmarks/bench_w4_transformer.cc: W4, one training step of a small
transformer encoder (benchmarks/README.md, "The issue-10 suite").

  --workload w4   token embedding (vocab 8000) + learned position embedding (128 positions), one
                  post-norm encoder block (4-head self-attention with dropout 0.1 on its
                  probabilities; dropout 0.1, residual, LayerNorm; Linear(256, 1024), exact GELU,
                  Linear(1024, 256), dropout 0.1, residual, LayerNorm), mean over the sequence, a
                  2-class Linear; batch 16, sequence 128, hidden 256. One step = zero_grad, the
                  forward pass in training mode, the mean cross-entropy of the logits, backward,
                  AdamW(lr 1e-3, weight_decay 0.004, eps 1e-7: Keras's AdamW defaults, as kiln).
                  Prints `RESULT w4_step median M min A max B unit ms steps N ...`.

The block is written out rather than nn.TransformerEncoderLayer, whose feed-forward network has a
third dropout (between the activation and the second Linear) that kiln's block, like BERT's and the
Keras examples', does not have. LayerNorm epsilon 1e-3 (Keras's default, as kiln).
Inputs: ids (7 i + 3) mod 8000 over the flattened [16, 128], labels i mod 2 (as the kiln side).
2 threads (torch.set_num_threads, OMP_NUM_THREADS). Exits 0 with a message when torch is not
installed. Run it with Debian's /usr/bin/python3 (python3-torch) in peer_util.torch_env()'s fair
configuration (OpenMP OpenBLAS, malloc thresholds, OPENBLAS_CORETYPE), as compare_all.py does."""
import argparse
import os
import sys

from peer_util import import_torch, result_line, time_steps, torch_facts

os.environ.setdefault("OMP_NUM_THREADS", "2")

BATCH, SEQ, HIDDEN, HEADS, FFN, VOCAB, CLASSES, DROPOUT, EPS = 16, 128, 256, 4, 1024, 8000, 2, 0.1, 1e-3


def build_model(torch):
    nn = torch.nn

    class TransformerClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, HIDDEN)
            self.positions = nn.Embedding(SEQ, HIDDEN)
            self.attention = nn.MultiheadAttention(HIDDEN, HEADS, dropout=DROPOUT, batch_first=True)
            self.attention_dropout = nn.Dropout(DROPOUT)
            self.attention_norm = nn.LayerNorm(HIDDEN, eps=EPS)
            self.ffn_inner = nn.Linear(HIDDEN, FFN)
            self.ffn_outer = nn.Linear(FFN, HIDDEN)
            self.ffn_dropout = nn.Dropout(DROPOUT)
            self.ffn_norm = nn.LayerNorm(HIDDEN, eps=EPS)
            self.classifier = nn.Linear(HIDDEN, CLASSES)

        def forward(self, ids):
            x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
            a, _ = self.attention(x, x, x, need_weights=False)
            h = self.attention_norm(x + self.attention_dropout(a))
            f = self.ffn_outer(nn.functional.gelu(self.ffn_inner(h)))
            h = self.ffn_norm(h + self.ffn_dropout(f))
            return self.classifier(h.mean(dim=1))

    return TransformerClassifier()


def w4(torch, args):
    model = build_model(torch).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.004, eps=1e-7)
    i = torch.arange(BATCH * SEQ)
    ids = ((7 * i + 3) % VOCAB).reshape(BATCH, SEQ)
    labels = torch.arange(BATCH) % CLASSES

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(ids), labels)
        loss.backward()
        optimizer.step()

    times = time_steps(step, args.warmup, args.steps)
    print(result_line("w4_step", times, "ms", steps=len(times), **torch_facts(torch)), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["w4"], default="w4")
    parser.add_argument("--steps", type=int, default=200, help="timed steps (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    torch = import_torch()
    if torch is None:
        return 0
    torch.manual_seed(args.seed)
    w4(torch, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
