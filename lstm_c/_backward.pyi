"""Type stubs for the compiled backward pass (lstm_c/_backward.pyx)."""

from typing import Dict, Optional

import numpy as np

def needs_preactivations(activation: int, recurrent_activation: int) -> bool: ...
def pack_recurrent_transpose(
    recurrent_kernel: np.ndarray, width: int, out: Optional[np.ndarray] = ...
) -> np.ndarray: ...
def recompute_preactivations(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: Optional[np.ndarray],
    trace: np.ndarray,
    h0: np.ndarray,
    recurrent_dropout_mask: Optional[np.ndarray],
    go_backwards: bool,
) -> np.ndarray: ...
def lstm_backward(
    x: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: Optional[np.ndarray],
    trace: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    *,
    mask: Optional[np.ndarray] = ...,
    recurrent_dropout_mask: Optional[np.ndarray] = ...,
    d_outputs: Optional[np.ndarray] = ...,
    d_last_output: Optional[np.ndarray] = ...,
    d_h: Optional[np.ndarray] = ...,
    d_c: Optional[np.ndarray] = ...,
    activation: int,
    recurrent_activation: int,
    go_backwards: bool = ...,
    zero_output_for_mask: bool = ...,
    input_gradient: bool = ...,
    n_threads: int = ...,
) -> Dict[str, Optional[np.ndarray]]: ...
