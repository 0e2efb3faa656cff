/*
 * third_party.c - a program that knows mlo only through its installed header
 * and pkg-config file (tests/test_install.sh builds it against a fresh
 * `meson install`).  Logs params, metrics and tags of one run to the server
 * in MLFLOW_TRACKING_URI, ends it FINISHED, prints the run id.
 */
#include <mlo.h>
#include <stdio.h>

int main(void) {
    mlo_client_t *c;
    if (mlo_client_open(NULL, &c) != MLO_OK)
        return 1;
    mlo_run_t *run;
    if (mlo_start_run(c, "third-party", "installed", NULL, &run) != MLO_OK)
        return 1;
    int bad = 0;
    bad |= mlo_log_param(run, "alpha", "0.5");
    bad |= mlo_set_tag(run, "origin", "pkg-config");
    for (int i = 0; i < 10; i++)
        bad |= mlo_log_metric_ts(run, "score", i * 0.25, i, 1700000000000 + i);
    bad |= mlo_end_run(run, MLO_RUN_FINISHED);
    bad |= mlo_client_flush(c, 10000);
    printf("%s\n", mlo_run_id(run));
    bad |= mlo_client_close(c);
    return bad ? 1 : 0;
}
