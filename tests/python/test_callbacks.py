"""Callbacks through the Python binding: a built-in callback, its class, repr, and errors."""
import unittest

import kiln


class CallbacksTest(unittest.TestCase):
    def test_history(self):
        h = kiln.callbacks.History()
        self.assertEqual(h.class_name, "History")
        self.assertIs(kiln.keras.callbacks.History, kiln.callbacks.History)
        self.assertIn("History", repr(h))

    def test_history_record(self):
        h = kiln.callbacks.History()
        self.assertEqual(h.history, {})
        self.assertEqual(h.epoch, [])

    def test_errors(self):
        with self.assertRaises(kiln.errors.InvalidArgumentError):
            kiln.callbacks.History(patience=3)
        with self.assertRaises(TypeError):
            kiln.callbacks.Callback()


if __name__ == "__main__":
    unittest.main()
