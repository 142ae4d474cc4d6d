"""Type stubs for the compiled backward pass (lstm_c/_backward.pyx)."""

from typing import Dict, Optional, Tuple

import numpy as np

use_avx512_gemm: bool

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
    input_ids: Optional[np.ndarray] = ...,
    embeddings: Optional[np.ndarray] = ...,
) -> Dict[str, Optional[np.ndarray]]: ...
def sum_rows_by_id(rows: np.ndarray, ids: np.ndarray, n_ids: int) -> np.ndarray: ...
def linear_forward(
    x: np.ndarray, kernel: np.ndarray, bias: Optional[np.ndarray], n_threads: int = ...
) -> np.ndarray: ...
def linear_gradients(
    x: np.ndarray,
    d_y: np.ndarray,
    kernel: np.ndarray,
    use_bias: bool,
    input_gradient: bool,
    n_threads: int = ...,
) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]: ...
