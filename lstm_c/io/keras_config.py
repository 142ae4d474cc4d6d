"""Keras model configs -> lstm_c models (no Keras needed).

A model config from a Keras 3 ``.keras``/``.h5`` file, a tf.keras 2 ``.h5`` or a Keras 2.2
``.h5`` becomes lstm_c layers wired into a :class:`~lstm_c.Sequential` or
:class:`~lstm_c.Model`; the file readers in :mod:`lstm_c.io.keras` supply the weights.
The way back is :mod:`lstm_c.io.keras_writer`.
"""

import re
from dataclasses import dataclass, field

from .._symbolic import Input, InputLayer, output_list
from ..bidirectional import Bidirectional
from ..core_layers import Any, Dense, Dropout, Embedding, Masking, NotEqual
from ..layers import LSTM
from ..model import Model, Sequential

__all__ = ["SUPPORTED_LAYERS", "ModelSpec", "parse_model_config", "build_layers", "wire_model",
           "keras3_var_groups", "keras3_layer_paths", "keras_version_tuple"]

#: Keras layer classes lstm_c rebuilds (TimeDistributed only around Dense or Dropout).
SUPPORTED_LAYERS = ("Bidirectional", "CuDNNLSTM", "Dense", "Dropout", "Embedding", "InputLayer", "LSTM",
                    "Masking", "SpatialDropout1D", "TimeDistributed")
#: Keras 3 records these operations in functional models to compute masks.
_OPERATIONS = {"NotEqual": NotEqual, "Any": Any}
_RECURRENT = ("LSTM", "CuDNNLSTM", "Bidirectional")

#: Where a layer's variables sit in a Keras 3 weights file, relative to its path, per class.
_KERAS3_VAR_GROUPS = {
    "LSTM": ["cell/vars"],
    "Bidirectional": ["forward_layer/cell/vars", "backward_layer/cell/vars"],
    "Dense": ["vars"],
    "Embedding": ["vars"],
    "TimeDistributed": ["layer/vars"],
}


class ConfigError(ValueError):
    """A config lstm_c cannot rebuild; the file reader adds the file name."""


@dataclass
class _Ref:
    """A tensor reference in a config: output ``tensor_index`` of node ``node_index`` of layer ``name``."""
    name: str
    node_index: int
    tensor_index: int


@dataclass
class LayerSpec:
    """One entry of a config's layer list, then the lstm_c layer made from it."""
    name: str
    class_name: str
    config: dict
    nodes: list = field(default_factory=list)  # [(args, kwargs)] with _Ref leaves
    layer: object = None
    keras3_path: str = None  # e.g. "layers/lstm_1" in model.weights.h5
    legacy_group: str = None  # in a legacy .h5, the nested Sequential whose group holds its weights


@dataclass
class ModelSpec:
    """A parsed model config: its layers, and its inputs and outputs (functional) or input shape."""
    kind: str  # "sequential" or "functional"
    name: str
    layers: list
    input_refs: list = None
    output_refs: list = None
    single_input: bool = True
    single_output: bool = True
    input_shape: tuple = None  # Sequential: (batch, ...) when the config fixes it
    input_dtype: str = "float32"


def keras_version_tuple(text):
    """'2.2.4' -> (2, 2); '2.4.0-tf' -> (2, 4); missing -> (2, 0) (files before Keras 2.1 lack it)."""
    numbers = re.findall(r"\d+", str(text or ""))[:2]
    return tuple(int(n) for n in numbers) + (0,) * (2 - len(numbers)) if numbers else (2, 0)


def _snake_case(class_name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_layer_paths(class_names):
    """Keras 3 names a model's layers in its weights file by class, numbered in order:
    ``layers/lstm``, ``layers/lstm_1``, ... (never by layer name)."""
    used, paths = {}, []
    for class_name in class_names:
        base = _snake_case(class_name)
        used[base] = used.get(base, -1) + 1
        paths.append(f"layers/{base}" + (f"_{used[base]}" if used[base] else ""))
    return paths


def keras3_var_groups(class_name):
    return _KERAS3_VAR_GROUPS.get(class_name, [])


# ---------------------------------------------------------------------------- reading configs
def parse_model_config(model_config, version):
    """A :class:`ModelSpec` from a Keras model config ``{"class_name", "config"}``."""
    if not isinstance(model_config, dict) or "class_name" not in model_config:
        raise ConfigError("the model config is not a Keras model description (no class_name)")
    if version[0] < 2:
        raise ConfigError(f"Keras {version[0]} files are not supported (Keras 2 and 3 are)")
    kind, config = model_config["class_name"], model_config.get("config")
    if kind == "Sequential":
        return _parse_sequential(config, version)
    if kind in ("Functional", "Model"):
        return _parse_functional(config, version)
    raise ConfigError(f"the model class {kind!r} cannot be rebuilt from its config; "
                      "supported: Sequential, Functional (Model)")


def _entries(config, what):
    if not isinstance(config, list) or not all(isinstance(e, dict) and "class_name" in e for e in config):
        raise ConfigError(f"{what} must be a list of layer configs")
    return config


def _parse_sequential(config, version):
    # Keras <= 2.1 stored the layer list itself; later versions {"name", "layers"}.
    entries = _entries(config if isinstance(config, list) else (config or {}).get("layers"), "Sequential layers")
    name = config.get("name", "sequential") if isinstance(config, dict) else "sequential"
    spec = ModelSpec("sequential", name, [])
    nested = {}  # position in spec.layers -> the ModelSpec of a Sequential used as a layer
    for entry in entries:
        layer_config = entry.get("config") or {}
        if entry["class_name"] == "InputLayer":
            spec.input_shape = _batch_shape(layer_config)
            spec.input_dtype = _input_dtype(layer_config)
            continue
        if entry["class_name"] == "Sequential":
            nested[len(spec.layers)] = _parse_sequential(layer_config, version)
        spec.layers.append(LayerSpec(layer_config.get("name", _snake_case(entry["class_name"])),
                                     entry["class_name"], layer_config))
    if not spec.layers:
        raise ConfigError("the Sequential model has no layers")
    if spec.input_shape is None:  # Keras 2: the first layer carries the input shape
        first = spec.layers[0].config
        spec.input_shape = _batch_shape(first) or _build_shape(config)
        if spec.input_shape is None and spec.layers[0].class_name == "Embedding" and "input_length" in first:
            spec.input_shape = (None, first["input_length"])
    for layer_spec, path in zip(spec.layers, keras3_layer_paths(s.class_name for s in spec.layers)):
        layer_spec.keras3_path = path
    if nested:
        spec.layers = _inline_nested(spec.layers, nested)
        if spec.input_shape is None and 0 in nested:
            spec.input_shape, spec.input_dtype = nested[0].input_shape, nested[0].input_dtype
    return spec


def _inline_nested(layers, nested):
    """A Sequential inside a Sequential runs as its layers in its place (the same calls, the
    same masks between them): each keeps its weights' paths inside the nested model's."""
    flat = []
    for position, layer_spec in enumerate(layers):
        if position not in nested:
            flat.append(layer_spec)
            continue
        for inner in nested[position].layers:
            if inner.legacy_group is not None:
                raise ConfigError(f"the Sequential {layer_spec.name!r} holds another Sequential "
                                  f"({inner.legacy_group!r}): lstm_c reads one level of nesting")
            inner.keras3_path = f"{layer_spec.keras3_path}/{inner.keras3_path}"
            inner.legacy_group = layer_spec.name
            flat.append(inner)
    return flat


def _batch_shape(config):
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None and config.get("shape") is not None:  # a newer InputLayer: shape + batch_size
        shape = [config.get("batch_size")] + list(config["shape"])
    if shape is None:
        return None
    if not isinstance(shape, (list, tuple)) or not all(d is None or (isinstance(d, int) and d > 0) for d in shape):
        raise ConfigError(f"an input shape must be a list of positive sizes or null, got {shape!r}")
    return tuple(shape)


def _build_shape(config):
    shape = config.get("build_input_shape") if isinstance(config, dict) else None
    return _batch_shape({"batch_shape": shape}) if shape is not None else None


def _input_dtype(config):
    dtype = _dtype_name(config.get("dtype"))
    return dtype if dtype in ("float32", "float64") or dtype.startswith(("int", "uint", "bool")) else "float32"


def _parse_functional(config, version):
    if not isinstance(config, dict):
        raise ConfigError("the functional model config must be a JSON object")
    spec = ModelSpec("functional", config.get("name", "functional"), [])
    for entry in _entries(config.get("layers"), "functional model layers"):
        layer_config = entry.get("config") or {}
        name = entry.get("name", layer_config.get("name"))
        if not isinstance(name, str):
            raise ConfigError(f"a {entry['class_name']} layer in the model config has no name")
        layer_spec = LayerSpec(name, entry["class_name"], layer_config)
        if str(entry.get("module", "")).startswith("keras.src.ops") and entry["class_name"] not in _OPERATIONS:
            raise ConfigError(f"the Keras operation {entry['class_name']} ({name!r}) is not supported; "
                              f"supported operations: {', '.join(sorted(_OPERATIONS))}")
        for node in entry.get("inbound_nodes") or []:
            layer_spec.nodes.append(_parse_node(node, layer_spec))
        spec.layers.append(layer_spec)
    saved = [s for s in spec.layers if s.class_name not in _OPERATIONS]  # model.layers: operations excluded
    for layer_spec, path in zip(saved, keras3_layer_paths(s.class_name for s in saved)):
        layer_spec.keras3_path = path
    spec.input_refs, spec.single_input = _endpoint_refs(config.get("input_layers"), version, "input_layers")
    spec.output_refs, spec.single_output = _endpoint_refs(config.get("output_layers"), version, "output_layers")
    return spec


def _as_ref(value):
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":  # Keras 3
        history = (value.get("config") or {}).get("keras_history")
        return _as_ref(history) if history is not None else _bad_ref(value)
    if (isinstance(value, (list, tuple)) and len(value) >= 3 and isinstance(value[0], str)
            and all(isinstance(v, int) for v in value[1:3])):
        return _Ref(value[0], value[1], value[2])
    return None


def _bad_ref(value):
    raise ConfigError(f"a tensor reference in the model config is malformed: {value!r}")


def _refs_in(value):
    """Replace tensor references (Keras 2 and 3 forms) by _Ref anywhere in ``value``."""
    ref = _as_ref(value)
    if ref is not None:
        return ref
    if isinstance(value, (list, tuple)):
        return [_refs_in(v) for v in value]
    if isinstance(value, dict):
        return {k: _refs_in(v) for k, v in value.items()}
    return value


def _parse_node(node, layer_spec):
    """One inbound node as (args, kwargs) with _Ref leaves."""
    if isinstance(node, dict) and "args" in node:  # Keras 3: {"args": [...], "kwargs": {...}}
        args, kwargs = _refs_in(list(node["args"])), _refs_in(dict(node.get("kwargs") or {}))
    elif isinstance(node, list) and node and all(isinstance(e, list) and len(e) >= 3 for e in node):
        # Keras 2: [[name, node_index, tensor_index, kwargs], ...]; an RNN called with
        # initial_state records the states as extra inputs after x.
        refs = [_Ref(e[0], e[1], e[2]) for e in node]
        kwargs = _refs_in(dict(node[0][3])) if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        args = refs[:1]
        if len(refs) > 1:
            if layer_spec.class_name not in _RECURRENT:
                raise ConfigError(f"layer {layer_spec.name!r} ({layer_spec.class_name}) takes {len(refs)} inputs; "
                                  "lstm_c supports layers of one input (plus initial states of recurrent layers)")
            kwargs["initial_state"] = refs[1:]
    else:
        raise ConfigError(f"layer {layer_spec.name!r} has a malformed inbound node: {str(node)[:200]}")
    kwargs.pop("training", None)
    if layer_spec.class_name in _RECURRENT and len(args) > 1:  # initial_state given positionally
        kwargs["initial_state"], args = args[1], args[:1]
    if not args or not isinstance(args[0], _Ref):
        raise ConfigError(f"layer {layer_spec.name!r}: the first input of a call must be a tensor")
    return args, kwargs


def _endpoint_refs(value, version, what):
    """([_Ref], single) from input_layers / output_layers."""
    ref = _as_ref(value)
    if ref is not None:
        return [ref], True
    if not isinstance(value, list) or not value or any(_as_ref(v) is None for v in value):
        raise ConfigError(f"the functional model config has malformed {what}: {str(value)[:200]}")
    refs = [_as_ref(v) for v in value]
    return refs, version[0] < 3 and len(refs) == 1  # Keras 2 always nests, even a single one


# ---------------------------------------------------------------------------- layers
def _dtype_name(value):
    if isinstance(value, dict):  # a Keras 3 DTypePolicy / tf.keras Policy
        value = (value.get("config") or {}).get("name")
    return value if isinstance(value, str) else "float32"


def _layer_dtype(config):
    # Mixed-precision policies keep float32 variables: lstm_c computes in float32.
    return "float64" if _dtype_name(config.get("dtype")) == "float64" else "float32"


def _activation(value, version):
    if isinstance(value, dict):  # serialized function: {"class_name": "function", "config": "tanh"}
        value = value.get("config")
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"activation {value!r} is not a Keras activation name "
                          "(custom activations are not supported)")
    if value == "hard_sigmoid" and version[0] < 3:
        return "keras2_hard_sigmoid"  # Keras 2's clip(0.2 x + 0.5, 0, 1); Keras 3 changed it
    return value


def _lstm(config, version, name):
    if config.get("time_major"):
        raise ConfigError("time_major=true is not supported: lstm_c (like Keras 3) runs batch-major layers only")
    # Keras <= 2.2 defaulted recurrent_activation to hard_sigmoid.
    default_gate = "hard_sigmoid" if version < (2, 3) else "sigmoid"
    return LSTM(config["units"], activation=_activation(config.get("activation", "tanh"), version),
                recurrent_activation=_activation(config.get("recurrent_activation", default_gate), version),
                use_bias=config.get("use_bias", True), dropout=config.get("dropout", 0.0),
                recurrent_dropout=config.get("recurrent_dropout", 0.0),
                return_sequences=config.get("return_sequences", False),
                return_state=config.get("return_state", False), go_backwards=config.get("go_backwards", False),
                stateful=config.get("stateful", False), dtype=_layer_dtype(config),
                zero_output_for_mask=config.get("zero_output_for_mask", False),
                unroll=config.get("unroll", False), name=name)


def _cudnn_lstm(config, version, name):
    # Keras 2's GPU-only layer: fixed tanh / sigmoid, no masks; weights converted on load.
    config = dict(config, activation="tanh", recurrent_activation="sigmoid", use_bias=True)
    return _lstm(config, version, name)


def _recurrent_entry(entry, version, what):
    if not isinstance(entry, dict) or entry.get("class_name") not in ("LSTM", "CuDNNLSTM"):
        inner = entry.get("class_name") if isinstance(entry, dict) else entry
        raise ConfigError(f"{what} wraps {inner!r}; lstm_c supports Bidirectional(LSTM) only")
    builder = _cudnn_lstm if entry["class_name"] == "CuDNNLSTM" else _lstm
    config = entry.get("config") or {}
    return builder(config, version, config.get("name", "lstm"))


def _bidirectional(config, version, name):
    forward = _recurrent_entry(config.get("layer"), version, f"Bidirectional {name!r}")
    if config.get("backward_layer") is not None:
        backward = _recurrent_entry(config["backward_layer"], version, f"Bidirectional {name!r}")
    else:  # Keras 2 clones the forward layer with go_backwards flipped
        backward = LSTM.from_config(dict(forward.get_config(), go_backwards=not forward.go_backwards,
                                         name="backward_" + forward.name.removeprefix("forward_")))
    return Bidirectional(forward, merge_mode=config.get("merge_mode", "concat"), backward_layer=backward, name=name)


def _time_distributed(config, version, name):
    inner = config.get("layer") or {}
    if inner.get("class_name") not in ("Dense", "Dropout"):
        raise ConfigError(f"TimeDistributed {name!r} wraps {inner.get('class_name')!r}; lstm_c supports "
                          "TimeDistributed(Dense) and TimeDistributed(Dropout) (Dense applies per timestep anyway)")
    return _BUILDERS[inner["class_name"]](inner.get("config") or {}, version, name)


_BUILDERS = {
    "LSTM": _lstm,
    "CuDNNLSTM": _cudnn_lstm,
    "Bidirectional": _bidirectional,
    "TimeDistributed": _time_distributed,
    "Embedding": lambda c, v, n: Embedding(c["input_dim"], c["output_dim"], mask_zero=c.get("mask_zero", False),
                                           dtype=_layer_dtype(c), name=n),
    "Dense": lambda c, v, n: Dense(c["units"], activation=_activation(c.get("activation"), v),
                                   use_bias=c.get("use_bias", True), dtype=_layer_dtype(c), name=n),
    "Masking": lambda c, v, n: Masking(c.get("mask_value", 0.0), dtype=_layer_dtype(c), name=n),
    "Dropout": lambda c, v, n: Dropout(c.get("rate", 0.0), dtype=_layer_dtype(c), name=n),
    "SpatialDropout1D": lambda c, v, n: Dropout(c.get("rate", 0.0), dtype=_layer_dtype(c), name=n),
    "InputLayer": lambda c, v, n: InputLayer(batch_shape=_batch_shape(c) or (None,), dtype=_input_dtype(c), name=n),
    "NotEqual": lambda c, v, n: NotEqual(name=n),
    "Any": lambda c, v, n: Any(axis=c.get("axis", -1), keepdims=c.get("keepdims", False), name=n),
}


def build_layers(spec, version):
    """Create the lstm_c layer of every LayerSpec (unbuilt: weights come from the file)."""
    for layer_spec in spec.layers:
        builder = _BUILDERS.get(layer_spec.class_name)
        if layer_spec.class_name in ("Sequential", "Functional", "Model"):
            raise ConfigError(f"layer {layer_spec.name!r} is a whole {layer_spec.class_name} model: lstm_c runs "
                              "a model used as a layer only when both are Sequential")
        if builder is None:
            raise ConfigError(f"layer {layer_spec.name!r} is a {layer_spec.class_name}, which lstm_c cannot run; "
                              f"supported layers: {', '.join(SUPPORTED_LAYERS)}")
        try:
            layer_spec.layer = builder(layer_spec.config, version, layer_spec.name)
        except KeyError as missing:
            raise ConfigError(f"layer {layer_spec.name!r} ({layer_spec.class_name}): "
                              f"its config lacks {missing}") from None
        except (ValueError, TypeError) as error:
            raise ConfigError(f"layer {layer_spec.name!r} ({layer_spec.class_name}): {error}") from None


def wire_model(spec, version):
    """The lstm_c model of a ModelSpec whose layers are built and hold their weights."""
    if spec.kind == "sequential":
        layers = [layer_spec.layer for layer_spec in spec.layers]
        if spec.input_shape is not None:
            layers.insert(0, InputLayer(batch_shape=spec.input_shape, dtype=spec.input_dtype))
        return Sequential(layers, name=spec.name)
    by_name = {s.name: s for s in spec.layers}
    produced = {}  # (layer name, node index) -> [SymbolicTensor]
    for layer_spec in spec.layers:
        if layer_spec.class_name == "InputLayer":
            layer = layer_spec.layer
            produced[(layer_spec.name, 0)] = [Input(layer.batch_shape[1:], batch_size=layer.batch_shape[0],
                                                    dtype=layer.dtype, name=layer.name)]
    pending = [(s, k, node) for s in spec.layers for k, node in enumerate(s.nodes)]
    while pending:
        ready = [item for item in pending if all((r.name, r.node_index) in produced for r in _refs_of(item[2]))]
        if not ready:
            missing = sorted({r.name for item in pending for r in _refs_of(item[2])
                              if (r.name, r.node_index) not in produced})
            unknown = [m for m in missing if m not in by_name]
            raise ConfigError(f"the model config references layers it does not define: {unknown}" if unknown else
                              f"the model config's layer calls form a cycle or miss inputs around {missing}")
        for layer_spec, k, (args, kwargs) in ready:
            resolve = lambda v: _resolve(v, produced)  # noqa: E731
            try:
                outputs = layer_spec.layer(*resolve(args), **resolve(kwargs))
            except (ValueError, TypeError) as error:
                raise ConfigError(f"layer {layer_spec.name!r} ({layer_spec.class_name}) does not fit its inputs: "
                                  f"{error}") from None
            produced[(layer_spec.name, k)] = output_list(outputs)
        pending = [item for item in pending if item not in ready]
    inputs = [_resolve(r, produced) for r in spec.input_refs]
    outputs = [_resolve(r, produced) for r in spec.output_refs]
    model = Model(inputs[0] if spec.single_input else inputs, outputs[0] if spec.single_output else outputs,
                  name=spec.name)
    model.keras2_masking = version[0] < 3
    return model


def _refs_of(node):
    args, kwargs = node
    found = []

    def visit(value):
        if isinstance(value, _Ref):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
    visit([args, kwargs])
    return found


def _resolve(value, produced):
    if isinstance(value, _Ref):
        tensors = produced.get((value.name, value.node_index))
        if tensors is None or not 0 <= value.tensor_index < len(tensors):
            raise ConfigError(f"the model config refers to output {value.tensor_index} of call {value.node_index} "
                              f"of {value.name!r}, which does not exist")
        return tensors[value.tensor_index]
    if isinstance(value, (list, tuple)):
        return [_resolve(v, produced) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, produced) for k, v in value.items()}
    return value
