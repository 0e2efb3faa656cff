/*
 * train.c - a small training run logged with mlo.
 *
 * Trains a logistic-regression classifier by gradient descent on a synthetic,
 * seeded two-class data set and logs to the tracking server named by
 * MLFLOW_TRACKING_URI: params (learning rate, epochs, seed), per-epoch loss and
 * accuracy with their step, a tag, and the final status.
 *
 *   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 ./train [experiment] [lr] [epochs]
 *
 * Exit status: 0 when every event was delivered, 1 otherwise.
 */
#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#include <stdio.h>
#include <stdlib.h>

#include "mlo.h"

#define N 400
#define D 4

static unsigned long long rng = 42;
static double uniform(void) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng >> 11) / 9007199254740992.0;
}
static double gauss(void) {
    double u = uniform() + 1e-12, v = uniform();
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static void on_error(void *user, mlo_status st, const char *msg) {
    (void)user;
    fprintf(stderr, "mlo: %s (%s)\n", msg, mlo_strerror(st));
}

int main(int argc, char **argv) {
    const char *experiment = argc > 1 ? argv[1] : "mlo-example";
    double lr = argc > 2 ? atof(argv[2]) : 0.1;
    int epochs = argc > 3 ? atoi(argv[3]) : 30;

    static double x[N][D];
    static int y[N];
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        for (int j = 0; j < D; j++)
            x[i][j] = gauss() + (y[i] ? 0.8 : -0.8) * (j + 1) / D;
    }

    mlo_options_t *opts = mlo_options_new();
    mlo_options_set_error_callback(opts, on_error, NULL);
    mlo_client_t *client;
    int st = mlo_client_open(opts, &client);
    mlo_options_free(opts);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo_client_open: %s\n", mlo_strerror(st));
        return 1;
    }
    mlo_run_t *run;
    char name[64];
    snprintf(name, sizeof name, "logreg-lr%g", lr);
    st = mlo_start_run(client, experiment, name, NULL, &run);
    if (st != MLO_OK) {
        fprintf(stderr, "mlo_start_run: %s\n", mlo_strerror(st));
        mlo_client_close(client);
        return 1;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%g", lr);
    mlo_log_param(run, "learning_rate", buf);
    snprintf(buf, sizeof buf, "%d", epochs);
    mlo_log_param(run, "epochs", buf);
    mlo_log_param(run, "seed", "42");
    mlo_log_param(run, "model", "logistic_regression");
    mlo_set_tag(run, "dataset", "synthetic-gaussians");

    double w[D] = {0}, b = 0;
    double acc = 0;
    for (int e = 0; e < epochs; e++) {
        double gw[D] = {0}, gb = 0, loss = 0;
        int correct = 0;
        for (int i = 0; i < N; i++) {
            double z = b;
            for (int j = 0; j < D; j++)
                z += w[j] * x[i][j];
            double p = 1 / (1 + exp(-z));
            loss += -(y[i] ? log(p + 1e-12) : log(1 - p + 1e-12));
            correct += (p >= 0.5) == y[i];
            for (int j = 0; j < D; j++)
                gw[j] += (p - y[i]) * x[i][j];
            gb += p - y[i];
        }
        for (int j = 0; j < D; j++)
            w[j] -= lr * gw[j] / N;
        b -= lr * gb / N;
        acc = (double)correct / N;
        mlo_log_metric(run, "loss", loss / N, e);
        mlo_log_metric(run, "accuracy", acc, e);
    }
    mlo_log_metric(run, "final_accuracy", acc, epochs);
    mlo_end_run(run, MLO_RUN_FINISHED);
    printf("run %s (experiment %s): accuracy %.3f after %d epochs\n", mlo_run_id(run),
           mlo_run_experiment_id(run), acc, epochs);

    st = mlo_client_flush(client, 30000);
    uint64_t sent = 0, failed = 0;
    mlo_client_stat(client, MLO_STAT_SENT, &sent);
    mlo_client_stat(client, MLO_STAT_FAILED, &failed);
    printf("events sent %llu, failed %llu\n", (unsigned long long)sent, (unsigned long long)failed);
    int cst = mlo_client_close(client);
    return st == MLO_OK && cst == MLO_OK && failed == 0 ? 0 : 1;
}
