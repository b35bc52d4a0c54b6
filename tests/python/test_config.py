"""Configs cross the C ABI as JSON-backed kiln_config handles: dicts round-trip exactly."""
import unittest

import kiln
from kiln import config as kconfig


class ConfigTest(unittest.TestCase):
    def test_round_trip_keeps_types_and_order(self):
        cfg = {"units": 64, "activation": "relu", "use_bias": True, "rate": 0.5, "kernel_size": [3, 3],
               "noise_shape": None, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
               "layers": [{"class_name": "Dense", "config": {"units": 2}}]}
        back = kconfig.round_trip(cfg)
        self.assertEqual(back, cfg)
        self.assertEqual(list(back), list(cfg))
        self.assertIsInstance(back["units"], int)
        self.assertIsInstance(back["rate"], float)
        self.assertEqual(kconfig.round_trip({"t": (1, 2)}), {"t": [1, 2]})  # tuples become lists, as JSON

    def test_typed_reads_through_c(self):
        import ctypes
        with kconfig.to_c({"units": 8, "name": "dense"}) as h:
            out = ctypes.c_int64()
            kiln.errors.check(kconfig.L.kiln_config_get_int(ctypes.byref(out), h, b"units"))
            self.assertEqual(out.value, 8)
            with self.assertRaisesRegex(kiln.InvalidArgumentError, "key 'name' is a string"):
                kiln.errors.check(kconfig.L.kiln_config_get_int(ctypes.byref(out), h, b"name"))
            with self.assertRaises(kiln.NotFoundError):
                kiln.errors.check(kconfig.L.kiln_config_get_int(ctypes.byref(out), h, b"nope"))

    def test_bad_input(self):
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "finite float"):
            kconfig.round_trip({"x": float("nan")})
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "not a string"):
            kconfig.round_trip({1: 2})
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "expected a dict"):
            kconfig.round_trip([1, 2])
        with self.assertRaisesRegex(kiln.InvalidArgumentError, "JSON"):
            kconfig.round_trip({"x": object()})


if __name__ == "__main__":
    unittest.main()
