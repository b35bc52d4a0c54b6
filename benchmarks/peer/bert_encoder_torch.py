"""The PyTorch peer of benchmarks/bench_bert_encoder.cc: the same BERT-style encoder (token
embeddings, token-type and position tables, LayerNorm and dropout; two post-norm encoder blocks of
4-head self-attention and a GELU feed-forward network, each with dropout 0.1, a residual and
LayerNorm; mean-pooling; a 3-class Linear), timed for one forward and backward pass (gradients of
the mean cross-entropy for every parameter, no optimizer) at batch 16, sequence 128, hidden 256,
FFN 1024, vocab 1000, 2 threads.

Keras's defaults where kiln follows them: LayerNorm epsilon 1e-3, exact (erf) GELU as kiln's
"gelu", attention scaled by 1/sqrt(key_dim) with dropout on its probabilities.

Prints one line: `torch bert_encoder step ms: median M min A max B steps N` (and every step's time
with --all). Exits 0 with a message when torch is not installed. Run it with Debian's
/usr/bin/python3 (python3-torch)."""
import argparse
import os
import sys

from peer_util import step_line, time_steps

os.environ.setdefault("OMP_NUM_THREADS", "2")

BATCH, SEQ, HIDDEN, HEADS, FFN, VOCAB, TYPES, CLASSES, DROPOUT = 16, 128, 256, 4, 1024, 1000, 2, 3, 0.1


def build_model(torch):
    nn = torch.nn

    class EncoderBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(HIDDEN, HEADS, dropout=DROPOUT, batch_first=True)
            self.attention_dropout = nn.Dropout(DROPOUT)
            self.attention_norm = nn.LayerNorm(HIDDEN, eps=1e-3)
            self.ffn_inner = nn.Linear(HIDDEN, FFN)
            self.ffn_outer = nn.Linear(FFN, HIDDEN)
            self.ffn_dropout = nn.Dropout(DROPOUT)
            self.ffn_norm = nn.LayerNorm(HIDDEN, eps=1e-3)

        def forward(self, x):
            a, _ = self.attention(x, x, x, need_weights=False)
            h = self.attention_norm(x + self.attention_dropout(a))
            f = self.ffn_outer(nn.functional.gelu(self.ffn_inner(h)))
            return self.ffn_norm(h + self.ffn_dropout(f))

    class BertEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(VOCAB, HIDDEN)
            self.token_types = nn.Parameter(torch.randn(TYPES, HIDDEN) * 0.05)
            self.positions = nn.Parameter(torch.randn(SEQ, HIDDEN) * 0.05)
            self.norm = nn.LayerNorm(HIDDEN, eps=1e-3)
            self.dropout = nn.Dropout(DROPOUT)
            self.blocks = nn.ModuleList([EncoderBlock(), EncoderBlock()])
            self.classifier = nn.Linear(HIDDEN, CLASSES)

        def forward(self, ids, types):
            pos = torch.arange(ids.shape[1])
            h = self.tokens(ids) + self.token_types[types] + self.positions[pos]
            h = self.dropout(self.norm(h))
            for block in self.blocks:
                h = block(h)
            return self.classifier(h.mean(dim=1))

    return BertEncoder()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--all", action="store_true", help="print every step's time too")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping the PyTorch peer (Debian: apt-get install python3-torch)")
        return 0
    torch.set_num_threads(2)
    torch.manual_seed(1234)
    model = build_model(torch).train()
    i = torch.arange(BATCH * SEQ)
    ids = ((7 * i + 3) % VOCAB).reshape(BATCH, SEQ)
    types = (i % SEQ >= SEQ // 2).long().reshape(BATCH, SEQ)
    labels = torch.arange(BATCH) % CLASSES
    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        for p in params:
            p.grad = None
        loss = torch.nn.functional.cross_entropy(model(ids, types), labels)
        loss.backward()

    times = time_steps(step, args.warmup, args.steps)
    if args.all:
        print("torch steps ms:", " ".join("%.3f" % t for t in times))
    print(step_line("bert_encoder", times, torch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
