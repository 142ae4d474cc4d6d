"""The LSTM backward pass: gradients from a forward trace (BPTT).

``lstm_backward`` takes what a forward call in trace mode recorded (gates i, f, g, o and
states c, h of every step) and the gradients of the outputs, and returns the gradients of
the input, the weights and the initial state. The sequential chain (dh, dc from step T-1
down to 0) runs in one OpenMP region in C (_backward.h), without the GIL; the weight and
input gradients are then GEMMs over all timesteps at once, cut into pieces shared by the
same threads: one product [x | h_in | 1]^T dZ gives dK, dR and db, and dX = dZ K^T. For
float32 on AVX-512 CPUs both the recurrence's dz @ R^T and these products run on lstm_c's
own micro-kernels (_backward.h, _gemm.h); elsewhere on the portable code and BLAS (_blas.pxd,
held to one thread). lstm_c/reference_backward.py is the same math in NumPy.

An Embedding feeding the LSTM folds in (``input_ids``): x = E[ids], so dK = X^T dZ =
E^T G and the table's gradient is G K^T, with G (vocabulary, 4U) the rows of dZ summed by
token id. That replaces dX (B T x D x 4U) and dK (the same size) by two products of the
vocabulary's size, and G's sums ride along the dK/dR pass over dZ.

``linear_gradients`` is a linear Dense layer's backward on the same micro-kernels,
``linear_forward`` its forward in training steps, and ``adam_update`` the optimizer step
in one pass: the other per-step costs of a training step, which the layers' modules (pure
Python) hand to this compiled one.

Save or recompute? The forward's trace already holds every gate value, and the derivatives
of the usual activations follow from them (sigmoid' = y (1 - y)), so nothing is recomputed:
recomputing the pre-activations would cost two more GEMMs of the size of dK and dR.
Measured (benchmarks/RESULTS_train.md, B=64, T=100, D=64, U=256, one thread): saving the
trace adds ~5 ms to a 35 ms forward; recomputing would add ~50 ms to the backward. Only
silu, gelu, hard_silu and mish, whose derivatives need the pre-activation, recompute.
"""

import contextlib
import threading

import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

from ._blas cimport gemm
from ._blas_threads import can_limit_blas, single_threaded_blas
from ._core import MIN_CALL_WORK_FOR_THREADS, MIN_STEP_WORK_PER_THREAD
from ._core import _first_valid_steps

cdef extern from "_backward.h" nogil:
    ctypedef struct lstmc_backward_args:
        Py_ssize_t B, T, D, U, nblk
        const void *trace
        const void *h0
        const void *c0
        const void *z
        const void *rt
        const void *rec_dropout
        const unsigned char *mask
        const Py_ssize_t *first_valid
        const void *d_out_seq
        const void *d_out_last
        void *dh
        void *dc
        void *dz
        void *h_in
        void *scratch
        Py_ssize_t ld_h_in
        int act, rec_act, go_backwards, zero_output_for_mask, n_threads, is_double, fast
    ctypedef struct lstmc_gradient_args:
        Py_ssize_t rows, m, lda, n, n_pad, d
        const float *a
        const float *dz
        const float *bt
        const Py_ssize_t *ids
        float *dw
        float *dx
        float *sums
        float *work
        int n_threads
    void lstmc_backward(const lstmc_backward_args *args)
    void lstmc_gradients_avx512(const lstmc_gradient_args *args)
    Py_ssize_t lstmc_backward_scratch(Py_ssize_t U, Py_ssize_t nblk)
    Py_ssize_t lstmc_gradient_work()
    Py_ssize_t lstmc_gradient_pieces(const lstmc_gradient_args *args)
    int lstmc_have_avx512_gemm()
    int lstmc_derivative_needs_input(int code)
    int LSTMC_BACK_LANES_FLOAT, LSTMC_BACK_LANES_DOUBLE, LSTMC_GEMM_MR, LSTMC_GEMM_NR

#: BLAS takes C ints: the largest matrix dimension product allowed.
_BLAS_LIMIT = 2**31 - 1

# The gradient GEMMs run in pieces of these sizes whatever the thread count, so that the
# results do not depend on it (BLAS rounds a matrix edge differently from its middle).
cdef enum:
    COLUMN_CHUNK = 128
    ROW_CHUNK = 512

#: float32 work runs on lstm_c's own AVX-512 GEMM micro-kernels where the CPU has them
#: (_backward.h), else on BLAS; tests set this False to check one path against the other.
use_avx512_gemm = bool(lstmc_have_avx512_gemm())

_workspaces = threading.local()


def _workspace(name, size, dtype):
    """A flat scratch array of ``size`` elements, kept per thread between calls: the
    backward's large buffers (dz, [x | h_in | 1]) are not allocated (and page-faulted in)
    afresh every training step. Never handed out: results are fresh arrays. Starts on a
    64-byte boundary, so the micro-kernels' vectors never straddle two cache lines."""
    buffers = getattr(_workspaces, "buffers", None)
    if buffers is None:
        buffers = _workspaces.buffers = {}
    key = (name, dtype)
    entry = buffers.get(key)
    if entry is None or entry[0].size < entry[1] + size:
        buffers.pop(key, None)   # free the smaller one first
        itemsize = np.dtype(dtype).itemsize
        buffer = np.empty(size + 64 // itemsize, dtype)
        entry = buffers[key] = (buffer, (-buffer.__array_interface__["data"][0] % 64) // itemsize)
    return entry[0][entry[1]:entry[1] + size]


cdef inline Py_ssize_t _round_up(Py_ssize_t n, Py_ssize_t multiple):
    return (n + multiple - 1) // multiple * multiple


def needs_preactivations(int activation, int recurrent_activation):
    """True when a derivative needs the pre-activations, which are then recomputed."""
    return bool(lstmc_derivative_needs_input(activation) or lstmc_derivative_needs_input(recurrent_activation))


def pack_recurrent_transpose(recurrent_kernel, int width, out=None):
    """R (U, 4U) as (blocks, 4U, width): out[blk, j, lane] = R[blk * width + lane, j], zero-padded,
    so one block's share of ``dz @ R.T`` reads contiguous vectors of ``width`` units. Also
    packs a kernel (D, 4U): K^T for dX = dZ K^T. ``out``: a flat array to fill (large enough)."""
    U, columns = recurrent_kernel.shape
    n_blocks, full = -(-U // width), U // width
    size = n_blocks * columns * width
    packed = (np.empty(size, recurrent_kernel.dtype) if out is None else out[:size]).reshape(n_blocks, columns, width)
    packed[:full] = recurrent_kernel[:full * width].reshape(full, width, columns).transpose(0, 2, 1)
    if full < n_blocks:
        packed[full] = 0
        packed[full, :, :U - full * width] = recurrent_kernel[full * width:].T
    return packed


def recompute_preactivations(x, kernel, recurrent_kernel, bias, trace, h0, recurrent_dropout_mask,
                             bint go_backwards):
    """z = x_t @ K + h_in @ R + b for every step, (B, T, 4U) in input-time order."""
    h_prev = np.concatenate([h0[:, None], trace[5][:, :-1]], axis=1)   # processing order
    if recurrent_dropout_mask is not None:
        h_prev = h_prev * recurrent_dropout_mask[:, None]
    if go_backwards:
        h_prev = h_prev[:, ::-1]
    z = x @ kernel + h_prev @ recurrent_kernel
    if bias is not None:
        z += bias
    return np.ascontiguousarray(z)


def lstm_backward(x, kernel, recurrent_kernel, bias, trace, h0, c0, *, mask=None,
                  recurrent_dropout_mask=None, d_outputs=None, d_last_output=None, d_h=None, d_c=None,
                  int activation, int recurrent_activation, bint go_backwards=False,
                  bint zero_output_for_mask=False, bint input_gradient=True, int n_threads=1,
                  input_ids=None, embeddings=None):
    """Gradients of one LSTM call from its trace.

    Parameters
    ----------
    x : ndarray (B, T, D)
        The input as the forward kernel saw it (after input dropout), input-time order.
    kernel, recurrent_kernel, bias : ndarray
        Keras layout (D, 4U), (U, 4U), (4U,) or None.
    trace : ndarray (6, B, T, U)
        The forward's record: i, f, g, o, c, h of every step, processing order.
    h0, c0 : ndarray (B, U)
        The state the forward started from.
    mask : ndarray (B, T) of uint8, or None
        Input-time order, non-zero = the step was used.
    recurrent_dropout_mask : ndarray (B, U) or None
        What multiplied h before the recurrent product.
    d_outputs, d_last_output, d_h, d_c : ndarray or None
        Gradients of the output sequence (B, T, U) (processing order), of the last output,
        and of the final h and c (B, U); None = zero.
    activation, recurrent_activation : int
        Kernel codes (:func:`lstm_c.activations.activation_code`).
    input_gradient : bool
        Compute the gradient of x (skip it for a first layer nobody needs it from).
    input_ids, embeddings : ndarray (B, T) of integers and (V, D), or None
        x is ``embeddings[input_ids]`` (an Embedding layer feeding this one, nothing in
        between): the embedding table's gradient is returned instead of x's, and dK comes
        from dZ's rows summed by id (see the module docstring). input_gradient is ignored.
    n_threads : int
        Threads for the recurrence, and for the gradient GEMMs, which are split across them
        while BLAS is held to one thread (lstm_c/_blas_threads.py; else BLAS's own pool runs
        them after the recurrence). The results do not depend on the thread count.

    Returns
    -------
    dict
        ``x`` (or None), ``kernel``, ``recurrent_kernel``, ``bias`` (None without a bias),
        ``h0``, ``c0``, ``embeddings`` (None without input_ids): arrays of the input dtype.
        Every array must be C-contiguous and of one dtype, float32 or float64; the GIL is
        released for all the work.
    """
    dtype = np.result_type(x)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {dtype}")
    arrays = dict(x=x, kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias, trace=trace, h0=h0, c0=c0,
                  recurrent_dropout_mask=recurrent_dropout_mask, d_outputs=d_outputs,
                  d_last_output=d_last_output, d_h=d_h, d_c=d_c, embeddings=embeddings)
    for name, arr in arrays.items():
        if arr is not None and np.result_type(arr) != dtype:
            raise TypeError(f"{name} must be {dtype} like x, got {np.result_type(arr)}")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if (input_ids is None) != (embeddings is None):
        raise ValueError("input_ids and embeddings go together")
    if input_ids is not None:
        input_ids = np.ascontiguousarray(input_ids, np.intp)
        _check_shape("input_ids", input_ids, np.shape(x)[:2])
        if np.ndim(embeddings) != 2 or np.shape(embeddings)[1] != np.shape(x)[2]:
            raise ValueError(f"embeddings must be (vocabulary, {np.shape(x)[2]}), got {np.shape(embeddings)}")
        if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= len(embeddings)):
            raise ValueError(f"input_ids must be in [0, {len(embeddings)})")
        input_gradient = False
    fast = use_avx512_gemm and dtype == np.float32
    arguments = (x, kernel, recurrent_kernel, bias, trace, h0, c0, mask, recurrent_dropout_mask, d_outputs,
                 d_last_output, d_h, d_c, activation, recurrent_activation, go_backwards, zero_output_for_mask,
                 input_gradient, n_threads, can_limit_blas(), fast, input_ids, embeddings)
    # BLAS runs inside our OpenMP regions only on the portable path (and before them when
    # pre-activations are recomputed): only then hold it to one thread (~20 us a call).
    limit = not fast or input_ids is not None or needs_preactivations(activation, recurrent_activation)
    with single_threaded_blas() if limit else contextlib.nullcontext():
        if dtype == np.float64:
            return _backward[double](*arguments)
        return _backward[float](*arguments)


def _check_shape(name, arr, expected):
    if arr is not None and tuple(np.shape(arr)) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(np.shape(arr))}")


cdef dict _backward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                    const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                    const floating[:, :, :, ::1] trace, const floating[:, ::1] h0, const floating[:, ::1] c0,
                    const unsigned char[:, ::1] mask, const floating[:, ::1] recurrent_dropout_mask,
                    const floating[:, :, ::1] d_outputs, const floating[:, ::1] d_last_output,
                    d_h, d_c, int activation, int recurrent_activation, bint go_backwards,
                    bint zero_output_for_mask, bint input_gradient, int n_threads, bint blas_limited,
                    bint fast, input_ids, embeddings):
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], D = x.shape[2], U = recurrent_kernel.shape[0]
    cdef int width = LSTMC_BACK_LANES_DOUBLE if floating is double else LSTMC_BACK_LANES_FLOAT
    cdef Py_ssize_t n_blocks = (U + width - 1) // width, step_work = B * 4 * U * U
    if B == 0 or T == 0 or U == 0 or D == 0:
        raise ValueError(f"the backward kernel needs non-empty inputs, got x {(B, T, D)} and {U} units")
    for name, arr, expected in (("kernel", kernel, (D, 4 * U)), ("recurrent_kernel", recurrent_kernel, (U, 4 * U)),
                                ("bias", bias, (4 * U,)), ("trace", trace, (6, B, T, U)), ("h0", h0, (B, U)),
                                ("c0", c0, (B, U)), ("mask", mask, (B, T)),
                                ("recurrent_dropout_mask", recurrent_dropout_mask, (B, U)),
                                ("d_outputs", d_outputs, (B, T, U)), ("d_last_output", d_last_output, (B, U)),
                                ("d_h", d_h, (B, U)), ("d_c", d_c, (B, U))):
        _check_shape(name, None if arr is None else np.asarray(arr), expected)
    if B * T * (4 * U + LSTMC_GEMM_NR) > _BLAS_LIMIT or B * T * (D + U + 1 + LSTMC_GEMM_MR) > _BLAS_LIMIT:
        raise ValueError(f"a batch of {B} x {T} steps is too large for one backward call; split it")
    # The GEMMs split across our threads (ours, or BLAS's while BLAS is held to one thread;
    # else BLAS's own pool runs them, after the recurrence's OpenMP region has ended).
    cdef int gemm_threads = n_threads if (blas_limited or fast) else 1
    if B * T * 4 * U * (2 * D + U) < MIN_CALL_WORK_FOR_THREADS:
        gemm_threads = 1
    n_threads = max(1, min(n_threads, n_blocks, step_work // MIN_STEP_WORK_PER_THREAD))
    if step_work * T < MIN_CALL_WORK_FOR_THREADS:
        n_threads = 1

    # Layout: dZ (rows, 4U), rows b * T + t; XH = [x | h_in | 1 (with a bias) | 0 ...]
    # (rows, m_pad), so that one product XH^T dZ gives dK, dR and db stacked; with an
    # Embedding folded in, XH = [h_in | 1 | 0 ...] and G (vocabulary, 4U) sums dZ's rows by
    # token id. The micro-kernel path pads XH's columns to a multiple of 4 (its narrowest
    # efficient tile) and the columns of its results to its tile width; BLAS takes the
    # exact sizes.
    dtype = np.float64 if floating is double else np.float32
    cdef bint fold = input_ids is not None
    cdef Py_ssize_t x_cols = 0 if fold else D
    cdef Py_ssize_t rows = B * T, n = 4 * U, m = x_cols + U + (1 if bias is not None else 0)
    cdef Py_ssize_t m_pad = _round_up(m, 4) if fast else m   # tiles of 12 rows, then one of 8 or 4
    cdef Py_ssize_t n_pad = _round_up(n, LSTMC_GEMM_NR) if fast else n
    dz_array = _workspace("dz", rows * n, dtype).reshape(rows, n)
    xh_array = _workspace("xh", rows * m_pad, dtype).reshape(rows, m_pad)
    if not fold:
        xh_array[:, :D] = np.asarray(x).reshape(rows, D)
    if bias is not None:
        xh_array[:, x_cols + U] = 1
    if m_pad > m:
        xh_array[:, m:] = 0
    cdef floating[:, ::1] dz = dz_array
    cdef floating[:, ::1] xh = xh_array
    cdef floating[:, ::1] dh = np.zeros((B, U), dtype) if d_h is None else np.array(d_h, dtype, order="C")
    cdef floating[:, ::1] dc = np.zeros((B, U), dtype) if d_c is None else np.array(d_c, dtype, order="C")
    cdef floating[::1] scratch = np.empty(n_threads * lstmc_backward_scratch(U, n_blocks), dtype)
    cdef const floating[:, :, ::1] rt = pack_recurrent_transpose(
        np.asarray(recurrent_kernel), width, _workspace("rt", n_blocks * width * n, dtype))
    cdef const floating[:, :, ::1] z = None
    cdef const Py_ssize_t[::1] first_valid = None
    if mask is not None:
        first_valid = _first_valid_steps(mask, T, go_backwards)
    if needs_preactivations(activation, recurrent_activation):
        z = recompute_preactivations(np.asarray(x), np.asarray(kernel), np.asarray(recurrent_kernel),
                                     None if bias is None else np.asarray(bias), np.asarray(trace),
                                     np.asarray(h0), None if recurrent_dropout_mask is None
                                     else np.asarray(recurrent_dropout_mask), go_backwards)

    cdef lstmc_backward_args args
    args.B, args.T, args.D, args.U, args.nblk = B, T, D, U, n_blocks
    args.trace, args.h0, args.c0 = &trace[0, 0, 0, 0], &h0[0, 0], &c0[0, 0]
    args.z = &z[0, 0, 0] if z is not None else NULL
    args.rt = &rt[0, 0, 0]
    args.rec_dropout = &recurrent_dropout_mask[0, 0] if recurrent_dropout_mask is not None else NULL
    args.mask = &mask[0, 0] if mask is not None else NULL
    args.first_valid = &first_valid[0] if first_valid is not None else NULL
    args.d_out_seq = &d_outputs[0, 0, 0] if d_outputs is not None else NULL
    args.d_out_last = &d_last_output[0, 0] if d_last_output is not None else NULL
    args.dh, args.dc, args.dz, args.h_in = &dh[0, 0], &dc[0, 0], &dz[0, 0], &xh[0, x_cols]
    args.ld_h_in = m_pad
    args.scratch = &scratch[0]
    args.act, args.rec_act = activation, recurrent_activation
    args.go_backwards, args.zero_output_for_mask = go_backwards, zero_output_for_mask
    args.n_threads, args.is_double, args.fast = n_threads, floating is double, fast

    cdef floating[:, ::1] dw = _workspace("dw", m_pad * n_pad, dtype).reshape(m_pad, n_pad)
    cdef floating[:, ::1] d_x = np.empty((rows, D), dtype) if input_gradient else None
    cdef floating *d_x_ptr = &d_x[0, 0] if d_x is not None else NULL
    cdef const Py_ssize_t[::1] ids = np.asarray(input_ids).reshape(-1) if fold else None
    cdef float[:, ::1] id_sums = None
    cdef const float[:, :, ::1] ktp = None
    cdef float[::1] work = None
    cdef lstmc_gradient_args gargs
    cdef Py_ssize_t piece, column_pieces = (n + COLUMN_CHUNK - 1) // COLUMN_CHUNK
    cdef Py_ssize_t pieces = column_pieces + ((rows + ROW_CHUNK - 1) // ROW_CHUNK if input_gradient else 0)
    if not fast:  # no more threads than pieces (the micro-kernels': _fill_gradient_args)
        gemm_threads = <int>max(1, min(gemm_threads, pieces))
    else:
        if floating is float:
            if fold:
                id_sums = np.zeros((len(embeddings), n), np.float32)
            ktp = pack_recurrent_transpose(np.asarray(kernel), LSTMC_GEMM_NR, _workspace(
                "ktp", _round_up(D, LSTMC_GEMM_NR) * n, dtype)) if input_gradient else None
            work = _fill_gradient_args(&gargs, rows, m_pad, m_pad, n, n_pad, D, &xh[0, 0], &dz[0, 0],
                                       &ktp[0, 0, 0] if ktp is not None else NULL, &ids[0] if fold else NULL,
                                       &dw[0, 0], d_x_ptr, &id_sums[0, 0] if fold else NULL, gemm_threads)
    with nogil:
        lstmc_backward(&args)
        if fast:
            if floating is float:
                lstmc_gradients_avx512(&gargs)
        elif gemm_threads == 1:
            for piece in range(pieces):
                _gradient_piece(piece, column_pieces, rows, n, D, m, &xh[0, 0], &dz[0, 0], &kernel[0, 0],
                                &dw[0, 0], d_x_ptr)
        else:
            for piece in prange(pieces, num_threads=gemm_threads, schedule="dynamic"):
                _gradient_piece(piece, column_pieces, rows, n, D, m, &xh[0, 0], &dz[0, 0], &kernel[0, 0],
                                &dw[0, 0], d_x_ptr)
    dw_array = np.asarray(dw)
    grads = dict(x=None if d_x is None else np.asarray(d_x).reshape(B, T, D),
                 recurrent_kernel=np.array(dw_array[x_cols:x_cols + U, :n]),
                 bias=None if bias is None else np.array(dw_array[x_cols + U, :n]),
                 h0=np.asarray(dh), c0=np.asarray(dc), embeddings=None)
    if fold:
        sums = np.asarray(id_sums) if fast else sum_rows_by_id(dz_array, input_ids, len(embeddings))
        grads["kernel"] = np.asarray(embeddings).T @ sums
        grads["embeddings"] = sums @ np.asarray(kernel).T
    else:
        grads["kernel"] = np.array(dw_array[:D, :n])
    return grads


def sum_rows_by_id(rows, ids, n_ids):
    """(n_ids, columns): row i sums the ``rows`` (a (len(ids), columns) array, or one that
    reshapes to it) whose id is i. Sorts the ids and sums runs, ~5x faster than ``np.add.at``."""
    flat = np.asarray(ids).reshape(-1)
    rows = np.asarray(rows)
    rows = rows.reshape(flat.size, rows.shape[rows.ndim - 1])
    table = np.zeros((n_ids, rows.shape[1]), rows.dtype)
    if flat.size == 0:
        return table
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:flat.size - 1])))
    table[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return table


cdef object _fill_gradient_args(lstmc_gradient_args *g, Py_ssize_t rows, Py_ssize_t m, Py_ssize_t lda,
                                Py_ssize_t n, Py_ssize_t n_pad, Py_ssize_t d, const float *a,
                                const float *dz, const float *bt, const Py_ssize_t *ids, float *dw, float *dx,
                                float *sums, int n_threads):
    """Fill g for lstmc_gradients_avx512, on at most as many threads as it has pieces, and
    return the threads' work (g.work points into it: keep it alive through the call)."""
    g.rows, g.m, g.lda, g.n, g.n_pad, g.d = rows, m, lda, n, n_pad, d
    g.a, g.dz, g.bt, g.ids = a, dz, bt, ids
    g.dw, g.dx, g.sums = dw, dx, sums
    g.n_threads = <int>max(1, min(n_threads, lstmc_gradient_pieces(g)))
    cdef float[::1] work = np.empty(g.n_threads * lstmc_gradient_work(), np.float32)
    g.work = &work[0]
    return work


#: Below this many multiply-adds a product stays in NumPy (packing and the call cost more).
_MIN_MICRO_KERNEL_WORK = 2**20


def linear_gradients(x, d_y, kernel, bint use_bias, bint input_gradient, int n_threads=1):
    """A linear Dense layer's gradients over all positions: ``(d kernel, d bias or None,
    d x or None)`` for y = x @ kernel + bias, x (..., F), d_y (..., N), kernel (F, N).

    float32 on AVX-512 CPUs runs on the micro-kernels (_gemm.h; d bias from the column sums
    taken on the way) when the products are large; otherwise NumPy's BLAS."""
    features, units = kernel.shape
    x_rows = np.ascontiguousarray(x).reshape(-1, features)
    d_rows = np.ascontiguousarray(d_y).reshape(-1, units)
    if not _on_micro_kernels(x_rows, units, np.result_type(x_rows, d_rows, kernel)):
        return (x_rows.T @ d_rows, d_rows.sum(axis=0) if use_bias else None,
                (d_rows @ kernel.T).reshape(np.shape(x)) if input_gradient else None)
    return _linear_gradients_avx512(x_rows, d_rows, np.ascontiguousarray(kernel), use_bias, input_gradient,
                                    np.shape(x), n_threads)


def linear_forward(x, kernel, bias, int n_threads=1):
    """``x @ kernel + bias`` over the last axis (Dense before its activation), for training
    steps: on the micro-kernels for large float32 products on AVX-512 CPUs, else NumPy."""
    features, units = kernel.shape
    x_rows = np.ascontiguousarray(x).reshape(-1, features)
    if _on_micro_kernels(x_rows, units, np.result_type(x_rows, kernel)):
        if x_rows.size * units < MIN_CALL_WORK_FOR_THREADS:
            n_threads = 1
        y = _linear_forward_avx512(x_rows, np.ascontiguousarray(kernel.T), n_threads)
        y = y.reshape(np.shape(x)[:np.ndim(x) - 1] + (units,))
    else:
        y = x @ kernel
    if bias is not None:
        y += bias
    return y


def _on_micro_kernels(x_rows, units, dtype):
    """Whether a Dense product of ``x_rows`` (rows, features) by (features, units) runs on
    the micro-kernels: float32 on AVX-512 CPUs, large enough to pay for packing, small
    enough for their int sizes."""
    return (use_avx512_gemm and dtype == np.float32 and x_rows.size * units >= _MIN_MICRO_KERNEL_WORK
            and len(x_rows) * (units + LSTMC_GEMM_NR) <= _BLAS_LIMIT)


def _linear_forward_avx512(const float[:, ::1] x_rows, kernel_t, int n_threads):
    """x_rows @ kernel_t^T, (rows, units): the input-gradient product dZ B^T."""
    cdef Py_ssize_t rows = x_rows.shape[0], features = x_rows.shape[1], units = kernel_t.shape[0]
    cdef const float[:, :, ::1] bt = pack_recurrent_transpose(kernel_t, LSTMC_GEMM_NR)
    cdef float[:, ::1] products = np.empty((rows, units), np.float32)
    cdef lstmc_gradient_args gargs
    work = _fill_gradient_args(&gargs, rows, 0, 0, features, 0, units, NULL, &x_rows[0, 0], &bt[0, 0, 0], NULL,
                               NULL, &products[0, 0], NULL, n_threads)
    with nogil:
        lstmc_gradients_avx512(&gargs)
    return np.asarray(products)


def _linear_gradients_avx512(const float[:, ::1] x_rows, const float[:, ::1] d_rows, kernel, bint use_bias,
                             bint input_gradient, x_shape, int n_threads):
    cdef Py_ssize_t rows = x_rows.shape[0], features = x_rows.shape[1], units = d_rows.shape[1]
    cdef Py_ssize_t n_pad = _round_up(units, LSTMC_GEMM_NR)
    cdef float[:, ::1] dw = np.empty((features, n_pad), np.float32)
    cdef float[:, ::1] sums = np.zeros((1, units), np.float32) if use_bias else None
    cdef float[:, ::1] d_x = np.empty((rows, features), np.float32) if input_gradient else None
    cdef const float[:, :, ::1] bt = pack_recurrent_transpose(kernel, LSTMC_GEMM_NR) if input_gradient else None
    if rows * units * features * (2 if input_gradient else 1) < MIN_CALL_WORK_FOR_THREADS:
        n_threads = 1
    cdef lstmc_gradient_args gargs
    work = _fill_gradient_args(&gargs, rows, features, features, units, n_pad, features, &x_rows[0, 0],
                               &d_rows[0, 0], &bt[0, 0, 0] if input_gradient else NULL, NULL, &dw[0, 0],
                               &d_x[0, 0] if input_gradient else NULL, &sums[0, 0] if use_bias else NULL,
                               n_threads)
    with nogil:
        lstmc_gradients_avx512(&gargs)
    d_x_array = np.asarray(d_x).reshape(x_shape) if input_gradient else None
    dw_array = np.asarray(dw)
    return (dw_array if n_pad == units else np.ascontiguousarray(dw_array[:, :units]),
            np.asarray(sums)[0] if use_bias else None, d_x_array)


cdef void _gradient_piece(Py_ssize_t piece, Py_ssize_t column_pieces, Py_ssize_t rows, Py_ssize_t cols,
                          Py_ssize_t features, Py_ssize_t m, const floating *xh, const floating *dz,
                          const floating *kernel, floating *dw, floating *d_x) noexcept nogil:
    """One piece of the gradients over all steps at once, by BLAS: pieces below
    ``column_pieces`` are COLUMN_CHUNK columns of dW = XH^T dZ (XH = [x | h_in | 1]: dK, dR
    and db stacked, m rows); the others ROW_CHUNK rows of dX = dZ K^T. Sizes fit in int:
    checked by the caller."""
    cdef Py_ssize_t c0, width, r0, height
    if piece < column_pieces:
        c0 = piece * COLUMN_CHUNK
        width = min(cols - c0, COLUMN_CHUNK)
        gemm(True, False, <int>m, <int>width, <int>rows, 1, xh, <int>m, dz + c0, <int>cols, 0,
             dw + c0, <int>cols)
    else:
        r0 = (piece - column_pieces) * ROW_CHUNK
        height = min(rows - r0, ROW_CHUNK)
        gemm(False, True, <int>height, <int>features, <int>cols, 1, dz + r0 * cols, <int>cols, kernel,
             <int>cols, 0, d_x + r0 * features, <int>features)


def adam_update(floating[::1] weight, const floating[::1] gradient, floating[::1] m, floating[::1] v,
                floating[::1] v_hat, double alpha, double beta_1, double beta_2, double epsilon):
    """One Adam step over flat C-contiguous arrays of one dtype, in place and in one pass:
    :class:`lstm_c.optimizers.Adam`'s formulas with the same floating-point operations in the
    same order as its NumPy expressions: bit-identical results where the C compiler does not
    contract a multiply and an add into one FMA (x86-64 builds: no FMA in the baseline
    instruction set), within a rounding elsewhere. ``v_hat``: the running maximum of v
    (amsgrad), or None."""
    cdef Py_ssize_t i, n = weight.shape[0]
    cdef floating one_minus_beta_1 = <floating>(1 - beta_1), one_minus_beta_2 = <floating>(1 - beta_2)
    cdef floating step = <floating>alpha, eps = <floating>epsilon
    cdef floating g, mi, vi, vh
    if gradient.shape[0] != n or m.shape[0] != n or v.shape[0] != n or (v_hat is not None and v_hat.shape[0] != n):
        raise ValueError("adam_update: arrays of different sizes")
    with nogil:
        for i in range(n):
            g = gradient[i]
            mi = m[i] + (g - m[i]) * one_minus_beta_1
            vi = v[i] + (g * g - v[i]) * one_minus_beta_2
            m[i] = mi
            v[i] = vi
            if v_hat is not None:
                vh = v_hat[i]
                if not (vh > vi or vh != vh):   # np.maximum: NaN wins
                    vh = vi
                v_hat[i] = vh
                vi = vh
            if floating is float:
                weight[i] = weight[i] - step * mi / (sqrtf(vi) + eps)
            else:
                weight[i] = weight[i] - step * mi / (sqrt(vi) + eps)
