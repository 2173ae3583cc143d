/* aclip-render.c — the Legacy Survey RGB mapping, its approximate inverse, and single-band
 * stretches with display limits from min/max, percentiles or IRAF's zscale.
 *
 * Layouts used throughout:
 *   flux  3×H×W floats, band planes in the order g, r, z (nanomaggies);
 *   rgb   H×W×3, interleaved R, G, B with R ← z, G ← r, B ← g.
 * All arithmetic is done in double and stored as float or 8-bit at the end.
 */
#include "aclip-render.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum
{
  BAND_G,
  BAND_R,
  BAND_Z,
  N_BANDS
};

/* Interleaved channel index of each band's colour: g → blue, r → green, z → red. */
static const int channel_of_band[N_BANDS] = { 2, 1, 0 };

void
aclip_rgb_params_init_legacy (AclipRgbParams *params)
{
  g_return_if_fail (params != NULL);

  params->scale[BAND_G] = 6.0f;
  params->scale[BAND_R] = 3.4f;
  params->scale[BAND_Z] = 2.2f;
  params->offset = 0.03f;
  params->q = 20.0f;
}

/* ----------------------------------------------------------------------------------------
 * The forward mapping
 * ---------------------------------------------------------------------------------------- */

/* F(I) = asinh(Q·I)/√Q / I, with its limit √Q at I = 0 (asinh(y) = y + O(y³)). I is a mean of
 * non-negative terms, so I ≤ 0 only happens as I = 0. For tiny positive I, asinh(Q·I) is
 * computed to full relative precision, so the quotient needs no series of its own. */
static double
softening_factor (double q, double sqrt_q, double intensity)
{
  if (intensity <= 0.0)
    return sqrt_q;
  return asinh (q * intensity) / (sqrt_q * intensity);
}

/* Maps one pixel: band_flux[N_BANDS] (g, r, z, nanomaggies) → channel[N_BANDS] in [0, 1],
 * also in band order. Non-finite flux counts as 0. */
static void
map_pixel (const AclipRgbParams *params, double sqrt_q, const float band_flux[N_BANDS],
           double channel[N_BANDS])
{
  double shifted[N_BANDS]; /* v_b = x_b·s_b + m */
  double intensity_sum = 0.0;

  for (int band = 0; band < N_BANDS; band++) {
    double flux = isfinite (band_flux[band]) ? band_flux[band] : 0.0;
    shifted[band] = flux * params->scale[band] + params->offset;
    intensity_sum += MAX (0.0, shifted[band]);
  }

  double factor = softening_factor (params->q, sqrt_q, intensity_sum / N_BANDS);
  for (int band = 0; band < N_BANDS; band++)
    channel[band] = CLAMP (shifted[band] * factor, 0.0, 1.0);
}

static gboolean
rgb_params_valid (const AclipRgbParams *params)
{
  return params != NULL && params->q > 0.0f && isfinite (params->q) && isfinite (params->offset) &&
         params->scale[0] > 0.0f && params->scale[1] > 0.0f && params->scale[2] > 0.0f;
}

void
aclip_rgb_forward (const AclipRgbParams *params, const float *flux, int height, int width,
                   float *rgb)
{
  g_return_if_fail (rgb_params_valid (params));
  g_return_if_fail (height >= 0 && width >= 0);
  g_return_if_fail ((flux != NULL && rgb != NULL) || (gsize) height * width == 0);

  const gsize plane = (gsize) height * (gsize) width;
  const double sqrt_q = sqrt (params->q);

  for (gsize pixel = 0; pixel < plane; pixel++) {
    float band_flux[N_BANDS];
    double channel[N_BANDS];
    for (int band = 0; band < N_BANDS; band++)
      band_flux[band] = flux[band * plane + pixel];
    map_pixel (params, sqrt_q, band_flux, channel);
    for (int band = 0; band < N_BANDS; band++)
      rgb[pixel * 3 + channel_of_band[band]] = (float) channel[band];
  }
}

void
aclip_rgb_forward_u8 (const AclipRgbParams *params, const float *flux, int height, int width,
                      guint8 *rgb)
{
  g_return_if_fail (rgb_params_valid (params));
  g_return_if_fail (height >= 0 && width >= 0);
  g_return_if_fail ((flux != NULL && rgb != NULL) || (gsize) height * width == 0);

  const gsize plane = (gsize) height * (gsize) width;
  const double sqrt_q = sqrt (params->q);

  for (gsize pixel = 0; pixel < plane; pixel++) {
    float band_flux[N_BANDS];
    double channel[N_BANDS];
    for (int band = 0; band < N_BANDS; band++)
      band_flux[band] = flux[band * plane + pixel];
    map_pixel (params, sqrt_q, band_flux, channel);
    /* Round to nearest: code k stands for channel values in [(k − ½)/255, (k + ½)/255). */
    for (int band = 0; band < N_BANDS; band++)
      rgb[pixel * 3 + channel_of_band[band]] = (guint8) (channel[band] * 255.0 + 0.5);
  }
}

/* ----------------------------------------------------------------------------------------
 * The inverse mapping
 *
 * Forward: c_b = clip(v_b·F(I), 0, 1) with I = mean_b max(0, v_b) and I·F(I) = asinh(Q·I)/√Q.
 * Where every channel is unclipped, or clipped at 0 because v_b ≤ 0 (then both max(0, v_b)
 * and c_b are 0), mean_b c_b = I·F(I), so
 *   I = sinh(√Q·c̄)/Q,  F = c̄/I,  v_b = c_b/F = c_b·I/c̄,  x_b = (v_b − m)/s_b.
 * 8-bit codes k are decoded as c = k/255, the centre of the code's rounding interval (the
 * forward rounds to nearest).
 *
 * What comes back where a channel clipped:
 * - black (code 0): v_b = 0, i.e. x_b = −m/s_b. Any v_b ≤ 0 gives a black channel, so this is
 *   an upper bound of the flux (up to quantisation: code 0 also covers 0 < v_b·F < ½/255).
 *   The other channels are unaffected and exact, by the argument above.
 * - saturated (code 255): decoded as c_b = 1, the least value that saturates. The returned
 *   fluxes are the smallest flux that renders to this pixel: the true mean of v_b·F is ≥ c̄,
 *   so the true I is ≥ sinh(√Q·c̄)/Q, and as F decreases with I, every channel's true v_b is
 *   ≥ the returned c_b/F. So every non-black channel of a pixel with a saturated channel is
 *   a lower bound.
 * - all black: I = 0, every band gets x_b = −m/s_b.
 * ---------------------------------------------------------------------------------------- */

void
aclip_rgb_inverse_u8 (const AclipRgbParams *params, const guint8 *rgb, int height, int width,
                      float *flux)
{
  g_return_if_fail (rgb_params_valid (params));
  g_return_if_fail (height >= 0 && width >= 0);
  g_return_if_fail ((flux != NULL && rgb != NULL) || (gsize) height * width == 0);

  const gsize plane = (gsize) height * (gsize) width;
  const double q = params->q;
  const double sqrt_q = sqrt (q);

  for (gsize pixel = 0; pixel < plane; pixel++) {
    double channel[N_BANDS];
    double channel_sum = 0.0;
    for (int band = 0; band < N_BANDS; band++) {
      channel[band] = rgb[pixel * 3 + channel_of_band[band]] / 255.0;
      channel_sum += channel[band];
    }

    /* shifted_per_channel = I/c̄ = 1/F: multiplies a channel value back to v_b. */
    double mean_channel = channel_sum / N_BANDS;
    double shifted_per_channel = 0.0;
    if (mean_channel > 0.0)
      shifted_per_channel = sinh (sqrt_q * mean_channel) / q / mean_channel;

    for (int band = 0; band < N_BANDS; band++) {
      double shifted = channel[band] * shifted_per_channel;
      flux[band * plane + pixel] = (float) ((shifted - params->offset) / params->scale[band]);
    }
  }
}

/* ----------------------------------------------------------------------------------------
 * Order statistics
 * ---------------------------------------------------------------------------------------- */

static int
compare_floats (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

static void
swap_floats (float *data, gssize i, gssize j)
{
  float kept = data[i];
  data[i] = data[j];
  data[j] = kept;
}

static float
median_of_three (float a, float b, float c)
{
  if (a > b) {
    float t = a;
    a = b;
    b = t;
  }
  /* now a ≤ b */
  if (c <= a)
    return a;
  if (c >= b)
    return b;
  return c;
}

/* Reorders data[0..count) (finite floats) so that data[rank] is the rank-th smallest value,
 * everything before it ≤ it and everything after it ≥ it. Quickselect with a median-of-three
 * pivot and a three-way partition (so runs of equal values, common in images, cost nothing);
 * after 2·log2(count) rounds without finishing, the remaining range is sorted instead, which
 * bounds the worst case at O(n log n). Expected cost O(count). */
static void
select_rank (float *data, gsize count, gsize rank)
{
  gssize left = 0, right = (gssize) count - 1;
  int rounds_left = 2 * g_bit_storage (count) + 2;

  while (left < right) {
    if (rounds_left-- == 0) {
      qsort (data + left, (gsize) (right - left + 1), sizeof *data, compare_floats);
      return;
    }
    float pivot = median_of_three (data[left], data[left + (right - left) / 2], data[right]);

    /* Partition [left, right] into < pivot: [left, below), = pivot: [below, above],
     * > pivot: (above, right]. */
    gssize below = left, scan = left, above = right;
    while (scan <= above) {
      if (data[scan] < pivot)
        swap_floats (data, below++, scan++);
      else if (data[scan] > pivot)
        swap_floats (data, scan, above--);
      else
        scan++;
    }

    if ((gssize) rank < below)
      right = below - 1;
    else if ((gssize) rank > above)
      left = above + 1;
    else
      return;
  }
}

/* The percent-th percentile of data[0..count) (finite, count ≥ 1; reordered), defined by
 * linear interpolation between order statistics at the 0-based position
 * h = (count − 1)·percent/100: x₍⌊h⌋₎ + (h − ⌊h⌋)·(x₍⌊h⌋+1₎ − x₍⌊h⌋₎). This is Hyndman & Fan's
 * definition 7, numpy's default: 0 → the minimum, 100 → the maximum. */
static double
percentile_of (float *data, gsize count, double percent)
{
  double position = (double) (count - 1) * (percent / 100.0);
  gsize below = (gsize) floor (position);
  if (below >= count - 1) {
    select_rank (data, count, count - 1);
    return data[count - 1];
  }
  double fraction = position - (double) below;

  select_rank (data, count, below);
  double lower = data[below];
  if (fraction == 0.0)
    return lower;
  /* After the selection, the next order statistic is the least value above `below`. */
  float upper = data[below + 1];
  for (gsize i = below + 2; i < count; i++)
    upper = MIN (upper, data[i]);
  return lower + fraction * ((double) upper - lower);
}

/* ----------------------------------------------------------------------------------------
 * Display limits
 * ---------------------------------------------------------------------------------------- */

/* Number, minimum and maximum of the finite values among values[0..n). */
static gsize
scan_finite (const float *values, gsize n, double *minimum, double *maximum)
{
  gsize count = 0;
  float low = 0.0f, high = 0.0f;
  for (gsize i = 0; i < n; i++) {
    float value = values[i];
    if (!isfinite (value))
      continue;
    if (count == 0 || value < low)
      low = value;
    if (count == 0 || value > high)
      high = value;
    count++;
  }
  *minimum = low;
  *maximum = high;
  return count;
}

static void
percentile_limits (const float *values, gsize n, gsize finite_count, double low_percent,
                   double high_percent, double *low, double *high)
{
  float *finite = g_new (float, finite_count);
  gsize filled = 0;
  for (gsize i = 0; i < n; i++)
    if (isfinite (values[i]))
      finite[filled++] = values[i];

  *low = percentile_of (finite, finite_count, low_percent);
  *high = percentile_of (finite, finite_count, high_percent);
  g_free (finite);
}

/* IRAF zscale parameters (IRAF display.zscale; the same defaults as astropy's ZScaleInterval). */
#define ZSCALE_MAX_SAMPLES       600
#define ZSCALE_CONTRAST          0.25
#define ZSCALE_REJECTION_SIGMAS  2.5
#define ZSCALE_MAX_ITERATIONS    5
#define ZSCALE_MIN_KEPT_FRACTION 0.5
#define ZSCALE_MIN_KEPT          5
#define ZSCALE_GROW_FRACTION     0.01

/* Least-squares line value = intercept + slope·index through the kept samples. FALSE when
 * fewer than two are kept. */
static gboolean
fit_line (const float *samples, const gboolean *kept, gsize count, double *slope, double *intercept)
{
  double sum_index = 0.0, sum_value = 0.0;
  gsize n_kept = 0;
  for (gsize i = 0; i < count; i++)
    if (kept[i]) {
      sum_index += (double) i;
      sum_value += samples[i];
      n_kept++;
    }
  if (n_kept < 2)
    return FALSE;

  double mean_index = sum_index / n_kept, mean_value = sum_value / n_kept;
  double covariance = 0.0, index_variance = 0.0;
  for (gsize i = 0; i < count; i++)
    if (kept[i]) {
      double di = (double) i - mean_index;
      covariance += di * (samples[i] - mean_value);
      index_variance += di * di;
    }
  *slope = covariance / index_variance;
  *intercept = mean_value - *slope * mean_index;
  return TRUE;
}

/* IRAF's zscale, written from its published description:
 * 1. Take up to ZSCALE_MAX_SAMPLES finite values on a regular stride through the finite values
 *    (stride ⌈finite/600⌉, starting at the first), and sort them: s_0 ≤ … ≤ s_{N−1}.
 * 2. Fit a straight line s_i ≈ a + b·i by least squares, iteratively: reject samples whose
 *    residual exceeds ZSCALE_REJECTION_SIGMAS times the standard deviation of the kept
 *    residuals, grow each rejection to ±⌊g/2⌋ neighbouring samples (g = max(1, round(N/100))),
 *    and refit, until a round rejects nothing or ZSCALE_MAX_ITERATIONS rounds have run (the
 *    slope always comes from a fit to the final kept set). Rejected samples stay rejected.
 *    Residuals below one float ulp of the data's magnitude are never rejections (an exactly
 *    linear sample must not lose points to rounding).
 * 3. If fewer than max(5, N/2) samples remain, give up and return the data's min and max.
 *    Otherwise, with median M of the samples, centre index c = ⌊(N − 1)/2⌋ (IRAF's 1-based
 *    centre minus one) and b' = b/contrast:
 *      z1 = max(min, M − c·b'),  z2 = min(max, M + (N − 1 − c)·b'),
 *    i.e. the fitted line stretched by 1/contrast about the median, evaluated at the first and
 *    last sample. min and max are those of all finite values (IRAF uses the sample's). */
static void
zscale_limits (const float *values, gsize n, gsize finite_count, double data_min, double data_max,
               double *low, double *high)
{
  float samples[ZSCALE_MAX_SAMPLES];
  gboolean kept[ZSCALE_MAX_SAMPLES];
  gboolean newly_rejected[ZSCALE_MAX_SAMPLES];

  gsize stride = (finite_count + ZSCALE_MAX_SAMPLES - 1) / ZSCALE_MAX_SAMPLES;
  gsize n_samples = 0, finite_seen = 0;
  for (gsize i = 0; i < n && n_samples < ZSCALE_MAX_SAMPLES; i++) {
    if (!isfinite (values[i]))
      continue;
    if (finite_seen++ % stride == 0)
      samples[n_samples++] = values[i];
  }
  qsort (samples, n_samples, sizeof *samples, compare_floats);

  *low = data_min;
  *high = data_max;

  gsize min_kept = MAX (ZSCALE_MIN_KEPT, (gsize) (n_samples * ZSCALE_MIN_KEPT_FRACTION));
  if (n_samples < min_kept)
    return;

  double median = n_samples % 2 == 1
                      ? samples[n_samples / 2]
                      : 0.5 * ((double) samples[n_samples / 2 - 1] + samples[n_samples / 2]);
  gsize grow_radius = MAX (1, (gsize) lround (n_samples * ZSCALE_GROW_FRACTION)) / 2;
  double rounding_floor = FLT_EPSILON * MAX (fabs (data_min), fabs (data_max));

  for (gsize i = 0; i < n_samples; i++)
    kept[i] = TRUE;
  gsize n_kept = n_samples;

  double slope = 0.0, intercept = 0.0;
  for (int iteration = 0;; iteration++) {
    if (!fit_line (samples, kept, n_samples, &slope, &intercept))
      return;
    if (iteration == ZSCALE_MAX_ITERATIONS)
      break;

    /* The residuals of a least-squares line with an intercept have mean 0. */
    double sum_squares = 0.0;
    for (gsize i = 0; i < n_samples; i++)
      if (kept[i]) {
        double residual = samples[i] - (intercept + slope * (double) i);
        sum_squares += residual * residual;
      }
    double threshold = MAX (ZSCALE_REJECTION_SIGMAS * sqrt (sum_squares / n_kept), rounding_floor);

    gboolean any_rejected = FALSE;
    for (gsize i = 0; i < n_samples; i++) {
      double residual = samples[i] - (intercept + slope * (double) i);
      newly_rejected[i] = kept[i] && fabs (residual) > threshold;
      any_rejected |= newly_rejected[i];
    }
    if (!any_rejected)
      break;

    for (gsize i = 0; i < n_samples; i++) {
      if (!newly_rejected[i])
        continue;
      gsize first = i > grow_radius ? i - grow_radius : 0;
      gsize last = MIN (n_samples - 1, i + grow_radius);
      for (gsize j = first; j <= last; j++)
        kept[j] = FALSE;
    }
    n_kept = 0;
    for (gsize i = 0; i < n_samples; i++)
      n_kept += kept[i] ? 1 : 0;
    if (n_kept < min_kept)
      return;
  }

  gsize centre = (n_samples - 1) / 2;
  double display_slope = slope / ZSCALE_CONTRAST;
  *low = MAX (data_min, median - (double) centre * display_slope);
  *high = MIN (data_max, median + (double) (n_samples - 1 - centre) * display_slope);
}

/* Percentiles outside [0, 100] are clamped to it and a reversed pair is swapped, so that
 * low ≤ high always. On FALSE, *low and *high are set to 0. */
gboolean
aclip_stretch_limits (const float *values, gsize n, AclipLimitsMethod method, double low_percent,
                      double high_percent, double *low, double *high)
{
  g_return_val_if_fail (values != NULL || n == 0, FALSE);
  g_return_val_if_fail (low != NULL && high != NULL, FALSE);

  *low = 0.0;
  *high = 0.0;

  double data_min, data_max;
  gsize finite_count = scan_finite (values, n, &data_min, &data_max);
  if (finite_count == 0)
    return FALSE;

  switch (method) {
    case ACLIP_LIMITS_MINMAX:
      *low = data_min;
      *high = data_max;
      return TRUE;

    case ACLIP_LIMITS_PERCENTILE:
      g_return_val_if_fail (!isnan (low_percent) && !isnan (high_percent), FALSE);
      low_percent = CLAMP (low_percent, 0.0, 100.0);
      high_percent = CLAMP (high_percent, 0.0, 100.0);
      if (low_percent > high_percent) {
        double swapped = low_percent;
        low_percent = high_percent;
        high_percent = swapped;
      }
      percentile_limits (values, n, finite_count, low_percent, high_percent, low, high);
      return TRUE;

    case ACLIP_LIMITS_ZSCALE:
      zscale_limits (values, n, finite_count, data_min, data_max, low, high);
      return TRUE;
  }
  g_return_val_if_reached (FALSE);
}

/* ----------------------------------------------------------------------------------------
 * Stretches
 * ---------------------------------------------------------------------------------------- */

#define LOG_STRETCH_EXPONENT 1000.0 /* DS9's log: log10(1 + a·t)/log10(1 + a) */
#define ASINH_STRETCH_SCALE  10.0   /* asinh(k·t)/asinh(k) */

/* When high == low the ramp has no width: values above the limit map to 1, the rest to 0 (a
 * constant image shows black). Reversed limits (high < low) give an inverted ramp. */
void
aclip_stretch_apply (const float *values, gsize n, AclipStretch stretch, double low, double high,
                     float *out)
{
  g_return_if_fail ((values != NULL && out != NULL) || n == 0);
  g_return_if_fail (isfinite (low) && isfinite (high));
  g_return_if_fail (stretch >= ACLIP_STRETCH_LINEAR && stretch <= ACLIP_STRETCH_ASINH);

  const double width = high - low;
  const double log_norm = log10 (1.0 + LOG_STRETCH_EXPONENT);
  const double asinh_norm = asinh (ASINH_STRETCH_SCALE);

  for (gsize i = 0; i < n; i++) {
    float value = values[i];
    if (!isfinite (value)) {
      out[i] = 0.0f;
      continue;
    }
    double t;
    if (width != 0.0)
      t = CLAMP ((value - low) / width, 0.0, 1.0);
    else
      t = value > low ? 1.0 : 0.0;

    double mapped = t;
    switch (stretch) {
      case ACLIP_STRETCH_LINEAR:
        break;
      case ACLIP_STRETCH_SQRT:
        mapped = sqrt (t);
        break;
      case ACLIP_STRETCH_LOG:
        mapped = log10 (1.0 + LOG_STRETCH_EXPONENT * t) / log_norm;
        break;
      case ACLIP_STRETCH_ASINH:
        mapped = asinh (ASINH_STRETCH_SCALE * t) / asinh_norm;
        break;
    }
    out[i] = (float) mapped;
  }
}
