/* STREAM-style bandwidth reference for bench/bench_measure.py (our own code, not McCalpin's STREAM).
 *
 * Build: gcc -O3 -march=native -fopenmp bench/stream_triad.c -o stream_triad
 * Run:   OMP_NUM_THREADS=2 ./stream_triad ELEMENTS REPETITIONS [thp]
 *
 * Copy c = a, scale b = s*c, add c = a + b, triad a = b + s*c over three arrays of ELEMENTS doubles,
 * each REPETITIONS times; the first pass of each kernel is a warm-up and is not timed. Bytes are
 * counted as STREAM counts them (no write-allocate): copy and scale 16 B per element, add and triad
 * 24 B. Ordinary stores (the compiler emits no non-temporal stores at -O3). Pages are first touched
 * by the thread that later works on them (static schedule); with "thp" the arrays are madvise'd for
 * transparent huge pages, as numpy does for arrays of 4 MiB and more.
 * Prints one JSON object: per kernel, the median and best rate in bytes/s.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double *allocate(size_t elements, int thp) {
    size_t bytes = (elements * sizeof(double) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    double *p = aligned_alloc(2u << 20, bytes);
    if (p == NULL) {
        fprintf(stderr, "stream_triad: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    if (thp) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ELEMENTS REPETITIONS [thp]\n", argv[0]);
        return 2;
    }
    const long n = atol(argv[1]);
    const int reps = atoi(argv[2]);
    const int thp = argc > 3 && strcmp(argv[3], "thp") == 0;
    if (n < 1 || reps < 2) {
        fprintf(stderr, "stream_triad: ELEMENTS >= 1 and REPETITIONS >= 2\n");
        return 2;
    }
    double *a = allocate(n, thp), *b = allocate(n, thp), *c = allocate(n, thp);
    const double s = 3.0;
#pragma omp parallel for schedule(static)
    for (long j = 0; j < n; j++) {
        a[j] = 1.0;
        b[j] = 2.0;
        c[j] = 0.0;
    }
    const char *names[4] = {"copy", "scale", "add", "triad"};
    const double bytes[4] = {16.0 * n, 16.0 * n, 24.0 * n, 24.0 * n};
    double *times = malloc(sizeof(double) * 4 * reps);
    for (int r = 0; r < reps; r++) {
        double t;
        t = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++) c[j] = a[j];
        times[0 * reps + r] = omp_get_wtime() - t;
        t = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++) b[j] = s * c[j];
        times[1 * reps + r] = omp_get_wtime() - t;
        t = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++) c[j] = a[j] + b[j];
        times[2 * reps + r] = omp_get_wtime() - t;
        t = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (long j = 0; j < n; j++) a[j] = b[j] + s * c[j];
        times[3 * reps + r] = omp_get_wtime() - t;
    }
    printf("{\"threads\": %d, \"elements\": %ld, \"repetitions\": %d, \"thp\": %s, \"check\": %g",
           omp_get_max_threads(), n, reps, thp ? "true" : "false", a[n / 2]);
    for (int k = 0; k < 4; k++) {
        double *kt = times + k * reps + 1; /* the first pass is a warm-up */
        qsort(kt, reps - 1, sizeof(double), compare_doubles);
        double median = (reps - 1) % 2 ? kt[(reps - 1) / 2] : 0.5 * (kt[(reps - 1) / 2 - 1] + kt[(reps - 1) / 2]);
        printf(", \"%s\": {\"median_bytes_per_s\": %.6g, \"best_bytes_per_s\": %.6g}", names[k],
               bytes[k] / median, bytes[k] / kt[0]);
    }
    printf("}\n");
    free(times);
    free(a);
    free(b);
    free(c);
    return 0;
}
