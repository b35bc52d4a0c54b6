"""The Fashion-MNIST demo with Keras's fit: a small conv net trained with a validation split and the
progress bar, evaluated on the 10,000 test images, then a few predictions with their class names.

    fashion_mnist.py [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR]

The data comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); without it
the program says so and exits 77 (ctest's "skipped")."""
import argparse
import sys
import time

import numpy as np

import kiln
from kiln import keras
from kiln.errors import NotFoundError

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--train-samples", type=int, default=60000)
parser.add_argument("--test-samples", type=int, default=10000)
parser.add_argument("--data-dir", default=None)
args = parser.parse_args()

try:
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data(args.data_dir)
except NotFoundError as e:
    print("Fashion-MNIST not found (%s): install Debian's dataset-fashion-mnist; skipping" % e)
    sys.exit(77)
x_train = (x_train[:args.train_samples].astype("float32") / 255.0)[..., None]
y_train = y_train[:args.train_samples].astype("int32")
x_test = (x_test[:args.test_samples].astype("float32") / 255.0)[..., None]
y_test = y_test[:args.test_samples].astype("int32")

kiln.set_seed(42)
layers = keras.layers
model = keras.Sequential([
    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
    layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
    layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10),
])
model.build((None, 28, 28, 1))
model.summary()
model.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])

start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.1)
print("training took %.1fs; val_accuracy by epoch: %s"
      % (time.perf_counter() - start, ", ".join("%.4f" % a for a in history.history["val_accuracy"])))

results = model.evaluate(x_test, y_test, batch_size=1000, verbose=0, return_dict=True)
print("test loss: %.4f - test accuracy: %.4f (%d images)" % (results["loss"], results["accuracy"], len(y_test)))

logits = model.predict(x_test[:5], verbose=0)
for i, p in enumerate(np.argmax(np.asarray(logits), axis=-1)):
    print("test image %d: predicted %-11s (true: %s)" % (i, CLASS_NAMES[p], CLASS_NAMES[y_test[i]]))
