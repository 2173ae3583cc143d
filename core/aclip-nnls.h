/* aclip-nnls.h — small dense non-negative least squares.
 *
 * Lawson & Hanson's active-set method (Solving Least Squares Problems, 1974, ch. 23), with
 * each unconstrained sub-problem solved by Householder QR and the columns scaled to unit norm
 * first, so templates whose fluxes differ by orders of magnitude are handled alike. Meant for
 * small problems (a few dozen columns): fitting five SED templates to five magnitudes, or a
 * mixture of Gaussians to a radial profile.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Minimises |A x − b|² subject to x ≥ 0.
 *   matrix:   A, [n_rows][n_cols] row-major
 *   rhs:      b, [n_rows]
 *   solution: x, [n_cols] (output)
 *   residual_sq: |A x − b|² at the solution (output, may be NULL)
 * Returns FALSE (solution still the last feasible iterate) if the iteration limit is reached,
 * which does not happen for well-posed problems. n_cols ≤ 64. */
gboolean aclip_nnls (int n_rows, int n_cols, const double *matrix, const double *rhs,
                     double *solution, double *residual_sq);

G_END_DECLS
