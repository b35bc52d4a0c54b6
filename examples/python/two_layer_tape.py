"""A two-layer network trained with a GradientTape loop, from Python."""
import math

import kiln

kiln.set_seed(7)
n, hidden = 256, 32
x = kiln.random.uniform([n, 2], -1.0, 1.0)
xs = x.tolist()
y = kiln.constant([[math.sin(3 * a) + b * b] for a, b in xs])

w1 = kiln.Variable(kiln.random.normal([2, hidden], stddev=0.7), name="dense/kernel")
b1 = kiln.Variable(kiln.zeros([hidden]), name="dense/bias")
w2 = kiln.Variable(kiln.random.normal([hidden, 1], stddev=0.2), name="dense_1/kernel")
b2 = kiln.Variable(kiln.zeros([1]), name="dense_1/bias")
params = [w1, b1, w2, b2]

first = None
for epoch in range(100):
    with kiln.GradientTape() as tape:
        pred = kiln.matmul(kiln.tanh(kiln.matmul(x, w1) + b1), w2) + b2
        loss = kiln.reduce_mean(kiln.square(pred - y))
    grads = tape.gradient(loss, params)
    for p, g in zip(params, grads):
        p.assign_sub(g * 0.1)
    first = loss.item() if first is None else first
    if epoch % 20 == 0:
        print("epoch %3d  loss %.5f" % (epoch, loss.item()))
print("loss fell from %.5f to %.5f" % (first, loss.item()))
assert loss.item() < first
