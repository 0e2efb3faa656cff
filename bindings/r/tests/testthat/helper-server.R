# Starts tests/mlflow_test_server.py (a Python, MLflow-compatible test server) and
# reads back what it stored.  The server and the python to run it come from
# MLO_TEST_SERVER and MLO_TEST_PYTHON; without them the tests are skipped.

mlo_test_python <- function() Sys.getenv("MLO_TEST_PYTHON", "python3")

mlo_test_server_start <- function() {
  srv <- Sys.getenv("MLO_TEST_SERVER")
  if (!nzchar(srv) || !file.exists(srv)) return(NULL)
  out <- tempfile("mlo-server-")
  system2(mlo_test_python(), c(shQuote(srv), "--port", "0"), stdout = out, stderr = FALSE,
          wait = FALSE)
  for (i in 1:300) {
    lines <- if (file.exists(out)) readLines(out, warn = FALSE) else character()
    port <- grep("^PORT ", lines, value = TRUE)
    if (length(port)) return(paste0("http://127.0.0.1:", sub("^PORT ", "", port[1])))
    Sys.sleep(0.05)
  }
  stop("the test server did not start")
}

mlo_test_server_stop <- function(url) {
  if (is.null(url)) return(invisible())
  code <- paste0("import urllib.request as u; u.urlopen(u.Request('", url,
                 "/_test/shutdown', data=b'{}', headers={'Content-Type': 'application/json'}))")
  system2(mlo_test_python(), c("-c", shQuote(code)), stdout = FALSE, stderr = FALSE)
  invisible()
}

skip_without_server <- function() {
  if (is.null(mlo_test_url)) skip("no test server (set MLO_TEST_SERVER)")
}

# What the server stored for a run: list(status, params, tags, metrics (data.frame
# key, value, step, timestamp), experiment).  Read through a small Python helper, as
# base R has no JSON parser.
stored_run <- function(run_id, url = mlo_test_url) {
  out <- system2(mlo_test_python(), c(shQuote(test_path("dump_run.py")), url, run_id),
                 stdout = TRUE)
  rows <- strsplit(out, "\t", fixed = TRUE)
  get <- function(kind) Filter(function(r) r[1] == kind, rows)
  kv <- function(kind) {
    r <- get(kind)
    stats::setNames(vapply(r, function(x) if (length(x) > 2) x[3] else "", ""),
                    vapply(r, function(x) x[2], ""))
  }
  m <- get("metric")
  list(status = get("status")[[1]][2],
       experiment = get("experiment")[[1]][2],
       params = as.list(kv("param")),
       tags = as.list(kv("tag")),
       metrics = data.frame(key = vapply(m, `[`, "", 2),
                            value = as.numeric(vapply(m, `[`, "", 3)),
                            step = as.numeric(vapply(m, `[`, "", 4)),
                            timestamp = as.numeric(vapply(m, `[`, "", 5)),
                            stringsAsFactors = FALSE))
}
