#include "aclip-nnls.h"

#include <math.h>
#include <string.h>

#define MAX_COLS 64

/* Least squares over the columns listed in `columns` (k of them) of the column-major scaled
 * matrix `a` ([n_cols][n_rows]); writes the k coefficients to z. Householder QR on a copy.
 * work: [n_rows·k + n_rows] doubles. */
static void
solve_subset (int n_rows, const double *a, const double *b, const int *columns, int k, double *z,
              double *work)
{
  double *q = work;              /* [k][n_rows] column-major copy, becomes R and reflectors */
  double *y = work + n_rows * k; /* [n_rows] right-hand side, becomes Qᵀb */
  for (int j = 0; j < k; j++)
    memcpy (q + j * n_rows, a + columns[j] * n_rows, n_rows * sizeof (double));
  memcpy (y, b, n_rows * sizeof (double));

  double diag[MAX_COLS];
  double max_diag = 0.0;
  int rank = MIN (k, n_rows);
  for (int j = 0; j < rank; j++) {
    double *column = q + j * n_rows;
    double norm = 0.0;
    for (int i = j; i < n_rows; i++)
      norm += column[i] * column[i];
    norm = sqrt (norm);
    if (norm == 0.0) {
      diag[j] = 0.0;
      continue;
    }
    double alpha = column[j] > 0 ? -norm : norm;
    /* v = column[j:] − alpha e_j, stored in place; H = I − 2 v vᵀ / vᵀv. */
    column[j] -= alpha;
    double vtv = 0.0;
    for (int i = j; i < n_rows; i++)
      vtv += column[i] * column[i];
    for (int l = j + 1; l < k; l++) {
      double *other = q + l * n_rows;
      double dot = 0.0;
      for (int i = j; i < n_rows; i++)
        dot += column[i] * other[i];
      double factor = 2.0 * dot / vtv;
      for (int i = j; i < n_rows; i++)
        other[i] -= factor * column[i];
    }
    double dot = 0.0;
    for (int i = j; i < n_rows; i++)
      dot += column[i] * y[i];
    double factor = 2.0 * dot / vtv;
    for (int i = j; i < n_rows; i++)
      y[i] -= factor * column[i];
    diag[j] = alpha;
    max_diag = MAX (max_diag, fabs (alpha));
  }
  /* Back substitution; directions with negligible R_jj (degenerate columns) get 0. */
  for (int j = k - 1; j >= 0; j--) {
    if (j >= rank || fabs (diag[j]) <= 1e-12 * max_diag) {
      z[j] = 0.0;
      continue;
    }
    double sum = y[j];
    for (int l = j + 1; l < k; l++)
      sum -= q[l * n_rows + j] * z[l];
    z[j] = sum / diag[j];
  }
}

gboolean
aclip_nnls (int n_rows, int n_cols, const double *matrix, const double *rhs, double *solution,
            double *residual_sq)
{
  g_return_val_if_fail (n_rows > 0 && n_cols > 0 && n_cols <= MAX_COLS, FALSE);

  /* Column-major copy with unit-norm columns: a[j][i] = A[i][j] / scale[j]. */
  g_autofree double *a = g_new (double, (gsize) n_cols * n_rows);
  g_autofree double *work = g_new (double, (gsize) n_rows * (n_cols + 2));
  double scale[MAX_COLS];
  for (int j = 0; j < n_cols; j++) {
    double norm = 0.0;
    for (int i = 0; i < n_rows; i++)
      norm += matrix[i * n_cols + j] * matrix[i * n_cols + j];
    scale[j] = norm > 0 ? sqrt (norm) : 1.0;
    for (int i = 0; i < n_rows; i++)
      a[j * n_rows + i] = matrix[i * n_cols + j] / scale[j];
  }

  double x[MAX_COLS] = { 0 }, z[MAX_COLS];
  gboolean passive[MAX_COLS] = { FALSE };
  int columns[MAX_COLS];
  double *residual = work + (gsize) n_rows * (n_cols + 1);
  double rhs_norm = 0.0;
  for (int i = 0; i < n_rows; i++)
    rhs_norm += rhs[i] * rhs[i];
  double tolerance = 1e-12 * sqrt (rhs_norm) + 1e-300;

  gboolean converged = FALSE;
  int max_iterations = 3 * n_cols + 30;
  for (int iteration = 0; iteration < max_iterations; iteration++) {
    /* gradient = Aᵀ (b − A x) */
    for (int i = 0; i < n_rows; i++) {
      double sum = rhs[i];
      for (int j = 0; j < n_cols; j++)
        sum -= a[j * n_rows + i] * x[j];
      residual[i] = sum;
    }
    int best = -1;
    double best_gradient = tolerance;
    for (int j = 0; j < n_cols; j++) {
      double sum = 0.0;
      for (int i = 0; i < n_rows; i++)
        sum += a[j * n_rows + i] * residual[i];
      if (!passive[j] && sum > best_gradient) {
        best_gradient = sum;
        best = j;
      }
    }
    if (best < 0) {
      converged = TRUE;
      break;
    }
    passive[best] = TRUE;

    /* Inner loop: step towards the unconstrained optimum on the passive set, dropping
     * columns that would turn negative. */
    for (int inner = 0; inner <= n_cols; inner++) {
      int k = 0;
      for (int j = 0; j < n_cols; j++)
        if (passive[j])
          columns[k++] = j;
      double z_subset[MAX_COLS];
      solve_subset (n_rows, a, rhs, columns, k, z_subset, work);
      for (int j = 0; j < n_cols; j++)
        z[j] = 0.0;
      gboolean all_positive = TRUE;
      for (int l = 0; l < k; l++) {
        z[columns[l]] = z_subset[l];
        if (z_subset[l] <= 0)
          all_positive = FALSE;
      }
      if (all_positive) {
        memcpy (x, z, sizeof (double) * n_cols);
        break;
      }
      double alpha = 1.0;
      for (int l = 0; l < k; l++) {
        int j = columns[l];
        if (z[j] <= 0) {
          double denominator = x[j] - z[j];
          double step = denominator > 0 ? x[j] / denominator : 0.0;
          alpha = MIN (alpha, step);
        }
      }
      double largest = 0.0;
      for (int j = 0; j < n_cols; j++) {
        if (passive[j]) {
          x[j] += alpha * (z[j] - x[j]);
          largest = MAX (largest, fabs (x[j]));
        }
      }
      /* The column that limited the step is now at zero (up to rounding): make it active. */
      for (int j = 0; j < n_cols; j++) {
        if (passive[j] && x[j] <= 1e-14 * largest) {
          x[j] = 0.0;
          passive[j] = FALSE;
        }
      }
    }
  }

  double sum_sq = 0.0;
  for (int i = 0; i < n_rows; i++) {
    double r = rhs[i];
    for (int j = 0; j < n_cols; j++)
      r -= a[j * n_rows + i] * x[j];
    sum_sq += r * r;
  }
  for (int j = 0; j < n_cols; j++)
    solution[j] = x[j] / scale[j];
  if (residual_sq)
    *residual_sq = sum_sq;
  return converged;
}
