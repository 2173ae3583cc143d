/* aclip-profile.h — galaxy and PSF light profiles as mixtures of Gaussians.
 *
 * A circular profile (Sérsic, Moffat) is approximated by a non-negative mixture of concentric
 * Gaussians, fitted once by NNLS to the profile sampled in radius. Shearing a mixture into an
 * ellipse, rotating it and convolving it with a PSF mixture and the pixel stay analytic (the
 * covariances add), so an image is a sum of elliptical Gaussians with exactly known fluxes.
 * Each Gaussian is drawn with a multiplicative recurrence along image rows (two products per
 * pixel, no exp), which is what makes the simulator's images cheap.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_MOG_MAX 24

/* A circular unit-flux profile: Σ amplitude = 1; variance in units of the profile's scale
 * (half-light radius for Sérsic, FWHM for Moffat) squared. */
typedef struct
{
  int n;
  double amplitude[ACLIP_MOG_MAX];
  double variance[ACLIP_MOG_MAX];
} AclipMog;

/* Sérsic profile of index sersic_n (0.3 ≤ n ≤ 8) truncated smoothly from r1 = min(2 + 1.25n, 7)
 * to r1 + 1 untruncated half-light radii (the Tractor's galaxy models end at 4 r_e for n = 1
 * and 8 r_e for n = 4; this generalises that in n), as at most n_basis (≤ ACLIP_MOG_MAX)
 * Gaussians. The mixture is
 * scaled so that its own half-light radius is exactly 1. max_enclosed_error (may be NULL):
 * the largest difference of enclosed-flux fraction between mixture and profile, at any
 * radius. */
gboolean aclip_mog_fit_sersic (double sersic_n, int n_basis, AclipMog *mog,
                               double *max_enclosed_error, GError **error);
/* Moffat profile (1 + (r/α)²)^−β with FWHM 1, truncated smoothly between 4 and 5 FWHM. */
gboolean aclip_mog_fit_moffat (double beta, int n_basis, AclipMog *mog, double *max_enclosed_error,
                               GError **error);
/* Radius enclosing half the flux. */
double aclip_mog_half_light_radius (const AclipMog *mog);
/* Fraction of the flux within radius r. */
double aclip_mog_enclosed_fraction (const AclipMog *mog, double r);

/* An elliptical Gaussian on an image, in pixel units: pixel (i, j) has its centre at
 * x = i, y = j. */
typedef struct
{
  double flux;          /* total flux (sum over an unbounded image) */
  double x, y;          /* centre */
  double cxx, cxy, cyy; /* covariance, pixels² */
} AclipGaussian2d;

/* Covariance of an elliptical Gaussian of circularised σ² `variance`, axis ratio q (minor/major)
 * and position angle (radians, of the major axis from +y towards −x: north through east when
 * north is up and east left). */
void aclip_gaussian_covariance (double variance, double axis_ratio, double position_angle,
                                double *cxx, double *cxy, double *cyy);

/* Adds the Gaussians, point-sampled at pixel centres, to image[height][width]. Each is cut
 * where it falls below e⁻¹⁸ of its peak (losing < 2e-8 of its flux). For point sampling to
 * conserve flux, each σ should exceed ~0.6 pixel: include the pixel's own 1/12 pixel² in the
 * covariance and a PSF. */
void aclip_gaussians_render (const AclipGaussian2d *gaussians, int n_gaussians, int width,
                             int height, float *image);

G_END_DECLS
