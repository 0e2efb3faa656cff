/*
 * train_grid.c - the classic hyperparameter grid, logged with mlo.
 *
 * Trains a softmax (multinomial logistic) regression on the iris data set
 * (examples/iris.csv: Fisher 1936, 150 rows) by mini-batch SGD, for each of
 * 3 learning rates x 3 L2 penalties, on one stratified split (15 rows of each
 * species held out).  Each configuration is one MLflow run of the experiment
 * "iris-grid", named after its params, with:
 *   params   learning_rate, l2, epochs, batch_size, seed, model, train_rows, test_rows
 *   metrics  loss and train_accuracy per epoch (step = epoch);
 *            accuracy and f1_macro on the held-out rows (step = epochs)
 *   tags     dataset=iris
 *   artifact the model file, model/<run name>.model (mlo_log_artifact: copied
 *            into the store at once, uploaded in the background; without a
 *            server it waits in the local store for `mlo sync`)
 * then prints a table, best first.  Everything is deterministic for a seed.
 *
 *   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 ./train_grid [--data examples/iris.csv]
 *       [--out DIR (default iris-models)] [--experiment NAME] [--seed N] [--epochs N]
 *
 * Exit status: 0 when every run was logged and every event delivered, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "iris_model.h"
#include "mlo.h"

#ifndef MLO_IRIS_CSV
#define MLO_IRIS_CSV "examples/iris.csv"
#endif

#define BATCH 16
#define TEST_PER_CLASS 15

static const double grid_lr[3] = {0.003, 0.03, 0.3};
static const double grid_l2[3] = {0.0, 0.01, 0.1};

typedef struct result {
    char name[64];
    char run_id[40];
    double lr, l2, loss, acc, f1;
} result;

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    fprintf(stderr, "mlo: %s (%s)\n", msg, mlo_strerror(st));
}

static int by_quality(const void *a, const void *b) {
    const result *x = a, *y = b;
    if (x->acc != y->acc)
        return x->acc < y->acc ? 1 : -1;
    if (x->f1 != y->f1)
        return x->f1 < y->f1 ? 1 : -1;
    return x->loss > y->loss ? 1 : x->loss < y->loss ? -1 : 0;
}

static void log_paramf(mlo_run_t *run, const char *key, const char *fmt, double v) {
    char buf[32];
    snprintf(buf, sizeof buf, fmt, v);
    mlo_log_param(run, key, buf);
}

int main(int argc, char **argv) {
    const char *data = MLO_IRIS_CSV, *out = "iris-models", *experiment = "iris-grid";
    unsigned long long seed = 42;
    int epochs = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v)
            data = argv[++i];
        else if (!strcmp(a, "--out") && v)
            out = argv[++i];
        else if (!strcmp(a, "--experiment") && v)
            experiment = argv[++i];
        else if (!strcmp(a, "--seed") && v)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--epochs") && v)
            epochs = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--data iris.csv] [--out DIR] [--experiment NAME] [--seed N] "
                    "[--epochs N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (epochs < 1)
        epochs = 1;

    static iris d;
    if (iris_load(data, &d) != 0)
        return 1;
    int train[IRIS_N], test[IRIS_N], ntest;
    int ntrain = iris_split(&d, seed, TEST_PER_CLASS, train, test, &ntest);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        perror(out);
        return 1;
    }

    mlo_options_t *opts = mlo_options_new();
    mlo_options_set_error_callback(opts, on_error, NULL);
    mlo_client_t *client;
    int st = mlo_client_open(opts, &client);
    mlo_options_free(opts);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo_client_open: %s (is MLFLOW_TRACKING_URI set?)\n", mlo_strerror(st));
        return 1;
    }

    result res[9];
    int nres = 0, failed_runs = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            result *r = &res[nres];
            r->lr = grid_lr[a];
            r->l2 = grid_l2[b];
            snprintf(r->name, sizeof r->name, "softmax-lr%g-l2_%g", r->lr, r->l2);
            mlo_run_t *run;
            st = mlo_start_run(client, experiment, r->name, NULL, &run);
            if (st != MLO_OK) {
                fprintf(stderr, "mlo_start_run %s: %s\n", r->name, mlo_strerror(st));
                failed_runs++;
                continue;
            }
            snprintf(r->run_id, sizeof r->run_id, "%s", mlo_run_id(run));
            log_paramf(run, "learning_rate", "%g", r->lr);
            log_paramf(run, "l2", "%g", r->l2);
            log_paramf(run, "epochs", "%.0f", epochs);
            log_paramf(run, "batch_size", "%.0f", BATCH);
            log_paramf(run, "seed", "%.0f", (double)seed);
            log_paramf(run, "train_rows", "%.0f", ntrain);
            log_paramf(run, "test_rows", "%.0f", ntest);
            mlo_log_param(run, "model", "softmax_regression");
            mlo_set_tag(run, "dataset", "iris");

            /* the same shuffles for every configuration: only the params differ */
            rng r_sgd = rng_seed(seed + 1);
            int rows[IRIS_N];
            memcpy(rows, train, sizeof(int) * (size_t)ntrain);
            softmax m;
            softmax_init(&m, &d, rows, ntrain);
            for (int e = 0; e < epochs; e++) {
                double tr_acc;
                r->loss = softmax_epoch(&m, &d, rows, ntrain, BATCH, r->lr, r->l2, &r_sgd, &tr_acc);
                mlo_log_metric(run, "loss", r->loss, e);
                mlo_log_metric(run, "train_accuracy", tr_acc, e);
            }
            softmax_evaluate(&m, &d, test, ntest, &r->acc, &r->f1);
            mlo_log_metric(run, "accuracy", r->acc, epochs);
            mlo_log_metric(run, "f1_macro", r->f1, epochs);

            char path[512];
            snprintf(path, sizeof path, "%s/%s.model", out, r->name);
            if (softmax_save(&m, path) != 0) {
                fprintf(stderr, "cannot write %s\n", path);
            } else {
                st = mlo_log_artifact(run, path, "model");
                if (st != MLO_OK) {
                    fprintf(stderr, "mlo_log_artifact %s: %s\n", path, mlo_strerror(st));
                    failed_runs++;
                }
            }
            mlo_end_run(run, MLO_RUN_FINISHED);
            nres++;
        }

    st = mlo_client_flush(client, 30000);
    uint64_t sent = 0, failed = 0;
    mlo_client_stat(client, MLO_STAT_SENT, &sent);
    mlo_client_stat(client, MLO_STAT_FAILED, &failed);
    int cst = mlo_client_close(client);

    qsort(res, (size_t)nres, sizeof *res, by_quality);
    printf("\nexperiment %s: %d runs, %d training / %d held-out rows, %d epochs, seed %llu\n",
           experiment, nres, ntrain, ntest, epochs, seed);
    printf("%-26s %6s %5s %8s %8s %8s  %s\n", "run", "lr", "l2", "loss", "accuracy", "f1_macro",
           "run id");
    for (int i = 0; i < nres; i++)
        printf("%-26s %6g %5g %8.4f %8.4f %8.4f  %s\n", res[i].name, res[i].lr, res[i].l2,
               res[i].loss, res[i].acc, res[i].f1, res[i].run_id);
    printf("events sent %llu, failed %llu\n", (unsigned long long)sent, (unsigned long long)failed);
    return failed_runs == 0 && st == MLO_OK && cst == MLO_OK && failed == 0 ? 0 : 1;
}
