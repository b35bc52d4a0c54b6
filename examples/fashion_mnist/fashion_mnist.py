"""The Fashion-MNIST demo with Keras's fit: a small conv net trained with a validation split, the
progress bar and a TensorBoard callback, evaluated on the 10,000 test images, then a few
predictions with their class names.

    fashion_mnist.py [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR] [--log-dir DIR]
                     [--distributed]

--distributed trains data-parallel over MPI under tf.distribute's MirroredStrategy pattern:
`mpirun -np 2 python3 fashion_mnist.py --distributed` (each global batch of 64 split over the
processes; only rank 0 prints and writes the logs).

TensorBoard's logs go to --log-dir, by default logs/fashion_mnist/<date-time>.

The data comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); without it
the program says so and exits 77 (ctest's "skipped")."""
import time

import kiln
from kiln import keras

from fashion_mnist_common import build_model, load, log_dir_of, parse_args, print_predictions

args = parse_args(__doc__.split("\n\n")[0])
strategy, chief = None, True
if args.distributed:
    import kiln.distributed as kd

    strategy = kd.MirroredStrategy()
    chief = kd.rank() == 0
    if chief:
        print("data-parallel over %d processes (MPI)" % strategy.num_replicas_in_sync)
(x_train, y_train), (x_test, y_test) = load(args)
kiln.set_seed(42)
model = build_model(print_summary=chief)
model.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])

log_dir = log_dir_of(args)
tensorboard = keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=1)

start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.1,
                    callbacks=[tensorboard], distribution=strategy)
if not chief:
    raise SystemExit(0)  # rank 0 reports
print("training took %.1fs; val_accuracy by epoch: %s"
      % (time.perf_counter() - start, " ".join("%.4f" % a for a in history.history["val_accuracy"])))

results = model.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)
print("test loss: %.4f - test accuracy: %.4f (%d images)" % (results["loss"], results["accuracy"], len(y_test)))
print_predictions(model.predict(x_test[:5], verbose=0), y_test)
print("View the training curves: tensorboard --logdir %s" % log_dir)
