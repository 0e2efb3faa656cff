test_that("with() ends a run FINISHED and everything logged is stored", {
  skip_without_server()
  run <- mlo_start_run(experiment_name = "r-tests", run_name = "ok")
  with(run, {
    expect_identical(mlo_active_run()$run_id, run$run_id)
    mlo_log_param("lr", 0.01)
    mlo_log_param(c("depth", "name"), c(3, "forest"))
    mlo_log_metric("loss", 0.5)
    mlo_log_metric("loss", 0.25, step = 1)
    mlo_log_metric("ts", 2, timestamp = 123456, step = 3)
    mlo_set_tag("team", "ml")
  })
  expect_null(mlo_active_run())
  mlo_flush(30)
  s <- stored_run(mlo_id(run))
  expect_equal(s$status, "FINISHED")
  expect_equal(s$experiment, "r-tests")
  expect_equal(s$params, list(lr = "0.01", depth = "3", name = "forest"))
  expect_equal(s$tags$team, "ml")
  expect_equal(s$tags$mlflow.runName, "ok")
  loss <- s$metrics[s$metrics$key == "loss", ]
  expect_equal(loss$value[order(loss$step)], c(0.5, 0.25))
  expect_equal(sort(loss$step), c(0, 1))
  ts <- s$metrics[s$metrics$key == "ts", ]
  expect_equal(c(ts$value, ts$step, ts$timestamp), c(2, 3, 123456))
})

test_that("an error inside with() ends the run FAILED and propagates", {
  skip_without_server()
  run <- mlo_start_run(run_name = "boom")
  expect_error(with(run, {
    mlo_log_metric("x", 1)
    stop("inside")
  }), "inside")
  expect_null(mlo_active_run())
  mlo_flush(30)
  expect_equal(stored_run(mlo_id(run))$status, "FAILED")
})

test_that("mlo_log_metric logs a whole vector in one call", {
  skip_without_server()
  run <- mlo_start_run()
  v <- sin(seq_len(1000) / 10)
  mlo_log_metric("curve", v, step = 0:999)
  mlo_log_metric("default_steps", c(1, 2, 3))
  mlo_log_metric("with_ts", c(5, 6), timestamp = c(1000, 2000), step = c(7, 8))
  mlo_end_run()
  mlo_flush(30)
  s <- stored_run(mlo_id(run))
  curve <- s$metrics[s$metrics$key == "curve", ]
  curve <- curve[order(curve$step), ]
  expect_equal(nrow(curve), 1000)
  expect_equal(curve$step, 0:999)
  expect_equal(curve$value, v)
  d <- s$metrics[s$metrics$key == "default_steps", ]
  expect_equal(d$step[order(d$value)], c(0, 1, 2))
  w <- s$metrics[s$metrics$key == "with_ts", ]
  w <- w[order(w$step), ]
  expect_equal(w$timestamp, c(1000, 2000))
  expect_equal(w$value, c(5, 6))
  expect_equal(s$status, "FINISHED")
})

test_that("bad input raises classed errors with the library's message", {
  skip_without_server()
  run <- mlo_start_run()
  e <- expect_error(mlo_log_metric("bad key!", 1), class = "mlo_invalid_key")
  expect_s3_class(e, "mlo_invalid_argument")
  expect_s3_class(e, "mlo_error")
  expect_match(conditionMessage(e), "bad key!", fixed = TRUE)
  expect_equal(e$name, "MLO_ERR_INVALID_KEY")
  expect_error(mlo_log_metric("../x", 1), class = "mlo_invalid_key")
  expect_error(mlo_set_tag("a,b", "v"), class = "mlo_invalid_key")
  expect_error(mlo_log_metric("v", "a"), class = "mlo_invalid_argument")
  expect_error(mlo_log_metric("v", 1, timestamp = -1), class = "mlo_invalid_argument")
  expect_error(mlo_end_run("BOGUS"))
  # one bad key in a vector: the others are logged
  expect_error(mlo_log_metric(c("good", "bad key!", "good2"), c(1, 2, 3)), class = "mlo_invalid_key")
  expect_error(mlo_log_artifact(tempfile()), class = "mlo_error") # missing file (or not yet supported)
  mlo_end_run()
  mlo_flush(30)
  s <- stored_run(mlo_id(run))
  expect_equal(sort(unique(s$metrics$key)), c("good", "good2"))
  expect_equal(s$status, "FINISHED")
  st <- mlo_stats()
  expect_true(all(c("accepted", "sent", "rejected") %in% names(st)))
  expect_gte(st[["rejected"]], 3)
})

test_that("nested runs and mlflow's rule on an already active run", {
  skip_without_server()
  parent <- mlo_start_run(run_name = "parent")
  expect_error(mlo_start_run(), "already active")
  child <- mlo_start_run(run_name = "child", nested = TRUE)
  mlo_log_metric("m", 1)
  mlo_end_run()
  expect_identical(mlo_active_run()$run_id, parent$run_id)
  mlo_end_run("KILLED")
  mlo_flush(30)
  expect_equal(stored_run(mlo_id(child))$tags$mlflow.parentRunId, parent$run_id)
  expect_equal(stored_run(mlo_id(parent))$status, "KILLED")
})

test_that("an explicit client, its runs by id, and a closed client", {
  skip_without_server()
  cl <- mlo_client(mlo_test_url, queue_bytes = 2^20, close_timeout = 5)
  run <- mlo_start_run(experiment_name = "r-client", client = cl)
  expect_null(mlo_active_run()) # a client's run is not the active run (as in mlflow)
  expect_error(mlo_log_metric("m", 1, client = cl), "run_id")
  mlo_log_metric("m", 1.5, step = 2, run_id = run$run_id, client = cl)
  mlo_log_batch(metrics = data.frame(key = c("a", "b"), value = c(1, 2), step = c(1, 2)),
                params = data.frame(key = "p", value = "v"),
                run_id = run$run_id, client = cl)
  mlo_end_run("FAILED", run_id = run$run_id, client = cl)
  mlo_flush(30, client = cl)
  mlo_close(cl)
  expect_error(mlo_log_metric("m", 1, run_id = run), class = "mlo_error")
  s <- stored_run(mlo_id(run))
  expect_equal(s$status, "FAILED")
  expect_equal(s$params, list(p = "v"))
  expect_equal(sort(s$metrics$key), c("a", "b", "m"))
})

test_that("the client's arguments are the header's options", {
  skip_without_server()
  # generated from the mlo_options_set_* setters: backoff_jitter reaches
  # mlo_options_set_retries, which refuses more than 3600 s
  expect_true(all(c("backoff_jitter", "max_inflight", "fsync") %in% names(formals(mlo_client))))
  expect_error(mlo_client(mlo_test_url, backoff_jitter = 3601), class = "mlo_invalid_argument")
  expect_error(mlo_client(mlo_test_url, full_policy = "sometimes"), class = "mlo_invalid_argument")
  cl <- mlo_client(mlo_test_url, backoff_jitter = 0.25, full_wait_ms = 50)
  mlo_end_run(run_id = mlo_start_run(client = cl), client = cl)
  mlo_close(cl)
  # every error status has its condition classes, under its family
  e <- tryCatch(mlo:::.mlo_stop(mlo:::.mlo_enums$mlo_status[["MLO_ERR_TLS"]]), error = identity)
  expect_true(all(c("mlo_tls", "mlo_network", "mlo_error") %in% class(e)))
})

test_that("a million values are logged in one vectorised call", {
  skip_without_server()
  # a store of its own: the points left unsent must not become the backlog of others
  cl <- mlo_client(mlo_test_url, queue_bytes = 2^28, close_timeout = 1,
                   store_dir = tempfile("mlo-store-big-"))
  run <- mlo_start_run(client = cl)
  v <- runif(1e6)
  t <- system.time(mlo_log_metric("big", v, step = seq_len(1e6), run_id = run, client = cl))
  expect_lt(t[["elapsed"]], 5) # the target is < 1 s; see the benchmark
  # the test server cannot take a million points in a second: close gives up (timeout)
  expect_error(suppressWarnings(mlo_close(cl)), class = "mlo_timeout")
})

test_that("histograms log their quantiles as metrics of the run", {
  skip_without_server()
  cl <- mlo_client(mlo_test_url)
  run <- mlo_start_run(client = cl)
  h <- tryCatch(mlo_histogram("lat", interval_ms = 100, run_id = run, client = cl),
                mlo_not_supported = function(e) NULL)
  if (is.null(h)) {
    mlo_close(cl)
    skip("the libmlo loaded has no histograms")
  }
  mlo_histogram_record(h, 1:100)
  expect_error(mlo_histogram_record(h, -1), class = "mlo_invalid_argument")
  expect_error(mlo_histogram("bad key!", run_id = run, client = cl), class = "mlo_invalid_key")
  mlo_histogram_close(h)
  kept <- mlo_histogram("kept", interval_ms = 100, run_id = run, client = cl)
  mlo_histogram_record(kept, 2)
  mlo_end_run(run_id = run, client = cl)
  mlo_flush(30, client = cl)
  mlo_close(cl) # closes "kept" first
  expect_error(mlo_histogram_record(kept, 1), class = "mlo_error")
  s <- stored_run(mlo_id(run))
  expect_equal(sum(s$metrics$value[s$metrics$key == "lat.count"]), 100)
  expect_equal(max(s$metrics$value[s$metrics$key == "lat.max"]), 100)
  expect_true("kept.count" %in% s$metrics$key)
})

test_that("system metrics: MLflow's names and steps, switched per run", {
  skip_without_server()
  Sys.unsetenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")
  cl <- mlo_client(mlo_test_url, system_metrics_sampling_interval = 0.05)
  on <- mlo_start_run(client = cl, log_system_metrics = TRUE)
  off <- mlo_start_run(client = cl)
  # the sampler thread logs a step every 50 ms: wait for three of them
  deadline <- Sys.time() + 30
  repeat {
    mlo_flush(30, client = cl)
    s <- stored_run(mlo_id(on))
    cpu <- s$metrics[s$metrics$key == "system/cpu_utilization_percentage", ]
    if (nrow(cpu) >= 3 || Sys.time() > deadline) break
    Sys.sleep(0.05)
  }
  expect_gte(nrow(cpu), 3)
  expect_equal(sort(cpu$step), seq(0, nrow(cpu) - 1))
  expect_true(all(cpu$value >= 0 & cpu$value <= 100))
  names <- c("cpu_utilization_percentage", "system_memory_usage_megabytes",
             "system_memory_usage_percentage", "disk_usage_percentage", "disk_usage_megabytes",
             "disk_available_megabytes", "network_receive_megabytes",
             "network_transmit_megabytes")
  expect_true(all(paste0("system/", names) %in% s$metrics$key))
  # the run started without them had none while the sampler ran for the other
  expect_false(any(startsWith(stored_run(mlo_id(off))$metrics$key, "system/")))
  expect_error(mlo_set_system_metrics(TRUE, run_id = off, client = cl), NA)
  mlo_end_run(run_id = on, client = cl)
  mlo_end_run(run_id = off, client = cl)
  mlo_close(cl)
  expect_error(mlo_client(mlo_test_url, system_metrics_sampling_interval = 0),
               class = "mlo_invalid_argument")
  mlo_enable_system_metrics_logging()
  expect_equal(Sys.getenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"), "true")
  mlo_disable_system_metrics_logging()
  expect_equal(Sys.getenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"), "false")
  Sys.unsetenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")
})
