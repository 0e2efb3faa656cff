library(testthat)
library(mlo)

test_check("mlo")
