#section support_code
// Out of line: inlined into PyTensor's large generated function, GCC leaves these loops scalar.
#if defined(__GNUC__)
#define LSTM_ADV_KERNEL __attribute__((noinline)) static
#else
#define LSTM_ADV_KERNEL static
#endif
template <typename T> static inline T lstm_adv_sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
template <typename T> static inline T lstm_adv_clip(T x, T c) { return c > 0 ? (x < -c ? -c : (x > c ? c : x)) : x; }
static PyArrayObject* lstm_adv_contig(PyArrayObject* a) {
    return (PyArrayObject*)PyArray_FromAny((PyObject*)a, NULL, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
}
static PyArrayObject* lstm_adv_ids(PyArrayObject* a) {   // a contiguous int64 vector
    return (PyArrayObject*)PyArray_FromAny((PyObject*)a, PyArray_DescrFromType(NPY_INT64), 1, 1,
                                           NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
}
// One step's gates from its pre-activation already in A (in place); the forward of `LSTMCell` and `LSTMSeq`.
template <typename T>
LSTM_ADV_KERNEL void lstm_adv_step_fwd(npy_intp B, npy_intp H, const T* CP, const T* __restrict__ HP,
                                       const T* __restrict__ M, T* __restrict__ A, T* C, T* __restrict__ TC,
                                       T* __restrict__ Hout) {
    // C may alias CP (evaluation keeps one c): each element is read before it is written.
    const npy_intp H4 = 4 * H;
    for (npy_intp b = 0; b < B; b++) {
        const T* cp = CP + b * H;
        const T* __restrict__ hp = HP + b * H;
        T* __restrict__ a = A + b * H4;
        T* cc = C + b * H;
        T* __restrict__ tt = TC + b * H;
        T* __restrict__ hh = Hout + b * H;
        const T mb = M[b], nb = T(1) - mb;
        for (npy_intp j = 0; j < 3 * H; j++) a[j] = lstm_adv_sigmoid<T>(a[j]);
        for (npy_intp j = 3 * H; j < H4; j++) a[j] = tanh(a[j]);
        for (npy_intp j = 0; j < H; j++) {
            T cj = a[H + j] * cp[j] + a[j] * a[3 * H + j];
            cc[j] = mb * cj + nb * cp[j];
        }
        for (npy_intp j = 0; j < H; j++) tt[j] = tanh(cc[j]);
        for (npy_intp j = 0; j < H; j++) hh[j] = mb * (a[2 * H + j] * tt[j]) + nb * hp[j];
    }
}

// `LSTMCell`: the pre-activation D + X (the step's product and its input projection), then the step.
template <typename T>
LSTM_ADV_KERNEL void lstm_adv_cell_fwd(npy_intp B, npy_intp H, const T* __restrict__ D, const T* __restrict__ X,
                              const T* CP, const T* HP, const T* M, T* A, T* C, T* TC, T* Hout) {
    for (npy_intp k = 0; k < B * 4 * H; k++) A[k] = D[k] + X[k];
    lstm_adv_step_fwd<T>(B, H, CP, HP, M, A, C, TC, Hout);
}
template <typename T>
LSTM_ADV_KERNEL void lstm_adv_cell_bwd(npy_intp B, npy_intp H, T clip, const T* __restrict__ A, const T* __restrict__ TC,
                              const T* __restrict__ CP, const T* __restrict__ GHO, const T* __restrict__ GHR,
                              const T* __restrict__ GCR, const T* __restrict__ M,
                              T* __restrict__ DP, T* __restrict__ OH, T* __restrict__ OC) {
    const npy_intp H4 = 4 * H;
    const T one = 1;
    for (npy_intp b = 0; b < B; b++) {
        const T* __restrict__ a = A + b * H4;
        const T* __restrict__ t = TC + b * H;
        const T* __restrict__ cp = CP + b * H;
        const T* __restrict__ gho = GHO + b * H;
        const T* __restrict__ ghr = GHR + b * H;
        const T* __restrict__ gcr = GCR + b * H;
        T* __restrict__ dp = DP + b * H4;
        T* __restrict__ oh = OH + b * H;
        T* __restrict__ oc = OC + b * H;
        const T mb = M[b], nb = one - mb;
        for (npy_intp j = 0; j < H; j++) {
            const T ai = a[j], af = a[H + j], ao = a[2 * H + j], ag = a[3 * H + j];
            const T gh = lstm_adv_clip<T>(gho[j] + ghr[j], clip);
            const T gc = lstm_adv_clip<T>(gcr[j], clip);
            const T dcv = gc + mb * gh * ao * (one - t[j] * t[j]);
            const T dcm = mb * dcv;
            dp[j] = dcm * ag * ai * (one - ai);
            dp[H + j] = dcm * cp[j] * af * (one - af);
            dp[2 * H + j] = mb * gh * t[j] * ao * (one - ao);
            dp[3 * H + j] = dcm * ai * (one - ag * ag);
            oh[j] = nb * gh;
            oc[j] = nb * dcv + dcm * af;
        }
    }
}
static int lstm_adv_prepare_out(PyArrayObject** out, int nd, npy_intp* dims, int typenum) {
    PyArrayObject* o = *out;
    if (o && PyArray_NDIM(o) == nd && PyArray_TYPE(o) == typenum && PyArray_IS_C_CONTIGUOUS(o)) {
        int same = 1;
        for (int k = 0; k < nd; k++) same &= (PyArray_DIMS(o)[k] == dims[k]);
        if (same) return 0;
    }
    Py_XDECREF(o);
    *out = (PyArrayObject*)PyArray_EMPTY(nd, dims, typenum, 0);
    return *out == NULL;
}

// ---- The whole recurrence as one C loop over time (`LSTMSeq`, `LSTMSeqGrad`) ----------------
// Each step's product goes to SciPy's BLAS through the function pointers scipy.linalg.cython_blas
// exports (the OpenBLAS the process already runs single-threaded, `limit_blas_threads`): PyTensor
// links no BLAS when pip-installed, and SciPy is a dependency.
typedef void (*lstm_adv_sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*, float*, int*,
                                 float*, float*, int*);
typedef void (*lstm_adv_dgemm_t)(char*, char*, int*, int*, int*, double*, double*, int*, double*, int*,
                                 double*, double*, int*);
static void* lstm_adv_blas_pointer(const char* name) {
    // Called with the GIL held (an Op's C code); NULL with a Python error set if SciPy lacks it.
    PyObject* mod = PyImport_ImportModule("scipy.linalg.cython_blas");
    if (!mod) return NULL;
    PyObject* capi = PyObject_GetAttrString(mod, "__pyx_capi__");
    Py_DECREF(mod);
    if (!capi) return NULL;
    PyObject* cap = PyDict_GetItemString(capi, name);   // borrowed
    void* p = NULL;
    if (cap && PyCapsule_CheckExact(cap)) p = PyCapsule_GetPointer(cap, PyCapsule_GetName(cap));
    else PyErr_Format(PyExc_RuntimeError, "scipy.linalg.cython_blas exports no %s", name);
    Py_DECREF(capi);
    return p;
}
template <typename T> struct lstm_adv_blas;
template <> struct lstm_adv_blas<float> {
    static lstm_adv_sgemm_t fn;
    static int load() { if (!fn) fn = (lstm_adv_sgemm_t)lstm_adv_blas_pointer("sgemm"); return fn == NULL; }
    static void gemm(char ta, char tb, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc) {
        fn(&ta, &tb, &m, &n, &k, &alpha, (float*)a, &lda, (float*)b, &ldb, &beta, c, &ldc);
    }
};
lstm_adv_sgemm_t lstm_adv_blas<float>::fn = NULL;
template <> struct lstm_adv_blas<double> {
    static lstm_adv_dgemm_t fn;
    static int load() { if (!fn) fn = (lstm_adv_dgemm_t)lstm_adv_blas_pointer("dgemm"); return fn == NULL; }
    static void gemm(char ta, char tb, int m, int n, int k, double alpha, const double* a, int lda,
                     const double* b, int ldb, double beta, double* c, int ldc) {
        fn(&ta, &tb, &m, &n, &k, &alpha, (double*)a, &lda, (double*)b, &ldb, &beta, c, &ldc);
    }
};
lstm_adv_dgemm_t lstm_adv_blas<double>::fn = NULL;

// Row-major C (M, N) = A (M, K) @ B (K, N) [+ C]: BLAS is column-major, so it computes C^T = B^T A^T.
template <typename T>
static inline void lstm_adv_mm(npy_intp M, npy_intp N, npy_intp K, const T* A, int transA, const T* Bm,
                               int transB, T beta, T* C) {
    // transA: A is stored as (K, M) (use its transpose); transB: Bm is stored as (N, K).
    lstm_adv_blas<T>::gemm(transB ? 'T' : 'N', transA ? 'T' : 'N', (int)N, (int)M, (int)K, T(1),
                           Bm, transB ? (int)K : (int)N, A, transA ? (int)M : (int)K, beta, C, (int)N);
}

// The per-step products, (B, H) x (H, 4H) forward and (B, 4H) x (4H, H) backward with B ~ 16,
// are too small for BLAS to run at its large-product speed (it packs the whole right-hand matrix
// on every call): a register-tiled kernel (MR rows x NV vectors of the output held in registers,
// the right-hand matrix read in place) runs them about 1.5x faster here (experiments/README.md,
// "CPU backends"). Vectors are GCC/Clang vector extensions, as wide as the target allows.
#if defined(__AVX512F__)
#define LSTM_ADV_VBYTES 64
#define LSTM_ADV_MR 8
#else
#define LSTM_ADV_VBYTES 32
#define LSTM_ADV_MR 6
#endif
#define LSTM_ADV_NV 2
template <typename T> struct lstm_adv_vec {
    // aligned(sizeof(T)): unaligned loads and stores; may_alias: they read and write arrays of T.
    typedef T V __attribute__((vector_size(LSTM_ADV_VBYTES), aligned(sizeof(T)), __may_alias__));
    enum { W = LSTM_ADV_VBYTES / sizeof(T), NR = LSTM_ADV_NV * (LSTM_ADV_VBYTES / sizeof(T)) };
};
// C[MR, NR] = C0[MR, NR] + A[MR, K] @ Bm[K, NR] (row-major, leading dimensions given); C may be C0.
template <typename T, int MR>
static inline void lstm_adv_tile(npy_intp K, const T* A, npy_intp lda, const T* Bm, npy_intp ldb, const T* C0,
                                 npy_intp ldc0, T* C, npy_intp ldc) {
    typedef typename lstm_adv_vec<T>::V V;
    const int W = lstm_adv_vec<T>::W, NV = LSTM_ADV_NV;
    V acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NV; q++) acc[r][q] = *(const V*)(C0 + r * ldc0 + q * W);
    for (npy_intp k = 0; k < K; k++) {
        const T* b = Bm + k * ldb;
        V bv[NV];
        for (int q = 0; q < NV; q++) bv[q] = *(const V*)(b + q * W);
        for (int r = 0; r < MR; r++) {
            const T a = A[r * lda + k];
            for (int q = 0; q < NV; q++) acc[r][q] += a * bv[q];
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NV; q++) *(V*)(C + r * ldc + q * W) = acc[r][q];
}
// Row-major C (M, N) = C0 + A (M, K) @ Bm (K, N), all contiguous (C may be C0); 0 when done, 1 when
// N is not a multiple of the tile width (the caller then uses BLAS).
template <typename T>
LSTM_ADV_KERNEL int lstm_adv_mm_tiled(npy_intp M, npy_intp N, npy_intp K, const T* A, const T* Bm, const T* C0, T* C) {
    const npy_intp NR = lstm_adv_vec<T>::NR;
    if (N % NR) return 1;
    // Column panels outside: one panel of Bm (K x NR) stays in L1 while every row block uses it.
    for (npy_intp n = 0; n < N; n += NR) {
        npy_intp i = 0;
        for (; i + LSTM_ADV_MR <= M; i += LSTM_ADV_MR)
            lstm_adv_tile<T, LSTM_ADV_MR>(K, A + i * K, K, Bm + n, N, C0 + i * N + n, N, C + i * N + n, N);
        for (; i < M; i++)
            lstm_adv_tile<T, 1>(K, A + i * K, K, Bm + n, N, C0 + i * N + n, N, C + i * N + n, N);
    }
    return 0;
}

// The forward recurrence: SB (T, B, 4H) the input projections, M (T, B), U (H, 4H); writes h
// (T, B, H), and c, the gates and tanh(c) at every step when their strides are B*H / B*4H, or only
// the current step's (stride 0: scratch of one step, for evaluation). ZERO: B*H zeros.
template <typename T>
static int lstm_adv_seq_fwd(npy_intp Tn, npy_intp B, npy_intp H, const T* SB, const T* M, const T* U,
                            const T* ZERO, T* Hs, T* Cs, npy_intp cstride, T* A, npy_intp astride, T* TC,
                            npy_intp tstride) {
    if (lstm_adv_blas<T>::load()) return 1;
    const npy_intp H4 = 4 * H;
    for (npy_intp t = 0; t < Tn; t++) {
        T* a = A + t * astride;
        const T* x = SB + t * B * H4;
        const T* hp = t > 0 ? Hs + (t - 1) * B * H : ZERO;
        const T* cp = t > 0 ? Cs + (t - 1) * cstride : ZERO;
        // a = x + h_{t-1} U (h_{-1} = 0: the first step has no product).
        if (t == 0 || lstm_adv_mm_tiled<T>(B, H4, H, hp, U, x, a)) {
            memcpy(a, x, sizeof(T) * B * H4);
            if (t > 0) lstm_adv_mm<T>(B, H4, H, hp, 0, U, 0, T(1), a);
        }
        lstm_adv_step_fwd<T>(B, H, cp, hp, M + t * B, a, Cs + t * cstride, TC + t * tstride, Hs + t * B * H);
    }
    return 0;
}

// The backward recurrence (the formulas of `lstm_adv_cell_bwd`, which it calls per step): from the
// saved h, c, gates, tanh(c) and the gradient DHO (T, B, H) reaching h from above, the gradients of
// the pre-activations DP (T, B, 4H) and of U, DU (H, 4H) = sum_t h_{t-1}^T DP_t (one product at the
// end; none where DU is NULL). WORK: 4*B*H scratch, two pairs of the gradients carried to step t-1
// (h, c), used in turn; ZERO: B*H zeros; UT: 4H*H scratch for U's transpose (the tiled product reads its rows).
template <typename T>
static int lstm_adv_seq_bwd(npy_intp Tn, npy_intp B, npy_intp H, T clip, const T* M, const T* U, const T* Hs,
                            const T* Cs, const T* A, const T* TC, const T* DHO, const T* ZERO, T* WORK,
                            T* UT, T* DP, T* DU) {
    if (lstm_adv_blas<T>::load()) return 1;
    const npy_intp H4 = 4 * H, BH = B * H;
    for (npy_intp k = 0; k < H; k++)
        for (npy_intp n = 0; n < H4; n++) UT[n * H + k] = U[k * H4 + n];
    T *dh = WORK, *dc = WORK + BH, *dh_next = WORK + 2 * BH, *dc_next = WORK + 3 * BH;
    memset(dh, 0, sizeof(T) * 2 * BH);
    for (npy_intp t = Tn - 1; t >= 0; t--) {
        const T* cp = t > 0 ? Cs + (t - 1) * BH : ZERO;
        T* dp = DP + t * B * H4;
        lstm_adv_cell_bwd<T>(B, H, clip, A + t * B * H4, TC + t * BH, cp, DHO + t * BH, dh, dc, M + t * B,
                             dp, dh_next, dc_next);
        // dh_next += dp U^T
        if (t > 0 && lstm_adv_mm_tiled<T>(B, H, H4, dp, UT, dh_next, dh_next))
            lstm_adv_mm<T>(B, H, H4, dp, 0, U, 1, T(1), dh_next);
        T* s = dh; dh = dh_next; dh_next = s;
        s = dc; dc = dc_next; dc_next = s;
    }
    if (!DU) return 0;   // `LSTMSeqGrad(want_dU=False)`: nobody reads dU, skip its product
    if (Tn > 1) lstm_adv_mm<T>(H, H4, (Tn - 1) * B, Hs, 1, DP + B * H4, 0, T(0), DU);
    else memset(DU, 0, sizeof(T) * H * H4);
    return 0;
}

// ---- Embedding rows (`GatherRows`, `ScatterRows`) ---------------------------------------------
template <typename T>
static int lstm_adv_gather_rows(npy_intp V, npy_intp E, npy_intp N, const T* W, const npy_int64* ids, T* out) {
    for (npy_intp i = 0; i < N; i++) {
        if (ids[i] < 0 || ids[i] >= V) {
            PyErr_Format(PyExc_IndexError, "GatherRows: word id %lld outside 0..%lld", (long long)ids[i], (long long)V - 1);
            return 1;
        }
        memcpy(out + i * E, W + ids[i] * E, sizeof(T) * E);
    }
    return 0;
}
template <typename T>
static int lstm_adv_scatter_rows(npy_intp rows, npy_intp E, npy_intp N, const npy_int64* ids, const T* G, T* out) {
    memset(out, 0, sizeof(T) * rows * E);
    for (npy_intp i = 0; i < N; i++) {   // in order: the sums are those of the element-wise scatter
        if (ids[i] < 0 || ids[i] >= rows) {
            PyErr_Format(PyExc_IndexError, "ScatterRows: row %lld outside 0..%lld", (long long)ids[i], (long long)rows - 1);
            return 1;
        }
        T* __restrict__ o = out + ids[i] * E;
        const T* __restrict__ g = G + i * E;
        for (npy_intp e = 0; e < E; e++) o[e] += g[e];
    }
    return 0;
}
