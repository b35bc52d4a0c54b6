"""Fashion-MNIST with a TF2 custom training loop: a Dataset (from_tensor_slices -> shuffle -> batch),
a GradientTape per step, optimizer.apply_gradients, a Mean metric for the loss and
SparseCategoricalAccuracy, both reset every epoch; then the test accuracy and a few predictions.

    fashion_mnist_tape.py [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR]

The data comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); without it
the program says so and exits 77 (ctest's "skipped")."""
import time

import kiln
from kiln import keras

from fashion_mnist_common import build_model, load, log_dir_of, parse_args, print_predictions

args = parse_args(__doc__.split("\n\n")[0])
(x_train, y_train), (x_test, y_test) = load(args)
kiln.set_seed(42)
model = build_model()

optimizer = keras.optimizers.Adam(1e-3)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
train_loss = keras.metrics.Mean(name="loss")
train_accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
train_ds = kiln.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(10000, seed=7).batch(64)

# TensorBoard: with writer.as_default(), step = optimizer.iterations (TF2's metrics pattern).
log_dir = log_dir_of(args)
writer = kiln.summary.create_file_writer(log_dir + "/train")
logged_loss = keras.metrics.Mean(name="logged_loss")
LOG_EVERY = 50

start = time.perf_counter()
with writer.as_default():
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        train_loss.reset_state()
        train_accuracy.reset_state()
        for x, y in train_ds:
            with kiln.GradientTape() as tape:
                logits = model(x, training=True)
                loss = loss_fn(y, logits)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            train_loss.update_state(loss)
            train_accuracy.update_state(y, logits)
            # Every LOG_EVERY optimizer steps: the mean loss since the last write, at step = iterations.
            logged_loss.update_state(loss)
            if int(optimizer.iterations) % LOG_EVERY == 0:
                kiln.summary.scalar("loss", logged_loss.result(), step=optimizer.iterations)
                logged_loss.reset_states()
        print("Epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f" % (epoch + 1, args.epochs, time.perf_counter() - t0,
                                                                     train_loss.result().item(),
                                                                     train_accuracy.result().item()), flush=True)
        kiln.summary.scalar("epoch_accuracy", train_accuracy.result(), step=epoch)
print("training took %.1fs" % (time.perf_counter() - start))

# The test set in batches of 1000: accuracy, then the first five images' predicted classes.
test_accuracy = keras.metrics.SparseCategoricalAccuracy(name="test_accuracy")
first_logits = None
for x, y in kiln.data.Dataset.from_tensor_slices((x_test, y_test)).batch(1000):
    logits = model(x)
    test_accuracy.update_state(y, logits)
    first_logits = logits if first_logits is None else first_logits
print("test accuracy: %.4f (%d images)" % (test_accuracy.result().item(), len(y_test)))
print_predictions(first_logits, y_test)
writer.close()
print("View the training curves: tensorboard --logdir %s" % log_dir)
