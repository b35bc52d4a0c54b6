"""A small BERT-style encoder in Python: token embeddings plus a custom SegPosEmbedding (token-type
and position tables made in build, LayerNormalization, Dropout), two encoder blocks (self-attention
and a GELU feed-forward network, each with dropout, a residual and LayerNormalization), mean-pooling
and a Dense classifier, trained for one step's gradients under a GradientTape.
examples/c/bert_encoder.c and examples/cpp/bert_encoder.cc build the same model; the three print
the same numbers (a test compares them byte for byte)."""
import kiln
from kiln import layers

BATCH, SEQ, HIDDEN, HEADS, VOCAB, TYPES, CLASSES = 2, 8, 16, 4, 50, 2, 3


class SegPosEmbedding(layers.Layer):
    """norm(x + types[t] + positions[0..seq)), then dropout: the tables are made in build."""

    def __init__(self, type_vocab, max_len, seed):
        super().__init__()
        self.type_vocab, self.max_len = type_vocab, max_len
        self.norm = layers.LayerNormalization()
        self.drop = layers.Dropout(0.1, seed=seed)

    def build(self, input_shape):
        hidden = input_shape[0][-1]
        self.types = self.add_weight(shape=(self.type_vocab, hidden), initializer="truncated_normal",
                                     name="token_type_embeddings")
        self.positions = self.add_weight(shape=(self.max_len, hidden), initializer="truncated_normal",
                                         name="position_embeddings")

    def call(self, inputs, training=None):
        x, token_types = inputs
        # As Keras's Embedding, indices of another dtype are cast: a model's build calls it on float zeros.
        token_types = kiln.cast(token_types, kiln.int32)
        pos = kiln.range(0, x.shape[1], 1, kiln.int32)
        y = x + kiln.gather(self.types, token_types) + kiln.gather(self.positions, pos)
        return self.drop(self.norm(y), training=training)


class EncoderBlock(layers.Layer):
    """Post-norm transformer block: norm1(x + drop(mha(x, x))), then norm2(h + drop(ffn(h)))."""

    def __init__(self, hidden, heads, seed):
        super().__init__()
        self.attention = layers.MultiHeadAttention(heads, hidden // heads, dropout=0.1, seed=seed)
        self.attention_dropout = layers.Dropout(0.1, seed=seed + 1)
        self.attention_norm = layers.LayerNormalization()
        self.ffn_inner = layers.Dense(4 * hidden, activation="gelu")
        self.ffn_outer = layers.Dense(hidden)
        self.ffn_dropout = layers.Dropout(0.1, seed=seed + 2)
        self.ffn_norm = layers.LayerNormalization()

    def call(self, x, training=None):
        a = self.attention_dropout(self.attention(x, x, training=training), training=training)
        h = self.attention_norm(x + a)
        f = self.ffn_dropout(self.ffn_outer(self.ffn_inner(h)), training=training)
        return self.ffn_norm(h + f)


class BertEncoder(kiln.Model):
    def __init__(self):
        super().__init__()
        self.tokens = layers.Embedding(VOCAB, HIDDEN, embeddings_initializer="random_uniform")
        self.seg_pos = SegPosEmbedding(TYPES, SEQ, seed=1)
        self.block1 = EncoderBlock(HIDDEN, HEADS, seed=10)
        self.block2 = EncoderBlock(HIDDEN, HEADS, seed=20)
        self.pool = layers.GlobalAveragePooling1D()
        self.classifier = layers.Dense(CLASSES)

    def call(self, inputs, training=None):
        token_ids, token_types = inputs
        h = self.seg_pos([self.tokens(token_ids), token_types], training=training)
        h = self.block2(self.block1(h, training=training), training=training)
        return self.classifier(self.pool(h))


def values(t):
    return kiln.reshape(t, [-1]).tolist()


def show(label, t):
    print(label, " ".join("%.9g" % v for v in values(t)))


def main():
    kiln.set_seed(1234)
    model = BertEncoder()
    ids = kiln.constant([(7 * i + 3) % VOCAB for i in range(BATCH * SEQ)], kiln.int32, shape=(BATCH, SEQ))
    types = kiln.constant([int(i % SEQ >= SEQ // 2) for i in range(BATCH * SEQ)], kiln.int32, shape=(BATCH, SEQ))
    labels = kiln.constant([i % CLASSES for i in range(1, BATCH + 1)], kiln.int32)
    with kiln.GradientTape() as tape:
        logits = model([ids, types], training=True)
        loss = kiln.reduce_mean(kiln.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)

    model.summary()
    show("loss", loss)
    show("logits", logits)
    print("trainable variables", len(variables))
    for v, g in zip(variables, grads):
        gv = values(g)
        total = 0.0
        for x in gv:
            total += x
        print("%s [%s] grad sum %.9g first %s" % (v.name, ",".join(str(d) for d in g.shape), total,
                                                  " ".join("%.9g" % x for x in gv[:3])))


if __name__ == "__main__":
    main()
