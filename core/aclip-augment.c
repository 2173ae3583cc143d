/* aclip-augment.c — physical augmentations and the encoder's preprocessing (aclip-augment.h). */
#include "aclip-augment.h"

#include "aclip-error.h"
#include "aclip-rng.h"

#include <glib/gi18n-lib.h>
#include <math.h>
#include <string.h>

#define N_BANDS 3

/* Mixed into the seed so that augmentation streams differ from other users of (seed, step). */
#define AUGMENT_SEED_TAG G_GUINT64_CONSTANT (0x6175676d656e7431) /* "augment1" */

/* The blur kernel reaches 3σ (the weight beyond is below 1.1% of the peak). */
#define BLUR_RADIUS_SIGMAS 3.0

/* ---- Configuration ---------------------------------------------------------------------- */

void
aclip_augment_config_init_none (AclipAugmentConfig *config, int crop, int downsample)
{
  g_return_if_fail (config != NULL);

  memset (config, 0, sizeof *config);
  config->crop = crop;
  config->downsample = downsample;
  config->flip = FALSE;
  config->rotate = FALSE;
  config->min_scale = 1.0f;
  config->max_scale = 1.0f;
  /* DECam coefficients A_b / E(B−V) of the Legacy Surveys (Schlafly & Finkbeiner 2011). */
  config->extinction[0] = 3.214f;
  config->extinction[1] = 2.165f;
  config->extinction[2] = 1.211f;
  /* The simulator's sky noise per pixel at the median depth (docs/simulator.md). */
  config->sky_sigma[0] = 0.0032f;
  config->sky_sigma[1] = 0.0057f;
  config->sky_sigma[2] = 0.0157f;
}

void
aclip_augment_config_init_default (AclipAugmentConfig *config, int crop, int downsample)
{
  aclip_augment_config_init_none (config, crop, downsample);
  config->flip = TRUE;
  config->rotate = TRUE;
  config->min_scale = 0.9f;
  config->max_scale = 1.1f;
  config->max_shift = 7.0f;
  config->max_ebv = 0.1f;
  config->max_blur_sigma = 1.0f;
  config->max_noise_fraction = 1.0f;
}

gboolean
aclip_augment_config_validate (const AclipAugmentConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, FALSE);

  const char *problem = NULL;
  if (config->crop < 1 || config->crop > 4096)
    problem = _("the crop must be 1–4096 pixels");
  else if (config->downsample < 1 || config->crop % config->downsample != 0)
    problem = _("the downsampling factor must be at least 1 and divide the crop");
  else if (!(config->min_scale > 0.0f) || !(config->max_scale >= config->min_scale) ||
           !isfinite (config->max_scale))
    problem = _("the scale range must be positive and increasing");
  else if (!(config->max_shift >= 0.0f) || !(config->max_ebv >= 0.0f) ||
           !(config->max_blur_sigma >= 0.0f) || !(config->max_noise_fraction >= 0.0f) ||
           !isfinite (config->max_shift) || !isfinite (config->max_ebv) ||
           !(config->max_blur_sigma <= 100.0f) || !isfinite (config->max_noise_fraction))
    problem = _("the shift, reddening, blur and noise ranges must be finite and not negative");
  else
    for (int band = 0; band < N_BANDS; band++)
      if (!isfinite (config->extinction[band]) || !(config->sky_sigma[band] >= 0.0f) ||
          !isfinite (config->sky_sigma[band]))
        problem = _("the extinction coefficients and sky noise must be finite");
  if (problem != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("Invalid augmentation settings: %s"), problem);
    return FALSE;
  }
  return TRUE;
}

#define AUGMENT_GROUP "augment"

/* The float fields saved in [augment]: key and address within the configuration. */
typedef struct
{
  const char *key;
  gsize offset;
} FloatKey;

static const FloatKey float_keys[] = {
  { "min_scale", G_STRUCT_OFFSET (AclipAugmentConfig, min_scale) },
  { "max_scale", G_STRUCT_OFFSET (AclipAugmentConfig, max_scale) },
  { "max_shift", G_STRUCT_OFFSET (AclipAugmentConfig, max_shift) },
  { "max_ebv", G_STRUCT_OFFSET (AclipAugmentConfig, max_ebv) },
  { "max_blur_sigma", G_STRUCT_OFFSET (AclipAugmentConfig, max_blur_sigma) },
  { "max_noise_fraction", G_STRUCT_OFFSET (AclipAugmentConfig, max_noise_fraction) },
};

void
aclip_augment_config_save (const AclipAugmentConfig *config, GKeyFile *key_file)
{
  g_return_if_fail (config != NULL && key_file != NULL);

  char number[G_ASCII_DTOSTR_BUF_SIZE];
  g_key_file_set_integer (key_file, AUGMENT_GROUP, "crop", config->crop);
  g_key_file_set_integer (key_file, AUGMENT_GROUP, "downsample", config->downsample);
  g_key_file_set_boolean (key_file, AUGMENT_GROUP, "flip", config->flip);
  g_key_file_set_boolean (key_file, AUGMENT_GROUP, "rotate", config->rotate);
  for (gsize k = 0; k < G_N_ELEMENTS (float_keys); k++) {
    const float *value = G_STRUCT_MEMBER_P (config, float_keys[k].offset);
    /* %.9g keeps every bit of a float. */
    g_key_file_set_value (key_file, AUGMENT_GROUP, float_keys[k].key,
                          g_ascii_formatd (number, sizeof number, "%.9g", *value));
  }
  double extinction[N_BANDS], sky[N_BANDS];
  for (int band = 0; band < N_BANDS; band++) {
    extinction[band] = config->extinction[band];
    sky[band] = config->sky_sigma[band];
  }
  g_key_file_set_double_list (key_file, AUGMENT_GROUP, "extinction", extinction, N_BANDS);
  g_key_file_set_double_list (key_file, AUGMENT_GROUP, "sky_sigma", sky, N_BANDS);
}

/* The key's value as a double, if present; FALSE + error naming the key when it is not a
 * number. */
static gboolean
read_number (GKeyFile *key_file, const char *key, double *value, GError **error)
{
  if (!g_key_file_has_key (key_file, AUGMENT_GROUP, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  double v = g_key_file_get_double (key_file, AUGMENT_GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", AUGMENT_GROUP, key,
                 local->message);
    return FALSE;
  }
  *value = v;
  return TRUE;
}

static gboolean
read_boolean (GKeyFile *key_file, const char *key, gboolean *value, GError **error)
{
  if (!g_key_file_has_key (key_file, AUGMENT_GROUP, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  gboolean v = g_key_file_get_boolean (key_file, AUGMENT_GROUP, key, &local);
  if (local != NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", AUGMENT_GROUP, key,
                 local->message);
    return FALSE;
  }
  *value = v;
  return TRUE;
}

/* A list of one value per band, if present. */
static gboolean
read_band_list (GKeyFile *key_file, const char *key, float *values, GError **error)
{
  if (!g_key_file_has_key (key_file, AUGMENT_GROUP, key, NULL))
    return TRUE;
  g_autoptr (GError) local = NULL;
  gsize length = 0;
  g_autofree double *list =
      g_key_file_get_double_list (key_file, AUGMENT_GROUP, key, &length, &local);
  if (local != NULL || length != N_BANDS) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE, "[%s] %s: %s", AUGMENT_GROUP, key,
                 local != NULL ? local->message : _("three values (g, r, z) are needed"));
    return FALSE;
  }
  for (int band = 0; band < N_BANDS; band++)
    values[band] = (float) list[band];
  return TRUE;
}

gboolean
aclip_augment_config_load (AclipAugmentConfig *config, GKeyFile *key_file, GError **error)
{
  g_return_val_if_fail (config != NULL && key_file != NULL, FALSE);
  if (!g_key_file_has_group (key_file, AUGMENT_GROUP))
    return TRUE;

  AclipAugmentConfig c = *config;
  double crop = c.crop, downsample = c.downsample;
  if (!read_number (key_file, "crop", &crop, error) ||
      !read_number (key_file, "downsample", &downsample, error) ||
      !read_boolean (key_file, "flip", &c.flip, error) ||
      !read_boolean (key_file, "rotate", &c.rotate, error) ||
      !read_band_list (key_file, "extinction", c.extinction, error) ||
      !read_band_list (key_file, "sky_sigma", c.sky_sigma, error))
    return FALSE;
  c.crop = (int) crop;
  c.downsample = (int) downsample;
  for (gsize k = 0; k < G_N_ELEMENTS (float_keys); k++) {
    float *field = G_STRUCT_MEMBER_P (&c, float_keys[k].offset);
    double value = *field;
    if (!read_number (key_file, float_keys[k].key, &value, error))
      return FALSE;
    *field = (float) value;
  }
  if (!aclip_augment_config_validate (&c, error))
    return FALSE;
  *config = c;
  return TRUE;
}

int
aclip_augment_output_size (const AclipAugmentConfig *config)
{
  g_return_val_if_fail (config != NULL && config->downsample >= 1, 0);
  return config->crop / config->downsample;
}

static int
blur_radius (double sigma)
{
  return sigma > 0.0 ? (int) ceil (BLUR_RADIUS_SIGMAS * sigma) : 0;
}

int
aclip_augment_min_image_size (const AclipAugmentConfig *config)
{
  g_return_val_if_fail (config != NULL, 0);

  int n = config->crop;
  /* Half the side of the resampled square, from the centre to the outermost pixel centre;
   * a bilinear sample at x needs pixels floor (x) and floor (x) + 1 only when x is not an
   * integer, so reaching the last pixel's centre is enough. */
  double half = (n - 1) / 2.0 + blur_radius (config->max_blur_sigma);
  double reach =
      half * (config->rotate ? G_SQRT2 : 1.0) / MIN (config->min_scale, 1.0f) + config->max_shift;
  /* A cutout of side W = N + 2k has its crop centre at k + (N − 1)/2. */
  int k = (int) ceil (reach - (n - 1) / 2.0 - 1e-9);
  return n + 2 * MAX (k, 0);
}

/* ---- Parameters ------------------------------------------------------------------------- */

void
aclip_augment_params_init_identity (AclipAugmentParams *params)
{
  g_return_if_fail (params != NULL);
  memset (params, 0, sizeof *params);
  params->scale = 1.0;
}

void
aclip_augment_params_draw (const AclipAugmentConfig *config, guint64 seed, gint64 step,
                           gint64 sample, int view, AclipAugmentParams *params)
{
  g_return_if_fail (config != NULL && params != NULL && view >= 0);

  AclipRng rng;
  aclip_rng_init (&rng, seed ^ AUGMENT_SEED_TAG, (guint64) step,
                  (guint64) sample * 64 + (guint64) view);

  /* Every draw is made whether or not its augmentation is on, so that switching one off
   * leaves the others' values unchanged. */
  aclip_augment_params_init_identity (params);
  gboolean flip = aclip_rng_uniform (&rng) < 0.5;
  double angle = aclip_rng_uniform_range (&rng, 0.0, 2.0 * G_PI);
  double scale = aclip_rng_uniform_range (&rng, config->min_scale, config->max_scale);
  double shift_x = aclip_rng_uniform_range (&rng, -config->max_shift, config->max_shift);
  double shift_y = aclip_rng_uniform_range (&rng, -config->max_shift, config->max_shift);
  double ebv = aclip_rng_uniform_range (&rng, 0.0, config->max_ebv);
  double blur = aclip_rng_uniform_range (&rng, 0.0, config->max_blur_sigma);
  for (int band = 0; band < N_BANDS; band++)
    params->noise_fraction[band] = aclip_rng_uniform_range (&rng, 0.0, config->max_noise_fraction);
  params->noise_seed = aclip_rng_next (&rng);

  params->flip = config->flip && flip;
  params->angle = config->rotate ? angle : 0.0;
  params->scale = config->min_scale == config->max_scale ? config->min_scale : scale;
  params->shift_x = shift_x;
  params->shift_y = shift_y;
  params->ebv = ebv;
  params->blur_sigma = MIN (blur, (double) config->max_blur_sigma);
}

/* ---- One view --------------------------------------------------------------------------- */

gsize
aclip_augment_workspace_size (const AclipAugmentConfig *config)
{
  g_return_val_if_fail (config != NULL, 0);
  gsize n = (gsize) config->crop;
  gsize extended = n + 2 * (gsize) blur_radius (config->max_blur_sigma);
  /* The resampled square [3, N+2r, N+2r], the row-blurred [3, N+2r, N] and the crop
   * [3, N, N] before downsampling. */
  return N_BANDS * (extended * extended + extended * n + n * n);
}

/* Bilinear sample of plane [H, W] at (x, y); taps outside the plane, and non-finite ones,
 * count as 0. */
static inline double
sample_bilinear (const float *plane, int height, int width, double x, double y)
{
  double fx = floor (x), fy = floor (y);
  double tx = x - fx, ty = y - fy;
  int x0 = (int) fx, y0 = (int) fy;
  double sum = 0.0;
  for (int dy = 0; dy < 2; dy++) {
    int yy = y0 + dy;
    double wy = dy ? ty : 1.0 - ty;
    if (yy < 0 || yy >= height || wy == 0.0)
      continue;
    for (int dx = 0; dx < 2; dx++) {
      int xx = x0 + dx;
      double wx = dx ? tx : 1.0 - tx;
      if (xx < 0 || xx >= width || wx == 0.0)
        continue;
      float value = plane[(gsize) yy * width + xx];
      if (isfinite (value))
        sum += wx * wy * value;
    }
  }
  return sum;
}

/* Step 1: resampled[b, v, u] for the extended square of side E = N + 2r, pixel (u, v) at
 * crop coordinates (u − r, v − r). */
static void
resample_affine (const AclipAugmentConfig *config, const AclipAugmentParams *params, int radius,
                 float *resampled, const float *flux, int height, int width)
{
  int n = config->crop;
  int extended = n + 2 * radius;
  gsize plane_out = (gsize) extended * extended;
  gsize plane_in = (gsize) height * width;

  /* The crop's centre in the cutout, snapped so that the identity cuts whole pixels. */
  double centre_x = (width - n) / 2 + (n - 1) / 2.0 + params->shift_x;
  double centre_y = (height - n) / 2 + (n - 1) / 2.0 + params->shift_y;
  double c = cos (params->angle), s = sin (params->angle);
  double inverse_scale = 1.0 / params->scale;

  /* Reddening and the area factor of the scaling, per band. */
  double factor[N_BANDS];
  for (int band = 0; band < N_BANDS; band++)
    factor[band] =
        pow (10.0, -0.4 * config->extinction[band] * params->ebv) * inverse_scale * inverse_scale;

  gboolean identity = !params->flip && params->angle == 0.0 && params->scale == 1.0 &&
                      params->shift_x == 0.0 && params->shift_y == 0.0;
  for (int v = 0; v < extended; v++)
    for (int u = 0; u < extended; u++) {
      /* Output position relative to the crop's centre, turned back by −θ, then unflipped. */
      double px = u - radius - (n - 1) / 2.0;
      double py = v - radius - (n - 1) / 2.0;
      double qx = c * px + s * py;
      double qy = -s * px + c * py;
      if (params->flip)
        qx = -qx;
      double x = centre_x + qx * inverse_scale;
      double y = centre_y + qy * inverse_scale;
      gsize out_index = (gsize) v * extended + u;
      if (identity) {
        /* Exactly the pixel: x and y are integers here. */
        int xi = (int) x, yi = (int) y;
        gboolean inside = xi >= 0 && xi < width && yi >= 0 && yi < height;
        for (int band = 0; band < N_BANDS; band++) {
          float value = inside ? flux[band * plane_in + (gsize) yi * width + xi] : 0.0f;
          resampled[band * plane_out + out_index] =
              (float) ((isfinite (value) ? value : 0.0f) * factor[band]);
        }
        continue;
      }
      double fx = floor (x), fy = floor (y);
      int x0 = (int) fx, y0 = (int) fy;
      if (x0 >= 0 && x0 + 1 < width && y0 >= 0 && y0 + 1 < height) {
        /* All four taps inside (the usual case): no bounds checks; a non-finite result means
         * a non-finite tap, which the careful path below counts as 0. */
        double tx = x - fx, ty = y - fy;
        double w00 = (1.0 - tx) * (1.0 - ty), w01 = tx * (1.0 - ty);
        double w10 = (1.0 - tx) * ty, w11 = tx * ty;
        gsize at = (gsize) y0 * width + x0;
        for (int band = 0; band < N_BANDS; band++) {
          const float *p = flux + band * plane_in + at;
          double value = w00 * p[0] + w01 * p[1] + w10 * p[width] + w11 * p[width + 1];
          if (G_UNLIKELY (!isfinite (value)))
            value = sample_bilinear (flux + band * plane_in, height, width, x, y);
          resampled[band * plane_out + out_index] = (float) (value * factor[band]);
        }
        continue;
      }
      for (int band = 0; band < N_BANDS; band++)
        resampled[band * plane_out + out_index] =
            (float) (sample_bilinear (flux + band * plane_in, height, width, x, y) * factor[band]);
    }
}

/* Step 2: separable Gaussian blur of [3, E, E] (E = N + 2r) into [3, N, N]. */
static void
blur_gaussian (int n, int radius, double sigma, float *out, const float *extended_image,
               float *rows)
{
  int extended = n + 2 * radius;
  double kernel[2 * 64 + 1];
  double total = 0.0;
  /* The configuration limits σ to 100 pixels, so radius ≤ 300; small kernels stay on the
   * stack. */
  double *weights = radius <= 64 ? kernel : g_new (double, 2 * radius + 1);
  for (int k = -radius; k <= radius; k++) {
    weights[k + radius] = exp (-0.5 * (k * k) / (sigma * sigma));
    total += weights[k + radius];
  }
  for (int k = 0; k <= 2 * radius; k++)
    weights[k] /= total;

  for (int band = 0; band < N_BANDS; band++) {
    const float *in = extended_image + (gsize) band * extended * extended;
    float *row_out = rows + (gsize) band * extended * n;
    float *plane_out = out + (gsize) band * n * n;
    /* Along x: [E, E] → [E, N]. */
    for (int y = 0; y < extended; y++)
      for (int x = 0; x < n; x++) {
        double sum = 0.0;
        const float *source = in + (gsize) y * extended + x;
        for (int k = 0; k <= 2 * radius; k++)
          sum += weights[k] * source[k];
        row_out[(gsize) y * n + x] = (float) sum;
      }
    /* Along y: [E, N] → [N, N]. */
    for (int y = 0; y < n; y++)
      for (int x = 0; x < n; x++) {
        double sum = 0.0;
        for (int k = 0; k <= 2 * radius; k++)
          sum += weights[k] * row_out[(gsize) (y + k) * n + x];
        plane_out[(gsize) y * n + x] = (float) sum;
      }
  }
  if (weights != kernel)
    g_free (weights);
}

void
aclip_augment_image (const AclipAugmentConfig *config, const AclipAugmentParams *params, float *out,
                     const float *flux, int height, int width, float *workspace)
{
  g_return_if_fail (config != NULL && params != NULL && out != NULL && flux != NULL);
  g_return_if_fail (workspace != NULL && height > 0 && width > 0);
  g_return_if_fail (config->downsample >= 1 && config->crop % config->downsample == 0);
  g_return_if_fail (params->scale > 0.0 && params->blur_sigma >= 0.0);

  int n = config->crop, d = config->downsample, size = n / d;
  int radius = blur_radius (params->blur_sigma);
  int max_radius = blur_radius (config->max_blur_sigma);
  g_return_if_fail (radius <= max_radius);

  gsize extended = (gsize) n + 2 * (gsize) max_radius;
  float *resampled = workspace;                            /* [3, E, E] */
  float *rows = resampled + N_BANDS * extended * extended; /* [3, E, N] */
  float *crop = rows + N_BANDS * extended * (gsize) n;     /* [3, N, N] */
  /* Without downsampling the crop is the output itself. */
  float *target = d == 1 ? out : crop;

  if (radius > 0) {
    resample_affine (config, params, radius, resampled, flux, height, width);
    blur_gaussian (n, radius, params->blur_sigma, target, resampled, rows);
  } else {
    resample_affine (config, params, 0, target, flux, height, width);
  }

  /* Step 3: block averages. */
  if (d > 1)
    for (int band = 0; band < N_BANDS; band++)
      for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
          double sum = 0.0;
          for (int dy = 0; dy < d; dy++)
            for (int dx = 0; dx < d; dx++)
              sum += crop[((gsize) band * n + (gsize) y * d + dy) * n + (gsize) x * d + dx];
          out[((gsize) band * size + y) * size + x] = (float) (sum / (d * d));
        }

  /* Step 4: noise, per band in a fixed order from the view's own generator. */
  gboolean any_noise = FALSE;
  for (int band = 0; band < N_BANDS; band++)
    any_noise |= params->noise_fraction[band] > 0.0;
  if (any_noise) {
    AclipRng rng;
    aclip_rng_init (&rng, params->noise_seed, 0, 0);
    for (int band = 0; band < N_BANDS; band++) {
      double sigma = params->noise_fraction[band] * config->sky_sigma[band] / d;
      float *plane = out + (gsize) band * size * size;
      if (sigma > 0.0)
        for (gsize i = 0; i < (gsize) size * size; i++)
          plane[i] += (float) (sigma * aclip_rng_normal (&rng));
    }
  }
}

/* ---- A batch ---------------------------------------------------------------------------- */

static gsize
batch_scratch_per_thread (const AclipAugmentConfig *config)
{
  gsize size = (gsize) aclip_augment_output_size (config);
  /* The view's own scratch, its flux [3, S, S] and its RGB [S, S, 3]; rounded to 16 floats. */
  gsize floats = aclip_augment_workspace_size (config) + 2 * N_BANDS * size * size;
  return (floats + 15) / 16 * 16;
}

gsize
aclip_augment_batch_workspace_size (const AclipAugmentConfig *config, int n_threads)
{
  g_return_val_if_fail (config != NULL, 0);
  return batch_scratch_per_thread (config) * (gsize) MAX (n_threads, 1);
}

typedef struct
{
  const AclipAugmentConfig *config;
  const AclipRgbParams *rgb;
  const AclipAugmentParams *params;
  float *input;
  const float *images;
  int n_images;
  int height, width;
  float *workspace;
} BatchTask;

static void
augment_batch_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const BatchTask *task = data;
  const AclipAugmentConfig *config = task->config;
  int size = aclip_augment_output_size (config);
  gsize plane = (gsize) size * size;
  float *scratch = task->workspace + batch_scratch_per_thread (config) * (gsize) worker;
  float *view = scratch + aclip_augment_workspace_size (config); /* [3, S, S] */
  float *rgb = view + N_BANDS * plane;                           /* [S, S, 3] */
  gsize image_floats = (gsize) N_BANDS * task->height * task->width;

  for (gint64 j = begin; j < end; j++) {
    const float *image = task->images + (gsize) (j % task->n_images) * image_floats;
    AclipAugmentParams identity;
    const AclipAugmentParams *params = task->params ? &task->params[j] : NULL;
    if (params == NULL) {
      aclip_augment_params_init_identity (&identity);
      params = &identity;
    }
    aclip_augment_image (config, params, view, image, task->height, task->width, scratch);
    float *input = task->input + (gsize) j * N_BANDS * plane;
    aclip_rgb_forward (task->rgb, view, size, size, rgb);
    /* Interleaved [S, S, 3] → planar [3, S, S]. */
    for (int channel = 0; channel < N_BANDS; channel++)
      for (gsize p = 0; p < plane; p++)
        input[channel * plane + p] = rgb[p * N_BANDS + channel];
  }
}

void
aclip_augment_batch (AclipThreadPool *pool, const AclipAugmentConfig *config,
                     const AclipRgbParams *rgb, const AclipAugmentParams *params, float *input,
                     const float *images, int n_images, int n_views, int height, int width,
                     float *workspace)
{
  g_return_if_fail (config != NULL && rgb != NULL && input != NULL && images != NULL);
  g_return_if_fail (workspace != NULL && n_images > 0 && n_views > 0);

  BatchTask task = { config, rgb, params, input, images, n_images, height, width, workspace };
  aclip_parallel_for (pool, (gint64) n_images * n_views, 1, augment_batch_range, &task);
}
