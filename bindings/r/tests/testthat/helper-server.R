# Starts tests/mlflow_test_server.py (a Python, MLflow-compatible test server) and
# reads back what it stored.  The server and the python to run it come from
# MLO_TEST_SERVER and MLO_TEST_PYTHON; without them the tests are skipped.

mlo_test_python <- function() Sys.getenv("MLO_TEST_PYTHON", "python3")

# The server keeps artifacts under this directory (the artifact tests read them there).
mlo_test_artifact_root <- tempfile("mlo-artifacts-")

mlo_test_server_start <- function() {
  srv <- Sys.getenv("MLO_TEST_SERVER")
  if (!nzchar(srv) || !file.exists(srv)) return(NULL)
  out <- tempfile("mlo-server-")
  dir.create(mlo_test_artifact_root, showWarnings = FALSE)
  system2(mlo_test_python(), c(shQuote(srv), "--port", "0", "--artifact-root",
                               shQuote(mlo_test_artifact_root)),
          stdout = out, stderr = FALSE, wait = FALSE)
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

# The test server's helper (dump_run.py) in another mode: the lines it prints, split.
server_rows <- function(...) {
  out <- system2(mlo_test_python(), c(shQuote(test_path("dump_run.py")), ...), stdout = TRUE)
  strsplit(out, "\t", fixed = TRUE)
}

# Where the server keeps the artifacts of a run.
server_artifact_dir <- function(run_id, url = mlo_test_url) {
  rows <- Filter(function(r) r[1] == "artifact_uri", server_rows(url, run_id))
  uri <- rows[[1]][2]
  file.path(mlo_test_artifact_root, sub("^mlflow-artifacts:/+", "", uri))
}

# Puts the files of a local directory among a run's artifacts through the server's
# artifact API (not through mlo), so that reading back is tested on its own.
server_put_tree <- function(run_id, dir, url = mlo_test_url) {
  server_rows("--put", url, run_id, shQuote(dir))
}

read_file_raw <- function(path) readBin(path, "raw", file.info(path)$size)

# Ends whatever run is still active when the calling test ends (also when it skips).
local_end_runs <- function(envir = parent.frame()) {
  withr::defer(while (!is.null(mlo_active_run())) mlo_end_run(), envir = envir)
}
