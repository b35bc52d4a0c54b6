#!/usr/bin/env python3
"""Reads a log directory with TensorBoard's own Python loader and reports (or checks) what it sees.

    /usr/bin/python3 scripts/check_with_tensorboard.py --tensorboard-src /work/tb-src LOGDIR \
        [--expect EXPECT.json] [--allow-extra] [--dump OUT.json] [--max-values N]

Why: kiln claims its event files are what TensorFlow 2 writes, so the real judge is TensorBoard.
TensorBoard is not installed here, so this runs it from a source checkout (a clone of
github.com/tensorflow/tensorboard) whose protos were compiled once with
    cd SRC && protoc -I. --python_out=. tensorboard/compat/proto/*.proto tensorboard/plugins/*/*.proto
and with TensorBoard's bundled TensorFlow stub (no TensorFlow needed; numpy and protobuf are).

What is exercised, all TensorBoard code: run discovery (EventMultiplexer.AddRunsFromDirectory, so
run names are what the UI shows, "." for the log directory itself), one
plugin_event_accumulator.EventAccumulator per run keeping every point (size guidance 0), the
record reader with both CRCs checked, data_compat / dataclass_compat migration, and then the
MultiplexerDataProvider the dashboards query (scalars, tensors, blob sequences and the blobs
themselves). A tag whose data class does not match what its plugin queries would be invisible in
the UI; that is reported as a failure.

Also checked, because the pip `tensorboard` package ships the Rust data server ("rustboard", used
by default when present), its stricter rules (tensorboard/data/server/data_compat.rs): a scalar
must be a rank-0 DT_FLOAT tensor, a blob sequence (images, Keras model) a rank-1 DT_STRING tensor
(rank 0 allowed for the graph sub-plugins). Breaking them is a failure too.

Images: each PNG is checked by hand (signature, every chunk's CRC, IHDR, IDAT inflating to exactly
the size IHDR implies, IEND last) and decoded to pixels (with Pillow when present, else by our own
unfiltering of 8-bit images); the width and height strings of the [w, h, png...] tensor must match
the PNG header.

--expect: a JSON file {run: {tag: {"steps": [...], "values": [...]}}} written by the program that
logged the data. Steps must be equal exactly. Values by plugin:
  scalars            a number; compared exactly after rounding it to the tensor's dtype
                     (float32 for DT_FLOAT); NaN equals NaN.
  histograms         a dict with any of "buckets" (count of buckets), "count" (sum of the bucket
                     counts), "min" (left edge of the first bucket), "max" (right edge of the
                     last), "counts" (the list of bucket counts).
  images             a dict with any of "count" (images at that step), "width", "height",
                     "channels", "sha256" (per image: sha256 hex of the decoded uint8 pixels in
                     [height][width][channels] order), "pixels" (per image: nested lists).
  text               a string (rank-0 tensor) or nested lists of strings.
  hparams            a dict matched as a subset of the plugin data as JSON (protobuf field names),
                     e.g. {"hparams": {"lr": 0.01}} for _hparams_/session_start_info.
  graph_keras_model  a dict matched as a subset of the model's JSON.
  anything else      the tensor as nested lists.
Dicts are matched as subsets (keys in the expectation must be present and equal); lists must have
the same length. A tag may also give "plugin" and "description" (the summary's description, which
the dashboards show as markdown). Without --allow-extra, a run or tag that TensorBoard loaded but the expectation
does not name is a failure.

Failures also include anything TensorBoard logged at WARNING or above, and data loss (a truncated
or corrupt record: TensorBoard logs it at DEBUG level and silently stops reading that file), both
caught by a handler on the "tensorboard" logger.

Exit status: 0 all good; 1 a mismatch, a TensorBoard warning, data loss or an undecodable value;
2 a usage or setup problem (TensorBoard source missing or its protos not generated, no LOGDIR).
"""
import argparse
import hashlib
import io
import json
import logging
import math
import os
import struct
import sys
import types
import zlib

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SETUP = 2

# The data class each plugin's dashboard asks the data provider for; a tag of that plugin stored
# under another class is never listed.
PLUGIN_DATA_CLASS = {
    "scalars": "DATA_CLASS_SCALAR",
    "histograms": "DATA_CLASS_TENSOR",
    "text": "DATA_CLASS_TENSOR",
    "hparams": "DATA_CLASS_TENSOR",
    "pr_curves": "DATA_CLASS_TENSOR",
    "custom_scalars": "DATA_CLASS_TENSOR",
    "mesh": "DATA_CLASS_TENSOR",
    "images": "DATA_CLASS_BLOB_SEQUENCE",
    "audio": "DATA_CLASS_BLOB_SEQUENCE",
    "graphs": "DATA_CLASS_BLOB_SEQUENCE",
    "graph_keras_model": "DATA_CLASS_BLOB_SEQUENCE",
    "graph_run_metadata": "DATA_CLASS_BLOB_SEQUENCE",
    "graph_run_metadata_graph": "DATA_CLASS_BLOB_SEQUENCE",
    "graph_tagged_run_metadata": "DATA_CLASS_BLOB_SEQUENCE",
}
GRAPH_SUB_PLUGINS = ("graph_run_metadata", "graph_run_metadata_graph", "graph_keras_model")
MAIN_PLUGINS = ("scalars", "histograms", "images", "text", "hparams", "graph_keras_model")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
PNG_COLOUR_NAMES = {0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"}


def setup_error(message):
    print("check_with_tensorboard: " + message, file=sys.stderr)
    sys.exit(EXIT_SETUP)


# ---------------------------------------------------------------------------------------------------
# Importing TensorBoard from source

class TensorBoard:
    """The TensorBoard modules this script uses, imported from a source tree."""


def import_tensorboard(src):
    src = os.path.abspath(src)
    package = os.path.join(src, "tensorboard")
    if not os.path.isfile(os.path.join(package, "backend", "event_processing", "plugin_event_accumulator.py")):
        setup_error("no TensorBoard source at %s (expected %s); clone github.com/tensorflow/tensorboard there "
                    "and pass its root with --tensorboard-src" %
                    (src, os.path.join("tensorboard", "backend", "event_processing", "plugin_event_accumulator.py")))
    missing = [p for p in ("compat/proto/event_pb2.py", "compat/proto/summary_pb2.py",
                           "plugins/hparams/plugin_data_pb2.py", "plugins/image/plugin_data_pb2.py")
               if not os.path.isfile(os.path.join(package, p))]
    if missing:
        setup_error("the TensorBoard source at %s has no generated protobuf modules (missing %s); generate them "
                    "with:\n  cd %s && protoc -I. --python_out=. tensorboard/compat/proto/*.proto "
                    "tensorboard/plugins/*/*.proto" % (src, ", ".join("tensorboard/" + p for p in missing), src))
    sys.path.insert(0, src)
    # tensorboard.compat picks its TensorFlow API lazily: when a module named tensorboard.compat.notf
    # can be imported it uses the bundled stub without trying TensorFlow. Registering an empty module
    # under that name selects the stub without adding a file to the source tree.
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    tb = TensorBoard()
    try:
        import numpy
        from google.protobuf import json_format
        from tensorboard import context, version
        from tensorboard.backend.event_processing import data_provider, io_wrapper, plugin_event_multiplexer, tag_types
        from tensorboard.compat import tf
        from tensorboard.compat.proto import graph_pb2, summary_pb2, types_pb2
        from tensorboard.data import provider
        from tensorboard.plugins.hparams import metadata as hparams_metadata
        from tensorboard.util import tb_logging, tensor_util
    except ImportError as e:
        setup_error("importing TensorBoard from %s failed: %s (it needs numpy and protobuf, e.g. Debian's "
                    "python3-numpy and python3-protobuf)" % (src, e))
    tb.numpy, tb.json_format, tb.context, tb.version = numpy, json_format, context, version
    tb.data_provider, tb.io_wrapper, tb.tag_types = data_provider, io_wrapper, tag_types
    tb.plugin_event_multiplexer = plugin_event_multiplexer
    tb.graph_pb2, tb.summary_pb2, tb.types_pb2 = graph_pb2, summary_pb2, types_pb2
    tb.provider, tb.hparams_metadata = provider, hparams_metadata
    tb.tb_logging, tb.tensor_util = tb_logging, tensor_util
    tb.src = src
    tb.tf_api = tf.__version__  # resolves the lazy module: "stub" unless TensorFlow was chosen
    try:
        from PIL import Image
        tb.pil = Image
    except ImportError:
        tb.pil = None
    return tb


# ---------------------------------------------------------------------------------------------------
# Capturing what TensorBoard logs

class Capture(logging.Handler):
    """Keeps TensorBoard's log records: warnings and data loss become failures."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def mark(self):
        return len(self.records)

    def problems_since(self, mark):
        out = []
        for r in self.records[mark:]:
            msg = r.getMessage()
            if r.levelno >= logging.WARNING:
                out.append("TensorBoard %s (%s): %s" % (r.levelname.lower(), r.name, msg))
            elif msg.startswith("Truncated record"):
                # event_file_loader turns a DataLossError (short read or CRC mismatch) into this
                # debug message and stops reading the file.
                out.append("TensorBoard data loss (%s): %s" % (r.name, msg))
        return out


# ---------------------------------------------------------------------------------------------------
# PNG

def png_structure(data):
    """Checks a PNG by hand: signature, chunk CRCs, IHDR first, IEND last, IDAT inflating to what
    IHDR implies. Returns (header dict, inflated IDAT bytes); raises ValueError naming the fault."""
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("not a PNG: starts with %r" % bytes(data[:8]))
    pos, chunks = 8, []
    while True:
        if pos + 8 > len(data):
            raise ValueError("truncated: no chunk header at byte %d of %d (no IEND)" % (pos, len(data)))
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("chunk %r at byte %d runs past the end (%d > %d)" % (kind, pos, end, len(data)))
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:end])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError("chunk %r at byte %d has a bad CRC" % (kind, pos))
        chunks.append((kind, body))
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise ValueError("%d bytes after IEND" % (len(data) - pos))
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise ValueError("first chunk is %r, not a 13-byte IHDR" % chunks[0][0])
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if colour not in PNG_CHANNELS or compression != 0 or filtering != 0 or interlace not in (0, 1):
        raise ValueError("IHDR has colour type %d, compression %d, filter %d, interlace %d" %
                         (colour, compression, filtering, interlace))
    if width == 0 or height == 0:
        raise ValueError("IHDR says %dx%d" % (width, height))
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    if not idat:
        raise ValueError("no IDAT chunk")
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        raise ValueError("IDAT does not inflate: %s" % e)
    header = {"width": width, "height": height, "bit_depth": depth, "colour_type": colour,
              "channels": PNG_CHANNELS[colour], "interlace": interlace}
    if interlace == 0:
        row = (width * PNG_CHANNELS[colour] * depth + 7) // 8
        if len(raw) != height * (row + 1):
            raise ValueError("IDAT inflates to %d bytes; IHDR (%dx%d, %d-bit %s) needs %d" %
                             (len(raw), width, height, depth, PNG_COLOUR_NAMES[colour], height * (row + 1)))
    return header, raw


def unfilter_8bit(header, raw):
    """Pixels of a non-interlaced 8-bit PNG from its inflated IDAT (used when Pillow is absent)."""
    bpp = header["channels"]
    stride = header["width"] * bpp
    out = bytearray()
    prev = bytearray(stride)
    for y in range(header["height"]):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                line[i] = (line[i] + predictor) & 0xFF
        elif kind != 0:
            raise ValueError("row %d has filter type %d" % (y, kind))
        out += line
        prev = line
    return bytes(out)


def decode_png(tb, data):
    """{"width", "height", "channels", "pixels" (bytes, [h][w][c]) or None, "decoder"}; raises ValueError."""
    header, raw = png_structure(data)
    pixels, decoder = None, "none (only structure checked)"
    if tb.pil is not None:
        try:
            img = tb.pil.open(io.BytesIO(data))
            img.load()
        except Exception as e:  # Pillow raises many kinds for a bad image
            raise ValueError("Pillow cannot decode it: %s" % e)
        if (img.width, img.height) != (header["width"], header["height"]):
            raise ValueError("Pillow decodes %dx%d; IHDR says %dx%d" % (img.width, img.height, header["width"],
                                                                       header["height"]))
        if header["bit_depth"] == 8 and header["colour_type"] != 3:
            pixels = tb.numpy.asarray(img).astype("uint8").tobytes()
        decoder = "Pillow %s" % getattr(tb.pil, "__version__", "")
    elif header["bit_depth"] == 8 and header["interlace"] == 0 and header["colour_type"] != 3:
        pixels = unfilter_8bit(header, raw)
        decoder = "own 8-bit unfilter"
    if pixels is not None and len(pixels) != header["width"] * header["height"] * header["channels"]:
        raise ValueError("decoded %d bytes of pixels; expected %d" %
                         (len(pixels), header["width"] * header["height"] * header["channels"]))
    return dict(header, pixels=pixels, decoder=decoder)


# ---------------------------------------------------------------------------------------------------
# Loading

def dtype_name(tb, tensor_proto):
    return tb.types_pb2.DataType.Name(tensor_proto.dtype)


def shape_of(tensor_proto):
    return [d.size for d in tensor_proto.tensor_shape.dim]


def rustboard_problem(tb, plugin, tensor_proto):
    """Why TensorBoard's Rust data server would drop this value (None when it would keep it)."""
    data_class = PLUGIN_DATA_CLASS.get(plugin)
    shape = shape_of(tensor_proto)
    if data_class == "DATA_CLASS_SCALAR":
        if tensor_proto.dtype != tb.types_pb2.DT_FLOAT:
            return "scalar is %s; rustboard reads only DT_FLOAT" % dtype_name(tb, tensor_proto)
        if shape:
            return "scalar has shape %s; rustboard reads only rank 0" % shape
        if len(tensor_proto.float_val) > 1 or (not tensor_proto.float_val and len(tensor_proto.tensor_content) != 4):
            return "scalar holds %d float_val and %d bytes of tensor_content; rustboard needs exactly one value" % (
                len(tensor_proto.float_val), len(tensor_proto.tensor_content))
    elif data_class == "DATA_CLASS_BLOB_SEQUENCE":
        if tensor_proto.dtype != tb.types_pb2.DT_STRING:
            return "blob sequence is %s; rustboard reads only DT_STRING" % dtype_name(tb, tensor_proto)
        if len(shape) == 1:
            return None
        if not shape and plugin in GRAPH_SUB_PLUGINS and len(tensor_proto.string_val) == 1:
            return None
        if plugin == "audio" and len(shape) == 2 and shape[1] == 2:
            return None
        return "blob sequence has shape %s; rustboard reads only rank 1" % shape
    return None


class Series:
    """One tag of one run as TensorBoard loaded it."""

    def __init__(self, run, tag, plugin):
        self.run, self.tag, self.plugin = run, tag, plugin
        self.steps = []
        self.values = []  # canonical values (see the module docstring), one per step
        self.dtypes = set()
        self.shapes = set()
        self.description = ""
        self.notes = []
        self.problems = []


def histogram_value(tb, arr, series, step):
    if arr.ndim != 2 or arr.shape[1] != 3:
        series.problems.append("step %d: histogram tensor has shape %s; the histograms plugin expects [k, 3]" %
                               (step, list(arr.shape)))
        return {"shape": list(arr.shape)}
    counts = [float(c) for c in arr[:, 2]]
    value = {"buckets": int(arr.shape[0]), "count": float(sum(counts)), "counts": counts}
    if arr.shape[0]:
        value["min"] = float(arr[0, 0])
        value["max"] = float(arr[-1, 1])
        if any(c < 0 or not math.isfinite(c) for c in counts):
            series.notes.append("step %d: a bucket count is negative or not finite" % step)
        if any(arr[i, 0] > arr[i, 1] for i in range(arr.shape[0])):
            series.notes.append("step %d: a bucket's left edge is above its right edge" % step)
        if any(arr[i, 1] != arr[i + 1, 0] for i in range(arr.shape[0] - 1)):
            series.notes.append("step %d: buckets are not contiguous" % step)
    return value


def decode_text(arr, series, step):
    def one(b):
        try:
            return b.decode("utf-8") if isinstance(b, bytes) else str(b)
        except UnicodeDecodeError as e:
            series.problems.append("step %d: text is not UTF-8: %s" % (step, e))
            return repr(b)
    if arr.ndim == 0:
        return one(arr.item())
    return [decode_text(a, series, step) for a in arr] if arr.ndim > 1 else [one(b) for b in arr.tolist()]


def blob_sequence_value(tb, plugin, blobs, series, step):
    """The canonical value of a blob sequence (a list of bytes) for images and graph plugins."""
    if plugin == "images":
        if len(blobs) < 2:
            series.problems.append("step %d: image tensor has %d strings; expected [width, height, png...]" %
                                   (step, len(blobs)))
            return {"count": 0}
        try:
            width, height = int(blobs[0]), int(blobs[1])
        except ValueError:
            series.problems.append("step %d: width/height strings %r, %r are not integers" % (step, blobs[0], blobs[1]))
            width = height = None
        value = {"count": len(blobs) - 2, "width": width, "height": height, "sha256": [], "decoded": []}
        for i, png in enumerate(blobs[2:]):
            try:
                img = decode_png(tb, png)
            except ValueError as e:
                series.problems.append("step %d image %d (%d bytes): %s" % (step, i, len(png), e))
                value["sha256"].append(None)
                continue
            if (img["width"], img["height"]) != (width, height):
                series.problems.append("step %d image %d: the tensor says %sx%s but the PNG is %dx%d" %
                                       (step, i, width, height, img["width"], img["height"]))
            value.setdefault("channels", img["channels"])
            if img["channels"] != value["channels"]:
                series.notes.append("step %d: images have different channel counts" % step)
            value["decoded"].append("%dx%d %d-bit %s, %d bytes, %s" % (
                img["width"], img["height"], img["bit_depth"], PNG_COLOUR_NAMES[img["colour_type"]], len(png),
                img["decoder"]))
            value["sha256"].append(hashlib.sha256(img["pixels"]).hexdigest() if img["pixels"] is not None else None)
            value.setdefault("_pixels", []).append((img["pixels"], img["height"], img["width"], img["channels"]))
        return value
    if plugin == "graph_keras_model":
        if len(blobs) != 1:
            series.problems.append("step %d: Keras model blob sequence has %d blobs; expected 1" % (step, len(blobs)))
        try:
            return json.loads(blobs[0].decode("utf-8"))
        except (ValueError, IndexError) as e:
            series.problems.append("step %d: Keras model is not JSON: %s" % (step, e))
            return None
    if plugin == "graphs":
        g = tb.graph_pb2.GraphDef()
        try:
            g.ParseFromString(blobs[0])
        except Exception as e:  # protobuf's DecodeError
            series.problems.append("step %d: GraphDef does not parse: %s" % (step, e))
            return None
        return {"nodes": len(g.node)}
    return {"blobs": len(blobs), "bytes": [len(b) for b in blobs]}


def hparams_value(tb, tag, content, series):
    md = tb.hparams_metadata
    try:
        if tag == md.EXPERIMENT_TAG:
            msg = md.parse_experiment_plugin_data(content)
        elif tag == md.SESSION_START_INFO_TAG:
            msg = md.parse_session_start_info_plugin_data(content)
        elif tag == md.SESSION_END_INFO_TAG:
            msg = md.parse_session_end_info_plugin_data(content)
        else:
            series.notes.append("hparams tag %r is none of the plugin's three" % tag)
            return None
    except Exception as e:  # HParamsError or a protobuf DecodeError
        series.problems.append("the hparams plugin cannot parse its data: %s" % e)
        return None
    return tb.json_format.MessageToDict(msg, preserving_proto_field_name=True)


def load_run(tb, mux, prov, ctx, run, capture):
    """Reloads one run and returns ([Series], [run-level problems], info dict)."""
    acc = mux.GetAccumulator(run)
    mark = capture.mark()
    problems = []
    try:
        acc.Reload()
    except Exception as e:  # a record that passes its CRCs but is not an Event, for one
        problems.append("reloading the run raised %s: %s" % (type(e).__name__, e))
    info = {"path": acc.path, "files": sorted(f for f in os.listdir(acc.path)
                                              if tb.io_wrapper.IsSummaryEventsFile(os.path.join(acc.path, f))),
            "file_version": acc.file_version}
    try:
        info["source_writer"] = acc.GetSourceWriter()
    except AttributeError:
        info["source_writer"] = "?"
    out = []
    summary_pb2 = tb.summary_pb2
    tag_plugin = {}
    for plugin in sorted(acc.ActivePlugins()):
        for tag in acc.PluginTagToContent(plugin):
            tag_plugin[tag] = plugin
    rtf = tb.provider.RunTagFilter(runs=[run])
    for tag in sorted(acc.Tags()[tb.tag_types.TENSORS]):
        plugin = tag_plugin.get(tag, "")
        s = Series(run, tag, plugin)
        md = acc.SummaryMetadata(tag) if tag in acc.summary_metadata else None
        s.description = md.summary_description if md is not None else ""
        events = acc.Tensors(tag)
        s.steps = [e.step for e in events]
        for e in events:
            tp = e.tensor_proto
            s.dtypes.add(dtype_name(tb, tp))
            s.shapes.add(tuple(shape_of(tp)))
            why = rustboard_problem(tb, plugin, tp)
            if why:
                s.problems.append("step %d: %s" % (e.step, why))
            try:
                arr = tb.tensor_util.make_ndarray(tp)
            except Exception as err:  # a TensorProto whose content does not match its shape
                s.problems.append("step %d: make_ndarray failed: %s" % (e.step, err))
                s.values.append(None)
                continue
            if plugin == "scalars":
                s.values.append(arr.item() if arr.size == 1 else None)
                if arr.size != 1:
                    s.problems.append("step %d: scalar tensor has %d elements" % (e.step, arr.size))
            elif plugin == "histograms":
                s.values.append(histogram_value(tb, arr, s, e.step))
            elif plugin == "text":
                s.values.append(decode_text(arr, s, e.step))
                if arr.ndim:
                    # text_plugin.text_array_to_html renders only a rank-0 string as one markdown
                    # document; anything else becomes a table with a cell per string.
                    s.notes.append("text tensor has shape %s: the text dashboard shows it as a table of cells, "
                                   "not as one markdown document (tf.summary.text writes rank 0)" % list(arr.shape))
            elif plugin == "hparams":
                s.values.append(hparams_value(tb, tag, md.plugin_data.content, s) if md is not None else None)
            elif PLUGIN_DATA_CLASS.get(plugin) == "DATA_CLASS_BLOB_SEQUENCE":
                blobs = [b for b in arr.reshape(-1).tolist()] if arr.ndim <= 1 else [b for b in arr[:, 0].tolist()]
                s.values.append(blob_sequence_value(tb, plugin, blobs, s, e.step))
            else:
                s.values.append(arr.tolist())
        # What the dashboards get: the data provider serves a tag only under its plugin's data class.
        want = PLUGIN_DATA_CLASS.get(plugin)
        have = summary_pb2.DataClass.Name(md.data_class) if md is not None else "no metadata"
        if not plugin:
            s.problems.append("no plugin name in its metadata: no dashboard shows it")
        elif want and have != want:
            s.problems.append("data class %s; the %s plugin reads %s, so TensorBoard would not show it" %
                              (have, plugin, want))
        elif want:
            cross_check(tb, prov, ctx, rtf, s, want)
        out.append(s)
    problems += capture.problems_since(mark)
    return out, problems, info


def cross_check(tb, prov, ctx, rtf, s, data_class):
    """Reads the series again through the MultiplexerDataProvider, as the dashboards do."""
    kw = dict(experiment_id="", plugin_name=s.plugin, downsample=1 << 40, run_tag_filter=rtf)
    try:
        if data_class == "DATA_CLASS_SCALAR":
            got = prov.read_scalars(ctx, **kw).get(s.run, {}).get(s.tag)
            if got is None:
                s.problems.append("the data provider does not list it")
                return
            pairs = [(d.step, d.value) for d in got]
            if len(pairs) != len(s.steps) or any(
                    a[0] != step or not same_number(a[1], v) for a, step, v in zip(pairs, s.steps, s.values)):
                s.problems.append("the data provider serves %d points that differ from the accumulator's %d" %
                                  (len(pairs), len(s.steps)))
        elif data_class == "DATA_CLASS_TENSOR":
            got = prov.read_tensors(ctx, **kw).get(s.run, {}).get(s.tag)
            if got is None or [d.step for d in got] != s.steps:
                s.problems.append("the data provider serves steps %s; the accumulator has %s" %
                                  (None if got is None else [d.step for d in got], s.steps))
        else:
            got = prov.read_blob_sequences(ctx, **kw).get(s.run, {}).get(s.tag)
            if got is None:
                s.problems.append("the data provider does not list it")
                return
            first_at = {}
            for i, step in enumerate(s.steps):
                first_at.setdefault(step, i)
            if [d.step for d in got] != sorted(first_at):
                s.problems.append("the data provider serves steps %s" % [d.step for d in got])
                return
            if len(first_at) != len(s.steps):
                s.notes.append("%d events share a step; the dashboard shows only the first at each step" %
                               (len(s.steps) - len(first_at)))
            # The browser fetches each image through read_blob: check those bytes decode the same.
            for d in got:
                value = s.values[first_at[d.step]]
                if s.plugin != "images" or not isinstance(value, dict):
                    continue
                for j, ref in enumerate(d.values[2:]):
                    blob = prov.read_blob(ctx, blob_key=ref.blob_key)
                    try:
                        img = decode_png(tb, blob)
                    except ValueError as e:
                        s.problems.append("step %d image %d as served by read_blob: %s" % (d.step, j, e))
                        continue
                    if img["pixels"] is not None and j < len(value["sha256"]) and \
                            hashlib.sha256(img["pixels"]).hexdigest() != value["sha256"][j]:
                        s.problems.append("step %d image %d: read_blob serves different pixels" % (d.step, j))
    except Exception as e:  # the provider raising is itself a finding
        s.problems.append("the data provider raised %s: %s" % (type(e).__name__, e))


# ---------------------------------------------------------------------------------------------------
# Printing

def fmt_number(x):
    if isinstance(x, float):
        return "%.9g" % x
    return repr(x)


def fmt_list(xs, limit, fmt=fmt_number):
    if len(xs) <= limit:
        return "[" + ", ".join(fmt(x) for x in xs) + "]"
    head = max(1, limit - 2)
    return "[" + ", ".join(fmt(x) for x in xs[:head]) + ", ... (%d more), " % (len(xs) - head - 2) + \
        ", ".join(fmt(x) for x in xs[-2:]) + "]"


def fmt_steps(steps, limit):
    if len(steps) > 2 and all(b - a == steps[1] - steps[0] for a, b in zip(steps, steps[1:])) and steps[1] != steps[0]:
        return "%d..%d every %d" % (steps[0], steps[-1], steps[1] - steps[0])
    return fmt_list(steps, limit, repr)


def describe(s, limit):
    kind = "%s %s" % ("/".join(sorted(s.dtypes)), "/".join(str(list(x)) for x in sorted(s.shapes)))
    head = "    %s: %d point%s, steps %s, %s" % (s.tag, len(s.steps), "" if len(s.steps) == 1 else "s",
                                                fmt_steps(s.steps, limit), kind)
    lines = [head]
    if s.description:
        lines.append("      description %s" % json.dumps(s.description, ensure_ascii=False))
    if s.plugin == "scalars":
        lines.append("      values %s" % fmt_list(s.values, limit))
    elif s.plugin == "histograms":
        ok = [v for v in s.values if isinstance(v, dict) and "count" in v]
        lines.append("      buckets %s; count sums %s; range %s" % (
            fmt_list(sorted({v["buckets"] for v in ok}), limit),
            fmt_list([v["count"] for v in ok], limit),
            "[%s, %s]" % (fmt_number(min(v["min"] for v in ok if "min" in v)),
                          fmt_number(max(v["max"] for v in ok if "max" in v))) if any("min" in v for v in ok) else "-"))
    elif s.plugin == "images":
        for step, v in list(zip(s.steps, s.values))[:limit]:
            if isinstance(v, dict):
                decoded = "; ".join(sorted(set(v.get("decoded", [])))) or "none decoded"
                lines.append("      step %d: %d image(s) %sx%s: %s" % (step, v["count"], v.get("width"),
                                                                     v.get("height"), decoded))
        if len(s.steps) > limit:
            lines.append("      ... %d more steps" % (len(s.steps) - limit))
    elif s.plugin == "text":
        for step, v in list(zip(s.steps, s.values))[:limit]:
            text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            lines.append("      step %d: %s" % (step, json.dumps(text[:200], ensure_ascii=False) +
                                                  (" ... (%d chars)" % len(text) if len(text) > 200 else "")))
    elif s.plugin == "hparams":
        if s.values and s.values[0] is not None:
            lines.append("      %s" % json.dumps(s.values[0], sort_keys=True)[:400])
    elif s.plugin == "graph_keras_model":
        for v in s.values[:1]:
            if isinstance(v, dict):
                layers = v.get("config", {}).get("layers", []) if isinstance(v.get("config"), dict) else []
                lines.append("      model JSON: class_name %r, %d layer(s)%s" % (
                    v.get("class_name"), len(layers),
                    (": " + ", ".join(str(l.get("class_name")) for l in layers[:limit])) if layers else ""))
    elif s.plugin == "graphs":
        lines.append("      %s" % fmt_list([json.dumps(v) for v in s.values], limit, str))
    for n in sorted(set(s.notes)):
        lines.append("      note: " + n)
    for p in s.problems:
        lines.append("      FAIL: " + p)
    return lines


# ---------------------------------------------------------------------------------------------------
# Comparing with an expectation

def as_dtype(x, dtypes):
    """x rounded the way the stored tensor rounded it."""
    if "DT_FLOAT" in dtypes:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    if "DT_HALF" in dtypes:
        return struct.unpack("<e", struct.pack("<e", x))[0]
    return float(x)


def same_number(want, got, dtypes=()):
    if isinstance(want, bool) or isinstance(got, bool):
        return want == got
    if not isinstance(want, (int, float)) or not isinstance(got, (int, float)):
        return want == got
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    try:
        return as_dtype(want, dtypes) == got if dtypes else want == got
    except (OverflowError, struct.error):
        return want == got


def subset_diff(want, got, where):
    """First difference between an expected (sub)structure and the loaded one, or None."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return "%s: expected a dict, got %r" % (where, got)
        for k, v in want.items():
            if k not in got:
                return "%s: no key %r (has %s)" % (where, k, sorted(got))
            d = subset_diff(v, got[k], "%s.%s" % (where, k))
            if d:
                return d
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return "%s: expected %d items, got %s" % (where, len(want),
                                                      len(got) if isinstance(got, list) else repr(got))
        for i, (a, b) in enumerate(zip(want, got)):
            d = subset_diff(a, b, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    if not same_number(want, got):
        return "%s: expected %r, got %r" % (where, want, got)
    return None


def image_pixels(got):
    """The decoded pixels of a loaded image value as nested lists [image][h][w][c]."""
    out = []
    for pixels, h, w, c in got.get("_pixels", []):
        if pixels is None:
            out.append(None)
            continue
        out.append([[[pixels[(y * w + x) * c + k] for k in range(c)] for x in range(w)] for y in range(h)])
    return out


def compare_value(s, want, got):
    if s.plugin == "scalars":
        if not isinstance(want, (int, float)) or isinstance(want, bool):
            return "expected a number, got %r in the expectation" % (want,)
        if got is None or not same_number(float(want), got, s.dtypes):
            return "expected %s (%s as %s), got %s" % (
                fmt_number(float(want)), fmt_number(as_dtype(float(want), s.dtypes)), "/".join(sorted(s.dtypes)),
                fmt_number(got) if got is not None else None)
        return None
    if s.plugin == "images" and isinstance(want, dict) and isinstance(got, dict):
        want = dict(want)
        pixels = want.pop("pixels", None)
        d = subset_diff(want, {k: v for k, v in got.items() if not k.startswith("_")}, "value")
        if d or pixels is None:
            return d
        return subset_diff(pixels, image_pixels(got), "value.pixels")
    if s.plugin == "histograms" and isinstance(want, dict):
        return subset_diff(want, got, "value")
    return subset_diff(want, got, "value")


def check_expectation(expect, series_by_run, allow_extra):
    failures = []
    for run in sorted(expect):
        tags = expect[run]
        if run not in series_by_run:
            failures.append("run %r: expected, but TensorBoard found no such run (runs: %s)" %
                            (run, sorted(series_by_run)))
            continue
        loaded = {s.tag: s for s in series_by_run[run]}
        for tag in sorted(tags):
            want = tags[tag]
            s = loaded.get(tag)
            if s is None:
                failures.append("run %r tag %r: expected, but TensorBoard has no such tag (tags: %s)" % (run, tag,
                                                                                                      sorted(loaded)))
                continue
            if "description" in want and want["description"] != s.description:
                failures.append("run %r tag %r: expected description %r, TensorBoard has %r" % (
                    run, tag, want["description"], s.description))
            if "plugin" in want and want["plugin"] != s.plugin:
                failures.append("run %r tag %r: expected plugin %r, TensorBoard says %r" % (run, tag, want["plugin"],
                                                                                         s.plugin))
            if "steps" in want and list(want["steps"]) != s.steps:
                failures.append("run %r tag %r: steps differ: expected %s, got %s" % (run, tag, want["steps"], s.steps))
                continue
            if "values" in want:
                values = want["values"]
                if len(values) != len(s.values):
                    failures.append("run %r tag %r: expected %d values, got %d" %
                                    (run, tag, len(values), len(s.values)))
                    continue
                for i, (w, g) in enumerate(zip(values, s.values)):
                    d = compare_value(s, w, g)
                    if d:
                        failures.append("run %r tag %r step %d (point %d): %s" % (run, tag, s.steps[i], i, d))
        if not allow_extra:
            for tag in sorted(set(loaded) - set(tags)):
                failures.append("run %r tag %r (%s): loaded by TensorBoard but not in the expectation" %
                                (run, tag, loaded[tag].plugin))
    if not allow_extra:
        for run in sorted(set(series_by_run) - set(expect)):
            failures.append("run %r: loaded by TensorBoard but not in the expectation" % run)
    return failures


def dump_value(v):
    if isinstance(v, dict):
        return {k: dump_value(x) for k, x in v.items() if not k.startswith("_")}
    if isinstance(v, list):
        return [dump_value(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


# ---------------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description="Read a log directory with TensorBoard's own loader (from source) and "
                                             "print or check every run, tag, step and value.")
    ap.add_argument("logdir")
    ap.add_argument("--tensorboard-src", required=True,
                    help="root of a github.com/tensorflow/tensorboard checkout with generated *_pb2.py modules")
    ap.add_argument("--expect", help="JSON {run: {tag: {\"steps\": [...], \"values\": [...]}}} to compare exactly")
    ap.add_argument("--allow-extra", action="store_true",
                    help="runs and tags that the expectation does not name are not failures")
    ap.add_argument("--dump", help="write what TensorBoard loaded as JSON in the --expect format")
    ap.add_argument("--max-values", type=int, default=8, help="values printed per tag (default 8)")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.logdir):
        setup_error("%s is not a directory" % args.logdir)
    expect = None
    if args.expect:
        try:
            with open(args.expect, encoding="utf-8") as f:
                expect = json.load(f)
        except (OSError, ValueError) as e:
            setup_error("cannot read the expectation %s: %s" % (args.expect, e))
        if not isinstance(expect, dict) or not all(isinstance(v, dict) for v in expect.values()):
            setup_error("the expectation must be {run: {tag: {\"steps\": [...], \"values\": [...]}}}")

    tb = import_tensorboard(args.tensorboard_src)
    capture = Capture()
    tb_logger = tb.tb_logging.get_logger()
    tb_logger.setLevel(logging.DEBUG)
    tb_logger.addHandler(capture)
    tb_logger.propagate = False

    logdir = os.path.abspath(args.logdir)
    print("TensorBoard %s from %s (tensorboard.compat.tf = %s); PNG pixels via %s" % (
        tb.version.VERSION, tb.src, tb.tf_api, "Pillow" if tb.pil else "our own unfilter"))
    print("logdir %s" % logdir)
    guidance = {tb.tag_types.TENSORS: 0}  # 0 = keep every point (the UI samples; this must not)
    mux = tb.plugin_event_multiplexer.EventMultiplexer(size_guidance=guidance, tensor_size_guidance={})
    mark = capture.mark()
    mux.AddRunsFromDirectory(logdir)
    prov = tb.data_provider.MultiplexerDataProvider(mux, logdir)
    ctx = tb.context.RequestContext()
    failures = capture.problems_since(mark)
    series_by_run = {}
    runs = sorted(mux.Runs())
    if not runs:
        failures.append("TensorBoard found no run (no events file) under %s" % logdir)
    total = {"tags": 0, "points": 0, "images": 0}
    for run in runs:
        series, problems, info = load_run(tb, mux, prov, ctx, run, capture)
        series_by_run[run] = series
        print()
        print("run %r: %s; writer %s; file_version %s" % (run, ", ".join(info["files"]), info["source_writer"],
                                                         info["file_version"]))
        by_plugin = {}
        for s in series:
            by_plugin.setdefault(s.plugin or "(no plugin)", []).append(s)
        shown = MAIN_PLUGINS + tuple(sorted(set(by_plugin) - set(MAIN_PLUGINS)))
        print("  tags per plugin: " + ", ".join("%s %d" % (p, len(by_plugin.get(p, []))) for p in shown))
        for plugin in sorted(by_plugin, key=lambda p: (p not in MAIN_PLUGINS, MAIN_PLUGINS.index(p)
                                                       if p in MAIN_PLUGINS else 0, p)):
            print("  %s:" % plugin)
            for s in by_plugin[plugin]:
                for line in describe(s, args.max_values):
                    print(line)
                failures += ["run %r tag %r: %s" % (run, s.tag, p) for p in s.problems]
                total["tags"] += 1
                total["points"] += len(s.steps)
                if s.plugin == "images":
                    total["images"] += sum(len([h for h in v.get("sha256", []) if h]) for v in s.values
                                           if isinstance(v, dict))
        for p in problems:
            print("  FAIL: " + p)
        failures += ["run %r: %s" % (run, p) for p in problems]

    if args.dump:
        out = {run: {s.tag: {"plugin": s.plugin, "steps": s.steps, "values": [dump_value(v) for v in s.values]}
                     for s in series} for run, series in series_by_run.items()}
        with open(args.dump, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, sort_keys=True)

    compared = None
    if expect is not None:
        mismatches = check_expectation(expect, series_by_run, args.allow_extra)
        compared = sum(len(t) for t in expect.values())
        failures += ["expectation: " + m for m in mismatches]

    print()
    print("%d run(s), %d tag(s), %d point(s), %d image(s) decoded" % (len(runs), total["tags"], total["points"],
                                                                      total["images"]))
    if compared is not None:
        print("expectation %s: %d tag(s) compared" % (args.expect, compared))
    if failures:
        print("RESULT: FAILED (%d)" % len(failures))
        for f in failures:
            print("  - " + f)
        return EXIT_FAILED
    print("RESULT: OK (no data loss, no TensorBoard warnings%s)" % (", every expected value matched"
                                                                     if compared is not None else ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
