/* A hand-written straight-line forward-kinematics reference for serial chains of revolute joints
 * about their local z axis (the KUKA iiwa): T = C_1·Rz(q_1)·C_2·Rz(q_2)···C_n·Rz(q_n), each C_j a
 * constant origin (the top 3 rows of a 4x4, row major), sin/cos from the C library.  Written for
 * tools/bench_fk.py as the "what a careful C programmer writes" baseline; not part of Timber.
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
