/* aclip-resample.c — image and spectrum resampling (see aclip-resample.h for the rules). */
#include "aclip-resample.h"

#include <math.h>

/* The overlap of one output axis with one input axis. Output pixel j covers input pixels
 * first[j] … first[j] + count[j] − 1 with weights weight[j*n_in + i] = the length (in input
 * pixels) of input pixel i's overlap with output pixel j, i.e. the fraction of input pixel i
 * that falls in output pixel j. */
typedef struct
{
  int n_out, n_in;
  int *first;     /* [n_out] */
  int *count;     /* [n_out] */
  double *weight; /* [n_out × n_in], mostly zero */
} AxisWeights;

static void
axis_weights_clear (AxisWeights *axis)
{
  g_free (axis->first);
  g_free (axis->count);
  g_free (axis->weight);
}

/* ratio: the size of an output pixel in input pixels. The output grid shares its centre with
 * the input grid, or, for equal scales, is offset by a whole number of pixels. */
static void
axis_weights_init (AxisWeights *axis, int n_in, int n_out, double ratio)
{
  axis->n_in = n_in;
  axis->n_out = n_out;
  axis->first = g_new0 (int, n_out);
  axis->count = g_new0 (int, n_out);
  axis->weight = g_new0 (double, (gsize) n_out * n_in);

  /* Input coordinate of the left edge of output pixel 0; input pixel i spans [i, i+1]. */
  double origin;
  if (fabs (ratio - 1.0) < 1e-9) {
    ratio = 1.0;
    origin = floor ((n_in - n_out) / 2.0);
  } else {
    origin = n_in / 2.0 - n_out / 2.0 * ratio;
  }

  for (int j = 0; j < n_out; j++) {
    double low = origin + j * ratio;
    double high = low + ratio;
    int first = (int) floor (low);
    int last = (int) ceil (high) - 1;
    if (first < 0)
      first = 0;
    if (last > n_in - 1)
      last = n_in - 1;
    axis->first[j] = first;
    axis->count[j] = 0;
    for (int i = first; i <= last; i++) {
      double overlap = fmin (high, i + 1.0) - fmax (low, (double) i);
      if (overlap > 0)
        axis->weight[(gsize) j * n_in + i] = overlap;
    }
    if (last >= first)
      axis->count[j] = last - first + 1;
  }
}

void
aclip_resample_image (const float *in, int in_height, int in_width, double in_pixscale,
                      float *out, int out_height, int out_width, double out_pixscale)
{
  g_return_if_fail (in != NULL && out != NULL);
  g_return_if_fail (in_height > 0 && in_width > 0 && out_height > 0 && out_width > 0);
  g_return_if_fail (in_pixscale > 0 && out_pixscale > 0);

  double ratio = out_pixscale / in_pixscale;
  AxisWeights rows, columns;
  axis_weights_init (&rows, in_height, out_height, ratio);
  axis_weights_init (&columns, in_width, out_width, ratio);

  /* First along x: partial[y][j] = Σ_i in[y][i]·wx[j][i]; shape in_height × out_width. */
  double *partial = g_new0 (double, (gsize) in_height * out_width);
  for (int y = 0; y < in_height; y++) {
    const float *in_row = in + (gsize) y * in_width;
    for (int j = 0; j < out_width; j++) {
      const double *w = columns.weight + (gsize) j * in_width;
      double sum = 0;
      for (int i = columns.first[j]; i < columns.first[j] + columns.count[j]; i++)
        sum += w[i] * in_row[i];
      partial[(gsize) y * out_width + j] = sum;
    }
  }
  /* Then along y: out[k][j] = Σ_y partial[y][j]·wy[k][y]. */
  for (int k = 0; k < out_height; k++) {
    const double *w = rows.weight + (gsize) k * in_height;
    for (int j = 0; j < out_width; j++) {
      double sum = 0;
      for (int y = rows.first[k]; y < rows.first[k] + rows.count[k]; y++)
        sum += w[y] * partial[(gsize) y * out_width + j];
      out[(gsize) k * out_width + j] = (float) sum;
    }
  }

  g_free (partial);
  axis_weights_clear (&rows);
  axis_weights_clear (&columns);
}

static gboolean
pixel_is_good (float flux, float ivar)
{
  return isfinite (flux) && isfinite (ivar) && ivar > 0;
}

int
aclip_resample_spectrum (const double *in_wave, const float *in_flux, const float *in_ivar,
                         int n_in, const double *out_wave, double out_step, int n_out,
                         float *out_flux, float *out_ivar)
{
  g_return_val_if_fail (in_wave != NULL && in_flux != NULL && in_ivar != NULL, 0);
  g_return_val_if_fail (out_wave != NULL && out_flux != NULL && out_ivar != NULL, 0);
  g_return_val_if_fail (out_step > 0, 0);

  int n_good = 0;
  int i = 0; /* in_wave[i] <= λ < in_wave[i+1] once λ is inside the input */
  for (int j = 0; j < n_out; j++) {
    double lambda = out_wave[j];
    out_flux[j] = 0;
    out_ivar[j] = 0;
    if (n_in < 2 || lambda < in_wave[0] || lambda > in_wave[n_in - 1])
      continue;
    while (i < n_in - 2 && in_wave[i + 1] <= lambda)
      i++;

    double width = in_wave[i + 1] - in_wave[i];
    if (!(width > 0))
      continue;
    double t = (lambda - in_wave[i]) / width;
    gboolean left_good = pixel_is_good (in_flux[i], in_ivar[i]);
    gboolean right_good = pixel_is_good (in_flux[i + 1], in_ivar[i + 1]);
    if (left_good && right_good) {
      double variance = (1 - t) / in_ivar[i] + t / in_ivar[i + 1];
      double information_factor = fmin (1.0, out_step / width);
      out_flux[j] = (float) ((1 - t) * in_flux[i] + t * in_flux[i + 1]);
      out_ivar[j] = (float) (information_factor / variance);
      n_good++;
    } else {
      int nearer = t < 0.5 ? i : i + 1;
      out_flux[j] = pixel_is_good (in_flux[nearer], in_ivar[nearer]) ? in_flux[nearer] : 0.0f;
    }
  }
  return n_good;
}
