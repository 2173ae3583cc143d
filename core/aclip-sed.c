#include "aclip-sed.h"

#include <glib/gi18n-lib.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aclip-error.h"
#include "aclip-fits.h"

#define MAX_TEMPLATES 32

/* Templates ------------------------------------------------------------------------------ */

void
aclip_templates_free (AclipTemplates *templates)
{
  if (templates == NULL)
    return;
  g_free (templates->wavelength);
  g_free (templates->flux);
  g_free (templates->mremain);
  g_free (templates);
}

static gboolean
read_template_arrays (AclipFits *fits, AclipTemplates *templates, GError **error)
{
  const char *path = aclip_fits_path (fits);
  if (!aclip_fits_move_to_name (fits, "FLUX", NULL, error))
    return FALSE;

  AclipFitsColumn wave_column, flux_column;
  if (!aclip_fits_column (fits, "wave", &wave_column, error) ||
      !aclip_fits_column (fits, "flux", &flux_column, error))
    return FALSE;
  gint64 n_rows = 0;
  if (!aclip_fits_table_n_rows (fits, &n_rows, error))
    return FALSE;
  gint64 n_wave = wave_column.repeat;
  if (n_rows < 1 || n_wave < 2 || flux_column.repeat % n_wave != 0) {
    g_set_error (
        error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
        _("%s: HDU FLUX must hold one row with wave[N] and flux[T×N] (found %" PRId64
           " rows, wave[%" PRId64 "], flux[%" PRId64 "])"),
        path, n_rows, n_wave, flux_column.repeat);
    return FALSE;
  }
  gint64 n_templates = flux_column.repeat / n_wave;
  if (n_templates < 1 || n_templates > MAX_TEMPLATES) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: %" PRId64 " templates in HDU FLUX (1 to %d expected)"), path,
                 n_templates, MAX_TEMPLATES);
    return FALSE;
  }
  templates->n_wave = (int) n_wave;
  templates->n_templates = (int) n_templates;
  templates->wavelength = g_new (double, n_wave);
  templates->flux = g_new (double, n_templates * n_wave);
  if (!aclip_fits_read_column_double (fits, wave_column.number, 0, 0, n_wave, templates->wavelength,
                                      error) ||
      !aclip_fits_read_column_double (fits, flux_column.number, 0, 0, n_templates * n_wave,
                                      templates->flux, error))
    return FALSE;

  for (gint64 k = 0; k < n_wave; k++) {
    double w = templates->wavelength[k];
    if (!isfinite (w) || w <= 0 || (k > 0 && w <= templates->wavelength[k - 1])) {
      g_set_error (
          error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
          _("%s: template wavelengths must be positive and increasing (element %" PRId64
             " is %g)"),
          path, k, w);
      return FALSE;
    }
  }
  for (gint64 k = 0; k < n_templates * n_wave; k++) {
    double f = templates->flux[k];
    if (!isfinite (f) || f < 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s: template %d has a negative or non-finite flux at wavelength %g Å"), path,
                   (int) (k / n_wave), templates->wavelength[k % n_wave]);
      return FALSE;
    }
  }

  if (!aclip_fits_move_to_name (fits, "MREMAIN", NULL, error))
    return FALSE;
  int n_dims = 0;
  gint64 dims[ACLIP_FITS_MAX_DIMS] = { 0 };
  if (!aclip_fits_image_shape (fits, &n_dims, dims, NULL, error))
    return FALSE;
  if (n_dims != 1 || dims[0] != n_templates) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_SHAPE,
                 _("%s: HDU MREMAIN must hold one value per template (%d)"), path,
                 templates->n_templates);
    return FALSE;
  }
  templates->mremain = g_new (double, n_templates);
  if (!aclip_fits_read_image_double (fits, n_templates, templates->mremain, error))
    return FALSE;
  for (int t = 0; t < templates->n_templates; t++) {
    if (!(templates->mremain[t] > 0 && templates->mremain[t] <= 1.0 + 1e-6)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s: MREMAIN of template %d is %g (expected 0 < MREMAIN ≤ 1)"), path, t,
                   templates->mremain[t]);
      return FALSE;
    }
  }
  return TRUE;
}

AclipTemplates *
aclip_templates_load (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);

  g_autoptr (AclipFits) fits = aclip_fits_open (path, FALSE, error);
  if (fits == NULL)
    return NULL;
  g_autoptr (AclipTemplates) templates = g_new0 (AclipTemplates, 1);
  if (!read_template_arrays (fits, templates, error))
    return NULL;

  /* Detect a grid uniform in log λ to within 1e-5 of a step. */
  int n = templates->n_wave;
  double log_start = log (templates->wavelength[0]);
  double log_step = (log (templates->wavelength[n - 1]) - log_start) / (n - 1);
  gboolean uniform = TRUE;
  for (int k = 0; k < n && uniform; k++)
    if (fabs (log (templates->wavelength[k]) - (log_start + k * log_step)) > 1e-5 * log_step)
      uniform = FALSE;
  templates->log_uniform = uniform;
  templates->log_start = log_start;
  templates->log_step = log_step;
  return g_steal_pointer (&templates);
}

gboolean
aclip_templates_locate (const AclipTemplates *templates, double wavelength, int *index,
                        double *fraction)
{
  const double *w = templates->wavelength;
  int n = templates->n_wave;
  if (!(wavelength >= w[0] && wavelength < w[n - 1]))
    return FALSE;
  int i;
  if (templates->log_uniform) {
    i = (int) ((log (wavelength) - templates->log_start) / templates->log_step);
    i = CLAMP (i, 0, n - 2);
    /* The grid is uniform only to 1e-5 of a step: settle on the right interval. */
    while (i > 0 && w[i] > wavelength)
      i--;
    while (i < n - 2 && w[i + 1] <= wavelength)
      i++;
  } else {
    int low = 0, high = n - 1;
    while (high - low > 1) {
      int middle = (low + high) / 2;
      if (w[middle] <= wavelength)
        low = middle;
      else
        high = middle;
    }
    i = low;
  }
  *index = i;
  *fraction = (wavelength - w[i]) / (w[i + 1] - w[i]);
  return TRUE;
}

/* Filters -------------------------------------------------------------------------------- */

void
aclip_filter_free (AclipFilter *filter)
{
  if (filter == NULL)
    return;
  g_free (filter->name);
  g_free (filter->wavelength);
  g_free (filter->weight);
  g_free (filter);
}

/* Parses the ECSV text into wavelength (Å) and response arrays. */
static gboolean
parse_ecsv (const char *path, const char *text, GArray *wavelength, GArray *response,
            GError **error)
{
  double unit_scale = 1.0; /* to Å */
  gboolean header_seen = FALSE;
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (int line_number = 1; lines[line_number - 1] != NULL; line_number++) {
    char *line = g_strstrip (lines[line_number - 1]);
    if (line[0] == '\0')
      continue;
    if (line[0] == '#') {
      /* "# - {name: wavelength, unit: nm, datatype: float64}" */
      if (strstr (line, "name: wavelength") != NULL) {
        const char *unit = strstr (line, "unit:");
        if (unit != NULL) {
          unit += strlen ("unit:");
          while (*unit == ' ')
            unit++;
          if (g_str_has_prefix (unit, "nm"))
            unit_scale = 10.0;
          else if (g_str_has_prefix (unit, "um") || g_str_has_prefix (unit, "micron"))
            unit_scale = 1e4;
          else if (!g_str_has_prefix (unit, "Angstrom") && !g_str_has_prefix (unit, "AA")) {
            g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                         _("%s, line %d: unknown wavelength unit"), path, line_number);
            return FALSE;
          }
        }
      }
      continue;
    }
    if (!header_seen) {
      if (!g_str_has_prefix (line, "wavelength")) {
        g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                     _("%s, line %d: expected the column header “wavelength response”"), path,
                     line_number);
        return FALSE;
      }
      header_seen = TRUE;
      continue;
    }
    char *end = NULL;
    double w = g_ascii_strtod (line, &end);
    char *rest = end;
    double r = g_ascii_strtod (rest, &end);
    while (end && (*end == ' ' || *end == '\t' || *end == '\r'))
      end++;
    if (rest == line || end == rest || (end && *end != '\0') || !isfinite (w) || !isfinite (r)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                   _("%s, line %d: expected two numbers (wavelength, response)"), path,
                   line_number);
      return FALSE;
    }
    w *= unit_scale;
    if (wavelength->len > 0 && w <= g_array_index (wavelength, double, wavelength->len - 1)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                   _("%s, line %d: wavelengths must increase"), path, line_number);
      return FALSE;
    }
    if (r < 0) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, _("%s, line %d: negative response"),
                   path, line_number);
      return FALSE;
    }
    g_array_append_val (wavelength, w);
    g_array_append_val (response, r);
  }
  if (wavelength->len < 3) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_FORMAT,
                 _("%s: not a filter curve (fewer than 3 wavelength, response rows)"), path);
    return FALSE;
  }
  return TRUE;
}

AclipFilter *
aclip_filter_load (const char *path, double step, GError **error)
{
  g_return_val_if_fail (path != NULL && step > 0, NULL);

  g_autofree char *text = NULL;
  g_autoptr (GError) read_error = NULL;
  if (!g_file_get_contents (path, &text, NULL, &read_error)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_IO, _("cannot read filter curve %s: %s"), path,
                 read_error->message);
    return NULL;
  }
  g_autoptr (GArray) curve_wave = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) curve_response = g_array_new (FALSE, FALSE, sizeof (double));
  if (!parse_ecsv (path, text, curve_wave, curve_response, error))
    return NULL;
  const double *cw = (const double *) curve_wave->data;
  const double *cr = (const double *) curve_response->data;
  int n_curve = (int) curve_wave->len;

  double peak = 0;
  for (int k = 0; k < n_curve; k++)
    peak = MAX (peak, cr[k]);
  if (peak <= 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, _("%s: the response is zero everywhere"),
                 path);
    return NULL;
  }

  g_autoptr (AclipFilter) filter = g_new0 (AclipFilter, 1);
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  if (dot)
    *dot = '\0';
  filter->name = g_strdup (base);
  filter->n = (int) floor ((cw[n_curve - 1] - cw[0]) / step) + 1;
  filter->wavelength = g_new (double, filter->n);
  filter->weight = g_new (double, filter->n);

  /* Resample R linearly; trapezoid weights R λ Δλ; normalise by the AB reference, whose
   * integrand f_AB λ R = 3631 Jy · c R / λ. */
  double normalisation = 0.0, numerator_pivot = 0.0, denominator_pivot = 0.0;
  int j = 0;
  for (int k = 0; k < filter->n; k++) {
    double w = cw[0] + k * step;
    while (j < n_curve - 2 && cw[j + 1] < w)
      j++;
    double t = (w - cw[j]) / (cw[j + 1] - cw[j]);
    double r = cr[j] + CLAMP (t, 0.0, 1.0) * (cr[j + 1] - cr[j]);
    double trapezoid = (k == 0 || k == filter->n - 1) ? 0.5 * step : step;
    filter->wavelength[k] = w;
    filter->weight[k] = r * w * trapezoid;
    normalisation += ACLIP_AB_ZERO_FNU * ACLIP_SPEED_OF_LIGHT_A_S * r / w * trapezoid;
    numerator_pivot += r * w * trapezoid;
    denominator_pivot += r / w * trapezoid;
  }
  for (int k = 0; k < filter->n; k++)
    filter->weight[k] /= normalisation;
  filter->pivot = sqrt (numerator_pivot / denominator_pivot);
  return g_steal_pointer (&filter);
}

double
aclip_filter_maggies (const AclipFilter *filter, const double *flux)
{
  double sum = 0.0;
  for (int k = 0; k < filter->n; k++)
    sum += filter->weight[k] * flux[k];
  return sum;
}

/* Extinction ----------------------------------------------------------------------------- */

double
aclip_extinction_ccm89 (double wavelength, double r_v)
{
  double x = 1e4 / wavelength; /* µm⁻¹ */
  x = CLAMP (x, 0.3, 8.0);
  double a, b;
  if (x < 1.1) {
    double p = pow (x, 1.61);
    a = 0.574 * p;
    b = -0.527 * p;
  } else if (x < 3.3) {
    double y = x - 1.82;
    /* The optical polynomials of CCM89, eq. 3, evaluated by Horner's rule. */
    a = 1.0 +
        y * (0.17699 +
             y * (-0.50447 +
                  y * (-0.02427 + y * (0.72085 + y * (0.01979 + y * (-0.77530 + y * 0.32999))))));
    b = y * (1.41338 +
             y * (2.28305 +
                  y * (1.07233 + y * (-5.38434 + y * (-0.62251 + y * (5.30260 + y * -2.09002))))));
  } else {
    double fa = 0.0, fb = 0.0;
    if (x >= 5.9) {
      double d = x - 5.9;
      fa = -0.04473 * d * d - 0.009779 * d * d * d;
      fb = 0.2130 * d * d + 0.1207 * d * d * d;
    }
    a = 1.752 - 0.316 * x - 0.104 / ((x - 4.67) * (x - 4.67) + 0.341) + fa;
    b = -3.090 + 1.825 * x + 1.206 / ((x - 4.62) * (x - 4.62) + 0.263) + fb;
  }
  return r_v * a + b;
}
