/*
 * iris_model.h - what examples/train_grid.c and examples/inference_server.c
 * share: the iris data set (examples/iris.csv: Fisher 1936, public domain,
 * 150 rows, 4 measurements in cm, 3 species), a seeded random generator, a
 * stratified split, and a softmax (multinomial logistic) regression trained
 * by mini-batch SGD, with its text file format.
 *
 * Header-only (static inline functions): each example is one .c file plus this.
 * Nothing here uses mlo.
 */
#ifndef IRIS_MODEL_H
#define IRIS_MODEL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IRIS_N 150
#define IRIS_D 4
#define IRIS_K 3

static const char *const iris_species[IRIS_K] = {"setosa", "versicolor", "virginica"};

typedef struct iris {
    double x[IRIS_N][IRIS_D];
    int y[IRIS_N];
    int n;
} iris;

/* Reads the CSV (header line, then 4 numbers and a species name per row).
 * Returns 0, or -1 with a message on stderr. */
static inline int iris_load(const char *path, iris *d) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s (pass --data PATH to examples/iris.csv)\n", path);
        return -1;
    }
    char line[256];
    d->n = 0;
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f) && d->n < IRIS_N) {
        double *x = d->x[d->n];
        char name[32];
        if (sscanf(line, "%lf,%lf,%lf,%lf,%31s", &x[0], &x[1], &x[2], &x[3], name) != 5)
            continue;
        int y = -1;
        for (int k = 0; k < IRIS_K; k++)
            if (!strcmp(name, iris_species[k]))
                y = k;
        if (y < 0)
            continue;
        d->y[d->n++] = y;
    }
    fclose(f);
    if (d->n != IRIS_N) {
        fprintf(stderr, "%s: expected %d rows, read %d\n", path, IRIS_N, d->n);
        return -1;
    }
    return 0;
}

/* PCG32 (O'Neill): small, fast, the same sequence on every platform. */
typedef struct rng {
    uint64_t s;
} rng;
static inline uint32_t rng_u32(rng *r) {
    uint64_t old = r->s;
    r->s = old * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t xs = (uint32_t)(((old >> 18) ^ old) >> 27), rot = (uint32_t)(old >> 59);
    return (xs >> rot) | (xs << ((32 - rot) & 31));
}
static inline rng rng_seed(uint64_t seed) {
    rng r = {seed * 2 + 1};
    rng_u32(&r);
    return r;
}
static inline double rng_uniform(rng *r) { /* [0, 1) */
    return (double)rng_u32(r) / 4294967296.0;
}
static inline double rng_gauss(rng *r) {
    double u = rng_uniform(r), v = rng_uniform(r);
    return sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * v);
}
static inline void rng_shuffle(rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_uniform(r) * (i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Stratified split: test_per_class rows of each species go to the test set,
 * the rest to training, each class shuffled with the seed.  Index arrays of
 * IRIS_N entries; returns the training size (*ntest gets the test size). */
static inline int iris_split(const iris *d, uint64_t seed, int test_per_class, int *train,
                             int *test, int *ntest) {
    rng r = rng_seed(seed);
    int ntr = 0, nte = 0;
    for (int k = 0; k < IRIS_K; k++) {
        int idx[IRIS_N], m = 0;
        for (int i = 0; i < d->n; i++)
            if (d->y[i] == k)
                idx[m++] = i;
        rng_shuffle(&r, idx, m);
        for (int i = 0; i < m; i++) {
            if (i < test_per_class)
                test[nte++] = idx[i];
            else
                train[ntr++] = idx[i];
        }
    }
    *ntest = nte;
    return ntr;
}

/* ---- the model ---------------------------------------------------------------- */

typedef struct softmax {
    double mean[IRIS_D], sd[IRIS_D]; /* standardisation, from the training rows */
    double w[IRIS_K][IRIS_D], b[IRIS_K];
} softmax;

/* Class probabilities of raw features x. */
static inline void softmax_proba(const softmax *m, const double *x, double *p) {
    double z[IRIS_K], zmax = -INFINITY;
    for (int k = 0; k < IRIS_K; k++) {
        z[k] = m->b[k];
        for (int j = 0; j < IRIS_D; j++)
            z[k] += m->w[k][j] * (x[j] - m->mean[j]) / m->sd[j];
        if (z[k] > zmax)
            zmax = z[k];
    }
    double s = 0;
    for (int k = 0; k < IRIS_K; k++)
        s += p[k] = exp(z[k] - zmax);
    for (int k = 0; k < IRIS_K; k++)
        p[k] /= s;
}

static inline int softmax_predict(const softmax *m, const double *x) {
    double p[IRIS_K];
    softmax_proba(m, x, p);
    int best = 0;
    for (int k = 1; k < IRIS_K; k++)
        if (p[k] > p[best])
            best = k;
    return best;
}

static inline void softmax_init(softmax *m, const iris *d, const int *rows, int n) {
    memset(m, 0, sizeof *m);
    for (int j = 0; j < IRIS_D; j++) {
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++)
            s += d->x[rows[i]][j];
        m->mean[j] = s / n;
        for (int i = 0; i < n; i++)
            ss += (d->x[rows[i]][j] - m->mean[j]) * (d->x[rows[i]][j] - m->mean[j]);
        m->sd[j] = sqrt(ss / n) + 1e-12;
    }
}

/* One epoch of mini-batch SGD over rows (shuffled with r) minimising mean
 * cross-entropy + l2/2 |W|^2.  Returns that objective over the epoch's rows
 * (before each batch's update) and the training accuracy in *acc. */
static inline double softmax_epoch(softmax *m, const iris *d, int *rows, int n, int batch,
                                   double lr, double l2, rng *r, double *acc) {
    rng_shuffle(r, rows, n);
    double loss = 0;
    int correct = 0;
    for (int s = 0; s < n; s += batch) {
        int e = s + batch < n ? s + batch : n;
        double gw[IRIS_K][IRIS_D] = {{0}}, gb[IRIS_K] = {0};
        for (int i = s; i < e; i++) {
            const double *x = d->x[rows[i]];
            int y = d->y[rows[i]];
            double p[IRIS_K];
            softmax_proba(m, x, p);
            loss += -log(p[y] + 1e-15);
            int best = 0;
            for (int k = 1; k < IRIS_K; k++)
                if (p[k] > p[best])
                    best = k;
            correct += best == y;
            for (int k = 0; k < IRIS_K; k++) {
                double g = p[k] - (k == y);
                for (int j = 0; j < IRIS_D; j++)
                    gw[k][j] += g * (x[j] - m->mean[j]) / m->sd[j];
                gb[k] += g;
            }
        }
        double bn = e - s;
        for (int k = 0; k < IRIS_K; k++) {
            for (int j = 0; j < IRIS_D; j++)
                m->w[k][j] -= lr * (gw[k][j] / bn + l2 * m->w[k][j]);
            m->b[k] -= lr * gb[k] / bn;
        }
    }
    double reg = 0;
    for (int k = 0; k < IRIS_K; k++)
        for (int j = 0; j < IRIS_D; j++)
            reg += m->w[k][j] * m->w[k][j];
    *acc = (double)correct / n;
    return loss / n + 0.5 * l2 * reg;
}

/* Accuracy and macro-averaged F1 of m on rows. */
static inline void softmax_evaluate(const softmax *m, const iris *d, const int *rows, int n,
                                    double *acc, double *f1_macro) {
    int conf[IRIS_K][IRIS_K] = {{0}}; /* [true][predicted] */
    int correct = 0;
    for (int i = 0; i < n; i++) {
        int y = d->y[rows[i]], p = softmax_predict(m, d->x[rows[i]]);
        conf[y][p]++;
        correct += y == p;
    }
    double f1 = 0;
    for (int k = 0; k < IRIS_K; k++) {
        int tp = conf[k][k], fp = 0, fn = 0;
        for (int o = 0; o < IRIS_K; o++)
            if (o != k) {
                fp += conf[o][k];
                fn += conf[k][o];
            }
        f1 += tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0.0;
    }
    *acc = (double)correct / n;
    *f1_macro = f1 / IRIS_K;
}

/* Text format, one line each: "mlo-iris-softmax 1", "mean" + 4 numbers,
 * "sd" + 4, then "class <name> <bias> <4 weights>" per class.  %.17g: the
 * model read back predicts exactly as the one written. */
static inline int softmax_save(const softmax *m, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "mlo-iris-softmax 1\nmean");
    for (int j = 0; j < IRIS_D; j++)
        fprintf(f, " %.17g", m->mean[j]);
    fprintf(f, "\nsd");
    for (int j = 0; j < IRIS_D; j++)
        fprintf(f, " %.17g", m->sd[j]);
    fprintf(f, "\n");
    for (int k = 0; k < IRIS_K; k++) {
        fprintf(f, "class %s %.17g", iris_species[k], m->b[k]);
        for (int j = 0; j < IRIS_D; j++)
            fprintf(f, " %.17g", m->w[k][j]);
        fprintf(f, "\n");
    }
    return fclose(f) == 0 ? 0 : -1;
}

static inline int softmax_load(softmax *m, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char name[32];
    int ok = fscanf(f, "mlo-iris-softmax 1 mean %lf %lf %lf %lf sd %lf %lf %lf %lf", &m->mean[0],
                    &m->mean[1], &m->mean[2], &m->mean[3], &m->sd[0], &m->sd[1], &m->sd[2],
                    &m->sd[3]) == 8;
    for (int k = 0; ok && k < IRIS_K; k++)
        ok = fscanf(f, " class %31s %lf %lf %lf %lf %lf", name, &m->b[k], &m->w[k][0], &m->w[k][1],
                    &m->w[k][2], &m->w[k][3]) == 6 &&
             !strcmp(name, iris_species[k]);
    fclose(f);
    return ok ? 0 : -1;
}

#endif
