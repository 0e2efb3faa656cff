# The iris grid of examples/python/iris_grid.py in base R: a k-nearest-neighbours
# classifier (written here, base R has no random forest) over a grid of k and
# feature scaling; one run per configuration with its params, accuracy and
# macro-F1 on a held-out split, and the model (saveRDS) as an artifact.
#
#   MLFLOW_TRACKING_URI=http://127.0.0.1:5000 Rscript examples/r/iris_grid.R
library(mlo)

if (is.na(mlo_get_tracking_uri()) || !nzchar(mlo_get_tracking_uri()))
  stop("iris_grid: set MLFLOW_TRACKING_URI to the tracking server")

knn_fit <- function(x, y, k, scale) {
  center <- colMeans(x)
  spread <- if (scale) apply(x, 2, stats::sd) else rep(1, ncol(x))
  list(x = sweep(sweep(x, 2, center), 2, spread, "/"), y = y, k = k, center = center,
       spread = spread)
}
knn_predict <- function(model, x) {
  x <- sweep(sweep(x, 2, model$center), 2, model$spread, "/")
  apply(x, 1, function(row) {
    d <- colSums((t(model$x) - row)^2)
    votes <- table(model$y[order(d)[seq_len(model$k)]])
    names(votes)[which.max(votes)]
  })
}
macro_f1 <- function(truth, pred) {
  mean(vapply(levels(truth), function(cl) {
    tp <- sum(pred == cl & truth == cl)
    p <- tp / max(1, sum(pred == cl))
    r <- tp / max(1, sum(truth == cl))
    if (p + r == 0) 0 else 2 * p * r / (p + r)
  }, numeric(1)))
}

set.seed(42)
test_idx <- unlist(lapply(split(seq_len(nrow(iris)), iris$Species), sample, 15))
x <- as.matrix(iris[, 1:4])
train_x <- x[-test_idx, ]
train_y <- iris$Species[-test_idx]
test_x <- x[test_idx, ]
test_y <- iris$Species[test_idx]

mlo_set_experiment("iris-knn")
grid <- expand.grid(k = c(1, 5, 15), scale = c(TRUE, FALSE))
for (i in seq_len(nrow(grid))) {
  k <- grid$k[i]
  scale <- grid$scale[i]
  run <- mlo_start_run(run_name = sprintf("knn-k%d-%s", k, if (scale) "scaled" else "raw"))
  with(run, {
    mlo_log_param("k", k)
    mlo_log_param("scale", scale)
    model <- knn_fit(train_x, train_y, k, scale)
    pred <- knn_predict(model, test_x)
    acc <- mean(pred == test_y)
    f1 <- macro_f1(test_y, pred)
    mlo_log_metric("accuracy", acc)
    mlo_log_metric("f1_macro", f1)
    path <- file.path(tempdir(), "model.rds")
    saveRDS(model, path)
    mlo_log_artifact(path, "model")
    cat(sprintf("%s  k=%-3d scale=%-5s accuracy=%.3f  f1_macro=%.3f\n", mlo_id(run), k, scale,
                acc, f1))
  })
}
mlo_flush(60)
cat(sprintf("%d runs logged to %s, experiment iris-knn\n", nrow(grid), mlo_get_tracking_uri()))
