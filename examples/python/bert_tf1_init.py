"""google-research/bert's encoder (modeling.py's BertModel) built from kiln's built-in layers and
initialised from a TensorFlow 1 checkpoint (bert_model.ckpt, as google-research/bert's downloads hold
it) with kiln.train.init_from_checkpoint and a TF1 -> kiln name map. The Python twin of
examples/cpp/bert_tf1_init.cc (whose bert_tf1_names.h documents the map; bert_tf1_name_map and
albert_tf1_name_map below give the same pairs). It then checks that every weight landed where its
name says, that every checkpoint name but the Adam slots, global_step and the cls/* pre-training heads
was taken, and that the kiln model computes what modeling.py computes (a NumPy reference on the
checkpoint's own tensors, in TF1's layout).

Usage: bert_tf1_init.py [MODEL_DIR]
  MODEL_DIR holds bert_config.json and bert_model.ckpt.{index,data-*} (default:
  ../shared/fixtures/tf1_bert_tiny). Exits 77 (skipped) when they are absent, 1 when a check fails.

TF1 stores each attention projection as a dense [H, H] kernel whose columns (query/key/value) or rows
(output) are the A heads one after another; kiln's MultiHeadAttention (Keras's) holds [H, A, H/A] and
[A, H/A, H]: the same row-major values, so init_from_checkpoint(allow_reshape=True) reshapes them and
transposes nothing.
"""
import json
import math
import os
import sys

import kiln
from kiln import layers

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

SKIPPED = 77

# One encoder layer's weights: the path under the TF1 BERT layer scope, under the ALBERT group scope,
# and under kiln's layer scope (bert_tf1_names.h's table).
_LAYER_WEIGHTS = [
    ("attention/self/query/kernel", "attention_1/self/query/kernel", "attention/query/kernel"),
    ("attention/self/query/bias", "attention_1/self/query/bias", "attention/query/bias"),
    ("attention/self/key/kernel", "attention_1/self/key/kernel", "attention/key/kernel"),
    ("attention/self/key/bias", "attention_1/self/key/bias", "attention/key/bias"),
    ("attention/self/value/kernel", "attention_1/self/value/kernel", "attention/value/kernel"),
    ("attention/self/value/bias", "attention_1/self/value/bias", "attention/value/bias"),
    ("attention/output/dense/kernel", "attention_1/output/dense/kernel", "attention/attention_output/kernel"),
    ("attention/output/dense/bias", "attention_1/output/dense/bias", "attention/attention_output/bias"),
    ("attention/output/LayerNorm/gamma", "LayerNorm/gamma", "attention_layer_norm/gamma"),
    ("attention/output/LayerNorm/beta", "LayerNorm/beta", "attention_layer_norm/beta"),
    ("intermediate/dense/kernel", "ffn_1/intermediate/dense/kernel", "intermediate/kernel"),
    ("intermediate/dense/bias", "ffn_1/intermediate/dense/bias", "intermediate/bias"),
    ("output/dense/kernel", "ffn_1/intermediate/output/dense/kernel", "output/kernel"),
    ("output/dense/bias", "ffn_1/intermediate/output/dense/bias", "output/bias"),
    ("output/LayerNorm/gamma", "LayerNorm_1/gamma", "output_layer_norm/gamma"),
    ("output/LayerNorm/beta", "LayerNorm_1/beta", "output_layer_norm/beta"),
]


def _embeddings(model):
    k = model + "/embeddings/"
    return [("bert/embeddings/word_embeddings", k + "word_embeddings/embeddings"),
            ("bert/embeddings/token_type_embeddings", k + "token_type_embeddings/embeddings"),
            ("bert/embeddings/position_embeddings", k + "position_embeddings/embeddings"),
            ("bert/embeddings/LayerNorm/gamma", k + "layer_norm/gamma"),
            ("bert/embeddings/LayerNorm/beta", k + "layer_norm/beta")]


def _pooler(model):
    return [("bert/pooler/dense/kernel", model + "/pooler/kernel"), ("bert/pooler/dense/bias", model + "/pooler/bias")]


def bert_tf1_name_map(model, num_hidden_layers):
    """[(TF1 name, kiln variable name)]: google-research/bert's names -> this example's model `model`."""
    pairs = _embeddings(model)
    for i in range(num_hidden_layers):
        for bert, _, k in _LAYER_WEIGHTS:
            pairs.append(("bert/encoder/layer_%d/%s" % (i, bert), "%s/encoder/layer_%d/%s" % (model, i, k)))
    return pairs + _pooler(model)


def albert_group_of_layer(layer, num_hidden_layers, num_hidden_groups):
    """ALBERT's int(layer / num_hidden_layers * num_hidden_groups), in integers."""
    return layer * num_hidden_groups // num_hidden_layers


def albert_tf1_name_map(model, num_hidden_layers, num_hidden_groups=1, hidden_mapping=True):
    """google-research/albert's names -> the model's: factorised embeddings, embedding_hidden_mapping_in
    (only when embedding_size != hidden_size: hidden_mapping), and each group's one set of layer weights
    (transformer/group_<g>/inner_group_0/...) sent to every layer that uses the group."""
    pairs = _embeddings(model)
    if hidden_mapping:
        for w in ("kernel", "bias"):
            pairs.append(("bert/encoder/embedding_hidden_mapping_in/" + w,
                          model + "/encoder/embedding_hidden_mapping_in/" + w))
    for i in range(num_hidden_layers):
        g = albert_group_of_layer(i, num_hidden_layers, num_hidden_groups)
        for _, albert, k in _LAYER_WEIGHTS:
            pairs.append(("bert/encoder/transformer/group_%d/inner_group_0/%s" % (g, albert),
                          "%s/encoder/layer_%d/%s" % (model, i, k)))
    return pairs + _pooler(model)


# ---------------------------------------------------------------------------------------------- model

def _layer_norm(name):
    return layers.LayerNormalization(epsilon=1e-12, name=name)  # modeling.py's layer_norm


def _activation(name, x):
    """modeling.py's get_activation; its gelu is the tanh approximation."""
    if name == "gelu":
        return kiln.gelu(x, approximate=True)
    if name in ("relu", "tanh"):
        return getattr(kiln.nn, name)(x)
    if name == "linear":
        return x
    raise ValueError("hidden_act %r is not one of modeling.py's (gelu, relu, tanh, linear)" % name)


class BertEmbeddings(layers.Layer):
    """embedding_lookup + embedding_postprocessor: inputs [input_ids, token_type_ids]."""

    def __init__(self, c):
        super().__init__(name="embeddings")
        h = c["hidden_size"]
        self.word_embeddings = layers.Embedding(c["vocab_size"], h, embeddings_initializer="truncated_normal",
                                                name="word_embeddings")
        self.token_type_embeddings = layers.Embedding(c["type_vocab_size"], h,
                                                      embeddings_initializer="truncated_normal",
                                                      name="token_type_embeddings")
        self.position_embeddings = layers.Embedding(c["max_position_embeddings"], h,
                                                    embeddings_initializer="truncated_normal",
                                                    name="position_embeddings")
        self.layer_norm = _layer_norm("layer_norm")
        self.drop = layers.Dropout(c.get("hidden_dropout_prob", 0.1))

    def call(self, inputs, training=None):
        ids, types = inputs
        positions = kiln.range(0, ids.shape[1], 1, kiln.int32)
        y = self.word_embeddings(ids) + self.token_type_embeddings(types) + self.position_embeddings(positions)
        return self.drop(self.layer_norm(y), training=training)


class BertLayer(layers.Layer):
    """One transformer layer: inputs [x, attention mask [B, 1, S] (1 = attend)]."""

    def __init__(self, c, index):
        super().__init__(name="layer_%d" % index)
        h, heads = c["hidden_size"], c["num_attention_heads"]
        self.act = c.get("hidden_act", "gelu")
        self.attention = layers.MultiHeadAttention(heads, h // heads,
                                                   dropout=c.get("attention_probs_dropout_prob", 0.1),
                                                   kernel_initializer="truncated_normal", name="attention")
        self.attention_drop = layers.Dropout(c.get("hidden_dropout_prob", 0.1))
        self.attention_layer_norm = _layer_norm("attention_layer_norm")
        self.intermediate = layers.Dense(c["intermediate_size"], kernel_initializer="truncated_normal",
                                         name="intermediate")
        self.output_dense = layers.Dense(h, kernel_initializer="truncated_normal", name="output")
        self.output_drop = layers.Dropout(c.get("hidden_dropout_prob", 0.1))
        self.output_layer_norm = _layer_norm("output_layer_norm")

    def call(self, inputs, training=None):
        x, mask = inputs
        a = self.attention(x, x, attention_mask=mask, training=training)
        h = self.attention_layer_norm(x + self.attention_drop(a, training=training))
        f = self.output_dense(_activation(self.act, self.intermediate(h)))
        return self.output_layer_norm(h + self.output_drop(f, training=training))


class BertEncoder(layers.Layer):
    """transformer_model: inputs [embeddings, attention mask]."""

    def __init__(self, c):
        super().__init__(name="encoder")
        self.blocks = [BertLayer(c, i) for i in range(c["num_hidden_layers"])]

    def call(self, inputs, training=None):
        h, mask = inputs
        for block in self.blocks:
            h = block([h, mask], training=training)
        return h


class BertModel(kiln.Model):
    """BertModel: inputs [input_ids, token_type_ids, input_mask] ([B, S] int32 each), outputs
    [sequence_output [B, S, H], pooled_output [B, H]]."""

    def __init__(self, c):
        super().__init__(name="bert")
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = layers.Dense(c["hidden_size"], activation="tanh", kernel_initializer="truncated_normal",
                                   name="pooler")

    def call(self, inputs, training=None):
        ids, types, input_mask = inputs
        batch, seq = ids.shape
        # create_attention_mask_from_input_mask: every query position sees the unmasked keys.
        mask = kiln.reshape(kiln.cast(input_mask, kiln.float32), [batch, 1, seq])
        seq_out = self.encoder([self.embeddings([ids, types], training=training), mask], training=training)
        hidden = seq_out.shape[2]
        first = kiln.reshape(kiln.slice(seq_out, [0, 0, 0], [batch, 1, hidden]), [batch, hidden])
        return [seq_out, self.pooler(first)]


# ------------------------------------------------------------------------ modeling.py, in NumPy

def reference(reader, c, ids, types, input_mask):
    """modeling.py's BertModel on the checkpoint's own tensors ([H, H] attention kernels, heads split
    as transpose_for_scores does): (sequence_output, pooled_output)."""
    w = reader.get_tensor
    b, s = ids.shape
    h, heads = c["hidden_size"], c["num_attention_heads"]
    d = h // heads

    def norm(x, scope):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w(scope + "/gamma") + w(scope + "/beta")

    def linear(x, scope):
        return x @ w(scope + "/kernel") + w(scope + "/bias")

    def split(x):  # [B*S, H] -> [B, A, S, H/A]
        return x.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

    def gelu(x):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    x = w("bert/embeddings/word_embeddings")[ids] + w("bert/embeddings/token_type_embeddings")[types] + \
        w("bert/embeddings/position_embeddings")[:s]
    x = norm(x, "bert/embeddings/LayerNorm").reshape(b * s, h)
    adder = (1.0 - input_mask.reshape(b, 1, 1, s).astype(np.float32)) * -10000.0
    for i in range(c["num_hidden_layers"]):
        p = "bert/encoder/layer_%d/" % i
        q, k, v = (split(linear(x, p + "attention/self/" + n)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + adder
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(b * s, h)
        a = norm(linear(context, p + "attention/output/dense") + x, p + "attention/output/LayerNorm")
        f = linear(gelu(linear(a, p + "intermediate/dense")), p + "output/dense")
        x = norm(f + a, p + "output/LayerNorm")
    seq_out = x.reshape(b, s, h)
    return seq_out, np.tanh(linear(seq_out[:, 0], "bert/pooler/dense"))


# ---------------------------------------------------------------------------------------------- main

def run(model_dir):
    config_path, ckpt = os.path.join(model_dir, "bert_config.json"), os.path.join(model_dir, "bert_model.ckpt")
    if not os.path.exists(config_path) or not os.path.exists(ckpt + ".index"):
        print("skipped: %s and %s.index not found (google-research/bert's model directory)" % (config_path, ckpt))
        return SKIPPED
    with open(config_path) as f:
        c = json.load(f)
    print("BERT: %d layers, hidden %d, %d heads, intermediate %d, vocab %d" % (
        c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], c["intermediate_size"], c["vocab_size"]))

    # A batch of two sequences of 6 tokens, the second padded after 4.
    batch, seq = 2, 6
    ids = [(7 * i + 3) % c["vocab_size"] for i in range(batch * seq)]
    types = [1 if i % seq >= seq // 2 else 0 for i in range(batch * seq)]
    mask = [0 if i >= seq + 4 else 1 for i in range(batch * seq)]
    input_ids = kiln.constant(ids, kiln.int32, shape=(batch, seq))
    token_types = kiln.constant(types, kiln.int32, shape=(batch, seq))
    input_mask = kiln.constant(mask, kiln.int32, shape=(batch, seq))

    model = BertModel(c)
    model([input_ids, token_types, input_mask])  # builds every layer

    names = bert_tf1_name_map(model.name, c["num_hidden_layers"])
    report = kiln.train.init_from_checkpoint(ckpt, dict(names), model=model, allow_reshape=True)
    print(report, end="")

    failures = []

    def check(ok, what):
        if not ok:
            print("FAILED: " + what)
            failures.append(what)

    # Every weight where its name says: the checkpoint's values in the same row-major order.
    reader = kiln.train.load_checkpoint(ckpt)
    variables = {v.name: v for v in model.variables}
    check(len(variables) == len(names), "the model has one variable per mapped name")
    for tf1, kiln_name in names:
        v = variables.get(kiln_name)
        if v is None:
            check(False, "no kiln variable " + kiln_name)
            continue
        want, got = reader.get_tensor(tf1), v.numpy()
        check(want.size == got.size and (want.reshape(-1) == got.reshape(-1)).all(), "%s holds %s" % (kiln_name, tf1))
    print("checked %d weights against the checkpoint" % len(names))

    # Every checkpoint name is matched, skipped (Adam slots, global_step) or a cls/* head.
    check(len(report.matched) == len(names), "every mapped name matched")
    check(not report.unmatched_variables, "every kiln variable got a value")
    check(not report.missing and not report.mismatched, "nothing missing or mismatched")
    for n in report.unmatched_checkpoint_names:
        check(n.startswith("cls/"), "unmatched " + n)
    for n in report.skipped_checkpoint_names:
        check(n.endswith("/adam_m") or n.endswith("/adam_v") or n == "global_step", "skipped " + n)
    total = len(kiln.train.list_variables(ckpt))
    check(len(report.matched) + len(report.unmatched_checkpoint_names) + len(report.skipped_checkpoint_names) == total,
          "matched + unmatched + skipped = every checkpoint name")
    print("%d checkpoint names: %d matched, %d cls/* heads left, %d optimizer slots and counters skipped" % (
        total, len(report.matched), len(report.unmatched_checkpoint_names), len(report.skipped_checkpoint_names)))

    # The kiln model computes modeling.py's function.
    seq_out, pooled = model([input_ids, token_types, input_mask])
    ref_seq, ref_pooled = reference(reader, c, np.array(ids).reshape(batch, seq), np.array(types).reshape(batch, seq),
                                    np.array(mask).reshape(batch, seq))
    d_seq = float(np.abs(seq_out.numpy() - ref_seq).max())
    d_pool = float(np.abs(pooled.numpy() - ref_pooled).max())
    print("max |kiln - modeling.py|: sequence_output %.3g, pooled_output %.3g" % (d_seq, d_pool))
    check(d_seq < 1e-4 and d_pool < 1e-4, "the kiln model computes modeling.py's outputs")
    print("pooled_output[0]: " + " ".join("%.6f" % v for v in pooled.numpy()[0]))

    print("%d checks FAILED" % len(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    if np is None:
        print("skipped: numpy is not importable")
        sys.exit(SKIPPED)
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else os.path.join("..", "shared", "fixtures", "tf1_bert_tiny")))
