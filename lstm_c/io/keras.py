"""Keras model files without Keras: ``.keras`` (Keras 3) and legacy ``.h5`` (Keras 3,
tf.keras 2, Keras 2.2), read with zipfile, json and h5py only (shared/SEMANTICS.md §5).

Untrusted files are welcome: nothing is unpickled or extracted (zip members are read
into memory by exact name), HDF5 links to other files are refused, and every array's
declared dtype and size are checked before it is read. Any problem is a ValueError
that names the file and what is wrong with it.
"""

import io
import json
import math
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ._source import MAX_ARRAY_BYTES, SourceFile as _File, file_size as _file_size
from .keras_config import (ConfigError, build_layers, keras3_var_groups, keras_version_tuple,
                           parse_model_config, wire_model)
from .keras_writer import to_keras_config

__all__ = ["load_keras", "load_keras_h5", "save_keras", "MAX_ARRAY_BYTES"]

#: Caps on the members of a .keras zip, checked before reading them.
_MAX_JSON_BYTES = 64 * 2 ** 20
_MAX_WEIGHTS_BYTES = 2 ** 34
#: The Keras version whose file layout lstm_c writes (shared/SEMANTICS.md §5).
KERAS_FORMAT_VERSION = "3.15.1"


def _h5py():
    import h5py  # imported on first use: `import lstm_c` stays light

    return h5py


# ---------------------------------------------------------------------------- .keras (zip)
def load_keras(path):
    """Load a Keras 3 ``.keras`` file (zip of config.json, metadata.json, model.weights.h5).

    Returns
    -------
    lstm_c.Sequential or lstm_c.Model
    """
    source = _File(os.fspath(path), _file_size(path))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise source.error(f"not a readable .keras file (a zip archive is expected): {error}") from None
    with archive:
        config = _json_member(archive, "config.json", source)
        metadata = _json_member(archive, "metadata.json", source) if "metadata.json" in archive.namelist() else {}
        weights = _member(archive, "model.weights.h5", source, _MAX_WEIGHTS_BYTES)
    version = keras_version_tuple(metadata.get("keras_version", "3") if isinstance(metadata, dict) else "3")
    inner = _File(f"{source.label} (model.weights.h5)", len(weights))
    with _open_h5(io.BytesIO(weights), inner) as h5:
        return _build_model(config, version, source, lambda spec: _keras3_weights(h5, spec, inner))


def _member(archive, name, source, limit):
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise source.error(f"the archive has no {name} (members: {archive.namelist()[:10]})") from None
    if info.file_size > limit:
        raise source.error(f"{name} declares {info.file_size} bytes, more than the {limit} allowed")
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as error:
        raise source.error(f"cannot read {name} from the archive (corrupt or truncated?): {error}") from None
    except Exception as error:  # zlib.error and other decompressor failures
        raise source.error(f"cannot decompress {name}: {type(error).__name__}: {error}") from None


def _json_member(archive, name, source):
    return _parse_json(_member(archive, name, source, _MAX_JSON_BYTES), f"{name}", source)


def _parse_json(data, what, source):
    try:
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise source.error(f"{what} is not valid JSON: {error}") from None


def _keras3_weights(h5, spec, source):
    """A layer's arrays from a Keras 3 weights file: the datasets 0, 1, ... of each of its
    variable groups (``layers/lstm/cell/vars``), in order."""
    arrays = []
    for group_name in keras3_var_groups(spec.class_name):
        path = f"{spec.keras3_path}/{group_name}"
        group = _follow(h5, path, source)
        if not isinstance(group, _h5py().Group):
            raise source.error(f"{path} is not a group")
        names = sorted(group.keys(), key=lambda n: int(n) if n.isdigit() else -1)
        if names != [str(k) for k in range(len(names))]:
            raise source.error(f"{path} should hold datasets named 0, 1, ..., got {names[:10]}")
        arrays += [_read_array(group, n, source) for n in names]
    return arrays


# ---------------------------------------------------------------------------- legacy .h5
def load_keras_h5(path):
    """Load a legacy Keras ``.h5`` model file (Keras 3, tf.keras 2 or Keras 2.2 layout).

    Returns
    -------
    lstm_c.Sequential or lstm_c.Model
    """
    source = _File(os.fspath(path), _file_size(path))
    with _open_h5(path, source) as h5:
        if "model_config" not in h5.attrs:
            kind = "a weights-only file (save_weights)" if "layer_names" in h5.attrs else "not a Keras model file"
            raise source.error(f"{kind}: it has no model_config attribute, so the model cannot be rebuilt")
        config = _parse_json(_attr_text(h5.attrs["model_config"]), "the model_config attribute", source)
        version = keras_version_tuple(_attr_text(h5.attrs.get("keras_version", b"")))
        # Keras 2's save_weights puts layer_names at the root; model files under model_weights.
        group = h5["model_weights"] if "model_weights" in h5 else h5
        layer_names = _name_list(group, "layer_names", source)
        return _build_model(config, version, source, lambda spec: _h5_weights(group, layer_names, spec, source))


def _attr_text(value):
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode("utf-8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _name_list(group, attribute, source):
    """A list of names stored in an attribute, or split over ``attribute0``, ``attribute1``, ...
    when it was too large for one (Keras does this); values may be bytes or str."""
    if attribute in group.attrs:
        chunks = [group.attrs[attribute]]
    else:
        chunks = []
        while f"{attribute}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{attribute}{len(chunks)}"])
        if not chunks:
            raise source.error(f"{group.name} has no {attribute} attribute")
    names = [_attr_text(n) for chunk in chunks for n in np.atleast_1d(chunk)]
    return [n for n in names if n]


def _h5_weights(group, layer_names, spec, source):
    """A layer's arrays from a legacy file: ``group[layer]`` holds them at the paths its
    ``weight_names`` attribute lists, in that order. A layer of a nested Sequential has
    them in that model's group, among its ``weight_names`` under the layer's name
    (``enc/lstm/lstm_cell/kernel``, or without the model's name in front)."""
    owner = spec.legacy_group or spec.name
    if owner not in layer_names:
        return []
    layer_group = _follow(group, owner, source)
    names = _name_list(layer_group, "weight_names", source)
    if spec.legacy_group is not None:
        names = [name for name in names
                 if name.removeprefix(f"{owner}/").split("/")[0] == spec.name]
    return [_read_array(layer_group, name, source) for name in names]


# ---------------------------------------------------------------------------- HDF5 safety
def _open_h5(file, source):
    h5py = _h5py()
    try:
        return h5py.File(file, "r")
    except (OSError, ValueError) as error:
        raise source.error(f"not a readable HDF5 file (corrupt or truncated?): {error}") from None


def _follow(group, path, source):
    """``group[path]``, refusing links that leave the file (external links)."""
    h5py = _h5py()
    node, where = group, f"{group.name.rstrip('/')}/{path}"
    for part in [p for p in path.split("/") if p]:
        try:
            link = node.get(part, getlink=True)
        except (OSError, KeyError, ValueError, AttributeError) as error:
            raise source.error(f"cannot read {where}: {error}") from None
        if link is None:
            raise source.error(f"missing {where} (no {part!r} in {node.name})")
        if isinstance(link, h5py.ExternalLink):
            raise source.error(f"{where} links to another file ({link.filename}); lstm_c reads one file only")
        try:
            node = node[part]
        except (OSError, KeyError, ValueError) as error:
            raise source.error(f"cannot read {where}: {error}") from None
    return node


def _read_array(group, name, source):
    """One weight array, after checking its dtype, declared size and storage."""
    h5py = _h5py()
    dataset = _follow(group, name, source)
    where = dataset.name
    if not isinstance(dataset, h5py.Dataset):
        raise source.error(f"{where} is a group, expected a weight array")
    if dataset.dtype.kind != "f" or dataset.dtype.itemsize not in (2, 4, 8):
        raise source.error(f"{where} has dtype {dataset.dtype}, expected float16, float32 or float64")
    if dataset.is_virtual or dataset.external:
        raise source.error(f"{where} stores its data outside this file; lstm_c reads one file only")
    nbytes = math.prod(dataset.shape) * dataset.dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise source.error(f"{where} declares shape {dataset.shape} ({nbytes} bytes), more than the "
                           f"{MAX_ARRAY_BYTES} bytes lstm_c accepts for one array")
    if not dataset.compression and nbytes > source.size:
        raise source.error(f"{where} declares shape {dataset.shape} ({nbytes} bytes) but the file has only "
                           f"{source.size} bytes")
    if nbytes and dataset.id.get_storage_size() == 0:
        raise source.error(f"{where} declares shape {dataset.shape} but stores no data")
    try:
        return np.asarray(dataset[()])
    except (OSError, ValueError, TypeError) as error:
        raise source.error(f"cannot read {where} (corrupt or truncated?): {error}") from None


# ---------------------------------------------------------------------------- building
def _build_model(model_config, version, source, weights_of):
    """Parse the config, create the layers, give them the file's weights, then wire the model
    (weights first, so no layer ever draws random weights of a size only the config claims)."""
    try:
        spec = parse_model_config(model_config, version)
        build_layers(spec, version)
        for layer_spec in spec.layers:
            _set_file_weights(layer_spec, weights_of(layer_spec), source)
        return wire_model(spec, version)
    except ConfigError as error:
        raise source.error(str(error)) from None
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise source.error(f"malformed model config ({type(error).__name__}: {error})") from None


def _set_file_weights(spec, arrays, source):
    layer = spec.layer
    if layer.built:  # no weights of its own (Masking, Dropout, inputs, operations)
        if arrays:
            raise source.error(f"layer {spec.name!r} ({spec.class_name}) should have no weights, "
                               f"the file has {len(arrays)}")
        return
    if not arrays:
        raise source.error(f"the file has no weights for layer {spec.name!r} ({spec.class_name})")
    try:
        layer.set_weights(_from_cudnn_layout(spec, arrays))
    except (ValueError, TypeError) as error:
        raise source.error(f"the weights of layer {spec.name!r} ({spec.class_name}) do not fit its config: "
                           f"{error}") from None


def _from_cudnn_layout(spec, arrays):
    """Keras 2's CuDNNLSTM weights (alone or in a Bidirectional) in LSTM layout."""
    inner = (spec.config.get("layer") or {}).get("class_name") if spec.class_name == "Bidirectional" else None
    if spec.class_name != "CuDNNLSTM" and inner != "CuDNNLSTM":
        return arrays
    groups = [arrays] if spec.class_name == "CuDNNLSTM" else [arrays[:len(arrays) // 2], arrays[len(arrays) // 2:]]
    return [w for group in groups for w in _cudnn_to_lstm(*group)]


def _cudnn_to_lstm(kernel, recurrent_kernel, bias):
    """As Keras 2's own CuDNNLSTM -> LSTM weight converter: cuDNN keeps each gate's input
    block as the flattened transpose of Keras's, each recurrent block transposed, and
    separate input and recurrent biases (8U), which add up."""
    units = recurrent_kernel.shape[0] if recurrent_kernel.ndim == 2 else 0
    if kernel.ndim != 2 or recurrent_kernel.shape != (units, 4 * units) or kernel.shape[1] != 4 * units \
            or bias.shape != (8 * units,):
        raise ValueError(f"CuDNNLSTM weights must be kernel (D, 4U), recurrent_kernel (U, 4U), bias (8U,), got "
                         f"{kernel.shape}, {recurrent_kernel.shape}, {bias.shape}")
    kernel = np.hstack([block.T.reshape(block.shape, order="F") for block in np.hsplit(kernel, 4)])
    recurrent_kernel = np.hstack([block.T for block in np.hsplit(recurrent_kernel, 4)])
    return [kernel, recurrent_kernel, bias[:4 * units] + bias[4 * units:]]


# ---------------------------------------------------------------------------- writing
def save_keras(model, path):
    """Write ``model`` as a Keras 3 ``.keras`` file (written to a temporary name, then renamed)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"lstm_c saves Keras 3 .keras files; got the path {str(path)!r} (use a .keras suffix)")
    model_config, groups = to_keras_config(model)
    weights = io.BytesIO()
    with _h5py().File(weights, "w") as h5:
        h5.create_group("vars")
        for group_path, arrays in groups:
            group = h5.require_group(group_path)
            for k, array in enumerate(arrays):
                group.create_dataset(str(k), data=array)
    metadata = {"keras_version": KERAS_FORMAT_VERSION,
                "date_saved": datetime.now(timezone.utc).strftime("%Y-%m-%d@%H:%M:%S"), "writer": "lstm_c"}
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(model_config))
        archive.writestr("model.weights.h5", weights.getvalue())
    os.replace(partial, path)
