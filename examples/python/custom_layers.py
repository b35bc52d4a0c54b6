"""The seed's custom-layer examples in Python: MyDense inside a Model subclass, a SegPosEmbedding
whose build creates its tables, and the summary of a nested Sequential. examples/cpp and
examples/c build the same models; the three print the same numbers (a test compares them)."""
import kiln
from kiln import layers


class MyDense(layers.Layer):
    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.w = self.add_weight(shape=(in_dim, out_dim), initializer="random_normal", name="kernel")
        self.b = self.add_weight(shape=(out_dim,), initializer="zeros", name="bias")

    def call(self, x):
        return kiln.matmul(x, self.w) + self.b


class MyModel(kiln.Model):
    def __init__(self):
        super().__init__()
        self.dense1 = MyDense(4, 8)
        self.dense2 = MyDense(8, 3)

    def call(self, x):
        return self.dense2(kiln.relu(self.dense1(x)))


class SegPosEmbedding(layers.Layer):
    def __init__(self, type_vocab, max_len):
        super().__init__()
        self.type_vocab, self.max_len = type_vocab, max_len
        self.norm = layers.LayerNormalization()
        self.drop = layers.Dropout(0.1)

    def build(self, input_shape):
        hidden = input_shape[0][-1]
        self.types = self.add_weight(shape=(self.type_vocab, hidden), initializer="truncated_normal",
                                     name="token_type_embeddings")
        self.positions = self.add_weight(shape=(self.max_len, hidden), initializer="truncated_normal",
                                         name="position_embeddings")

    def call(self, inputs, training=None):
        x, token_types = inputs
        pos = kiln.range(0, x.shape[1], 1, kiln.int32)
        y = x + kiln.gather(self.types, token_types) + kiln.gather(self.positions, pos)
        return self.drop(self.norm(y), training=training)


def pattern(n, scale):
    return [scale * ((i % 7) - 3) for i in range(n)]


def show(label, t):
    print(label, " ".join("%.6g" % v for v in kiln.reshape(t, [-1]).tolist()))


def main():
    kiln.set_seed(1234)
    model = MyModel()
    x = kiln.constant(pattern(8, 0.25), shape=(2, 4))
    show("mymodel", model(x))
    print("variables", " ".join(v.name for v in model.trainable_variables))

    emb = SegPosEmbedding(2, 6)
    h = kiln.constant(pattern(2 * 3 * 4, 0.125), shape=(2, 3, 4))
    types = kiln.constant([0, 1, 1, 1, 0, 0], kiln.int32, shape=(2, 3))
    show("segpos", emb([h, types], training=False))
    print("variables", " ".join(v.name for v in emb.weights))

    inner = kiln.Sequential([layers.Dense(64, activation="relu"), layers.Dense(10)])
    outer = kiln.Sequential([inner, layers.Dense(2)])
    outer.build((None, 784))
    outer.summary()


if __name__ == "__main__":
    main()
