"""Whole models: a Sequential stack, or a functional graph of layer calls.

``Sequential([Embedding(...), LSTM(...), Dense(...)])`` runs its layers in order;
``Model(inputs, outputs)`` replays the layer calls recorded on :func:`Input` tensors,
so an encoder's ``return_state`` states can feed a decoder's ``initial_state``. Both
pass masks from layer to layer as Keras does, batch stateful models correctly in
:meth:`predict`, and save Keras 3 ``.keras`` files.
"""

import numpy as np

from ._blas_threads import one_thread_pool
from ._symbolic import InputLayer, SymbolicTensor, adopt_batch_size, map_structure, output_list, shape_text
from ._validation import positive_int
from .training import TrainingMixin

#: Samples per call of a stateless model's predict when no batch size is given: large
#: enough that per-call costs vanish, small enough that the buffers stay in cache.
DEFAULT_PREDICT_BATCH_SIZE = 4096

__all__ = ["Model", "Sequential"]


def unique_names(layers):
    """``{id(layer): name}`` with repeated names made unique (``lstm``, ``lstm_1``, ...) the way
    Keras numbers them: a model's saved config needs each name once."""
    names, taken = {}, set()
    for layer in layers:
        name, n = layer.name, 0
        while name in taken:
            n += 1
            name = f"{layer.name}_{n}"
        taken.add(name)
        names[id(layer)] = name
    return names


def call_layer(key, layer, args, kwargs):
    """How a model calls one of its layers: ``layer(*args, **kwargs)``.

    ``_run`` takes a replacement with the same signature; ``key`` names the call within the
    model (a Sequential's layer position, a functional model's node position) so that a
    replacement can keep something per call, e.g. :mod:`lstm_c.streaming` the state it
    carries from one time chunk to the next.
    """
    return layer(*args, **kwargs)


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _shapes_text(shapes):
    if isinstance(shapes, list):
        return "[" + ", ".join(shape_text(s) for s in shapes) + "]"
    return "?" if shapes is None else shape_text(shapes)


class _BaseModel(TrainingMixin):
    """What Sequential and functional models share: predict, state, weights, summary, save."""

    def __call__(self, inputs, training=False):
        """Run the model on arrays: one array per model input (a list if there are several).

        Returns one array, or a list with one array per output.
        """
        inputs = self._input_list(inputs)
        with one_thread_pool(inputs):   # see lstm_c/_blas_threads.py
            outputs = self._run(inputs, training)
        return outputs if self._several_outputs else outputs[0]

    # ------------------------------------------------------------------ predict and state
    def predict(self, x, batch_size=None):
        """Run the model over ``x`` in batches and concatenate the outputs.

        Parameters
        ----------
        x : array or list of arrays
            All samples (one array per model input).
        batch_size : int or None
            Samples per call. None: batches of ``DEFAULT_PREDICT_BATCH_SIZE`` (4096) for a
            stateless model (one call over 100k sequences runs 1.3-2x slower than batches:
            its buffers outgrow the caches; the results are the same); for a stateful model,
            the batch size its state is built for (the only size it accepts).

        A stateful model's batch ``k + 1`` continues batch ``k`` sample slot by sample
        slot (row ``i`` of each batch is one stream), so the number of samples must be
        a multiple of its batch size; anything else is a ValueError.
        """
        inputs = self._input_list(x)
        n = len(inputs[0])
        if any(len(a) != n for a in inputs):
            raise ValueError(f"{self._label()}.predict: every input needs the same number of samples, "
                             f"got {[len(a) for a in inputs]}")
        if n == 0:
            raise ValueError(f"{self._label()}.predict needs at least one sample, got 0")
        batch_size = self._checked_batch_size(n, batch_size, default=min(n, DEFAULT_PREDICT_BATCH_SIZE),
                                              what="predict")
        with one_thread_pool(inputs):   # see lstm_c/_blas_threads.py
            batches = [self._run([a[start:start + batch_size] for a in inputs], False)
                       for start in range(0, n, batch_size)]
        outputs = [np.concatenate(parts, axis=0) for parts in zip(*batches)]
        return outputs if self._several_outputs else outputs[0]

    def _checked_batch_size(self, n, batch_size, default, what):
        """The batch size to cut ``n`` samples by. A stateful model accepts only its own (batch
        k + 1 continues batch k slot by slot) and only whole batches; otherwise ``batch_size``,
        or ``default`` for None."""
        stateful_batch = self.stateful_batch_size
        if stateful_batch is not None:
            if batch_size not in (None, stateful_batch):
                raise ValueError(f"{self._label()} is stateful with batch size {stateful_batch}: {what} needs "
                                 f"batch_size={stateful_batch} (or None), got batch_size={batch_size}")
            if n % stateful_batch:
                raise ValueError(f"{self._label()} is stateful with batch size {stateful_batch}: {what} needs a "
                                 f"multiple of {stateful_batch} samples, got {n}")
            return stateful_batch
        if batch_size is None:
            return default
        return positive_int(batch_size, "batch_size", none_allowed=True)

    @property
    def stateful_batch_size(self):
        """The batch size a stateful model's state is built for; None if stateless or not fixed yet."""
        sizes = {layer.batch_size for layer in self.layers
                 if getattr(layer, "stateful", False) and layer.batch_size is not None}
        if len(sizes) > 1:
            raise ValueError(f"{self._label()}: its stateful layers hold state for different batch sizes "
                             f"{sorted(sizes)}; reset_states(batch_size=n) them to one size")
        return sizes.pop() if sizes else None

    def reset_states(self):
        """Set the state of every stateful layer to zeros (stateless layers are untouched)."""
        for layer in self.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    def reset_state(self):
        """Keras 3's name for :meth:`reset_states`."""
        self.reset_states()

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """Every layer's weights, layer after layer in ``model.layers`` order (as Keras)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set every layer's weights from one list in the order of :meth:`get_weights`."""
        weights = list(weights)
        unbuilt = [layer.name for layer in self.layers if not layer.built]
        if unbuilt:
            raise ValueError(f"{self._label()}: layers {unbuilt} are not built yet (their weight shapes are "
                             "unknown): give the model an input shape or call it once first")
        start = 0
        for layer in self.layers:
            count = len(layer.get_weights())
            layer.set_weights(weights[start:start + count])
            start += count
        if start != len(weights):
            raise ValueError(f"{self._label()} has {start} weight arrays, got {len(weights)}")

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers if layer.built)

    # ------------------------------------------------------------------ description
    def summary(self, print_fn=print):
        """The layers, their output shapes and parameter counts, as Keras prints them.

        Prints the table with ``print_fn`` and returns None; with ``print_fn=None`` returns
        the table as a string instead.
        """
        rows = self._summary_rows()
        headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if self._connected_column else [])
        widths = [max(len(headers[k]), *(len(row[k]) for row in rows)) for k in range(len(headers))]
        line = lambda cells: "  ".join(c.rjust(w) if k == 2 else c.ljust(w)  # noqa: E731
                                       for k, (c, w) in enumerate(zip(cells, widths))).rstrip()
        rule = "=" * len(line(["-" * w for w in widths]))
        built = [layer for layer in self.layers if layer.built]
        total = sum(layer.count_params() for layer in built)
        size = sum(w.nbytes for layer in built for w in layer.get_weights())
        text = "\n".join([f'Model: "{self.name}"', rule, line(headers), rule, *(line(r) for r in rows), rule,
                          f"Total params: {total} ({_format_bytes(size)})",
                          f"Trainable params: {total} ({_format_bytes(size)})",
                          "Non-trainable params: 0 (0.00 B)"])
        if print_fn is None:
            return text
        print_fn(text)

    def save(self, path):
        """Write a Keras 3 ``.keras`` file that ``keras.saving.load_model`` (and :func:`lstm_c.load`) read."""
        from .io.keras import save_keras  # lazily: io imports this module

        save_keras(self, path)

    def _param_text(self, layer):
        return str(layer.count_params()) if layer.built else "0 (unbuilt)"

    def _label(self):
        return f"{type(self).__name__} {self.name!r}"


class Sequential(_BaseModel):
    """A plain stack of layers, each feeding the next, as ``keras.Sequential``.

    Parameters
    ----------
    layers : list or None
        Layers in order. The first item may be an :func:`Input` (or an ``InputLayer``)
        to fix the input shape up front; otherwise the first call fixes it.
    name : str or None

    Every layer must return one array (no ``return_state``, no ``merge_mode=None``):
    use :class:`Model` for several outputs.
    """

    _connected_column = False
    _several_outputs = False

    def __init__(self, layers=None, name=None):
        self.name = name or "sequential"
        self.input_layer = None
        self._layers = []
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        """The layers, without the input (as Keras)."""
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or, first, an :func:`Input`); builds it when the input shape is known."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self.input_layer is not None:
                raise ValueError(f"{self._label()}: an input can only come first, got {layer!r} after "
                                 f"{len(self._layers)} layers")
            self.input_layer = layer
            return
        if not callable(layer) or not hasattr(layer, "compute_output_shape"):
            raise TypeError(f"{self._label()}.add expects an lstm_c layer, got {type(layer).__name__}")
        if getattr(layer, "return_state", False) or getattr(layer, "merge_mode", "concat") is None:
            raise ValueError(f"{self._label()}: every layer must return one array, but {layer!r} returns several "
                             "(return_state or merge_mode=None); use lstm_c.Model for several outputs")
        self._layers.append(layer)
        if self.input_layer is not None:
            self._output_shapes(build=True)

    def build(self, input_shape):
        """Fix the input shape (batch axis first, None = any size) and build every layer."""
        self.input_layer = InputLayer(batch_shape=input_shape)
        self._output_shapes(build=True)

    @property
    def input_shape(self):
        return None if self.input_layer is None else self.input_layer.batch_shape

    @property
    def output_shape(self):
        shapes = self._output_shapes()
        return shapes[-1] if shapes else None

    def _output_shapes(self, build=False):
        """Each layer's output shape from the input shape (None if it is not known yet),
        building layers and fixing stateful batch sizes on the way if ``build``."""
        if self.input_layer is None:
            return None
        shape, shapes = self.input_layer.batch_shape, []
        for layer in self._layers:
            if build:
                if not layer.built:
                    layer.build(shape)
                adopt_batch_size(layer, shape[0])
            shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    def _input_list(self, inputs):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 1:
                raise ValueError(f"{self._label()} takes one input array, got a list of {len(inputs)}")
            inputs = inputs[0]
        arr = np.asarray(inputs)
        if self.input_layer is None:
            if arr.ndim < 1:
                raise ValueError(f"{self._label()} expects a batch of samples, got a scalar")
            # The first call fixes the rank and the feature size; batch and time stay open.
            ids = arr.dtype.kind in "biu"
            open_axes = arr.ndim if ids or arr.ndim == 1 else arr.ndim - 1
            self.input_layer = InputLayer(batch_shape=(None,) * open_axes + arr.shape[open_axes:],
                                          dtype="int32" if ids else "float32")
        return [self.input_layer.check(arr, 0)]

    def _run(self, inputs, training, call=call_layer):
        if not self._layers:
            raise ValueError(f"{self._label()} has no layers")
        x, mask = inputs[0], None
        for position, layer in enumerate(self._layers):
            y = call(position, layer, (x,), dict(mask=mask, training=training))
            mask = layer.compute_mask(x, mask)
            x = y
        return [x]

    def _summary_rows(self):
        shapes = self._output_shapes() or [None] * len(self._layers)
        names = unique_names(self._layers)
        return [[f"{names[id(layer)]} ({type(layer).__name__})", _shapes_text(shape), self._param_text(layer)]
                for layer, shape in zip(self._layers, shapes)]

    def __repr__(self):
        return f"Sequential({self._layers!r}, name={self.name!r})"


class Model(_BaseModel):
    """A functional model: the layer calls between :func:`Input` tensors and outputs.

    Parameters
    ----------
    inputs : SymbolicTensor or list of SymbolicTensor
        Made by :func:`lstm_c.Input`. A list means the model takes a list of arrays.
    outputs : SymbolicTensor or list of SymbolicTensor
        Results of layer calls. A list means the model returns a list of arrays.
    name : str or None

    Examples
    --------
    An encoder whose final states start a decoder:

    >>> import lstm_c
    >>> source, target = lstm_c.Input((None, 8)), lstm_c.Input((None, 5))
    >>> _, h, c = lstm_c.LSTM(16, return_state=True)(source)
    >>> decoded = lstm_c.LSTM(16, return_sequences=True)(target, initial_state=[h, c])
    >>> model = lstm_c.Model([source, target], lstm_c.Dense(5, activation="softmax")(decoded))
    """

    _connected_column = True
    #: Keras 2 passed a layer its input's mask even when it had more tensor inputs (an LSTM
    #: given initial_state); Keras 3 does not. Models loaded from Keras 2 files set this.
    keras2_masking = False

    def __init__(self, inputs, outputs, name=None):
        self.name = name or "functional"
        self._inputs_listed = isinstance(inputs, (list, tuple))
        self._several_outputs = isinstance(outputs, (list, tuple))
        self.inputs = list(inputs) if self._inputs_listed else [inputs]
        self.outputs = list(outputs) if self._several_outputs else [outputs]
        for what, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not tensors or not all(isinstance(t, SymbolicTensor) for t in tensors):
                raise TypeError(f"Model {what} must be symbolic tensors (from lstm_c.Input and layer calls), "
                                f"got {[type(t).__name__ for t in tensors]}")
        for t in self.inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model inputs must come from lstm_c.Input, got the output of {t.node.layer.name!r}")
        self.nodes = self._collect_nodes()
        self._index_nodes()

    def _index_nodes(self):
        """The lookups keyed by object id (so rebuilt after unpickling, where ids change)."""
        self.operations = list({id(n.layer): n.layer for n in self.nodes}.values())
        self.names = unique_names(self.operations)
        # Keras's node_index: the calls of each layer within this model, numbered per layer.
        self.node_indices, calls = {}, {}
        for node in self.nodes:
            self.node_indices[id(node)] = calls.get(id(node.layer), 0)
            calls[id(node.layer)] = self.node_indices[id(node)] + 1

    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ("operations", "names", "node_indices"):
            del state[key]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._index_nodes()

    def _collect_nodes(self):
        """Every node between the inputs and the outputs, in creation (= execution) order."""
        input_nodes = {id(t.node) for t in self.inputs}
        found, stack = {}, [t.node for t in self.outputs + self.inputs]  # unused inputs too, as Keras
        while stack:
            node = stack.pop()
            if id(node) in found:
                continue
            if isinstance(node.layer, InputLayer) and id(node) not in input_nodes:
                # Inputs are not numbered globally (no shared counter), so two may share a name
                given = [t.node.layer.name for t in self.inputs]
                same = " (another lstm_c.Input of that name)" if node.layer.name in given else ""
                raise ValueError(f"Model outputs depend on the input {node.layer.name!r}{same} of shape "
                                 f"{shape_text(node.layer.batch_shape)}, which is not among the model's inputs "
                                 f"{given}")
            found[id(node)] = node
            stack.extend(t.node for t in node.inputs)
        return sorted(found.values(), key=lambda n: n.number)

    @property
    def layers(self):
        """Input layers and layers in call order, each once (Keras operations such as the
        NotEqual of a mask are left out, as in Keras)."""
        return [layer for layer in self.operations if not getattr(layer, "is_operation", False)]

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes if self._inputs_listed else shapes[0]

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes if self._several_outputs else shapes[0]

    def _input_list(self, inputs):
        arrays = list(inputs) if isinstance(inputs, (list, tuple)) and (self._inputs_listed or len(inputs) == 1) \
            else [inputs]
        if len(arrays) != len(self.inputs):
            raise ValueError(f"{self._label()} takes {len(self.inputs)} input arrays, got {len(arrays)}")
        return [t.node.layer.check(a, k) for k, (t, a) in enumerate(zip(self.inputs, arrays))]

    def _run(self, inputs, training, call=call_layer):
        # id(tensor) -> (value, mask); a mask travels with the tensor it belongs to.
        values = {id(t): (a, None) for t, a in zip(self.inputs, inputs)}
        value_of = lambda leaf: values[id(leaf)][0] if isinstance(leaf, SymbolicTensor) else leaf  # noqa: E731
        for position, node in enumerate(self.nodes):
            layer = node.layer
            if isinstance(layer, InputLayer):
                continue
            args = map_structure(value_of, node.args)
            kwargs = map_structure(value_of, node.kwargs)
            incoming_mask = values[id(node.args[0])][1]
            if getattr(layer, "supports_masking", True):
                # Keras hands a layer the mask of its input only when that input is the call's
                # one tensor: an LSTM given initial_state tensors runs unmasked...
                if kwargs.get("mask") is None and (len(node.inputs) == 1 or self.keras2_masking):
                    kwargs["mask"] = incoming_mask
                kwargs["training"] = training
            results = output_list(call(position, layer, args, kwargs))
            # ...yet its outputs still carry the mask on to the next layer.
            previous_mask = incoming_mask if kwargs.get("mask") is None else kwargs["mask"]
            masks = layer.compute_mask(args[0], previous_mask)
            masks = masks if isinstance(masks, (list, tuple)) else [masks] * len(results)
            for tensor, result, mask in zip(node.outputs, results, masks):
                values[id(tensor)] = (result, mask)
        return [values[id(t)][0] for t in self.outputs]

    def _summary_rows(self):
        rows = []
        for layer in self.operations:
            nodes = [n for n in self.nodes if n.layer is layer]
            shapes = [t.shape for t in nodes[0].outputs]
            sources = [f"{self.names[id(t.node.layer)]}[{self.node_indices[id(t.node)]}][{t.index}]"
                       for n in nodes for t in n.inputs]
            rows.append([f"{self.names[id(layer)]} ({type(layer).__name__})",
                         _shapes_text(shapes if len(shapes) > 1 else shapes[0]),
                         self._param_text(layer), ", ".join(sources) or "-"])
        return rows

    def __repr__(self):
        return (f"Model(inputs={[t.shape for t in self.inputs]}, outputs={[t.shape for t in self.outputs]}, "
                f"name={self.name!r})")
