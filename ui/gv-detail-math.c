/* gv-detail-math.c — rendering, coordinates, smoothing, lines, ticks and CSV for the detail
 * view (gv-detail-math.h). GTK-free: the tests call these directly.
 */
#include "gv-detail-math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Images                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Flips an H×W×3 image from FITS order (row 0 at the bottom) to display order in place. */
static void
flip_rows (guint8 *rgb, int height, int width)
{
  gsize row_bytes = (gsize) width * 3;
  g_autofree guint8 *tmp = g_malloc (row_bytes);

  for (int top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
    memcpy (tmp, rgb + (gsize) top * row_bytes, row_bytes);
    memcpy (rgb + (gsize) top * row_bytes, rgb + (gsize) bottom * row_bytes, row_bytes);
    memcpy (rgb + (gsize) bottom * row_bytes, tmp, row_bytes);
  }
}

gboolean
gv_render_image_u8 (const float *flux, int height, int width, const GvImageRendering *rendering,
                    guint8 *rgb, double *low, double *high)
{
  g_return_val_if_fail (flux != NULL && rgb != NULL && rendering != NULL, FALSE);
  g_return_val_if_fail (height > 0 && width > 0, FALSE);

  gsize n = (gsize) height * width;
  double lo = NAN, hi = NAN;
  gboolean ok = TRUE;

  if (rendering->mode == GV_IMAGE_MODE_COLOUR) {
    AclipRgbParams params;
    aclip_rgb_params_init_legacy (&params);
    aclip_rgb_forward_u8 (&params, flux, height, width, rgb);
  } else {
    int band = CLAMP ((int) rendering->mode - (int) GV_IMAGE_MODE_G, 0, 2);
    const float *plane = flux + (gsize) band * n;
    g_autofree float *t = g_new (float, n);

    ok = aclip_stretch_limits (plane, n, rendering->limits, rendering->low_percent,
                               rendering->high_percent, &lo, &hi);
    if (ok) {
      aclip_stretch_apply (plane, n, rendering->stretch, lo, hi, t);
      for (gsize i = 0; i < n; i++) {
        guint8 v = (guint8) lrint (CLAMP (t[i], 0.0f, 1.0f) * 255.0);
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
      }
    } else {
      memset (rgb, 0, n * 3);
    }
  }

  flip_rows (rgb, height, width);
  if (low != NULL)
    *low = lo;
  if (high != NULL)
    *high = hi;
  return ok;
}

void
gv_pixel_to_sky (double ra0, double dec0, double pixscale_arcsec, int width, int height, double x,
                 double y, double *ra, double *dec)
{
  const double deg = G_PI / 180.0;
  double scale = pixscale_arcsec / 3600.0 * deg; /* radians per pixel */
  double xi = -(x - (width - 1) / 2.0) * scale;
  double eta = (y - (height - 1) / 2.0) * scale;
  double d0 = dec0 * deg;
  double denom = cos (d0) - eta * sin (d0);

  double alpha = ra0 + atan2 (xi, denom) / deg;
  double delta = atan2 (sin (d0) + eta * cos (d0), sqrt (xi * xi + denom * denom)) / deg;

  alpha = fmod (alpha, 360.0);
  if (alpha < 0.0)
    alpha += 360.0;
  if (ra != NULL)
    *ra = alpha;
  if (dec != NULL)
    *dec = delta;
}

/* ---------------------------------------------------------------------------------------- */
/* Spectra                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static inline gboolean
good_pixel (const float *flux, const float *ivar, int i)
{
  return ivar[i] > 0.0f && isfinite (ivar[i]) && isfinite (flux[i]);
}

void
gv_smooth_spectrum (const float *flux, const float *ivar, int n, GvSmoothKernel kernel,
                    double width, float *out)
{
  g_return_if_fail (n >= 0);
  g_return_if_fail (n == 0 || (flux != NULL && ivar != NULL && out != NULL));

  /* Kernel weights k(0..radius), symmetric. */
  int radius = 0;
  g_autofree double *k = NULL;

  if (kernel == GV_SMOOTH_GAUSSIAN && width > 1.0) {
    double sigma = width / (2.0 * sqrt (2.0 * G_LN2));
    radius = (int) ceil (3.0 * sigma);
    k = g_new (double, radius + 1);
    for (int d = 0; d <= radius; d++)
      k[d] = exp (-0.5 * (d / sigma) * (d / sigma));
  } else if (kernel == GV_SMOOTH_BOXCAR && width >= 3.0) {
    radius = ((int) floor (width) - 1) / 2; /* full width 2·radius + 1 ≤ width */
    k = g_new (double, radius + 1);
    for (int d = 0; d <= radius; d++)
      k[d] = 1.0;
  }

  for (int i = 0; i < n; i++) {
    if (!good_pixel (flux, ivar, i)) {
      out[i] = NAN;
      continue;
    }
    if (radius == 0) {
      out[i] = flux[i];
      continue;
    }
    double num = 0.0, den = 0.0;
    int j0 = MAX (0, i - radius), j1 = MIN (n - 1, i + radius);
    for (int j = j0; j <= j1; j++) {
      if (!good_pixel (flux, ivar, j))
        continue;
      double w = k[ABS (j - i)] * ivar[j];
      num += w * flux[j];
      den += w;
    }
    out[i] = den > 0.0 ? (float) (num / den) : NAN;
  }
}

/* Vacuum rest wavelengths in Å (SDSS/DESI line lists), sorted. Species names are symbols, not
 * words, so they are not translated. */
static const GvSpectralLine spectral_lines[] = {
  { "[O II]", 3727.092, TRUE },  { "[O II]", 3729.875, TRUE },  { "Ca K", 3934.777, FALSE },
  { "Ca H", 3969.588, FALSE },   { "H\u03b2", 4862.683, TRUE }, { "[O III]", 4960.295, TRUE },
  { "[O III]", 5008.240, TRUE }, { "Mg b", 5176.7, FALSE },     { "Na D", 5894.6, FALSE },
  { "[N II]", 6549.86, TRUE },   { "H\u03b1", 6564.61, TRUE },  { "[N II]", 6585.27, TRUE },
  { "[S II]", 6718.29, TRUE },   { "[S II]", 6732.67, TRUE },
};

const GvSpectralLine *
gv_spectral_lines (gsize *n_lines)
{
  if (n_lines != NULL)
    *n_lines = G_N_ELEMENTS (spectral_lines);
  return spectral_lines;
}

double
gv_line_position (double rest, double z, gboolean rest_frame)
{
  if (rest_frame || !isfinite (z))
    return rest;
  return rest * (1.0 + z);
}

int
gv_axis_ticks (double lo, double hi, int target, double *ticks, int max_ticks, double *step)
{
  if (step != NULL)
    *step = 0.0;
  if (!isfinite (lo) || !isfinite (hi) || !(hi > lo) || target < 1 || max_ticks < 1)
    return 0;

  double raw = (hi - lo) / target;
  double magnitude = pow (10.0, floor (log10 (raw)));
  double f = raw / magnitude;
  double nice = f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0;
  double s = nice * magnitude;

  /* Ticks are i·s for integer i, so that labels are exact multiples (no accumulated error). A
   * tolerance of 1e-9 steps keeps ends that equal a multiple up to rounding. */
  double first = ceil (lo / s - 1e-9);
  int count = 0;
  for (double i = first; i * s <= hi + 1e-9 * s && count < max_ticks; i += 1.0) {
    double t = i * s;
    ticks[count++] = fabs (t) < 1e-12 * s ? 0.0 : t;
  }
  if (step != NULL)
    *step = s;
  return count;
}

int
gv_axis_tick_decimals (double step)
{
  if (!(step > 0.0) || !isfinite (step) || step >= 1.0)
    return 0;
  return (int) ceil (-log10 (step) - 1e-9);
}

gboolean
gv_plot_range (const float *values, gsize n, double low_percent, double high_percent, double margin,
               double *lo, double *hi)
{
  double a, b;

  if (!aclip_stretch_limits (values, n, ACLIP_LIMITS_PERCENTILE, low_percent, high_percent, &a, &b))
    return FALSE;
  if (b - a <= 0.0) {
    double half = a != 0.0 ? 0.1 * fabs (a) : 1.0;
    a -= half;
    b += half;
  } else {
    double pad = margin * (b - a);
    a -= pad;
    b += pad;
  }
  *lo = a;
  *hi = b;
  return TRUE;
}

static int
compare_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

/* Median of the finite values of flux whose wavelength lies in [lo, hi]; NaN if none. */
static double
median_in_range (const double *wave, const float *flux, int n, double lo, double hi)
{
  g_autofree float *v = g_new (float, MAX (n, 1));
  int m = 0;

  for (int i = 0; i < n; i++)
    if (wave[i] >= lo && wave[i] <= hi && isfinite (flux[i]))
      v[m++] = flux[i];
  if (m == 0)
    return NAN;
  qsort (v, m, sizeof *v, compare_float);
  return m % 2 ? v[m / 2] : 0.5 * ((double) v[m / 2 - 1] + v[m / 2]);
}

double
gv_overlay_scale (const double *main_wave, const float *main_flux, int main_n, const double *wave,
                  const float *flux, int n)
{
  if (main_n < 1 || n < 1)
    return 1.0;
  double lo = MAX (main_wave[0], wave[0]);
  double hi = MIN (main_wave[main_n - 1], wave[n - 1]);
  if (!(hi > lo))
    return 1.0;

  double a = median_in_range (main_wave, main_flux, main_n, lo, hi);
  double b = median_in_range (wave, flux, n, lo, hi);
  if (!(a > 0.0) || !(b > 0.0))
    return 1.0;
  return a / b;
}

static void
append_number (GString *s, const char *format, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isfinite (value))
    g_string_append (s, g_ascii_formatd (buf, sizeof buf, format, value));
}

gboolean
gv_write_spectrum_csv (const char *path, gint64 id, double z, const double *wavelength,
                       const float *flux, const float *ivar, const float *smoothed, int n,
                       GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (n >= 0, FALSE);
  g_return_val_if_fail (n == 0 || (wavelength != NULL && flux != NULL && ivar != NULL), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  GString *s = g_string_sized_new (64 + (gsize) n * 48);
  char zbuf[G_ASCII_DTOSTR_BUF_SIZE];

  /* The comment line and header are data, not user interface: kept in English so that any
   * reader of the file can rely on them. */
  g_string_append_printf (
      s,
      "# ID %" G_GINT64_FORMAT " z %s; wavelength: vacuum Angstrom, observed "
      "frame; flux and smoothed_flux: 1e-17 erg/s/cm^2/Angstrom; ivar: "
      "(1e-17 erg/s/cm^2/Angstrom)^-2, 0 marks a bad pixel\n",
      id, isfinite (z) ? g_ascii_formatd (zbuf, sizeof zbuf, "%.6f", z) : "unknown");
  g_string_append (s, "wavelength,flux,ivar,smoothed_flux\n");
  for (int i = 0; i < n; i++) {
    append_number (s, "%.10g", wavelength[i]);
    g_string_append_c (s, ',');
    append_number (s, "%.9g", flux[i]);
    g_string_append_c (s, ',');
    append_number (s, "%.9g", ivar[i]);
    g_string_append_c (s, ',');
    if (smoothed != NULL)
      append_number (s, "%.9g", smoothed[i]);
    g_string_append_c (s, '\n');
  }

  /* g_file_set_contents writes a temporary file beside path and renames it into place. */
  gboolean ok = g_file_set_contents (path, s->str, (gssize) s->len, error);
  g_string_free (s, TRUE);
  return ok;
}
