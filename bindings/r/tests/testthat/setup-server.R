# the library's durable store: one of our own
Sys.setenv(MLO_STORE_DIR = tempfile("mlo-store-"))
mlo_test_url <- mlo_test_server_start()
if (!is.null(mlo_test_url)) mlo_set_tracking_uri(mlo_test_url)
withr::defer({
  while (!is.null(mlo_active_run())) mlo_end_run()
  mlo_close()
  mlo_test_server_stop(mlo_test_url)
}, teardown_env())
