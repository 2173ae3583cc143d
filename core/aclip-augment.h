/* aclip-augment.h — physical augmentations of g, r, z flux images for the image encoder, and
 * the preprocessing that turns a catalogue cutout into the network's input.
 *
 * One view of a galaxy is made from its flux cube [3, H, W] (nanomaggies per 0.262″ pixel,
 * bands g, r, z) in four steps, all in flux, before the Legacy Survey RGB mapping:
 *
 *   1. one affine resampling (bilinear) that applies, about the cutout's centre, a flip, a
 *      rotation by any angle, a size scaling and a jitter of the crop's centre, cuts the crop
 *      [3, N, N] out (with a margin for step 2) and multiplies each band by its Galactic
 *      reddening factor 10^(−0.4·R_b·ΔE) and by 1/s² (scaling conserves total flux:
 *      the galaxy covers s² times the area);
 *   2. an extra Gaussian PSF blur (separable, kernel normalised to a sum of 1, so it conserves
 *      flux), on the native-resolution crop;
 *   3. averaging of d×d pixel blocks (d = the downsampling factor): flux per native pixel is
 *      kept, so the RGB mapping, defined per 0.262″ pixel, means the same thing;
 *   4. Gaussian noise of σ_b·f_b/d per output pixel, σ_b the simulator's sky noise per pixel
 *      at survey depth (g 0.0032, r 0.0057, z 0.0157 nanomaggies), f_b a random fraction.
 *
 * With identity parameters steps 1–4 reduce to the centre crop (then block-averaged): the crop
 * starts at pixel ((W − N)/2, (H − N)/2) (integer division), so no pixel is interpolated. That
 * is the encoder's input at embedding time.
 *
 * Coordinates: x along a row, y across rows, pixel centres at integers; angles turn the image
 * content counter-clockwise as seen with x to the right and y up (FITS's orientation, as DS9
 * shows it). Samples that fall outside the cutout are 0: choose the cutout large enough
 * (aclip_augment_min_image_size) and none do.
 *
 * Every random number of a view comes from a generator seeded by (seed, step, sample, view),
 * so a training run's augmentations do not depend on threads or on being resumed.
 */
#pragma once

#include <glib.h>

#include "aclip-parallel.h"
#include "aclip-render.h"

G_BEGIN_DECLS

/* Ranges of the random augmentations and the fixed quantities they need. */
typedef struct
{
  int crop;       /* N: the crop's side in native (0.262″) pixels */
  int downsample; /* d ≥ 1, dividing N: the output is [3, N/d, N/d] */

  gboolean flip;            /* mirror (x → −x) with probability ½ */
  gboolean rotate;          /* rotate by an angle uniform in [0, 2π) */
  float min_scale;          /* size scaling s ~ U(min_scale, max_scale): 0.9 */
  float max_scale;          /* 1.1 */
  float max_shift;          /* jitter of the crop centre, U(−max, max) per axis, pixels: 7 */
  float max_ebv;            /* ΔE(B−V) ~ U(0, max_ebv), magnitudes: 0.1 */
  float max_blur_sigma;     /* extra PSF σ ~ U(0, max), native pixels: 1.0 */
  float max_noise_fraction; /* f_b ~ U(0, max) per band: 1.0 */

  float extinction[3]; /* R_b = A_b / E(B−V), DECam g, r, z: 3.214, 2.165, 1.211 */
  float sky_sigma[3];  /* σ_b, nanomaggies per native pixel: 0.0032, 0.0057, 0.0157 */
} AclipAugmentConfig;

/* The defaults above for a crop of `crop` pixels downsampled by `downsample`. */
void aclip_augment_config_init_default (AclipAugmentConfig *config, int crop, int downsample);
/* A configuration without randomness (only the crop and the downsampling). */
void aclip_augment_config_init_none (AclipAugmentConfig *config, int crop, int downsample);
/* FALSE + error when a field is out of range (crop < 1, d not dividing it, a maximum below a
 * minimum, a negative range, ...). */
gboolean aclip_augment_config_validate (const AclipAugmentConfig *config, GError **error);
/* The [augment] group of a checkpoint's text (the ranges a model was pretrained with). */
void aclip_augment_config_save (const AclipAugmentConfig *config, GKeyFile *key_file);
/* Reads [augment] over `config`'s current values (keys that are absent keep them); FALSE +
 * error when a value is not a number or the result is invalid. A missing group is not an
 * error. */
gboolean aclip_augment_config_load (AclipAugmentConfig *config, GKeyFile *key_file, GError **error);
/* Output side N/d. */
int aclip_augment_output_size (const AclipAugmentConfig *config);
/* The smallest square cutout side from which every view of `config` samples only real pixels
 * (the crop and its blur margin at the smallest scale, turned by 45°, shifted by the largest
 * jitter): 124 pixels for the default 64-pixel crop. */
int aclip_augment_min_image_size (const AclipAugmentConfig *config);

/* One view's transformation. */
typedef struct
{
  gboolean flip;            /* mirror x about the centre before rotating */
  double angle;             /* radians, counter-clockwise */
  double scale;             /* s: > 1 enlarges the galaxy */
  double shift_x;           /* where the crop's centre is taken, relative to the cutout's centre */
  double shift_y;           /* (native pixels) */
  double ebv;               /* ΔE(B−V) added, magnitudes */
  double blur_sigma;        /* σ of the extra Gaussian PSF, native pixels; 0: none */
  double noise_fraction[3]; /* f_b: the added noise is f_b·σ_b per native pixel; 0: none */
  guint64 noise_seed;       /* seeds the noise generator */
} AclipAugmentParams;

/* Identity: no flip, angle 0, scale 1, no shift, reddening, blur or noise. */
void aclip_augment_params_init_identity (AclipAugmentParams *params);
/* Draws a view's parameters from `config`'s ranges with a generator seeded by
 * (seed, step, sample, view). */
void aclip_augment_params_draw (const AclipAugmentConfig *config, guint64 seed, gint64 step,
                                gint64 sample, int view, AclipAugmentParams *params);

/* Floats of scratch for one view (aclip_augment_image). */
gsize aclip_augment_workspace_size (const AclipAugmentConfig *config);

/* One view in flux.
 *   out:       [3, S, S] nanomaggies per native pixel (written), S = N/d
 *   flux:      [3, H, W] nanomaggies per native pixel (g, r, z); non-finite pixels count as 0
 *   params:    the view's transformation; its blur must not exceed config->max_blur_sigma
 *   workspace: [aclip_augment_workspace_size (config)]
 */
void aclip_augment_image (const AclipAugmentConfig *config, const AclipAugmentParams *params,
                          float *out, const float *flux, int height, int width, float *workspace);

/* Floats of scratch for aclip_augment_batch with a pool of n_threads (1 for NULL). */
gsize aclip_augment_batch_workspace_size (const AclipAugmentConfig *config, int n_threads);

/* The network's input for a batch: n_views views of each of n_images cutouts, then the Legacy
 * Survey RGB mapping (aclip_rgb_forward), stored planar. Output j = v·n_images + i is view v of
 * image i, made with params[j]. Parallel over the views; the result does not depend on the
 * pool.
 *   input:     [n_views·n_images, 3, S, S] (written): channels R, G, B in [0, 1]
 *              (R ← z, G ← r, B ← g)
 *   images:    [n_images, 3, H, W] flux cubes
 *   params:    [n_views·n_images], or NULL for identity (the centre crop) throughout
 *   rgb:       the mapping's constants (aclip_rgb_params_init_legacy)
 *   workspace: [aclip_augment_batch_workspace_size (config, threads of pool)]
 */
void aclip_augment_batch (AclipThreadPool *pool, const AclipAugmentConfig *config,
                          const AclipRgbParams *rgb, const AclipAugmentParams *params, float *input,
                          const float *images, int n_images, int n_views, int height, int width,
                          float *workspace);

G_END_DECLS
