"""What the Python Fashion-MNIST demos share (fashion_mnist.py with fit, fashion_mnist_tape.py with a
GradientTape loop): the command line, the data as float32 images [n, 28, 28, 1] in [0, 1] and int32
labels, the conv net and the class names."""
import argparse
import datetime
import os
import sys

import numpy as np

from kiln import keras
from kiln.errors import NotFoundError

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-samples", type=int, default=60000)
    parser.add_argument("--test-samples", type=int, default=10000)
    parser.add_argument("--data-dir", default=None, help="default: /usr/share/datasets/fashion-mnist")
    parser.add_argument("--log-dir", default=None,
                        help="TensorBoard's logs (the fit demo); default: logs/fashion_mnist/<date-time>")
    parser.add_argument("--distributed", action="store_true",
                        help="the fit demo: data-parallel over MPI (run under mpirun -np 2)")
    return parser.parse_args()


def log_dir_of(args):
    """The TensorBoard log directory of this run: --log-dir, else logs/fashion_mnist/<local date-time>
    as Keras's tutorials name theirs ("logs/fit/20240131-142501")."""
    return args.log_dir or os.path.join("logs", "fashion_mnist", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))


def load(args):
    """((x_train, y_train), (x_test, y_test)); exits 77 (ctest's "skipped") with a message when
    Debian's dataset-fashion-mnist is not installed."""
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data(args.data_dir)
    except NotFoundError as e:
        print("Fashion-MNIST not found (%s): install Debian's dataset-fashion-mnist; skipping" % e)
        sys.exit(77)

    def images(x, n):
        return (x[:n].astype("float32") / 255.0)[..., None]

    return ((images(x_train, args.train_samples), y_train[:args.train_samples].astype("int32")),
            (images(x_test, args.test_samples), y_test[:args.test_samples].astype("int32")))


def build_model(print_summary=True):
    """Conv2D(32, 3, relu) - MaxPooling2D - Conv2D(64, 3, relu) - MaxPooling2D - Flatten -
    Dense(128, relu) - Dense(10) (logits), built for (None, 28, 28, 1); prints its summary."""
    layers = keras.layers
    model = keras.Sequential([
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10),
    ])
    model.build((None, 28, 28, 1))
    if print_summary:
        model.summary()
    return model


def print_predictions(logits, y, n=5):
    """The predicted class of the first n images beside the true one."""
    for i, p in enumerate(np.argmax(np.asarray(logits), axis=-1)[:n]):
        print("test image %d: predicted %-11s (true: %s)" % (i, CLASS_NAMES[p], CLASS_NAMES[y[i]]))
