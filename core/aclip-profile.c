#include "aclip-profile.h"

#include <glib/gi18n-lib.h>
#include <math.h>

#include "aclip-error.h"
#include "aclip-nnls.h"

#define N_RADII 400
/* Pixels are drawn while exp(−Q/2) ≥ e^(−CUT_EXPONENT). */
#define CUT_EXPONENT 18.0
/* Independent recurrences per image row. */
#define LANES 8

typedef double (*RadialProfile) (double r, const double *parameters);

/* Smooth truncation: 1 inside r1, falling as (1 − u²)² to 0 at r2. */
static double
taper (double r, double r1, double r2)
{
  if (r <= r1)
    return 1.0;
  if (r >= r2)
    return 0.0;
  double u = (r - r1) / (r2 - r1);
  return (1.0 - u * u) * (1.0 - u * u);
}

/* b_n such that r_e encloses half the light of an untruncated Sérsic profile: Ciotti &
 * Bertin (1999) asymptotic series for n ≥ 0.36, MacArthur et al. (2003) polynomial below. */
static double
sersic_b (double n)
{
  if (n < 0.36)
    return 0.01945 + n * (-0.8902 + n * (10.95 + n * (-19.67 + n * 13.43)));
  return 2 * n - 1.0 / 3 + 4.0 / (405 * n) + 46.0 / (25515 * n * n) + 131.0 / (1148175 * n * n * n);
}

/* parameters: n, b_n, r1, r2 (radii in untruncated half-light radii) */
static double
sersic_profile (double r, const double *parameters)
{
  double n = parameters[0], b = parameters[1];
  return exp (-b * (pow (r, 1.0 / n) - 1.0)) * taper (r, parameters[2], parameters[3]);
}

/* parameters: α, β, r1, r2 (in FWHM) */
static double
moffat_profile (double r, const double *parameters)
{
  double u = r / parameters[0];
  return pow (1.0 + u * u, -parameters[1]) * taper (r, parameters[2], parameters[3]);
}

static double
gaussian_2d (double r, double variance)
{
  return exp (-0.5 * r * r / variance) / (2 * G_PI * variance);
}

/* Fits non-negative amplitudes of n_basis unit-flux Gaussians, σ log-spaced in
 * [sigma_min, sigma_max], to the profile on [0, r_max], minimising
 * Σ (I − M)² 2πr dr / (I + ε): a χ²-like weight that balances the bright core and the faint
 * wings, which a plain squared error would neglect. */
static gboolean
fit_mixture (RadialProfile profile, const double *parameters, double r_max, double sigma_min,
             double sigma_max, int n_basis, double softening_radius, AclipMog *mog,
             double *max_enclosed_error, GError **error)
{
  if (n_basis < 2 || n_basis > ACLIP_MOG_MAX) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("a Gaussian mixture needs 2 to %d components (asked for %d)"), ACLIP_MOG_MAX,
                 n_basis);
    return FALSE;
  }
  double radius[N_RADII], value[N_RADII], area[N_RADII];
  double total = 0.0;
  /* Radii crowd towards the centre, where cuspy profiles change fastest. */
  for (int k = 0; k < N_RADII; k++) {
    double u = (k + 0.5) / N_RADII;
    radius[k] = r_max * u * u;
    double dr = r_max * 2 * u / N_RADII;
    area[k] = 2 * G_PI * radius[k] * dr;
    value[k] = profile (radius[k], parameters);
    total += value[k] * area[k];
  }
  if (!(total > 0) || !isfinite (total)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("cannot fit a profile with no flux (parameters %g, %g)"), parameters[0],
                 parameters[1]);
    return FALSE;
  }
  double softening = 1e-3 * profile (softening_radius, parameters) / total;

  double variance[ACLIP_MOG_MAX];
  for (int j = 0; j < n_basis; j++) {
    double sigma = sigma_min * pow (sigma_max / sigma_min, (double) j / (n_basis - 1));
    variance[j] = sigma * sigma;
  }
  g_autofree double *design = g_new (double, N_RADII * n_basis); /* [N_RADII][n_basis] */
  double target[N_RADII];
  for (int k = 0; k < N_RADII; k++) {
    double normalised = value[k] / total;
    double row_weight = sqrt (area[k] / (normalised + softening));
    target[k] = row_weight * normalised;
    for (int j = 0; j < n_basis; j++)
      design[k * n_basis + j] = row_weight * gaussian_2d (radius[k], variance[j]);
  }
  double amplitude[ACLIP_MOG_MAX];
  aclip_nnls (N_RADII, n_basis, design, target, amplitude, NULL);

  double sum = 0.0;
  for (int j = 0; j < n_basis; j++)
    sum += amplitude[j];
  if (!(sum > 0)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("the Gaussian-mixture fit of a profile failed"));
    return FALSE;
  }
  /* Keep components above 1e-5 of the flux; renormalise to unit flux. */
  mog->n = 0;
  double kept = 0.0;
  for (int j = 0; j < n_basis; j++)
    if (amplitude[j] > 1e-5 * sum)
      kept += amplitude[j];
  for (int j = 0; j < n_basis; j++) {
    if (amplitude[j] > 1e-5 * sum) {
      mog->amplitude[mog->n] = amplitude[j] / kept;
      mog->variance[mog->n] = variance[j];
      mog->n++;
    }
  }
  if (max_enclosed_error) {
    /* Enclosed flux of the profile (midpoint rule, at the outer edge of each sample's ring)
     * against the mixture's. */
    double worst = 0.0, enclosed = 0.0;
    for (int k = 0; k < N_RADII; k++) {
      enclosed += value[k] * area[k] / total;
      double u = (k + 1.0) / N_RADII;
      worst = MAX (worst, fabs (enclosed - aclip_mog_enclosed_fraction (mog, r_max * u * u)));
    }
    *max_enclosed_error = worst;
  }
  return TRUE;
}

double
aclip_mog_enclosed_fraction (const AclipMog *mog, double r)
{
  double sum = 0.0;
  for (int j = 0; j < mog->n; j++)
    sum += mog->amplitude[j] * (1.0 - exp (-0.5 * r * r / mog->variance[j]));
  return sum;
}

double
aclip_mog_half_light_radius (const AclipMog *mog)
{
  double low = 0.0, high = 1.0;
  while (aclip_mog_enclosed_fraction (mog, high) < 0.5)
    high *= 2;
  for (int iteration = 0; iteration < 100; iteration++) {
    double middle = 0.5 * (low + high);
    if (aclip_mog_enclosed_fraction (mog, middle) < 0.5)
      low = middle;
    else
      high = middle;
  }
  return 0.5 * (low + high);
}

gboolean
aclip_mog_fit_sersic (double sersic_n, int n_basis, AclipMog *mog, double *max_enclosed_error,
                      GError **error)
{
  if (!(sersic_n >= 0.3 && sersic_n <= 8.0)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Sérsic index %g is outside the supported range 0.3–8"), sersic_n);
    return FALSE;
  }
  double r1 = MIN (2.0 + 1.25 * sersic_n, 7.0), r2 = r1 + 1.0;
  double parameters[4] = { sersic_n, sersic_b (sersic_n), r1, r2 };
  if (!fit_mixture (sersic_profile, parameters, r2, 1e-3, 0.6 * r2, n_basis, 1.0, mog,
                    max_enclosed_error, error))
    return FALSE;
  double half_light = aclip_mog_half_light_radius (mog);
  for (int j = 0; j < mog->n; j++)
    mog->variance[j] /= half_light * half_light;
  return TRUE;
}

gboolean
aclip_mog_fit_moffat (double beta, int n_basis, AclipMog *mog, double *max_enclosed_error,
                      GError **error)
{
  if (!(beta >= 1.5 && beta <= 20.0)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Moffat β = %g is outside the supported range 1.5–20"), beta);
    return FALSE;
  }
  double alpha = 0.5 / sqrt (pow (2.0, 1.0 / beta) - 1.0);
  double parameters[4] = { alpha, beta, 4.0, 5.0 };
  return fit_mixture (moffat_profile, parameters, 5.0, 0.1, 2.5, n_basis, 0.5, mog,
                      max_enclosed_error, error);
}

void
aclip_gaussian_covariance (double variance, double axis_ratio, double position_angle, double *cxx,
                           double *cxy, double *cyy)
{
  /* Circularised σ² = σ_major·σ_minor, σ_minor/σ_major = q. */
  double major = variance / axis_ratio, minor = variance * axis_ratio;
  double ux = -sin (position_angle), uy = cos (position_angle); /* major axis */
  double vx = uy, vy = -ux;                                     /* minor axis */
  *cxx = major * ux * ux + minor * vx * vx;
  *cxy = major * ux * uy + minor * vx * vy;
  *cyy = major * uy * uy + minor * vy * vy;
}

void
aclip_gaussians_render (const AclipGaussian2d *gaussians, int n_gaussians, int width, int height,
                        float *image)
{
  const double q_max = 2.0 * CUT_EXPONENT;
  for (int g = 0; g < n_gaussians; g++) {
    const AclipGaussian2d *gaussian = &gaussians[g];
    double det = gaussian->cxx * gaussian->cyy - gaussian->cxy * gaussian->cxy;
    if (!(det > 0) || gaussian->flux == 0.0)
      continue;
    /* Precision matrix [[a, b], [b, c]]; Q(dx, dy) = a dx² + 2b dx dy + c dy². */
    double a = gaussian->cyy / det, b = -gaussian->cxy / det, c = gaussian->cxx / det;
    double peak = gaussian->flux / (2 * G_PI * sqrt (det));
    double y_extent = sqrt (q_max * gaussian->cyy);
    int y_first = MAX (0, (int) ceil (gaussian->y - y_extent));
    int y_last = MIN (height - 1, (int) floor (gaussian->y + y_extent));
    double shrink = exp (-a);                     /* of the one-pixel ratio, per pixel */
    double lane_shift = exp (-a * LANES);         /* of the L-pixel ratio, per pixel */
    double ratio_step = exp (-a * LANES * LANES); /* of the L-pixel ratio, per L pixels */
    for (int y = y_first; y <= y_last; y++) {
      double dy = y - gaussian->y;
      /* Row span where Q ≤ q_max: a dx² + 2b dy dx + (c dy² − q_max) ≤ 0. */
      double discriminant = b * b * dy * dy - a * (c * dy * dy - q_max);
      if (discriminant < 0)
        continue;
      double root = sqrt (discriminant);
      double dx_low = (-b * dy - root) / a, dx_high = (-b * dy + root) / a;
      int x_first = MAX (0, (int) ceil (gaussian->x + dx_low));
      int x_last = MIN (width - 1, (int) floor (gaussian->x + dx_high));
      if (x_first > x_last)
        continue;
      /* Along the row value(x+1)/value(x) = exp(−(a(2dx+1) + 2b dy)/2), a ratio that shrinks
       * by e^(−a) per pixel. LANES interleaved recurrences, each stepping LANES pixels, keep
       * the products independent (so they pipeline and vectorise); three exp() per row start
       * them. Within the span every value is ≥ e⁻¹⁸ of the peak, so nothing underflows. */
      double dx = x_first - gaussian->x;
      double value[LANES], ratio[LANES];
      value[0] = peak * exp (-0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy));
      double one_pixel = exp (-0.5 * (a * (2 * dx + 1) + 2 * b * dy));
      for (int lane = 1; lane < LANES; lane++) {
        value[lane] = value[lane - 1] * one_pixel;
        one_pixel *= shrink;
      }
      /* value(x+L)/value(x) = exp(−(a(2L dx + L²) + 2L b dy)/2); one pixel later it is
       * e^(−a L) smaller. */
      ratio[0] = exp (-0.5 * (a * (2 * LANES * dx + LANES * LANES) + 2 * LANES * b * dy));
      for (int lane = 1; lane < LANES; lane++)
        ratio[lane] = ratio[lane - 1] * lane_shift;
      float *row = image + (gsize) y * width;
      int x = x_first;
      for (; x + LANES - 1 <= x_last; x += LANES) {
        for (int lane = 0; lane < LANES; lane++) {
          row[x + lane] += (float) value[lane];
          value[lane] *= ratio[lane];
          ratio[lane] *= ratio_step;
        }
      }
      for (int lane = 0; x <= x_last; x++, lane++)
        row[x] += (float) value[lane];
    }
  }
}
