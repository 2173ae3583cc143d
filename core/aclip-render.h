/* aclip-render.h — turning flux images into displayable pixels.
 *
 * The Legacy Survey RGB mapping (DESIGN §3) used by the sky viewer's JPEGs and fed to the
 * image encoder, its approximate inverse for JPEG/PNG cutouts, and single-band stretches with
 * limits from min/max, percentiles or IRAF's zscale.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Per-band scales (g, r, z), offset m and softening Q of the Legacy Survey mapping. */
typedef struct
{
  float scale[3]; /* g 6.0, r 3.4, z 2.2 */
  float offset;   /* m = 0.03 */
  float q;        /* Q = 20 */
} AclipRgbParams;

void aclip_rgb_params_init_legacy (AclipRgbParams *params);

/* flux: 3×H×W nanomaggies (g, r, z planes). rgb: H×W×3 floats in [0, 1], interleaved R, G, B
 * with red ← z, green ← r, blue ← g:
 *   v_b = x_b·s_b + m;  I = mean_b max(0, v_b);  F = asinh(Q·I)/√Q / I;  c_b = clip(v_b·F, 0, 1)
 * (F → √Q as I → 0). Non-finite flux is treated as 0. */
void aclip_rgb_forward (const AclipRgbParams *params, const float *flux, int height, int width,
                        float *rgb);
/* The same into 8-bit RGB (H×W×3, rounded), for display and for JPEG/PNG comparisons. */
void aclip_rgb_forward_u8 (const AclipRgbParams *params, const float *flux, int height,
                           int width, guint8 *rgb);
/* Approximate inverse of aclip_rgb_forward for one image: from H×W×3 8-bit RGB to a
 * 3×H×W flux cube in nanomaggies. Exact where no channel saturated (0 < c < 1); saturated or
 * black channels give a bound, not the flux.
 * Code k is read as c = k/255 (the centre of its rounding interval). A black channel returns
 * −m/s_b (v_b = 0), an upper bound; in a pixel with a saturated channel every non-black flux
 * returned is a lower bound (the least flux that renders to this pixel). Applying
 * aclip_rgb_forward_u8 to the result gives back the same 8-bit pixel. */
void aclip_rgb_inverse_u8 (const AclipRgbParams *params, const guint8 *rgb, int height,
                           int width, float *flux);

typedef enum
{
  ACLIP_STRETCH_LINEAR,
  ACLIP_STRETCH_LOG,
  ACLIP_STRETCH_SQRT,
  ACLIP_STRETCH_ASINH,
} AclipStretch;

typedef enum
{
  ACLIP_LIMITS_MINMAX,
  ACLIP_LIMITS_PERCENTILE, /* low/high percentiles, e.g. 0.5 and 99.5 */
  ACLIP_LIMITS_ZSCALE,     /* IRAF zscale: contrast 0.25, 600 samples */
} AclipLimitsMethod;

/* Display limits of n values (non-finite ignored). For PERCENTILE, low_percent/high_percent
 * are in [0, 100]; they are ignored otherwise. FALSE when no finite value exists.
 * Percentiles interpolate linearly between order statistics at position (N − 1)·p/100
 * (Hyndman & Fan type 7, numpy's default); out-of-range percents are clamped, a reversed pair
 * swapped. ZSCALE limits are clipped to the range of all finite values. */
gboolean aclip_stretch_limits (const float *values, gsize n, AclipLimitsMethod method,
                               double low_percent, double high_percent, double *low,
                               double *high);
/* Maps each value to [0, 1]: t = clip((v − low)/(high − low), 0, 1), then
 *   linear t;  sqrt √t;  log log10(1 + a·t)/log10(1 + a) with a = 1000 (DS9's log);
 *   asinh asinh(10·t)/asinh(10).  Non-finite → 0. With high == low, t = (v > low ? 1 : 0). */
void aclip_stretch_apply (const float *values, gsize n, AclipStretch stretch, double low,
                          double high, float *out);

G_END_DECLS
