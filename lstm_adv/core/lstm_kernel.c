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
template <typename T>
LSTM_ADV_KERNEL void lstm_adv_cell_fwd(npy_intp B, npy_intp H, const T* __restrict__ D, const T* __restrict__ X,
                              const T* __restrict__ CP, const T* __restrict__ HP, const T* __restrict__ M,
                              T* __restrict__ A, T* __restrict__ C, T* __restrict__ TC, T* __restrict__ Hout) {
    const npy_intp H4 = 4 * H;
    for (npy_intp b = 0; b < B; b++) {
        const T* __restrict__ dd = D + b * H4;
        const T* __restrict__ xx = X + b * H4;
        const T* __restrict__ cp = CP + b * H;
        const T* __restrict__ hp = HP + b * H;
        T* __restrict__ a = A + b * H4;
        T* __restrict__ cc = C + b * H;
        T* __restrict__ tt = TC + b * H;
        T* __restrict__ hh = Hout + b * H;
        const T mb = M[b], nb = T(1) - mb;
        for (npy_intp j = 0; j < 3 * H; j++) a[j] = lstm_adv_sigmoid<T>(dd[j] + xx[j]);
        for (npy_intp j = 3 * H; j < H4; j++) a[j] = tanh(dd[j] + xx[j]);
        for (npy_intp j = 0; j < H; j++) {
            T cj = a[H + j] * cp[j] + a[j] * a[3 * H + j];
            cc[j] = mb * cj + nb * cp[j];
        }
        for (npy_intp j = 0; j < H; j++) tt[j] = tanh(cc[j]);
        for (npy_intp j = 0; j < H; j++) hh[j] = mb * (a[2 * H + j] * tt[j]) + nb * hp[j];
    }
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
