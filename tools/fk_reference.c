/* A hand-written straight-line forward-kinematics reference for serial chains of revolute joints
 * about their local z axis (the KUKA iiwa): T = C_1·Rz(q_1)·C_2·Rz(q_2)···C_n·Rz(q_n), each C_j a
 * constant origin (the top 3 rows of a 4x4, row major), sin/cos from the C library; and the same
 * chain four configurations per AVX2 vector with a cheap vector sin/cos (fk_chain_z_batch_avx2).
 * Written for tools/bench_fk.py as the "what a careful C programmer writes" baselines; not part
 * of Timber.
 *
 *   cc -O3 -march=native -ffp-contract=off -shared -fPIC fk_reference.c -o libfk_reference.so -lm
 */
#include <math.h>

#define MAXJ 16

/* T (12 doubles) = A · B for poses A, B (rows of R and p). */
static void compose(const double *A, const double *B, double *T) {
    for (int i = 0; i < 3; i++) {
        const double *a = A + 4 * i;
        for (int j = 0; j < 3; j++)
            T[4 * i + j] = a[0] * B[j] + a[1] * B[4 + j] + a[2] * B[8 + j];
        T[4 * i + 3] = a[0] * B[3] + a[1] * B[7] + a[2] * B[11] + a[3];
    }
}

/* One configuration: out = the row-major 4x4 pose.  origins: n x 12 doubles. */
void fk_chain_z(const double *origins, int n, const double *q, double *out) {
    double T[12], L[12], N[12];
    for (int j = 0; j < n; j++) {
        const double *C = origins + 12 * j;
        double s = sin(q[j]), c = cos(q[j]);
        /* L = C · Rz(q): two columns change, the third and p are C's */
        for (int i = 0; i < 3; i++) {
            const double *r = C + 4 * i;
            L[4 * i + 0] = r[0] * c + r[1] * s;
            L[4 * i + 1] = r[1] * c - r[0] * s;
            L[4 * i + 2] = r[2];
            L[4 * i + 3] = r[3];
        }
        if (j == 0) {
            for (int k = 0; k < 12; k++) T[k] = L[k];
        } else {
            compose(T, L, N);
            for (int k = 0; k < 12; k++) T[k] = N[k];
        }
    }
    for (int k = 0; k < 12; k++) out[k] = T[k];
    out[12] = 0.0; out[13] = 0.0; out[14] = 0.0; out[15] = 1.0;
}

void fk_chain_z_batch(const double *origins, int n, const double *Q, int rows, double *out) {
    for (int r = 0; r < rows; r++) fk_chain_z(origins, n, Q + (long)r * n, out + 16L * r);
}

/* Time `iters` single calls of an ABI entry point `int f(const double*, double*, const void*)`
 * from C (Timber's timber_infer_single), cycling over `rows` configurations. */
typedef int (*single_fn)(const double *, double *, const void *);
int call_single(void *fn, const double *Q, int n, int rows, double *out, long iters) {
    single_fn f = (single_fn)fn;
    int rc = 0;
    for (long i = 0; i < iters; i++) rc |= f(Q + (i % rows) * n, out, 0);
    return rc;
}

void call_reference_single(const double *origins, int n, const double *Q, int rows, double *out, long iters) {
    for (long i = 0; i < iters; i++) fk_chain_z(origins, n, Q + (i % rows) * n, out);
}

/* ----- the same chain, 4 configurations at a time in AVX2 vectors (GCC/Clang vector extensions),
 * with a vector sin/cos written for the benchmark: Cody-Waite reduction by fdlibm's three-part
 * pi/2 (exact products for |q| < 2^20, i.e. joint angles), fdlibm's sin/cos kernels on y alone,
 * the quadrant by blends.  About 1 ulp for those angles (not Timber's exact full-range
 * reduction): the "hand-written vector C" floor of this machine for the composition plus a
 * cheap sin/cos.  Rows are read and written row-major like timber_infer's. */
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));

static inline v4d splat4(double x) { return (v4d){x, x, x, x}; }

static inline void vsincos(v4d x, v4d *s, v4d *c) {
    const v4d shifter = splat4(6755399441055744.0); /* 1.5 * 2^52: adding it rounds to an integer */
    v4d k = x * splat4(6.36619772367581382433e-01) + shifter;
    v4l q = (v4l)k; /* the low bits of k's significand are n (mod 2^51) */
    v4d n = k - shifter;
    v4d y = ((x - n * splat4(1.57079632673412561417e+00)) - n * splat4(6.07710050650619224932e-11)) -
            n * splat4(2.02226624871116645580e-21);
    v4d z = y * y;
    v4d ps = y + y * z * (splat4(-1.66666666666666324348e-01) +
                          z * (splat4(8.33333333332248946124e-03) +
                               z * (splat4(-1.98412698298579493134e-04) +
                                    z * (splat4(2.75573137070700676789e-06) +
                                         z * (splat4(-2.50507602534068634195e-08) + z * splat4(1.58969099521155010221e-10))))));
    v4d r = z * (splat4(4.16666666666666019037e-02) +
                 z * (splat4(-1.38888888888741095749e-03) +
                      z * (splat4(2.48015872894767294178e-05) +
                           z * (splat4(-2.75573143513906633035e-07) +
                                z * (splat4(2.08757232129817482790e-09) + z * splat4(-1.13596475577881948265e-11))))));
    v4d pc = splat4(1.0) - splat4(0.5) * z + z * r;
    v4l odd = (q & 1) != 0;
    v4l negs = (q & 2) != 0, negc = ((q + 1) & 2) != 0;
    v4d sv = (v4d)(((v4l)pc & odd) | ((v4l)ps & ~odd)), cv = (v4d)(((v4l)ps & odd) | ((v4l)pc & ~odd));
    const v4l sign = (v4l){1LL << 63, 1LL << 63, 1LL << 63, 1LL << 63};
    *s = (v4d)((v4l)sv ^ (negs & sign));
    *c = (v4d)((v4l)cv ^ (negc & sign));
}

void fk_chain_z_batch_avx2(const double *origins, int n, const double *Q, int rows, double *out) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const double *q0 = Q + (long)r * n;
        v4d T[12];
        for (int j = 0; j < n; j++) {
            const double *C = origins + 12 * j;
            v4d a = {q0[j], q0[n + j], q0[2 * n + j], q0[3 * n + j]}, s, c;
            vsincos(a, &s, &c);
            v4d L[12];
            for (int i = 0; i < 3; i++) {
                L[4 * i + 0] = splat4(C[4 * i]) * c + splat4(C[4 * i + 1]) * s;
                L[4 * i + 1] = splat4(C[4 * i + 1]) * c - splat4(C[4 * i]) * s;
                L[4 * i + 2] = splat4(C[4 * i + 2]);
                L[4 * i + 3] = splat4(C[4 * i + 3]);
            }
            if (j == 0) {
                for (int k = 0; k < 12; k++) T[k] = L[k];
                continue;
            }
            v4d N[12];
            for (int i = 0; i < 3; i++) {
                for (int jj = 0; jj < 3; jj++)
                    N[4 * i + jj] = T[4 * i] * L[jj] + T[4 * i + 1] * L[4 + jj] + T[4 * i + 2] * L[8 + jj];
                N[4 * i + 3] = T[4 * i] * L[3] + T[4 * i + 1] * L[7] + T[4 * i + 2] * L[11] + T[4 * i + 3];
            }
            for (int k = 0; k < 12; k++) T[k] = N[k];
        }
        for (int l = 0; l < 4; l++) {
            double *o = out + 16L * (r + l);
            for (int k = 0; k < 12; k++) o[k] = T[k][l];
            o[12] = 0.0; o[13] = 0.0; o[14] = 0.0; o[15] = 1.0;
        }
    }
    for (; r < rows; r++) fk_chain_z(origins, n, Q + (long)r * n, out + 16L * r);
}
