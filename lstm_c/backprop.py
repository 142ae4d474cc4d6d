"""Reverse-mode gradients through lstm_c models.

A training run calls each layer through a rule that also keeps what its backward pass needs
(a :class:`Tape`, passed to the model's ``_run`` as its ``call`` hook); the backward walk then
visits the calls in reverse and sums each tensor's gradient over the calls that read it.
One rule per layer type: LSTM (the engine, ``lstm_c._backward``), Bidirectional (two LSTMs
and the merge), Dense, Embedding, Masking, Dropout; mask operations pass no gradient.
The math of each rule has its NumPy twin in :mod:`lstm_c.reference_backward`.

Stateful layers start from their stored state, whose gradient is dropped: gradients stop
at batch boundaries (truncated backpropagation through time), as in Keras.

>>> import numpy as np, lstm_c
>>> model = lstm_c.Sequential([lstm_c.LSTM(4, seed=0), lstm_c.Dense(1, seed=0)])
>>> loss, grads = lstm_c.gradients(model, np.ones((2, 3, 5)), np.zeros((2, 1)), "mse")
>>> [g.shape for g in grads]
[(5, 16), (4, 16), (16,), (4, 1), (1,)]
"""

import numpy as np

from . import _backward, losses
from ._blas_threads import single_threaded_blas
from ._symbolic import InputLayer, SymbolicTensor, flatten, output_list
from ._threads import effective_n_threads
from ._validation import as_float_array
from .bidirectional import _MERGES, Bidirectional
from .core_layers import Dense, Dropout, Embedding, Masking
from .layers import LSTM
from .reference_backward import dense_backward

__all__ = ["Tape", "gradients", "forward", "backward", "loss_and_output_gradients"]


def _argument(args, kwargs, position, name):
    """A call argument given by position or by name (None if absent)."""
    return args[position] if len(args) > position else kwargs.get(name)


def _contiguous(array, dtype):
    return None if array is None else np.ascontiguousarray(array, dtype)


# ---------------------------------------------------------------------------- layer rules
# forward(layer, args, kwargs, training) -> (results, saved)
# backward(layer, saved, d_results, input_gradient) -> ({argument name: gradient}, weight gradients)
# d_results has one entry per result, None where no gradient arrives.

def lstm_backward(layer, saved, d_output, d_h=None, d_c=None, input_gradient=True, embedding=None):
    """Gradients of one :meth:`LSTM.call_for_training`: ``(d input, [d h0, d c0], d weights)``.

    ``embedding``: ``(ids, table)`` when the input is ``table[ids]`` straight from an Embedding
    layer; d input is then the table's gradient (see ``_backward``: folding skips dX and dK)."""
    dtype = layer.dtype
    grads = _backward.lstm_backward(
        saved["x"], layer.kernel, layer.recurrent_kernel, layer.bias, saved["trace"], saved["h0"], saved["c0"],
        mask=saved["mask"], recurrent_dropout_mask=saved["recurrent_dropout"],
        d_outputs=_contiguous(d_output, dtype) if layer.return_sequences else None,
        d_last_output=None if layer.return_sequences else _contiguous(d_output, dtype),
        d_h=_contiguous(d_h, dtype), d_c=_contiguous(d_c, dtype),
        activation=layer._act_code, recurrent_activation=layer._rec_act_code,
        go_backwards=layer.go_backwards, zero_output_for_mask=layer.zero_output_for_mask,
        input_gradient=input_gradient, n_threads=effective_n_threads(),
        input_ids=None if embedding is None else embedding[0], embeddings=None if embedding is None else embedding[1])
    if embedding is not None:
        d_x = grads["embeddings"]
    else:
        d_x = grads["x"]
    if d_x is not None and saved["input_dropout"] is not None:
        d_x = d_x * saved["input_dropout"]            # x_seen = x * mask
    weights = [grads["kernel"], grads["recurrent_kernel"]] + ([grads["bias"]] if layer.use_bias else [])
    return d_x, [grads["h0"], grads["c0"]], weights


class _LSTMRule:
    @staticmethod
    def forward(layer, args, kwargs, training):
        initial_state = _argument(args, kwargs, 1, "initial_state")
        outputs, saved = layer.call_for_training(args[0], initial_state, _argument(args, kwargs, 2, "mask"),
                                                 training)
        return output_list(outputs), saved

    @staticmethod
    def backward(layer, saved, d_results, input_gradient, embedding=None):
        d_h, d_c = d_results[1:3] if layer.return_state else (None, None)
        d_x, d_state, weights = lstm_backward(layer, saved, d_results[0], d_h, d_c, input_gradient, embedding)
        return {"inputs": d_x, "initial_state": d_state}, weights

    @staticmethod
    def can_fold(layer, saved, below):
        """True when this call's input is exactly ``below``'s Embedding output (no input
        dropout in between), so that the Embedding's backward folds into this one's."""
        embedding = below[0]
        return (below[1] is _EmbeddingRule and saved["input_dropout"] is None
                and embedding.dtype == layer.dtype and saved["x"].shape[:2] == np.shape(below[2]))


class _BidirectionalRule:
    """Keras's Bidirectional (see :meth:`Bidirectional.call`): forward and backward LSTM runs,
    the backward sequence flipped to input order, then merged."""

    @staticmethod
    def forward(layer, args, kwargs, training):
        x, mask = args[0], _argument(args, kwargs, 2, "mask")
        states = layer._split_states(_argument(args, kwargs, 1, "initial_state"), "initial_state")
        runs = [sub.call_for_training(x, state, mask, training) for sub, state in zip(layer.layers, states)]
        (y, saved_forward), (y_rev, saved_backward) = runs
        merged, state_results, y, y_rev = layer._combine(y, y_rev)
        return merged + state_results, dict(runs=(saved_forward, saved_backward), y=y, y_rev=y_rev)

    @staticmethod
    def backward(layer, saved, d_results, input_gradient):
        y, y_rev = saved["y"], saved["y_rev"]
        n_merged = 2 if layer.merge_mode is None else 1
        d = d_results[0] if d_results[0] is not None else np.zeros_like(y if n_merged == 2 else
                                                                         _MERGES[layer.merge_mode](y, y_rev))
        d_y, d_y_rev = {
            None: lambda: (d_results[0], d_results[1]),
            "concat": lambda: (d[..., :y.shape[-1]], d[..., y.shape[-1]:]),
            "sum": lambda: (d, d),
            "ave": lambda: (d / 2, d / 2),
            "mul": lambda: (d * y_rev, d * y),
        }[layer.merge_mode]()
        if layer.return_sequences and d_y_rev is not None:
            d_y_rev = d_y_rev[:, ::-1]                  # to the backward layer's processing order
        d_states = list(d_results[n_merged:]) if layer.return_state else [None] * 4
        d_x, d_initial, weights = None, [], []
        for sub, run, d_out, (d_h, d_c) in zip(layer.layers, saved["runs"], (d_y, d_y_rev),
                                               (d_states[:2], d_states[2:])):
            d_x_sub, d_state, d_weights = lstm_backward(sub, run, d_out, d_h, d_c, input_gradient)
            d_x = d_x_sub if d_x is None else d_x + d_x_sub
            d_initial += d_state
            weights += d_weights
        return {"inputs": d_x, "initial_state": d_initial}, weights


class _DenseRule:
    """Dense: :func:`lstm_c.reference_backward.dense_backward`, except that a linear output
    layer (the usual one, with a from_logits loss) skips recomputing x @ kernel."""

    @staticmethod
    def forward(layer, args, kwargs, training):
        x = as_float_array(args[0], layer.dtype, lambda: f"{layer._label()} input")
        if not layer.built or x.ndim not in (2, 3) or x.shape[-1] != layer.input_dim:
            return [layer.call(x)], x                   # builds, or raises the layer's own error
        y = _backward.linear_forward(x, layer.kernel, layer.bias if layer.use_bias else None, effective_n_threads())
        if layer.activation != "linear":
            with np.errstate(all="ignore"):             # as Dense.call: inf/NaN follow IEEE
                y = layer._activation_fn(y)
        return [y], x

    @staticmethod
    def backward(layer, x, d_results, input_gradient):
        d_y = d_results[0]
        if layer.activation != "linear":
            grads = dense_backward(x, layer.kernel, layer.bias, layer.activation, d_y)
            return {"inputs": grads["x"]}, [grads["kernel"]] + ([grads["bias"]] if layer.use_bias else [])
        d_kernel, d_bias, d_x = _backward.linear_gradients(x, d_y.astype(x.dtype, copy=False), layer.kernel,
                                                           layer.use_bias, input_gradient, effective_n_threads())
        return {"inputs": d_x}, [d_kernel] + ([d_bias] if layer.use_bias else [])


class _EmbeddingRule:
    @staticmethod
    def forward(layer, args, kwargs, training):
        y = layer.call(args[0])
        return [y], layer._as_ids(args[0])

    @staticmethod
    def backward(layer, ids, d_results, input_gradient):
        # reference_backward.embedding_backward, by sorted runs rather than np.add.at
        return {}, [_backward.sum_rows_by_id(d_results[0], ids, layer.input_dim)]


class _ScaleRule:
    """Masking and Dropout: y = x * a saved factor (the mask, or the dropout mask)."""

    @staticmethod
    def forward(layer, args, kwargs, training):
        x = as_float_array(args[0], layer.dtype, lambda: f"{layer._label()} input")
        if isinstance(layer, Masking):
            factor = layer.compute_mask(x)[..., None]
        elif training and layer.rate > 0:
            factor = layer.dropout_mask(x.shape)
        else:
            return [x], None
        return [x * factor], factor

    @staticmethod
    def backward(layer, factor, d_results, input_gradient):
        return {"inputs": d_results[0] if factor is None else d_results[0] * factor}, []


class _ConstantRule:
    """Mask operations (NotEqual, Any): boolean outputs, no gradient."""

    @staticmethod
    def forward(layer, args, kwargs, training):
        return output_list(layer(*args, **kwargs)), None

    @staticmethod
    def backward(layer, saved, d_results, input_gradient):
        return {}, []


_RULES = {LSTM: _LSTMRule, Bidirectional: _BidirectionalRule, Dense: _DenseRule, Embedding: _EmbeddingRule,
          Masking: _ScaleRule, Dropout: _ScaleRule}


def _rule(layer):
    if getattr(layer, "is_operation", False):
        return _ConstantRule
    for cls in type(layer).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    raise TypeError(f"lstm_c cannot compute gradients through {type(layer).__name__} layers "
                    f"(trainable: {', '.join(c.__name__ for c in _RULES)})")


# ---------------------------------------------------------------------------- the walk
class Tape:
    """The ``call`` hook of a model's ``_run``: calls each layer (through its rule when
    ``record``) and keeps, per call, what backward needs and the masks of the outputs."""

    def __init__(self, model, training=True, record=True):
        self.model, self.training, self.record = model, training, record
        self.entries = {}        # call key -> (layer, rule, saved, number of results)
        self.output_masks = {}   # call key -> [mask per result]
        self._tensor_masks = {}  # functional models: id(SymbolicTensor) -> mask

    def __call__(self, key, layer, args, kwargs):
        if self.record:
            rule = _rule(layer)
            results, saved = rule.forward(layer, args, kwargs, self.training)
            self.entries[key] = (layer, rule, saved, len(results))
        else:
            results = output_list(layer(*args, **kwargs))
        self._keep_masks(key, layer, args, kwargs, len(results))
        return results[0] if len(results) == 1 else results

    def _keep_masks(self, key, layer, args, kwargs, n_results):
        previous = kwargs.get("mask")
        node = self.model.nodes[key] if _is_functional(self.model) else None
        if node is not None and previous is None:  # as Model._run: the input's mask travels on
            previous = self._tensor_masks.get(id(node.args[0]))
        masks = layer.compute_mask(args[0], previous)
        masks = list(masks) if isinstance(masks, (list, tuple)) else [masks] * n_results
        self.output_masks[key] = masks
        if node is not None:
            for tensor, mask in zip(node.outputs, masks):
                self._tensor_masks[id(tensor)] = mask

    def model_output_masks(self):
        """The mask carried by each model output (None where there is none)."""
        if not _is_functional(self.model):
            return [self.output_masks[max(self.output_masks)][0]]
        return [self._tensor_masks.get(id(t)) for t in self.model.outputs]


def forward(model, x, training=True, record=True):
    """Run ``model`` on ``x`` through a :class:`Tape`: ``(list of outputs, tape)``."""
    tape = Tape(model, training, record)
    outputs = model._run(model._input_list(x), training, call=tape)
    return outputs, tape


def backward(model, tape, d_outputs):
    """Weight gradients (``model.get_weights()`` order) from the gradients of the model's outputs."""
    weight_grads = {}   # id(layer) -> summed gradients of its weights
    if not _is_functional(model):
        d = d_outputs[0]
        for key in sorted(tape.entries, reverse=True):
            layer, rule, saved, _ = tape.entries[key]
            below = tape.entries.get(key - 1)
            if rule is _LSTMRule and below is not None and rule.can_fold(layer, saved, below):
                # Embedding -> LSTM: the LSTM's backward gives the table's gradient directly
                d_arguments, d_weights = rule.backward(layer, saved, [d], False,
                                                       embedding=(below[2], below[0].embeddings))
                _accumulate(weight_grads, layer, d_weights)
                _accumulate(weight_grads, below[0], [d_arguments["inputs"]])
                break
            d_arguments, d_weights = rule.backward(layer, saved, [d], key > 0)
            _accumulate(weight_grads, layer, d_weights)
            d = d_arguments.get("inputs")
            if d is None:
                break
    else:
        tensor_grads = {}
        for t, d in zip(model.outputs, d_outputs):
            _add(tensor_grads, t, d)
        for key in sorted(tape.entries, reverse=True):
            node = model.nodes[key]
            layer, rule, saved, _ = tape.entries[key]
            d_results = [tensor_grads.get(id(t)) for t in node.outputs]
            if all(d is None for d in d_results):
                continue
            source = node.args[0]
            needs_input = isinstance(source, SymbolicTensor) and not isinstance(source.node.layer, InputLayer)
            d_arguments, d_weights = rule.backward(layer, saved, d_results, needs_input)
            _accumulate(weight_grads, layer, d_weights)
            _add(tensor_grads, source, d_arguments.get("inputs"))
            symbolic_state = _argument(node.args, node.kwargs, 1, "initial_state")
            if symbolic_state is not None and d_arguments.get("initial_state"):
                for t, d in zip(flatten(symbolic_state), d_arguments["initial_state"]):
                    _add(tensor_grads, t, d)
    grads = []
    for layer in model.layers:
        if id(layer) in weight_grads:
            grads += weight_grads[id(layer)]
        else:
            grads += [np.zeros_like(w) for w in layer.get_weights()]
    return grads


def _is_functional(model):
    """A functional Model (a graph of nodes) rather than a Sequential chain."""
    return hasattr(model, "nodes")


def _add(tensor_grads, tensor, d):
    if d is not None and isinstance(tensor, SymbolicTensor):
        tensor_grads[id(tensor)] = d if id(tensor) not in tensor_grads else tensor_grads[id(tensor)] + d


def _accumulate(weight_grads, layer, d_weights):
    if d_weights:
        previous = weight_grads.get(id(layer))
        weight_grads[id(layer)] = d_weights if previous is None else [a + b for a, b in zip(previous, d_weights)]


def loss_and_output_gradients(loss, outputs, y, output_masks):
    """Sum over outputs of the mean loss, and its gradient for each output. An output's
    mask weighs its positions when it has their shape (Keras's masked loss)."""
    targets = list(y) if len(outputs) > 1 else [y]
    if len(targets) != len(outputs):
        raise ValueError(f"the model has {len(outputs)} outputs, got {len(targets)} targets")
    total, d_outputs = 0.0, []
    for output, target, mask in zip(outputs, targets, output_masks):
        if mask is not None and np.shape(mask) != output.shape[:-1]:
            mask = None
        value, d_output = loss.value_and_gradient(target, output, mask)
        total += value
        d_outputs.append(d_output)
    return total, d_outputs


def gradients(model, x, y, loss, from_logits=False, training=True):
    """The loss of ``model`` on ``(x, y)`` and its gradient with respect to every weight.

    Parameters
    ----------
    model : Sequential or Model
    x : array or list of arrays
        The model's input(s).
    y : array or list of arrays
        Targets, one per model output.
    loss : str or lstm_c.losses.Loss
        ``"mse"``, ``"binary_crossentropy"``, ``"categorical_crossentropy"``,
        ``"sparse_categorical_crossentropy"`` or a Loss instance.
    from_logits : bool
        For a loss given by name: the outputs are logits, not probabilities.
    training : bool
        Run as a training step (dropout on), as Keras's ``train_on_batch``.

    Returns
    -------
    (float, list of ndarray)
        The loss (averaged over all output positions, summed over outputs, as Keras) and the
        gradients in ``model.get_weights()`` order. A stateful model's state advances as in
        a training call.
    """
    with single_threaded_blas():   # one thread pool, ours: see lstm_c/_blas_threads.py
        outputs, tape = forward(model, x, training)
        value, d_outputs = loss_and_output_gradients(losses.get(loss, from_logits), outputs, y,
                                                     tape.model_output_masks())
        return value, backward(model, tape, d_outputs)
