"""Figures, images and dataset objects as artifacts and inputs (mlflow's log_figure,
log_image, log_input).  Standard library only: a numpy image is encoded to PNG here
(zlib); matplotlib, plotly or PIL are used only when the object given is theirs."""

import io
import os
import struct
import warnings
import zlib

from . import _fluent, _rest
from ._errors import MloWarning


def _png(pixels, width, height, channels):
    """PNG bytes of 8-bit rows: channels 1 (grey), 3 (RGB) or 4 (RGBA)."""
    color = {1: 0, 3: 2, 4: 6}[channels]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    stride = width * channels
    raw = b"".join(b"\x00" + pixels[y * stride:(y + 1) * stride] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _numpy_image(image):
    """(uint8 array HxW or HxWxC, C) as mlflow reads a numpy image: integers in
    [0, 255], floats in [0, 1] (scaled by 255), booleans; out-of-range values are
    clipped with a warning."""
    import numpy as np
    kinds = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating"}
    if image.dtype.kind not in kinds:
        raise TypeError("Invalid array data type: '%s'. Must be one of %s"
                        % (image.dtype, list(kinds.values())))
    if image.ndim not in (2, 3):
        raise ValueError("`image` must be a 2D or 3D array but got a %dD array" % image.ndim)
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError("Invalid channel length: %d. Must be one of [1, 3, 4]"
                         % image.shape[2])
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    is_int = image.dtype.kind in "iu"
    low, high = 0, (255 if is_int else 1)
    if image.size and (image.min() < low or image.max() > high):
        warnings.warn(MloWarning(0, "", "Out-of-range values are detected. Clipping array "
                                 "(dtype: '%s') to [%s, %s]" % (image.dtype, low, high),
                                 "MLO_WARN_CLIPPED"), stacklevel=3)
        image = np.clip(image, low, high)
    if not is_int:
        image = image * 255
    image = np.ascontiguousarray(image.astype(np.uint8))
    channels = 1 if image.ndim == 2 else image.shape[2]
    return image, channels


def log_image(image, artifact_file=None, key=None, step=None, timestamp=None,
              synchronous=False, *, run_id=None):
    """Logs an image (a numpy array HxW, HxWx1, HxWx3 or HxWx4; or a PIL image) as the
    artifact artifact_file ("images/confusion.png").  A numpy array is encoded to PNG
    without any image library.  mlflow's key/step form (an image series) is not
    supported: give artifact_file."""
    if key is not None or step is not None or timestamp is not None:
        raise _rest.not_supported("log_image(key=..., step=...) (an image series)",
                                  "mlo.log_image(image, artifact_file='images/%s/step_%s.png')"
                                  % (key or "<key>", step if step is not None else "<step>"))
    if not artifact_file:
        raise _fluent._einval("log_image needs artifact_file (\"images/<name>.png\")")
    ext = os.path.splitext(str(artifact_file))[1].lower()
    if hasattr(image, "save") and hasattr(image, "mode") and hasattr(image, "size"):  # PIL
        buf = io.BytesIO()
        image.save(buf, format={"jpg": "jpeg"}.get(ext[1:], ext[1:] or "png").upper())
        data = buf.getvalue()
    elif type(image).__module__ == "numpy" and hasattr(image, "dtype"):
        arr, channels = _numpy_image(image)
        if ext == ".png":
            data = _png(arr.tobytes(), arr.shape[1], arr.shape[0], channels)
        else:
            try:
                from PIL import Image
            except ImportError:
                raise _rest.not_supported("log_image(numpy array, %r) without PIL" % artifact_file,
                                          "mlo.log_image(image, '<name>.png') (PNG needs no "
                                          "image library)") from None
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format={"jpg": "jpeg"}.get(ext[1:], ext[1:]).upper())
            data = buf.getvalue()
    else:
        raise TypeError("log_image takes a numpy array or a PIL image, not %s"
                        % type(image).__name__)
    run = _fluent._run(run_id)
    run.log_bytes(data, artifact_file)
    return _fluent._after(run, synchronous)


def log_figure(figure, artifact_file, *, save_kwargs=None, run_id=None):
    """Logs a matplotlib figure (saved in the format of artifact_file's extension: .png,
    .svg, .pdf, ...) or a plotly figure (.html) as an artifact."""
    mod = type(figure).__module__.split(".")[0]
    ext = os.path.splitext(str(artifact_file))[1].lower().lstrip(".")
    if mod == "matplotlib":
        buf = io.BytesIO()
        figure.savefig(buf, format=ext or "png", **(save_kwargs or {}))
        data = buf.getvalue()
    elif mod == "plotly":
        if ext != "html":
            raise _rest.not_supported("log_figure(plotly figure, %r)" % artifact_file,
                                      "mlo.log_figure(figure, '<name>.html')")
        data = figure.to_html(**(save_kwargs or {})).encode("utf-8")
    else:
        raise TypeError("log_figure takes a matplotlib or plotly figure, not %s"
                        % type(figure).__name__)
    _fluent._run(run_id).log_bytes(data, artifact_file)


def _source_text(source):
    if source is None or isinstance(source, str):
        return source
    for attr in ("uri", "url", "path"):
        v = getattr(source, attr, None)
        if isinstance(v, str) and v:
            return v
    to_json = getattr(source, "to_json", None)
    if callable(to_json):
        return to_json()
    return str(source)


def log_input(dataset, context=None, tags=None, *, run_id=None):
    """Records that the active run used a dataset (mlflow's log_input): any object with
    name, digest and source (an mlflow.data dataset, or your own); the source may be a
    string or an object with a uri, url or path.  Input tags (context="training", tags)
    are not in the library's dataset call: they raise, naming mlo.log_dataset."""
    if context is not None or tags:
        raise _rest.not_supported("log_input(context=..., tags=...)",
                                  "mlo.log_dataset(name, source, digest) records the dataset "
                                  "without input tags (mlflow.data.context)")
    name = getattr(dataset, "name", None)
    source = _source_text(getattr(dataset, "source", None))
    if not name or not source:
        raise _fluent._einval("log_input needs a dataset with a name and a source, not %r"
                              % (dataset,))
    _fluent._run(run_id).log_dataset(name, source, getattr(dataset, "digest", None))
