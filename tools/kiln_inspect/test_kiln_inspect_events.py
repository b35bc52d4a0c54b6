"""The kiln-inspect events command: per run and file the records, file_version, writer and a
truncated last record; per tag the kind, count, steps and last value / buckets / image size; every
value with --values; exit 1 with "data loss" for a corrupt file, a warning (exit 0) for a cut-short
last record, 2 for bad usage.

    python3 test_kiln_inspect_events.py path/to/kiln-inspect path/to/shared/fixtures

Event files are made here byte by byte (TFRecord framing, masked CRC-32C, hand-encoded Event
protos), so most tests need nothing else; the fixture tests skip without ../shared/fixtures."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

TOOL = FIXTURES = None


def run(*args):
    p = subprocess.run([TOOL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# ---- TFRecord framing and protobuf encoding, enough for a few events

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(payload):
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked(length)) + payload + struct.pack("<I", masked(payload))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire, value):
    key = varint((number << 3) | wire)
    if wire == 0:
        return key + varint(value)
    if wire == 1:
        return key + struct.pack("<d", value)
    if wire == 5:
        return key + struct.pack("<f", value)
    return key + varint(len(value)) + value  # wire 2


def event(step, wall_time, **what):
    e = field(1, 1, wall_time) + (field(2, 0, step) if step else b"")
    if "file_version" in what:
        e += field(3, 2, what["file_version"].encode()) + field(10, 2, field(1, 2, b"kiln.test"))
    if "values" in what:
        e += field(5, 2, b"".join(field(1, 2, v) for v in what["values"]))
    return e


def tf2_scalar(tag, value):
    tensor = field(1, 0, 1) + field(2, 2, b"") + field(4, 2, struct.pack("<f", value))
    metadata = field(1, 2, field(1, 2, b"scalars"))
    return field(1, 2, tag.encode()) + field(8, 2, tensor) + field(9, 2, metadata)


def legacy_scalar(tag, value):
    return field(1, 2, tag.encode()) + field(2, 5, value)


def legacy_histogram(tag, lo, hi, limits, counts):
    packed = lambda xs: b"".join(struct.pack("<d", x) for x in xs)  # noqa: E731
    histo = (field(1, 1, lo) + field(2, 1, hi) + field(3, 1, float(sum(counts))) + field(6, 2, packed(limits))
             + field(7, 2, packed(counts)))
    return field(1, 2, tag.encode()) + field(5, 2, histo)


def legacy_image(tag, width, height, png):
    image = field(1, 0, height) + field(2, 0, width) + field(3, 0, 3) + field(4, 2, png)
    return field(1, 2, tag.encode()) + field(4, 2, image)


def sample_file():
    """file_version, 3 TF2 scalars of "loss" (steps 0..2), a legacy scalar, a legacy histogram and
    a legacy image at step 5."""
    records = [event(0, 1.7e9, file_version="brain.Event:2")]
    for step, v in enumerate([0.5, 0.25, 0.125]):
        records.append(event(step, 1.7e9 + step, values=[tf2_scalar("loss", v)]))
    records.append(event(5, 1.7e9 + 5, values=[legacy_scalar("lr", 0.01),
                                               legacy_histogram("w", -1.0, 2.0, [0.0, 1.0, 1.8e308], [0, 3, 4]),
                                               legacy_image("sample image", 3, 2, b"\x89PNG\r\n\x1a\nxx")]))
    return b"".join(record(r) for r in records), [len(record(r)) for r in records]


class EventsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kiln_inspect_events_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, rel, data):
        path = os.path.join(self.tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def rows(self, out):
        """tag -> the words of its row in the per-tag table."""
        rows, in_table = {}, False
        for line in out.splitlines():
            words = line.split()
            if words[:2] == ["tag", "kind"]:
                in_table = True
                continue
            if in_table and len(words) >= 6 and not line.startswith("run ") and ":" not in words[0]:
                rows[words[0]] = words
        return rows

    def test_one_file(self):
        data, _ = sample_file()
        path = self.write("events.out.tfevents.1700000000.host", data)
        code, out, err = run("events", path)
        self.assertEqual(code, 0, err)
        self.assertIn("5 records, file_version brain.Event:2, writer kiln.test", out)
        self.assertNotIn("truncated", out)
        rows = self.rows(out)
        self.assertEqual(rows["loss"][1:5], ["scalar", "scalars", "3", "0..2"])
        self.assertEqual(rows["loss"][5:], ["last", "0.125"])
        self.assertEqual(rows["lr"][1:5], ["scalar", "scalars", "1", "5"])
        self.assertEqual(rows["w"][1:], ["histogram", "histograms", "1", "5", "2", "buckets"])
        self.assertIn("3x2, 1 image (10 bytes)", out)
        self.assertIn("sample image", out)  # a tag with a space

    def test_values(self):
        data, _ = sample_file()
        path = self.write("events.out.tfevents.1700000000.host", data)
        code, out, err = run("events", path, "--values")
        self.assertEqual(code, 0, err)
        self.assertIn("values:", out)
        lines = [l.split() for l in out.splitlines()]
        loss = [l for l in lines if len(l) == 4 and l[2] == "loss"]
        self.assertEqual([(l[0], l[3]) for l in loss], [("0", "0.5"), ("1", "0.25"), ("2", "0.125")])
        # The legacy histogram as TensorBoard converts it: the empty first bucket dropped, min and
        # max as the outer edges.
        self.assertIn("2 buckets [-1, 2], count 7", out)

    def test_logdir_runs(self):
        data, _ = sample_file()
        self.write("events.out.tfevents.1.a", data)
        self.write("train/events.out.tfevents.2.b", data)
        self.write("train/events.out.tfevents.1.b", data)
        self.write("with space (1)/x.tfevents.y", data)
        self.write("notes/readme.txt", b"")
        code, out, err = run("events", self.tmp)
        self.assertEqual(code, 0, err)
        self.assertIn("3 runs, 4 event files", out)
        runs = [l[4:] for l in out.splitlines() if l.startswith("run ")]
        self.assertEqual(runs, [".", "train", "with space (1)"])
        train = out.index("run train")
        self.assertLess(out.index("events.out.tfevents.1.b", train), out.index("events.out.tfevents.2.b", train))

    def test_corrupt_file_is_data_loss(self):
        data, sizes = sample_file()
        offset = sizes[0] + sizes[1] + 20  # inside record 2's payload
        bad = bytearray(data)
        bad[offset] ^= 0x01
        path = self.write("events.out.tfevents.1.bad", bytes(bad))
        code, out, err = run("events", path)
        self.assertEqual(code, 1)
        self.assertIn("data loss", err)
        self.assertIn("record 2 at byte offset %d" % (sizes[0] + sizes[1]), err)
        self.assertIn("payload CRC", err)
        # In a logdir the other runs are still listed; the exit status is 1.
        self.write("ok/events.out.tfevents.1.ok", data)
        code, out, err = run("events", self.tmp)
        self.assertEqual(code, 1)
        self.assertIn("unreadable (data loss)", out)
        self.assertIn("5 records", out)

    def test_truncated_last_record_is_a_warning(self):
        data, sizes = sample_file()
        path = self.write("events.out.tfevents.1.cut", data[:-9])
        code, out, err = run("events", path)
        self.assertEqual(code, 0, err)
        self.assertIn("4 records", out)
        self.assertIn("last record truncated", out)
        self.assertIn("warning", err)
        self.assertIn("record 4 at byte offset %d" % sum(sizes[:4]), err)
        self.assertIn("9 more bytes", err)

    def test_missing_and_usage(self):
        code, out, err = run("events", os.path.join(self.tmp, "nowhere"))
        self.assertEqual(code, 1)
        self.assertIn("not found", err)
        os.makedirs(os.path.join(self.tmp, "empty"))
        code, out, err = run("events", os.path.join(self.tmp, "empty"))
        self.assertEqual(code, 1)
        self.assertIn("no event files", err)
        self.assertEqual(run("events")[0], 2)
        self.assertEqual(run("events", self.tmp, "--bogus")[0], 2)
        self.assertEqual(run("events", self.tmp, self.tmp)[0], 2)
        code, out, err = run("--help")
        self.assertIn("events FILE|LOGDIR [--values]", out)


class FixturesTest(unittest.TestCase):
    def setUp(self):
        self.other = os.path.join(FIXTURES, "events_other_writers")
        if not os.path.isdir(self.other) or not os.path.isdir(os.path.join(FIXTURES, "tf2_events")):
            self.skipTest("the event fixtures are not in " + FIXTURES)

    def test_keras_run(self):
        code, out, err = run("events", os.path.join(FIXTURES, "tf2_events"))
        self.assertEqual(code, 0, err)
        self.assertIn("1 run, 2 event files", out)
        self.assertIn("163 records, file_version brain.Event:2, writer tensorflow.core.util.events_writer", out)
        self.assertRegex(out, r"epoch_loss +scalar +scalars +20 +0\.\.19 +last ")
        self.assertRegex(out, r"kernel_0/histogram +histogram +histograms +20 +0\.\.19 +30 buckets")
        self.assertRegex(out, r"keras +tensor +graph_keras_model +1 +0 ")

    def test_other_writers(self):
        code, out, err = run("events", self.other)
        self.assertEqual(code, 0, err)
        self.assertIn("8 runs, 8 event files", out)
        self.assertIn("run magicaltrap-tensorboard_example/runs/Dec22_17-29-30_DESKTOP-9A1G2LM-Run(lr=0.005, "
                      "batch_size=100, num_workers=0)", out)
        self.assertIn("30,003 records", out)
        self.assertRegex(out, r"batch_loss +scalar +scalars +15,000 +1\.\.15000 ")
        self.assertRegex(out, r"\n +accuracy +scalar +scalars +1 +1 +last 0\.97839999\n")
        self.assertRegex(out, r"dense/kernel_0/image +image +images +10 +0\.\.9 +784x512, 1 image")
        self.assertRegex(out, r"images +image +images +1 +0 +242x392, 1 image \(83,308 bytes\)")
        self.assertRegex(out, r"rollout/exploration rate +scalar +scalars +50 +40000\.\.2000000 ")
        self.assertRegex(out, r"dup_steps/foo +scalar +scalars +210 +0\.\.199 ")
        self.assertRegex(out, r"_hparams_/experiment +hparams +hparams +1 +0 +experiment")

    def test_pytorch_values(self):
        code, out, err = run("events", os.path.join(self.other, "magicaltrap-tensorboard_example"), "--values")
        self.assertEqual(code, 0, err)
        conv1 = [l for l in out.splitlines() if l.split()[2:3] == ["conv1.weight"]]
        self.assertEqual(len(conv1), 3)
        for line in conv1:
            self.assertIn("count 150", line)


if __name__ == "__main__":
    TOOL, FIXTURES = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=sys.argv[:1], verbosity=2)
