"""Type stubs for the compiled engine (lstm_c/_core.pyx)."""

from typing import Optional

import numpy as np
import numpy.typing as npt

N_ACTIVATIONS: int
ISA_LIMIT: int
MIN_STEP_WORK_PER_THREAD: int
MIN_CALL_WORK_FOR_THREADS: int
PROJECTION_STEPS: int
SPREAD_STEPS: int
SPREAD_STEPS_MAX: int
STREAMED_TRACE_BYTES: int
L2_BYTES: int
L2_FEEDS_32_BYTES: bool
SINGLE_ROWS_MIN_BYTES: int
GROUP_WEIGHT_BYTES: int
GROUPS_PER_THREAD: int
CACHE_LINE: int

def aligned_empty(shape: int | tuple[int, ...], dtype: npt.DTypeLike, zeros: bool = ...) -> np.ndarray: ...
def openmp_enabled() -> bool: ...
def cpu_count() -> int: ...
def lanes(dtype: npt.DTypeLike, wide: Optional[bool] = ...) -> int: ...
def single_rows_supported(lanes: int) -> bool: ...
def apply_activation(code: int, values: np.ndarray, portable: bool = ..., avx2: bool = ...) -> None: ...

class Kernel:
    weights: np.ndarray
    bias: Optional[np.ndarray]
    dtype: np.dtype
    input_dim: int
    units: int
    lanes: int
    single_rows_min_bytes: int
    single_rows_max_samples: int
    recurrent_rows_float32: Optional[np.ndarray]
    def __init__(
        self,
        kernel: np.ndarray,
        recurrent_kernel: np.ndarray,
        bias: Optional[np.ndarray],
        activation: int,
        recurrent_activation: int,
        *,
        wide: Optional[bool] = ...,
        single_rows: bool = ...,
    ) -> None: ...
    def forward(
        self,
        x: np.ndarray,
        h: np.ndarray,
        c: np.ndarray,
        out_last: np.ndarray,
        out_seq: Optional[np.ndarray] = ...,
        trace: Optional[np.ndarray] = ...,
        mask: Optional[np.ndarray] = ...,
        recurrent_dropout_mask: Optional[np.ndarray] = ...,
        *,
        go_backwards: bool = ...,
        zero_output_for_mask: bool = ...,
        n_threads: int = ...,
        projection_steps: Optional[int] = ...,
        spread_steps: Optional[int] = ...,
        _team: Optional[dict] = ...,
    ) -> None: ...
