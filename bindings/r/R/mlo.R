# The R API of mlo, over the generated low-level stubs (R/mlo_r_stubs.R, where
# .c_<function>() calls the C glue of each function of include/mlo.h).
# Names and argument order follow the mlflow R package: mlflow_start_run() is
# mlo_start_run(), mlflow_log_metric(key, value, timestamp, step, run_id, client)
# is mlo_log_metric(...), and so on.

.mlo <- new.env(parent = emptyenv())
.mlo$stack <- list() # active runs of the fluent API, innermost last
.mlo$handle <- NULL # the handle of the innermost active run (the hot path reads it)
.mlo$client <- NULL # the default client, opened at the first run
.mlo$tracking_uri <- NULL
.mlo$experiment_name <- NULL

`%||%` <- function(a, b) if (is.null(a)) b else a

.mlo_set_stack <- function(stack) {
  .mlo$stack <- stack
  n <- length(stack)
  .mlo$handle <- if (n) stack[[n]]$handle else NULL
}

.onLoad <- function(libname, pkgname) {
  lib <- .c_mlo_version_number()
  hdr <- as.integer(strsplit(.mlo_header_version, ".", fixed = TRUE)[[1]])
  if (floor(lib / 65536) != hdr[1] || lib < hdr[1] * 65536 + hdr[2] * 256) {
    warning(sprintf("mlo: libmlo %s is older than or incompatible with the header %s",
                    .c_mlo_version(), .mlo_header_version), call. = FALSE)
  }
}

# ---- errors -------------------------------------------------------------------

.mlo_status_name <- function(status) {
  st <- .mlo_enums$mlo_status
  nm <- names(st)[match(status, st)]
  if (is.na(nm)) paste0("MLO_STATUS_", status) else nm
}

# Signals the error of a status: its condition classes from the table generated from
# the header (.mlo_conditions in mlo_r_stubs.R: mlo_invalid_key, then its family
# mlo_invalid_argument, ...), then mlo_error.
.mlo_stop <- function(status, detail = NULL, call = NULL) {
  name <- .mlo_status_name(status)
  msg <- .c_mlo_strerror(status)
  if (length(detail) && nzchar(detail[1])) {
    msg <- if (grepl(msg, detail, fixed = TRUE)) detail else paste0(msg, ": ", detail)
  }
  cls <- c(.mlo_conditions[[name]], "mlo_error", "error", "condition")
  stop(structure(class = unique(cls),
                 list(message = paste0(msg, " [", name, "]"), call = call,
                      status = status, name = name)))
}

# Turns a status into an R error carrying the library's message (what the library
# reported through its error callback about the failed call).
.mlo_check <- function(status, hint = NULL) {
  if (!identical(status, 0L)) {
    sync <- .Call(C_mlor_take_errors, "sync")
    m <- sync$message
    detail <- if (length(m)) paste(m[seq_len(min(5L, length(m)))], collapse = "; ") else hint
    .mlo_stop(status, detail, call = sys.call(-1))
  }
  invisible(status)
}

# Failures found later (on the shipper thread) and warnings (truncated values,
# retries) are queued by the C side; this turns them into R warnings.
.mlo_emit_later <- function() {
  later <- .Call(C_mlor_take_errors, "later")
  for (i in seq_along(later$message)) {
    name <- .mlo_status_name(later$status[i])
    if (name == "MLO_WARN_RETRY") next
    warning(structure(class = c("mlo_warning", "warning", "condition"),
                      list(message = paste0("mlo: ", later$message[i], " [", name, "]"),
                           call = NULL, status = later$status[i], name = name)))
  }
  invisible(NULL)
}

# ---- clients ------------------------------------------------------------------

# The options of mlo_client() are the header's: .mlo_options (generated in
# mlo_r_stubs.R) has one entry per parameter of each mlo_options_set_* setter, and
# mlo_client's arguments are set from it below, so an option added to the header is an
# argument here at once.
.mlo_setter <- function(stub) {
  f <- get0(stub, envir = asNamespace("mlo"), mode = "function", inherits = FALSE)
  if (is.null(f))
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_NOT_SUPPORTED"]],
              paste(sub("^\\.c_", "", stub), "is not in the header these bindings were built from"))
  f
}

# The C argument of one option (NULL: keep the default, as the header says).
.mlo_option_value <- function(spec, v) {
  einval <- .mlo_enums$mlo_status[["MLO_ERR_INVALID_ARGUMENT"]]
  if (is.null(v)) {
    if (!is.null(spec$keep)) return(spec$keep)
    if (!is.null(spec$default)) return(spec$default)
    if (identical(spec$kind, "str")) return(NULL)
    .mlo_stop(einval, sprintf("%s needs a value when the other options of %s are given",
                              spec$keyword, sub("^\\.c_", "", spec$setter)))
  }
  if (length(v) != 1L) .mlo_stop(einval, sprintf("%s must be a single value", spec$keyword))
  switch(spec$kind,
    str = as.character(v),
    bool = as.integer(isTRUE(as.logical(v))),
    enum = {
      if (is.numeric(v)) return(as.integer(v))
      code <- spec$values[tolower(as.character(v))]
      if (is.na(code))
        .mlo_stop(einval, sprintf("%s must be one of %s", spec$keyword,
                                  paste0("\"", names(spec$values), "\"", collapse = ", ")))
      unname(code)
    },
    {
      if (!is.numeric(v)) .mlo_stop(einval, sprintf("%s must be a number", spec$keyword))
      if (spec$scale != 1) round(v * spec$scale) else v
    })
}

.mlo_apply_options <- function(opts, args) {
  setters <- unique(vapply(.mlo_options, function(o) o$setter, ""))
  for (setter in setters) {
    specs <- Filter(function(o) identical(o$setter, setter), .mlo_options)
    vals <- lapply(specs, function(o) args[[o$keyword]])
    if (all(vapply(vals, is.null, TRUE))) next
    cargs <- vector("list", max(vapply(specs, function(o) o$index, 0L)))
    for (i in seq_along(specs)) cargs[specs[[i]]$index] <- list(.mlo_option_value(specs[[i]], vals[[i]]))
    .mlo_check(do.call(.mlo_setter(setter), c(list(opts), cargs)))
  }
}

mlo_client <- function() {
  args <- mget(.mlo_option_keywords, envir = environment())
  # system metrics: mlo_start_run switches each run on itself, so that a run started
  # with log_system_metrics = FALSE never has them, not even for an instant
  sysm <- if (is.null(args$system_metrics)) .mlo_system_metrics_default() else
    isTRUE(args$system_metrics)
  args$system_metrics <- FALSE
  opts <- .c_mlo_options_new()
  if (is.null(opts)) stop("mlo: out of memory")
  on.exit(.c_mlo_options_free(opts), add = TRUE)
  .mlo_apply_options(opts, args)
  .mlo_check(.c_mlo_options_set_error_callback(opts, TRUE))
  res <- .c_mlo_client_open(opts)
  .mlo_check(res$status)
  client <- new.env(parent = emptyenv())
  client$handle <- res$out
  client$closed <- FALSE
  client$runs <- new.env(parent = emptyenv())
  client$tracking_uri <- args$tracking_uri %||% Sys.getenv("MLFLOW_TRACKING_URI")
  client$system_metrics <- sysm
  class(client) <- "mlo_client"
  # at exit (or when the client is garbage): end its active runs, flush, close
  reg.finalizer(client, .mlo_client_finalizer, onexit = TRUE)
  client
}
.mlo_client_formals <- rep(list(NULL), length(.mlo_option_keywords))
names(.mlo_client_formals) <- .mlo_option_keywords
formals(mlo_client) <- .mlo_client_formals

.mlo_client_finalizer <- function(client) {
  if (isTRUE(client$closed)) return(invisible(NULL))
  for (run in rev(.mlo$stack)) {
    if (identical(run$client, client)) try(.mlo_end_with(run, "FINISHED"), silent = TRUE)
  }
  try(mlo_close(client), silent = TRUE)
  invisible(NULL)
}

print.mlo_client <- function(x, ...) {
  cat(sprintf("<mlo_client %s%s>\n", x$tracking_uri, if (isTRUE(x$closed)) " (closed)" else ""))
  invisible(x)
}

.mlo_default_client <- function() {
  cl <- .mlo$client
  if (is.null(cl) || isTRUE(cl$closed)) {
    cl <- mlo_client(tracking_uri = .mlo$tracking_uri)
    .mlo$client <- cl
  }
  cl
}

mlo_set_tracking_uri <- function(uri) {
  if (length(.mlo$stack))
    stop("mlo: end the active run before changing the tracking URI", call. = FALSE)
  if (!is.null(.mlo$client)) {
    old <- .mlo$client
    .mlo$client <- NULL
    mlo_close(old)
  }
  .mlo$tracking_uri <- uri
  invisible(uri)
}

mlo_get_tracking_uri <- function() {
  .mlo$tracking_uri %||% Sys.getenv("MLFLOW_TRACKING_URI", unset = NA)
}

mlo_set_experiment <- function(experiment_name) {
  .mlo$experiment_name <- experiment_name
  invisible(experiment_name)
}

mlo_flush <- function(timeout = NULL, client = NULL) {
  client <- client %||% .mlo$client
  if (is.null(client) || isTRUE(client$closed)) return(invisible(NULL))
  timeout_code <- .mlo_enums$mlo_status[["MLO_ERR_TIMEOUT"]]
  if (is.null(timeout)) {
    repeat { # in slices, so that an interrupt is seen
      st <- .c_mlo_client_flush(client$handle, 1000)
      if (st != timeout_code) break
    }
  } else {
    st <- .c_mlo_client_flush(client$handle, round(timeout * 1000))
  }
  .mlo_emit_later()
  .mlo_check(st)
}

mlo_close <- function(client = NULL) {
  client <- client %||% .mlo$client
  if (is.null(client) || isTRUE(client$closed)) return(invisible(NULL))
  .mlo_set_stack(Filter(function(r) !identical(r$client, client), .mlo$stack))
  if (identical(.mlo$client, client)) .mlo$client <- NULL
  .mlo_close_histograms(client)
  client$closed <- TRUE
  st <- .c_mlo_client_close(client$handle) # the handles of its runs are dead from now on
  .mlo_emit_later()
  .mlo_check(st)
}

mlo_stats <- function(client = NULL) {
  client <- client %||% .mlo$client
  if (is.null(client)) stop("mlo: no client")
  st <- .mlo_enums$mlo_stat
  vals <- vapply(st, function(code) {
    r <- .c_mlo_client_stat(client$handle, code)
    .mlo_check(r$status)
    r$value
  }, numeric(1))
  names(vals) <- tolower(sub("^MLO_STAT_", "", names(st)))
  vals
}

mlo_errors <- function() {
  later <- .Call(C_mlor_take_errors, "later")
  data.frame(status = vapply(later$status, .mlo_status_name, ""), message = later$message,
             stringsAsFactors = FALSE)
}

mlo_version <- function() .c_mlo_version()

# ---- runs ---------------------------------------------------------------------

.mlo_adopt <- function(client, handle, run_name = NULL) {
  run_id <- .c_mlo_run_id(handle)
  known <- client$runs[[run_id]]
  if (!is.null(known)) {
    known$state$status <- "RUNNING"
    return(known)
  }
  state <- new.env(parent = emptyenv())
  state$status <- "RUNNING"
  run <- structure(list(run_id = run_id, run_uuid = run_id,
                        experiment_id = .c_mlo_run_experiment_id(handle),
                        run_name = run_name, handle = handle, client = client, state = state),
                   class = "mlo_run")
  assign(run_id, run, envir = client$runs)
  run
}

.mlo_script <- function() {
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) normalizePath(f[1], mustWork = FALSE) else NULL
}

.mlo_start <- function(client, experiment_name, run_name, parent, run_id, tags) {
  if (!is.null(run_id)) {
    res <- .c_mlo_resume_run(client$handle, mlo_id(run_id))
    .mlo_check(res$status)
    run <- .mlo_adopt(client, res$out)
  } else {
    res <- .c_mlo_start_run(client$handle, experiment_name, run_name,
                            if (is.null(parent)) NULL else parent$handle)
    .mlo_check(res$status)
    run <- .mlo_adopt(client, res$out, run_name)
    script <- .mlo_script()
    if (!is.null(script) && !(is.null(parent) && nzchar(Sys.getenv("MLFLOW_RUN_ID"))))
      .mlo_check(.c_mlo_set_tag(run$handle, "mlflow.source.name", script))
  }
  if (length(tags)) {
    .mlo_check(.c_mlo_set_tags(run$handle, length(tags), names(tags),
                               vapply(tags, as.character, "")))
  }
  run
}

mlo_start_run <- function(experiment_name = NULL, run_name = NULL, client = NULL,
                          nested = FALSE, run_id = NULL, tags = NULL,
                          log_system_metrics = NULL) {
  if (!is.null(client)) {
    # as mlflow_start_run(client = ): a run of that client, not the active run
    run <- .mlo_start(client, experiment_name, run_name, NULL, run_id, tags)
    if (isTRUE(log_system_metrics %||% client$system_metrics))
      .mlo_check(.c_mlo_run_set_system_metrics(run$handle, TRUE))
    return(run)
  }
  # the active run: as mlflow's start_run, the variable decides at each start
  sysm <- log_system_metrics %||% .mlo_system_metrics_default()
  n <- length(.mlo$stack)
  if (n && !nested && is.null(run_id)) {
    stop(sprintf(paste0("Run with UUID %s is already active. To start a nested run, call ",
                        "`mlo_start_run()` with `nested = TRUE`."), .mlo$stack[[n]]$run_id),
         call. = FALSE)
  }
  client <- .mlo_default_client()
  parent <- if (nested && n) .mlo$stack[[n]] else NULL
  run <- .mlo_start(client, experiment_name %||% .mlo$experiment_name, run_name, parent,
                    run_id, tags)
  if (isTRUE(sysm)) .mlo_check(.c_mlo_run_set_system_metrics(run$handle, TRUE))
  .mlo_set_stack(c(.mlo$stack, list(run)))
  run
}

# ---- system metrics (MLflow's system/..., sampled by libmlo's own thread) ---------

# As mlflow.enable_system_metrics_logging(): runs started from now on log them (the
# variable is MLflow's, so clients opened later default to it too).
mlo_enable_system_metrics_logging <- function() {
  Sys.setenv(MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING = "true")
  invisible(NULL)
}

mlo_disable_system_metrics_logging <- function() {
  Sys.setenv(MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING = "false")
  invisible(NULL)
}

.mlo_system_metrics_default <- function() {
  v <- tolower(trimws(Sys.getenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")))
  if (v %in% c("", "false", "0", "no")) return(FALSE)
  if (v %in% c("true", "1", "yes")) return(TRUE)
  stop("mlo: MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING must be true or false", call. = FALSE)
}

# One run's system metrics on or off, whatever it started with.
mlo_set_system_metrics <- function(enable = TRUE, run_id = NULL, client = NULL) {
  run <- .mlo_run_for(run_id, client)
  .mlo_check(.c_mlo_run_set_system_metrics(run$handle, isTRUE(enable)))
  invisible(run)
}

mlo_active_run <- function() {
  n <- length(.mlo$stack)
  if (n) .mlo$stack[[n]] else NULL
}

# The run's id, read from the library: a run started while the server was
# unreachable has a local id until the library creates it on the server.
mlo_id <- function(object) {
  if (!inherits(object, "mlo_run")) return(as.character(object))
  if (!isTRUE(object$client$closed)) {
    id <- .c_mlo_run_id(object$handle)
    if (!is.null(id)) return(id)
  }
  object$run_id
}

print.mlo_run <- function(x, ...) {
  cat(sprintf("<mlo_run %s (%s), experiment %s>\n", x$run_id, x$state$status, x$experiment_id))
  invisible(x)
}

# The run a call logs to: run_id's (a run object or an id), the active run, or a new one.
.mlo_run_for <- function(run_id, client) {
  if (inherits(run_id, "mlo_run")) return(run_id)
  if (!is.null(client)) {
    if (is.null(run_id)) stop("`run_id` must be specified when `client` is specified.",
                              call. = FALSE)
    return(.mlo_get_run(client, run_id))
  }
  n <- length(.mlo$stack)
  if (is.null(run_id)) return(if (n) .mlo$stack[[n]] else mlo_start_run())
  for (r in .mlo$stack) if (identical(r$run_id, run_id)) return(r)
  .mlo_get_run(.mlo_default_client(), run_id)
}

.mlo_get_run <- function(client, run_id) {
  run <- client$runs[[run_id]]
  if (!is.null(run)) return(run)
  .mlo_start(client, NULL, NULL, NULL, run_id, NULL)
}

.mlo_end_with <- function(run, status) {
  code <- .mlo_enums$mlo_run_status[[paste0("MLO_RUN_", status)]]
  pos <- which(vapply(.mlo$stack, function(r) identical(r$run_id, run$run_id), TRUE))
  if (length(pos)) {
    # ending a run ends the runs nested in it that are still active
    inner <- rev(.mlo$stack[seq.int(pos[1], length(.mlo$stack))])
    .mlo_set_stack(.mlo$stack[seq_len(pos[1] - 1L)])
    for (r in inner) {
      if (r$state$status == "RUNNING") {
        r$state$status <- status
        .mlo_check(.c_mlo_end_run(r$handle, code))
      }
    }
  } else {
    run$state$status <- status
    .mlo_check(.c_mlo_end_run(run$handle, code))
  }
  invisible(run)
}

mlo_end_run <- function(status = c("FINISHED", "FAILED", "KILLED"), run_id = NULL,
                        client = NULL) {
  status <- match.arg(status)
  if (is.null(run_id) && is.null(client)) {
    n <- length(.mlo$stack)
    if (!n) return(invisible(NULL))
    run <- .mlo$stack[[n]]
  } else {
    run <- .mlo_run_for(run_id, client)
  }
  .mlo_end_with(run, status)
  .mlo_emit_later()
  invisible(run)
}

with.mlo_run <- function(data, expr, ...) {
  status <- "FAILED" # unless expr completes
  on.exit(.mlo_end_with(data, status), add = TRUE)
  withCallingHandlers(force(expr), interrupt = function(cnd) status <<- "KILLED")
  status <- "FINISHED"
  invisible(NULL)
}

# ---- logging --------------------------------------------------------------------

mlo_log_metric <- function(key, value, timestamp = NULL, step = NULL, run_id = NULL,
                           client = NULL) {
  if (is.null(run_id) && is.null(client)) {
    h <- .mlo$handle
    if (is.null(h)) h <- .mlo_run_for(NULL, NULL)$handle
  } else {
    h <- .mlo_run_for(run_id, client)$handle
  }
  # the common case first: one value, at most one step, the current time
  if (length(value) == 1L && length(key) == 1L && is.null(timestamp) && length(step) <= 1L &&
      is.numeric(value)) {
    st <- .Call(C_mlo_log_metric, h, key, value, if (is.null(step)) 0 else step)
    if (st != 0L) .mlo_check(st)
    return(invisible(value))
  }
  if (!is.numeric(value) && !is.logical(value))
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_INVALID_ARGUMENT"]], "metric values must be numeric")
  n <- length(value)
  if (n == 1L && length(key) == 1L && length(step) <= 1L && length(timestamp) == 1L) {
    st <- .Call(C_mlo_log_metric_ts, h, key, value, if (is.null(step)) 0 else step, timestamp)
  } else {
    # a whole vector in one call; steps default to 0, 1, ..., n - 1
    if (is.null(step)) step <- if (n > 1L) seq.int(0, n - 1) else 0
    st <- .c_mlo_log_metrics(h, n, key, as.double(value), step, timestamp)
  }
  if (st != 0L) .mlo_check(st, if (!is.null(timestamp)) "timestamps must be >= 0")
  invisible(value)
}

.mlo_kv <- function(one, many, key, value, run) {
  value <- if (is.character(value)) value else as.character(value)
  if (length(key) == 1L && length(value) == 1L) {
    .mlo_check(one(run$handle, key, value))
  } else {
    if (length(key) != length(value)) stop("mlo: key and value differ in length", call. = FALSE)
    .mlo_check(many(run$handle, length(key), key, value))
  }
  .mlo_emit_later()
}

mlo_log_param <- function(key, value, run_id = NULL, client = NULL) {
  .mlo_kv(.c_mlo_log_param, .c_mlo_log_params, key, value, .mlo_run_for(run_id, client))
  invisible(value)
}

mlo_set_tag <- function(key, value, run_id = NULL, client = NULL) {
  .mlo_kv(.c_mlo_set_tag, .c_mlo_set_tags, key, value, .mlo_run_for(run_id, client))
  invisible(value)
}

mlo_log_batch <- function(metrics = NULL, params = NULL, tags = NULL, run_id = NULL,
                          client = NULL) {
  run <- .mlo_run_for(run_id, client)
  if (!is.null(params) && nrow(params))
    .mlo_check(.c_mlo_log_params(run$handle, nrow(params), as.character(params$key),
                                 as.character(params$value)))
  if (!is.null(tags) && nrow(tags))
    .mlo_check(.c_mlo_set_tags(run$handle, nrow(tags), as.character(tags$key),
                               as.character(tags$value)))
  if (!is.null(metrics) && nrow(metrics)) {
    .mlo_check(.c_mlo_log_metrics(run$handle, nrow(metrics), as.character(metrics$key),
                                  as.double(metrics$value), metrics$step %||% 0,
                                  metrics$timestamp))
  }
  .mlo_emit_later()
  invisible(NULL)
}

# ---- artifacts, models, datasets ----------------------------------------------------

# A file keeps its name under artifact_path; a directory's content goes under it.
# Returns once the content is in the library's store (the file may be deleted at
# once); the upload runs in the background and mlo_flush() waits for it.
mlo_log_artifact <- function(path, artifact_path = NULL, run_id = NULL, client = NULL) {
  run <- .mlo_run_for(run_id, client)
  if (!is.character(path) || length(path) != 1L || is.na(path))
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_INVALID_ARGUMENT"]], "path must be a single string")
  .mlo_check(.c_mlo_log_artifact(run$handle, path.expand(path), artifact_path))
  .mlo_emit_later()
  invisible(NULL)
}

# A raw vector (or a string, written as UTF-8) as the artifact file artifact_file.
mlo_log_bytes <- function(data, artifact_file, run_id = NULL, client = NULL) {
  if (is.character(data)) data <- charToRaw(enc2utf8(paste(data, collapse = "\n")))
  if (!is.raw(data))
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_INVALID_ARGUMENT"]],
              "data must be a raw vector or a character vector")
  run <- .mlo_run_for(run_id, client)
  .mlo_check(.c_mlo_log_artifact_bytes(run$handle, data, artifact_file))
  .mlo_emit_later()
  invisible(NULL)
}

# Text as a UTF-8 file artifact (lines joined with newlines), as mlflow's log_text.
mlo_log_text <- function(text, artifact_file, run_id = NULL, client = NULL) {
  if (!is.character(text))
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_INVALID_ARGUMENT"]], "text must be a character vector")
  mlo_log_bytes(charToRaw(enc2utf8(paste(text, collapse = "\n"))), artifact_file, run_id, client)
}

# The client and run reference of the server-side calls: a run object gives both.
.mlo_ref <- function(run_id, client) {
  if (inherits(run_id, "mlo_run")) {
    return(list(client = client %||% run_id$client, ref = mlo_id(run_id)))
  }
  if (is.null(run_id)) {
    run <- mlo_active_run()
    if (is.null(run)) stop("mlo: no active run; give run_id", call. = FALSE)
    return(list(client = client %||% run$client, ref = mlo_id(run)))
  }
  list(client = client %||% .mlo_default_client(), ref = as.character(run_id))
}

.mlo_rel <- function(path) {
  if (is.null(path) || is.na(path) || !nzchar(path) || path == ".") return("")
  if (grepl("\\", path, fixed = TRUE) || startsWith(path, "/") ||
      ".." %in% strsplit(path, "/", fixed = TRUE)[[1]])
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_INVALID_PATH"]],
              sprintf("path '%s' could escape the artifact root", path))
  sub("/+$", "", gsub("/+", "/", path))
}

# mlflow_list_artifacts(path, run_id, client): the entries directly under path, as a
# data frame (path, is_dir, file_size; file_size NA for a directory).  run_id may be
# a run, a run id, or a URI (runs:/, models:/name/version, models:/name@alias).
mlo_list_artifacts <- function(path = NULL, run_id = NULL, client = NULL) {
  r <- .mlo_ref(run_id, client)
  rel <- .mlo_rel(path)
  res <- .c_mlo_list_artifacts(r$client$handle, r$ref, if (nzchar(rel)) rel else NULL)
  .mlo_check(res$status)
  size <- as.numeric(res$size)
  size[res$is_dir != 0L | size < 0] <- NA_real_
  out <- data.frame(path = as.character(res$path), is_dir = res$is_dir != 0L,
                    file_size = size, stringsAsFactors = FALSE)
  out[order(out$path), , drop = FALSE]
}

# mlflow_download_artifacts(path, run_id, client): downloads the file or directory
# at path (NULL: all of the run's artifacts) into dst_path (default: a new temporary
# directory) and returns its local path (<dst_path>/<path>).
mlo_download_artifacts <- function(path = NULL, run_id = NULL, client = NULL, dst_path = NULL) {
  r <- .mlo_ref(run_id, client)
  rel <- .mlo_rel(path)
  ref <- r$ref
  if (startsWith(ref, "runs:/")) { # runs:/<id>/<path>: its path joins ours
    parts <- strsplit(sub("^runs:/+", "", ref), "/", fixed = TRUE)[[1]]
    ref <- parts[1]
    inner <- .mlo_rel(paste(parts[-1], collapse = "/"))
    rel <- sub("^/+", "", sub("/+$", "", paste(inner, rel, sep = "/")))
  }
  if (is.null(dst_path)) {
    dst_path <- tempfile("mlo-artifacts-")
  }
  dir.create(dst_path, recursive = TRUE, showWarnings = FALSE)
  dst <- normalizePath(dst_path, mustWork = TRUE)
  if (!nzchar(rel)) {
    dest <- local <- dst
  } else {
    # the library puts what is at rel into dest: is rel a directory or a file?
    parent <- dirname(rel)
    entries <- mlo_list_artifacts(if (parent == ".") NULL else parent, ref, r$client)
    hit <- entries[basename(sub("/+$", "", entries$path)) == basename(rel), , drop = FALSE]
    if (!nrow(hit))
      .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_NOT_FOUND"]],
                sprintf("no artifact '%s' in %s", rel, ref))
    local <- file.path(dst, rel)
    dest <- if (hit$is_dir[1]) local else dirname(local)
  }
  .mlo_check(.c_mlo_download_artifacts(r$client$handle, ref, if (nzchar(rel)) rel else NULL, dest))
  local
}

# Registers the run's artifact directory artifact_path as a new version of the
# registered model name (created if missing); returns the version number.
mlo_register_model <- function(artifact_path, name, run_id = NULL, client = NULL) {
  run <- .mlo_run_for(run_id, client)
  res <- .c_mlo_register_model(run$handle, artifact_path, name)
  .mlo_check(res$status)
  .mlo_emit_later()
  res$version
}

# Points alias of the registered model name at version ("models:/<name>@<alias>").
mlo_set_model_alias <- function(name, alias, version, client = NULL) {
  client <- client %||% .mlo_default_client()
  .mlo_check(.c_mlo_set_model_alias(client$handle, name, alias, as.numeric(version)))
  invisible(NULL)
}

# Records that the run used a dataset: name, source (a path, a URL, dvc://, lakefs://)
# and digest (NULL: computed from a local file or directory source).
mlo_log_dataset <- function(name, source, digest = NULL, run_id = NULL, client = NULL) {
  run <- .mlo_run_for(run_id, client)
  .mlo_check(.c_mlo_log_dataset(run$handle, name, source, digest))
  .mlo_emit_later()
  invisible(NULL)
}

# ---- histograms -------------------------------------------------------------------

mlo_histogram <- function(key, interval_ms = 1000, run_id = NULL, client = NULL) {
  run <- .mlo_run_for(run_id, client)
  res <- .c_mlo_histogram_new(run$handle, key, interval_ms)
  .mlo_check(res$status)
  hists <- run$client$hists
  if (is.null(hists)) hists <- run$client$hists <- new.env(parent = emptyenv())
  id <- as.character(length(ls(hists, all.names = TRUE)) + 1L)
  assign(id, res$out, envir = hists)
  structure(list(handle = res$out, key = key, run_id = run$run_id, id = id,
                 client = run$client), class = "mlo_histogram")
}

mlo_histogram_record <- function(histogram, value) {
  if (!is.numeric(value))
    .mlo_stop(.mlo_enums$mlo_status[["MLO_ERR_INVALID_ARGUMENT"]], "values must be numeric")
  h <- histogram$handle
  for (v in value) {
    st <- .c_mlo_histogram_record(h, v)
    if (!identical(st, 0L)) .mlo_check(st, "histogram values must be >= 0 and not NaN")
  }
  invisible(histogram)
}

mlo_histogram_close <- function(histogram) {
  hists <- histogram$client$hists
  if (!is.null(hists) && exists(histogram$id, envir = hists, inherits = FALSE))
    rm(list = histogram$id, envir = hists)
  .mlo_check(.c_mlo_histogram_free(histogram$handle))
}

# the histograms of a client are freed before it is closed (that emits their last interval)
.mlo_close_histograms <- function(client) {
  hists <- client$hists
  if (is.null(hists)) return(invisible())
  for (id in ls(hists, all.names = TRUE)) {
    try(.c_mlo_histogram_free(get(id, envir = hists)), silent = TRUE)
    rm(list = id, envir = hists)
  }
  invisible()
}
