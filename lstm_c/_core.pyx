"""The LSTM forward kernel.

One kernel serves the fast path and the trace path (``trace`` given: the gates
i, f, g, o and the states c, h of every step are recorded as well), so the two
cannot drift apart. Everything below ``Kernel.forward`` runs without the GIL on raw
pointers; ``forward`` checks every shape first, so nothing inside can read or write
out of bounds.

Weights arrive packed (lstm_c/_packing.py: kernel and recurrent kernel stacked,
in gate-interleaved blocks of ``lanes`` units, one 512-bit vector where the CPU has
AVX-512, else 256-bit). The whole sequence runs as one OpenMP region in C
(_recurrence.h), each thread owning a slice of units; the input projection is fused
into each step, or, for small batches, computed a few steps ahead, so memory does not
grow with the number of timesteps.
"""

import numpy as np

cimport numpy as cnp
from cython cimport floating
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.stdlib cimport free

cdef extern from "<stdlib.h>" nogil:
    void *aligned_alloc(size_t alignment, size_t size)

cnp.import_array()

from ._packing import float32_rows, pack_weights

from ._openmp cimport LSTMC_OPENMP_ENABLED, omp_get_num_procs

cdef extern from "_cpu.h" nogil:
    int LSTMC_ISA_LIMIT
    int lstmc_l2_feeds_32_bytes()

cdef extern from "_activations.h" nogil:
    int LSTMC_N_ACTIVATIONS
    void lstmc_activate_f(int code, float *x, Py_ssize_t n)
    void lstmc_activate_d(int code, double *x, Py_ssize_t n)
    void lstmc_activate_portable_f(int code, float *x, Py_ssize_t n)
    void lstmc_activate_portable_d(int code, double *x, Py_ssize_t n)
    int lstmc_avx2_gates_f(int code, float *x, Py_ssize_t n)
    int lstmc_avx2_gates_d(int code, double *x, Py_ssize_t n)

cdef extern from "_recurrence.h" nogil:
    ctypedef struct lstmc_recurrence_args:
        Py_ssize_t B, T, D, U, W, nblk
        const void *x
        const void *wp
        const void *bias
        const float *rec_single
        void *projection
        Py_ssize_t TB
        int spread
        void *h
        void *h_spare
        void *c
        void *h_dropped
        const void *rec_dropout
        const unsigned char *mask
        const Py_ssize_t *first_valid
        int act, rec_act, go_backwards, zero_output_for_mask
        void *out_seq
        void *out_last
        void *trace
        Py_ssize_t trace_plane, k_begin, k_end
        int n_threads
        Py_ssize_t group
        int prefetch, is_double
        double patience, regroup_first
        void *team_seats
        void *group_ranges
        int *team_counts
    void lstmc_recurrence(const lstmc_recurrence_args *args)
    int LSTMC_LANES_FLOAT, LSTMC_LANES_DOUBLE, LSTMC_WIDE_LANES_FLOAT, LSTMC_WIDE_LANES_DOUBLE
    int lstmc_wide_blocks()
    long lstmc_l2_bytes()
    int lstmc_single_rows(Py_ssize_t W)
    int lstmc_avx2_tiles()
    int LSTMC_TILE_SAMPLES
    int LSTMC_SPREAD_STEPS_MAX
    size_t LSTMC_STREAMED_TRACE_BYTES
    double LSTMC_PATIENCE, LSTMC_REGROUP_FIRST
    size_t LSTMC_SEAT_BYTES, LSTMC_GROUP_RANGE_BYTES

N_ACTIVATIONS = LSTMC_N_ACTIVATIONS
#: The highest x86-64 level this build lets the kernels use (4: AVX-512; 3: AVX2 and FMA;
#: 1: baseline), whatever the CPU has: 4 but in builds that test the other paths
#: (CFLAGS=-DLSTMC_ISA_LIMIT=3 or 1; see _cpu.h).
ISA_LIMIT = LSTMC_ISA_LIMIT
#: Traces of at least this many bytes, and every trace of a call on several threads, are
#: written past the caches in rows that start on a cache line (aligned_empty); smaller
#: ones of one thread stay in cache for their reader.
STREAMED_TRACE_BYTES = LSTMC_STREAMED_TRACE_BYTES
#: The L2 cache of one core (from the C library; 1 MB where it does not say). A call whose
#: weights per thread exceed this prefetches the next block's weights as it goes.
L2_BYTES = lstmc_l2_bytes()
cdef Py_ssize_t _PREFETCH_BYTES = L2_BYTES
#: Whether this CPU's L2 feeds a core 32 bytes a cycle (AMD Zen 1 to Zen 4), not 64.
L2_FEEDS_32_BYTES = bool(lstmc_l2_feeds_32_bytes())
#: A float64 call with the input projected ahead reads float32 copies of float32-valued
#: recurrent rows (Kernel's ``single_rows``) of 512-bit blocks when a thread's share of
#: the float64 rows exceeds this. Widening a float32 row costs uops the tiles' FMAs want,
#: so it pays only where the rows' bytes bound the step:
#: - Where L2 feeds 64 bytes a cycle, past 5/8 of L2: below it the rows stay in L2 (one
#:   sequence of LSTM(128), 0.5 MB: float64 / float32 2.09 vs 2.34 widened; 1.1 MB: 2.24
#:   vs 2.33; 1.5 MB: 2.52 vs 2.30; 2 MB: 3.04 vs 2.33, on one Xeon core with 2 MB of L2).
#: - Where it feeds 32 (a Zen 4), past a sixth of L2, and for one sample only
#:   (Kernel.single_rows_max_samples): one sample's tile waits on L2 for float64 rows that
#:   do not fit L1 (float32 rows / float64 rows, 100 steps: 0.99-1.03 at 64-144 KB a
#:   thread, 0.96-1.00 at 196-392 KB, 0.92-0.96 for LSTM(128): 512 KB on one thread, 256
#:   KB on two; 0.83-0.92 at 1-2 MB), while 2 to 5 samples keep the FMA units busy and
#:   lost by 0-13% at every size (32 KB to 8 MB a thread).
#: 256-bit blocks read them in every call (Kernel.single_rows_min_bytes is 0): on AVX2,
#: one sample's pair tile widens them at ~1.6x the float64 rows' rate even in L2, and on
#: a Zen 3 the float32 rows were 6-18% faster below 5/8 of L2 (LSTM(32) to LSTM(128), 1-5
#: samples, one and two threads), 11-35% above it.
cdef Py_ssize_t _SINGLE_ROWS_MIN_BYTES = L2_BYTES // 6 if L2_FEEDS_32_BYTES else 5 * L2_BYTES // 8
SINGLE_ROWS_MIN_BYTES = _SINGLE_ROWS_MIN_BYTES
#: A call on several threads splits the samples instead of the blocks when its weights
#: fit in half of each core's L2 and every thread gets GROUPS_PER_THREAD tiles of
#: samples or more: each thread runs tiles of samples through every step alone, with all
#: the weights, first those of its own contiguous share of the batch (the same rows of
#: the outputs every call: they stay in its cache), then those the others have not
#: started, and the threads never wait for each other: no barrier a step, and a core that
#: another process slows takes fewer tiles instead of setting every step's pace (256 x 50
#: x LSTM(64) on 16 features at 2 threads, calls interleaved on a Zen 4: 4.26 -> 4.09 ms;
#: four more such shapes 4-6% faster; home shares: no more phases of 4.5 ms for 3.05).
cdef Py_ssize_t _GROUP_WEIGHT_BYTES = L2_BYTES // 2
GROUP_WEIGHT_BYTES = _GROUP_WEIGHT_BYTES
cdef enum:
    _GROUPS_PER_THREAD = 4
GROUPS_PER_THREAD = _GROUPS_PER_THREAD


#: Bytes of a cache line: the unit of the caches' ownership between cores.
cdef enum:
    _CACHE_LINE = 64
CACHE_LINE = _CACHE_LINE

#: A call's scratch up to this size lives on the calling frame's stack, not the heap.
cdef enum:
    _STACK_SCRATCH_BYTES = 4096


cdef cnp.ndarray _aligned(int nd, cnp.npy_intp *dims, int typenum, bint zeros):
    """An (nd, dims) C-contiguous array of ``typenum`` whose data starts on a cache line:
    a view into a NumPy byte buffer (its base) a line longer than the data."""
    cdef cnp.npy_intp nbytes = cnp.PyArray_DescrFromType(typenum).itemsize
    cdef int i
    for i in range(nd):
        nbytes *= dims[i]
    nbytes += _CACHE_LINE
    if zeros:
        raw = cnp.PyArray_ZEROS(1, &nbytes, cnp.NPY_UINT8, 0)
    else:
        raw = cnp.PyArray_EMPTY(1, &nbytes, cnp.NPY_UINT8, 0)
    cdef char *data = <char *>cnp.PyArray_DATA(<cnp.ndarray>raw)
    data += (-<size_t>data) % _CACHE_LINE
    cdef cnp.ndarray out = cnp.PyArray_SimpleNewFromData(nd, dims, typenum, data)
    cnp.set_array_base(out, raw)
    return out


def aligned_empty(shape, dtype, bint zeros=False):
    """``np.empty(shape, dtype)`` (or ``np.zeros`` with ``zeros``) starting on a cache line.

    NumPy aligns an array to 16 bytes only. Where two threads write neighbouring parts of
    one array (the kernel splits every row of the outputs and states between its threads
    at block boundaries), a line straddling the boundary is written by both, and each
    write takes the line from the other core: a 2-thread run of 256 sequences of
    LSTM(64) took 1.4x as long with its arrays 32 bytes off a line as on aligned ones. Packed
    weights start on a line too, so that no 512-bit vector of them straddles two.
    The result is a view of a byte buffer (its ``base``): whoever counts references to
    it must count the base's (lstm_c._buffers.referenced_elsewhere)."""
    cdef cnp.npy_intp dims[8]
    cdef int nd, i
    cdef cnp.dtype descr = dtype if isinstance(dtype, cnp.dtype) else np.dtype(dtype)
    if type(shape) is not tuple:   # (a streaming step calls this: the common case first)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
    nd = len(shape)
    if nd > 8:
        raise ValueError(f"aligned_empty takes at most 8 dimensions, got {nd}")
    for i in range(nd):
        dims[i] = shape[i]
        if dims[i] < 0:
            raise ValueError(f"negative dimensions are not allowed: {shape}")
    return _aligned(nd, dims, descr.type_num, zeros)


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(LSTMC_OPENMP_ENABLED)


def cpu_count():
    """Processors OpenMP may use (1 without OpenMP)."""
    return omp_get_num_procs()


def lanes(dtype, wide=None):
    """Units per block of packed weights for ``dtype``: one 512-bit vector when ``wide``,
    else one 256-bit vector. ``wide=None`` asks the CPU (AVX-512 -> wide)."""
    if wide is None:
        wide = lstmc_wide_blocks()
    if np.dtype(dtype) == np.float64:
        return LSTMC_WIDE_LANES_DOUBLE if wide else LSTMC_LANES_DOUBLE
    return LSTMC_WIDE_LANES_FLOAT if wide else LSTMC_LANES_FLOAT

#: Multiply-adds per step below which a thread is not worth waking: its share of a
#: step would cost less than the team's start, end and barrier. A streaming step of
#: LSTM(128) on 64 features (98k) reads 384 KB of weights from L2, 3.3 us at the 33
#: bytes per cycle of a Zen 4 core, which a second thread halves for ~1 us of start and
#: end (through the layer: 5.1-5.4 us on one thread, 4.3 on two; Zen 5: 4 and 2.5); a
#: Xeon reads them twice as fast and lost 0.1-0.3 us on two (4.2 us on one).
cdef enum:
    _MIN_STEP_WORK_PER_THREAD = 1 << 15
MIN_STEP_WORK_PER_THREAD = _MIN_STEP_WORK_PER_THREAD
#: Multiply-adds per call below which one thread runs it all: waking a second one
#: costs more than it saves. The backward passes' threshold (the forward's calls are
#: at least a step, which MIN_STEP_WORK_PER_THREAD covers).
MIN_CALL_WORK_FOR_THREADS = 1 << 16
#: Samples (or steps of one sample) a register tile sums at most.
TILE_SAMPLES = LSTMC_TILE_SAMPLES
#: Steps whose input projection is computed ahead at a time (small batches): two full
#: tiles of steps, few enough that the window's gates stay in L2 while its steps read
#: them. Windows of 32 steps ran 4-17% slower on the Zen 3 (512 KB of L2) with several
#: samples of wide layers (4 x 25 x LSTM(512) on 512 features: 800 KB of gates; 3 x 50 x
#: LSTM(384), 5 x 50 x LSTM(256), float32 and float64, one and two threads) and the same
#: with one sample (within 3%). Each window reads the kernel again: weights past
#: LONG_WINDOW_WEIGHT_BYTES keep PROJECTION_STEPS_LONG, where reading the kernel three
#: times a call pushed the recurrent kernel out of the VM's share of L3 (4 x 25 x
#: LSTM(512) in float64, 16 MB: 12-step windows 15-45% slower, 8 MB in float32: 9% faster).
cdef enum:
    _PROJECTION_STEPS = 12
    _PROJECTION_STEPS_LONG = 32
PROJECTION_STEPS = _PROJECTION_STEPS
PROJECTION_STEPS_LONG = _PROJECTION_STEPS_LONG
cdef Py_ssize_t _LONG_WINDOW_WEIGHT_BYTES = 12 << 20
LONG_WINDOW_WEIGHT_BYTES = _LONG_WINDOW_WEIGHT_BYTES
#: Steps of a one-sample call projected in a batch spread over the steps before it
#: (lstm_c/_tile.h's spread tile; when, see Kernel._default_spread_steps): eight, each
#: step taking two gates of a slice of the kernel rows. The weights' bytes bind such a
#: step, not its FMAs, and a batch reads the kernel rows once: on a Zen 4 eight steps
#: ran 1-5% faster than four over all four gates, and within 1% of six (whose 24 sums
#: spill some) where those had measured faster than four.
cdef enum:
    _SPREAD_STEPS = 8
SPREAD_STEPS = _SPREAD_STEPS
#: The most steps a spread batch can hold: past TILE_SAMPLES its steps take two gates
#: each, so it must be even.
SPREAD_STEPS_MAX = LSTMC_SPREAD_STEPS_MAX


def avx2_tiles():
    """Whether blocks of 256 bits run the tiles built for AVX2 and FMA on this CPU (else
    baseline x86-64's, or the portable ones off x86-64): the choice made at load time."""
    return bool(lstmc_avx2_tiles())


def single_rows_supported(Py_ssize_t lanes):
    """Whether float64 kernels with blocks of ``lanes`` units can read float32-valued
    recurrent rows in float32 on this CPU (Kernel's ``single_rows``)."""
    return bool(lstmc_single_rows(lanes))


cdef int _check_activation_code(int code) except -1:
    if not 0 <= code < LSTMC_N_ACTIVATIONS:
        raise ValueError(f"unknown activation code {code}")
    return 0


def apply_activation(int code, floating[::1] values, bint portable=False, bint avx2=False):
    """Apply activation ``code`` in place to a C-contiguous float32/float64 vector, as the
    kernel does; ``portable``: with the loops every CPU runs, not the AVX-512 or AVX2
    gates (where the CPU has them); ``avx2``: sigmoid and tanh with the AVX2 gates (where
    the CPU has AVX2 and FMA), even on a CPU with AVX-512. For tests: the AVX2 and
    AVX-512 gates must give the same bits, and the portable loops values within a few ulp."""
    _check_activation_code(code)
    if values.shape[0] == 0:
        return
    if floating is float:
        if avx2 and not portable and lstmc_avx2_gates_f(code, &values[0], values.shape[0]):
            return
        (lstmc_activate_portable_f if portable else lstmc_activate_f)(code, &values[0], values.shape[0])
    else:
        if avx2 and not portable and lstmc_avx2_gates_d(code, &values[0], values.shape[0]):
            return
        (lstmc_activate_portable_d if portable else lstmc_activate_d)(code, &values[0], values.shape[0])


def _first_valid_steps(mask, T, go_backwards):
    """Per sample, the first processing step whose input is used (T if none)."""
    in_order = np.asarray(mask)[:, ::-1] if go_backwards else np.asarray(mask)
    valid = in_order != 0
    return np.ascontiguousarray(np.where(valid.any(axis=1), valid.argmax(axis=1), T), dtype=np.intp)


def _shape_error(name, arr, expected):
    return ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(np.shape(arr))}")


cdef class Kernel:
    """One LSTM's packed weights and configuration, ready to run sequences.

    Parameters
    ----------
    kernel, recurrent_kernel, bias : ndarray
        Keras layout: (D, 4U), (U, 4U), (4U,) (``bias`` may be None), all of one
        dtype, float32 or float64.
    activation, recurrent_activation : int
        Codes from :func:`lstm_c.activations.activation_code`.
    wide : bool or None
        Blocks of one 512-bit vector (True) or one 256-bit vector (False); None (the
        default) picks 512 where the CPU has AVX-512. Both give the same bits (every
        unit sums in one order); tests use it to run both layouts on one machine.
    single_rows : bool or None
        float64 only: when every recurrent weight is a float32 value (a float32 model
        run in float64), also keep the packed recurrent rows in float32
        (``recurrent_rows_float32``), which steps with the input projected ahead read
        at half the bytes, for the same bits (on CPUs where the two tiles contract alike:
        x86-64-v4 for 512-bit blocks, v3 for 256-bit). None (the default) reads them in
        calls of at most ``single_rows_max_samples`` samples where a thread's share of the
        float64 rows exceeds ``single_rows_min_bytes`` (for 512-bit blocks
        ``SINGLE_ROWS_MIN_BYTES``, and one sample where L2 feeds 32 bytes a cycle; for
        256-bit ones any batch and share), True in every call; False keeps float64 rows
        only (tests compare the two).
    """

    cdef readonly object weights, bias, dtype, recurrent_rows_float32
    cdef readonly Py_ssize_t input_dim, units, lanes, single_rows_min_bytes, single_rows_max_samples
    cdef Py_ssize_t n_blocks
    cdef int activation, recurrent_activation
    cdef bint is_double
    cdef const void *weights_ptr
    cdef const void *bias_ptr
    cdef const float *rec_single_ptr
    cdef Py_ssize_t weight_bytes, float64_rec_bytes

    def __init__(self, kernel, recurrent_kernel, bias, int activation, int recurrent_activation,
                 *, wide=None, single_rows=None):
        dtype = np.result_type(kernel)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"weights must be float32 or float64, got {dtype}")
        U = np.shape(recurrent_kernel)[0] if np.ndim(recurrent_kernel) == 2 else 0
        D = np.shape(kernel)[0] if np.ndim(kernel) == 2 else 0
        if U < 1 or D < 1:
            raise ValueError("kernel and recurrent_kernel must be non-empty 2-D arrays")
        for name, arr, expected in (("kernel", kernel, (D, 4 * U)),
                                    ("recurrent_kernel", recurrent_kernel, (U, 4 * U)),
                                    ("bias", bias, (4 * U,))):
            if arr is not None and (np.shape(arr) != expected or np.result_type(arr) != dtype):
                raise ValueError(f"{name} must be {dtype} of shape {expected}, "
                                 f"got {np.result_type(arr)} of shape {np.shape(arr)}")
        _check_activation_code(activation)
        _check_activation_code(recurrent_activation)
        self.dtype, self.is_double = dtype, dtype == np.float64
        self.input_dim, self.units = D, U
        self.lanes = lanes(dtype, wide)
        self.weights, self.bias = pack_weights(kernel, recurrent_kernel, bias, self.lanes)
        self.n_blocks = self.weights.shape[0]
        self.activation, self.recurrent_activation = activation, recurrent_activation
        # pack_weights returns fresh C-contiguous arrays, which self keeps alive
        self.weights_ptr = cnp.PyArray_DATA(<cnp.ndarray>self.weights)
        self.weight_bytes = cnp.PyArray_NBYTES(<cnp.ndarray>self.weights)
        self.bias_ptr = cnp.PyArray_DATA(<cnp.ndarray>self.bias) if self.bias is not None else NULL
        self.recurrent_rows_float32 = None
        self.rec_single_ptr = NULL
        every_call = single_rows is True or self.lanes == LSTMC_LANES_DOUBLE
        self.single_rows_min_bytes = 0 if every_call else _SINGLE_ROWS_MIN_BYTES
        self.single_rows_max_samples = 1 if L2_FEEDS_32_BYTES and not every_call else PY_SSIZE_T_MAX
        self.float64_rec_bytes = self.n_blocks * U * 4 * self.lanes * 8
        if self.is_double and single_rows is not False and lstmc_single_rows(self.lanes):
            self.recurrent_rows_float32 = float32_rows(self.weights[:, D:])
            if self.recurrent_rows_float32 is not None:
                self.rec_single_ptr = <const float *>cnp.PyArray_DATA(
                    <cnp.ndarray>self.recurrent_rows_float32)

    def forward(self, x, h, c, out_last, out_seq=None, trace=None, mask=None,
                recurrent_dropout_mask=None, *, bint go_backwards=False,
                bint zero_output_for_mask=False, int n_threads=1, projection_steps=None,
                spread_steps=None, dict _team=None):
        """Run the LSTM over ``x`` (B, T, D), writing results into the given arrays.

        ``h`` and ``c`` (B, U) hold the initial state on entry and the final state on
        return. ``out_last`` (B, U) receives the last output, ``out_seq`` (B, T, U) every
        output and ``trace`` (6, B, T, U) the gates i, f, g, o and states c, h of every
        step, in processing order (reversed in time when ``go_backwards``).
        ``mask`` (B, T) uint8, non-zero = use the step; ``recurrent_dropout_mask`` (B, U)
        multiplies h before the recurrent product. A masked step carries the state and
        outputs the previous output (0 before the first valid step), or 0 with
        ``zero_output_for_mask``. Every array must be C-contiguous
        and of the kernel's dtype (mask: uint8); the GIL is released throughout. Threads
        split every row of the outputs and states: give arrays from :func:`aligned_empty`
        (states off a cache line run as aligned copies; outputs cannot).
        ``projection_steps``: 0 fuses x_t @ kernel into each step, n > 0 computes it
        ahead in windows of at most n steps, as even as possible; None (the default)
        projects ahead when the batch is smaller than a tile, PROJECTION_STEPS at a time
        (PROJECTION_STEPS_LONG past LONG_WINDOW_WEIGHT_BYTES of weights).
        ``spread_steps`` (one sample only): n in 1 .. 6, or an even n up to
        SPREAD_STEPS_MAX, projects batches of n steps, each spread over the n steps before
        it, 0 does not; None (the default) spreads SPREAD_STEPS where it measured faster
        (``_default_spread_steps``). Give one of the two. The results are the same bits
        every way.
        ``_team`` (for tests): a dict whose ``patience`` and ``regroup_first`` (seconds)
        replace the thread team's (lstm_c/_team.h; a negative patience makes every wait at
        a barrier a fall-back), and which receives ``fallbacks`` and ``regroups``: how often
        the team left thread 0 alone and came back together, ``threads``: how many
        threads the call ran on, ``single_rows``: whether its steps read the float32
        recurrent rows (``single_rows_min_bytes``), ``groups``: whether its threads
        split the samples instead of the blocks (``GROUP_WEIGHT_BYTES``), ``spread``:
        the spread batch's steps (0: none), and ``projection_steps``: the steps projected
        ahead at a time (0: fused; a spread's are its two batches).
        """
        cdef Py_ssize_t B, T, steps, spread
        if not isinstance(x, np.ndarray) or cnp.PyArray_NDIM(<cnp.ndarray>x) != 3:
            raise ValueError(f"x must be an array of shape (batch, timesteps, {self.input_dim}), "
                             f"got {np.shape(x)}")
        B, T = cnp.PyArray_DIM(<cnp.ndarray>x, 0), cnp.PyArray_DIM(<cnp.ndarray>x, 1)
        if projection_steps is not None and spread_steps is not None:
            raise ValueError("give projection_steps or spread_steps, not both")
        if projection_steps is not None:
            if projection_steps < 0:
                raise ValueError(f"projection_steps must be >= 0 or None, got {projection_steps}")
            steps, spread = min(projection_steps, T), 0
        else:
            steps, spread = self._default_projection_steps(B, T), -1  # -1: _forward chooses
            if spread_steps is not None:
                if not (0 <= spread_steps <= LSTMC_TILE_SAMPLES
                        or (LSTMC_TILE_SAMPLES < spread_steps <= LSTMC_SPREAD_STEPS_MAX
                            and spread_steps % 2 == 0)):
                    raise ValueError(f"spread_steps must be in 0 .. {LSTMC_TILE_SAMPLES}, even up "
                                     f"to {LSTMC_SPREAD_STEPS_MAX}, or None; got {spread_steps}")
                if spread_steps > 0 and B != 1:
                    raise ValueError(f"spread_steps needs a batch of one sample, got {B}")
                spread = spread_steps
        _forward(self, x, B, T, h, c, out_last, out_seq, trace, mask, recurrent_dropout_mask,
                 go_backwards, zero_output_for_mask, n_threads, steps, spread, _team)

    def call_plain(self, x, states, bint return_sequences, bint go_backwards, int n_threads,
                   bint want_trace=False, reusable_trace=None):
        """A layer's plain call, in one step from Python: ``x`` (B, T, D) with no mask and
        no dropout, from ``states`` ([h, c], updated in place: a stateful layer's) or from
        zeros (``states`` None). Returns ``(output, h, c, trace)``: the output, fresh, is
        (B, U), or (B, T, U) with ``return_sequences``; ``trace`` is None, or with
        ``want_trace`` the (6, B, T, U) trace, written into ``reusable_trace`` if that has
        its shape and dtype (the output is then the trace's h). Returns None instead when
        ``x`` is not a C-contiguous ndarray of this kernel's dtype, input size and the
        states' batch size, for the caller's general path to convert it or say what is
        wrong.

        A streaming step of LSTM(128) computes for ~3.5 us; the layer's general path
        (checks, allocations and calls in Python) cost another 1.5."""
        cdef cnp.ndarray a
        cdef cnp.npy_intp dims[4]
        cdef cnp.npy_intp state_dims[2]
        cdef int real = cnp.NPY_DOUBLE if self.is_double else cnp.NPY_FLOAT
        if type(x) is not cnp.ndarray:   # (the C type: no lookup of np.ndarray per call)
            return None
        a = <cnp.ndarray>x
        if (cnp.PyArray_NDIM(a) != 3 or cnp.PyArray_TYPE(a) != real or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or cnp.PyArray_DIM(a, 1) < 1 or cnp.PyArray_DIM(a, 2) != self.input_dim):
            return None
        # the trace's shape; from dims + 1 the outputs' (B, T, U)
        dims[0], dims[1], dims[2], dims[3] = 6, cnp.PyArray_DIM(a, 0), cnp.PyArray_DIM(a, 1), self.units
        state_dims[0], state_dims[1] = dims[1], dims[3]
        if states is None:
            if dims[1] < 1:
                return None
            h, c = _aligned(2, state_dims, real, True), _aligned(2, state_dims, real, True)
        else:
            h, c = states
            if type(h) is not cnp.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>h) != 2 \
                    or cnp.PyArray_DIM(<cnp.ndarray>h, 0) != dims[1]:
                return None
        out_last = _aligned(2, state_dims, real, False)
        out_seq = trace = None
        if want_trace:   # unmasked, the outputs are the trace's h: not written twice
            trace = (reusable_trace if _has_shape(reusable_trace, real, 4, dims, True)
                     else _aligned(4, dims, real, False))
        elif return_sequences:
            out_seq = _aligned(3, dims + 1, real, False)   # (B, T, U)
        _forward(self, x, dims[1], dims[2], h, c, out_last, out_seq, trace, None, None, go_backwards,
                 False, n_threads, self._default_projection_steps(dims[1], dims[2]), -1, None)
        if return_sequences and want_trace:
            out_seq = trace[5]
        return (out_seq if return_sequences else out_last), h, c, trace

    cdef Py_ssize_t _default_projection_steps(self, Py_ssize_t B, Py_ssize_t T):
        # Small batches: a tile over samples would be mostly empty; one over steps is full.
        if B < LSTMC_TILE_SAMPLES and T > 1:
            return min(<Py_ssize_t>(_PROJECTION_STEPS_LONG if self.weight_bytes > _LONG_WINDOW_WEIGHT_BYTES
                                    else _PROJECTION_STEPS), T)
        return 0

    cdef Py_ssize_t _default_spread_steps(self, Py_ssize_t B, Py_ssize_t T, int n_threads,
                                          bint single_rows):
        # One sample waits on its recurrent rows, and the projection's FMAs fill the idle
        # cycles where the projection is a good share of the work and the weights are past
        # L1 (the tile fits 512-bit blocks' registers: AVX-512's 32). On the Zen 4 (one
        # sample, 100 steps, D x U), one thread, batches of 4: 128 x 128 -9%, 256 x 128
        # -14%, 256 x 256 -5%, 64 x 128 -2 to -4%; but 32 x 128 +3%, 64 x 64 +3%, 32 x 64
        # +9% (batches of 8: +1 to +4%, -2 to -3%, +2 to +3%). Two threads in float32,
        # batches of 4: 128 x 128 -3%, 256 x 128 -10%, 256 x 256 and 512 x 512 -4 to -8%
        # while the VM's two vCPUs were near each other, within 2% while they were far
        # apart; but 64 x 128 +2% (batches of 8: +4 to +8%). Batches of 8 took another
        # 1-5% off where spreading paid (SPREAD_STEPS). Float64 on two threads, batches of
        # 8, gained over float64 rows (128 x 128, 256 x 256 and the device shape's 256 x
        # 256 over 150 steps: -1 to -6%, minimums -5 to -8%) but lost over a float32
        # model's float32 rows (single_rows; 256 x 256: +2 to +4%). Weights past
        # LONG_WINDOW_WEIGHT_BYTES keep their 32-step windows: a kernel read every few
        # steps pushed the recurrent rows out of L3 (512 x 512 in float64 on one thread,
        # 16 MB: 17.0 ms in windows, 22.1 in batches of 5; benchmarks/RESULTS.md).
        cdef Py_ssize_t item = 8 if self.is_double else 4, D = self.input_dim, U = self.units
        if (B != 1 or self.lanes * item != 64 or self.weight_bytes <= L2_BYTES // 8
                or self.weight_bytes > _LONG_WINDOW_WEIGHT_BYTES):
            return 0
        if n_threads == 1:
            if 2 * D < U:
                return 0
        elif D < U or single_rows:  # (float32 rows of a float64 call)
            return 0
        return _SPREAD_STEPS if T > _SPREAD_STEPS else 0


cdef bint _has_shape(arr, int typenum, int ndim, cnp.npy_intp *dims, bint writable):
    """Whether ``arr`` is a C-contiguous ndarray of this type and shape, writable if asked."""
    cdef int i
    cdef cnp.ndarray a
    if not cnp.PyArray_Check(arr):
        return False
    a = <cnp.ndarray>arr
    if (cnp.PyArray_NDIM(a) != ndim or cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or (writable and not cnp.PyArray_ISWRITEABLE(a))):
        return False
    for i in range(ndim):
        if cnp.PyArray_DIM(a, i) != dims[i]:
            return False
    return True


cdef inline size_t _on_lines(size_t nbytes):
    return (nbytes + _CACHE_LINE - 1) // _CACHE_LINE * _CACHE_LINE


cdef void *_array_data(object arr, str name, int typenum, int ndim, Py_ssize_t d0, Py_ssize_t d1,
                       Py_ssize_t d2, Py_ssize_t d3, bint writable) except NULL:
    """The data pointer of ``arr`` once it is checked to be a C-contiguous ndarray of the
    given type and shape (d0 .. d{ndim-1}), writable if asked: everything the C code
    assumes. Through the NumPy C API: a streaming step cannot afford buffer acquisition."""
    cdef cnp.npy_intp expected[4]
    cdef int i
    expected[0], expected[1], expected[2], expected[3] = d0, d1, d2, d3
    if _has_shape(arr, typenum, ndim, expected, writable):
        return cnp.PyArray_DATA(<cnp.ndarray>arr)
    raise _array_error(arr, name, np.dtype(cnp.PyArray_TypeObjectFromType(typenum)),
                       tuple([expected[i] for i in range(ndim)]))


def _array_error(arr, name, dtype, shape):
    """What is wrong with ``arr``, which _has_shape refused (writable if nothing else)."""
    if not isinstance(arr, np.ndarray):
        return TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.shape != shape:
        return _shape_error(name, arr, shape)
    if arr.dtype != dtype:
        return ValueError(f"{name} dtype mismatch: expected {dtype}, got {arr.dtype}")
    if not arr.flags.c_contiguous:
        return ValueError(f"{name} must be C-contiguous")
    return ValueError(f"{name} must be writable")


cdef _forward(Kernel kernel, x, Py_ssize_t B, Py_ssize_t T, h, c, out_last, out_seq, trace, mask,
              recurrent_dropout_mask, bint go_backwards, bint zero_output_for_mask, int n_threads,
              Py_ssize_t projection_steps, Py_ssize_t spread, dict team):
    cdef Py_ssize_t D = kernel.input_dim, U = kernel.units
    cdef Py_ssize_t step_work
    cdef int real = cnp.NPY_DOUBLE if kernel.is_double else cnp.NPY_FLOAT
    cdef lstmc_recurrence_args args
    cdef int team_counts[3]
    if B == 0 or T == 0:
        raise ValueError(f"the LSTM kernel needs at least one sample and one timestep, got {B} x {T}")
    args.x = _array_data(x, "x", real, 3, B, T, D, 0, False)
    args.h = _array_data(h, "h", real, 2, B, U, 0, 0, True)
    args.c = _array_data(c, "c", real, 2, B, U, 0, 0, True)
    args.out_last = _array_data(out_last, "out_last", real, 2, B, U, 0, 0, True)
    args.out_seq = (_array_data(out_seq, "out_seq", real, 3, B, T, U, 0, True)
                    if out_seq is not None else NULL)
    args.trace = (_array_data(trace, "trace", real, 4, 6, B, T, U, True)
                  if trace is not None else NULL)
    args.mask = <const unsigned char *>(_array_data(mask, "mask", cnp.NPY_UINT8, 2, B, T, 0, 0, False)
                                        if mask is not None else NULL)
    args.rec_dropout = (_array_data(recurrent_dropout_mask, "recurrent_dropout_mask", real, 2, B, U,
                                    0, 0, False)
                        if recurrent_dropout_mask is not None else NULL)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    # More threads than blocks idle; threads with less than a barrier's worth of work slow down.
    step_work = B * (D + U) * 4 * U
    n_threads = <int>max(1, min(n_threads, kernel.n_blocks, step_work // _MIN_STEP_WORK_PER_THREAD))
    cdef bint single_rows = (kernel.rec_single_ptr != NULL
                             and kernel.float64_rec_bytes > kernel.single_rows_min_bytes * n_threads
                             and B <= kernel.single_rows_max_samples)
    if spread < 0:
        spread = kernel._default_spread_steps(B, T, n_threads, single_rows)
    if spread > 0:
        projection_steps = 2 * spread   # the batch read and the batch built
    cdef Py_ssize_t group = (LSTMC_TILE_SAMPLES if n_threads > 1 and projection_steps == 0
                             and B >= _GROUPS_PER_THREAD * LSTMC_TILE_SAMPLES * n_threads
                             and kernel.weight_bytes <= _GROUP_WEIGHT_BYTES else 0)

    cdef cnp.npy_intp state_shape[2]
    state_shape[0], state_shape[1] = B, U
    # The threads write neighbouring units of h and c: on arrays off a cache line, a
    # line at a thread boundary is written by both (see aligned_empty). Such states run
    # as aligned copies, copied back after (B x U values against a whole call).
    h_work, c_work = h, c
    if n_threads > 1 and ((<size_t>args.h) % _CACHE_LINE or (<size_t>args.c) % _CACHE_LINE):
        h_work, c_work = _aligned(2, state_shape, real, False), _aligned(2, state_shape, real, False)
        h_work[...] = h
        c_work[...] = c
        args.h, args.c = cnp.PyArray_DATA(<cnp.ndarray>h_work), cnp.PyArray_DATA(<cnp.ndarray>c_work)
    first_valid = _first_valid_steps(mask, T, go_backwards) if mask is not None else None

    args.B, args.T, args.D, args.U = B, T, D, U
    args.nblk, args.W = kernel.n_blocks, kernel.lanes
    args.wp, args.bias = kernel.weights_ptr, kernel.bias_ptr
    args.rec_single = kernel.rec_single_ptr if single_rows else NULL
    args.first_valid = (<const Py_ssize_t *>cnp.PyArray_DATA(<cnp.ndarray>first_valid)
                        if first_valid is not None else NULL)
    args.TB, args.spread = projection_steps, <int>spread
    args.act, args.rec_act = kernel.activation, kernel.recurrent_activation
    args.go_backwards, args.zero_output_for_mask = go_backwards, zero_output_for_mask
    args.trace_plane, args.k_begin, args.k_end = B * T * U, 0, T
    args.n_threads, args.group, args.is_double = n_threads, group, kernel.is_double
    args.prefetch = kernel.weight_bytes > _PREFETCH_BYTES * n_threads
    args.patience, args.regroup_first = LSTMC_PATIENCE, LSTMC_REGROUP_FIRST
    team_counts[0] = team_counts[1] = team_counts[2] = 0
    args.team_counts = team_counts

    # The C code's scratch, each part on its own cache lines (each thread writes its own
    # blocks' part of the projection: no line is written by two). One C allocation, not
    # NumPy arrays: a cache-line-aligned one costs ~0.13 us, 3-4% of a streaming step;
    # and none where it fits on this frame's stack (a streaming step's: 0.6 KB).
    cdef char stack_scratch[_STACK_SCRATCH_BYTES + _CACHE_LINE]
    cdef size_t item = 8 if kernel.is_double else 4
    cdef size_t seat_bytes = n_threads * LSTMC_SEAT_BYTES   # the team's (a line each)
    cdef size_t range_bytes = n_threads * LSTMC_GROUP_RANGE_BYTES if group else 0
    cdef size_t spare_bytes = _on_lines(B * U * item)
    cdef size_t dropped_bytes = (_on_lines(n_threads * B * U * item)
                                 if recurrent_dropout_mask is not None else 0)
    cdef size_t projection_bytes = _on_lines(kernel.n_blocks * projection_steps * B * 4 * kernel.lanes
                                             * item)
    cdef size_t scratch_bytes = (seat_bytes + range_bytes + spare_bytes + dropped_bytes
                                 + projection_bytes)
    cdef bint on_stack = scratch_bytes <= _STACK_SCRATCH_BYTES
    cdef char *scratch = &stack_scratch[0]
    cdef char *scratch_rest
    if on_stack:
        scratch += (-<size_t>scratch) % _CACHE_LINE
    else:
        scratch = <char *>aligned_alloc(_CACHE_LINE, scratch_bytes)
    if scratch == NULL:
        raise MemoryError(f"no memory for the LSTM kernel's scratch ({scratch_bytes} bytes)")
    args.team_seats = <void *>scratch
    args.group_ranges = <void *>(scratch + seat_bytes) if range_bytes else NULL
    scratch_rest = scratch + seat_bytes + range_bytes
    args.h_spare = scratch_rest
    args.h_dropped = scratch_rest + spare_bytes if dropped_bytes else NULL
    args.projection = scratch_rest + spare_bytes + dropped_bytes if projection_bytes else NULL
    try:
        if team is not None:
            args.patience = team.get("patience", args.patience)
            args.regroup_first = team.get("regroup_first", args.regroup_first)
        with nogil:
            lstmc_recurrence(&args)
    finally:
        if not on_stack:
            free(scratch)
    if h_work is not h:
        h[...] = h_work
        c[...] = c_work
    if team is not None:
        team["fallbacks"], team["regroups"], team["threads"] = team_counts[0], team_counts[1], team_counts[2]
        team["single_rows"] = args.rec_single != NULL and args.projection != NULL
        team["groups"] = group > 0
        team["spread"] = spread
        team["projection_steps"] = projection_steps
