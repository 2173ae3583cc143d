/* test-image-encoder.cc — the physical augmentations (core/aclip-augment.h), the image encoder
 * (core/aclip-image-encoder.h), its SimCLR objective (core/aclip-image-pretrain.h) and
 * `astroclip pretrain-images`.
 *
 * - augmentations, hand-checked: identity parameters give the centre crop (and its block
 *   means); a quarter turn and a flip move pixels where they must; scaling and blur conserve
 *   flux; reddening factors; the added noise's σ on a blank image; determinism per (seed, step,
 *   sample, view) and independence of the thread count; the minimum cutout size;
 * - the encoder and the SimCLR head and loss, forward and every gradient, against a PyTorch
 *   model of the same tiny architecture (tests/reference/make_image_encoder_fixtures.py), in
 *   BN's training and evaluation modes;
 * - a tiny SimCLR run on a small simulated catalogue: two-view retrieval on held-out galaxies
 *   rises far above chance;
 * - the trainer: JSON progress, checkpoints, SIGTERM and a bit-identical resume.
 *
 * Tolerances, with the reason:
 * - identity crop, quarter turn, flip: exact up to cos(π/2) ≈ 6e-17 in the sample positions
 *   (1e-6 absolute on values O(1));
 * - flux under scaling: 2e-4 relative, the error of bilinear interpolation of a σ = 3 px
 *   Gaussian summed over the crop (measured ~1e-5); under blur: 1e-5 (the kernel sums to 1,
 *   float sums);
 * - noise σ on 16384 pixels: the standard error of a standard deviation is σ/√(2n) = 0.55%,
 *   so 3%;
 * - PyTorch fixture, tokens: 1e-5 + 1e-4 relative (float32 through 6 convolutions with BN,
 *   values O(1); measured ~1e-6); gradients: 1e-5·(the tensor's largest |gradient|) + 1e-3
 *   relative (BN's backward subtracts means of O(1) terms; measured ≤ 1e-6 of the scale).
 */
#include "test-support.h"

#include "aclip-augment.h"
#include "aclip-checkpoint.h"
#include "aclip-image-encoder.h"
#include "aclip-image-pretrain.h"
#include "aclip-params.h"
#include "aclip-render.h"

#include <gio/gio.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

/* A random flux cube [3, H, W]. */
std::vector<float>
random_image (int height, int width, unsigned seed, float scale = 1.0f)
{
  std::mt19937 generator (seed);
  std::uniform_real_distribution<float> uniform (-0.2f, 1.0f);
  std::vector<float> image ((size_t) 3 * height * width);
  for (auto &value : image)
    value = scale * uniform (generator);
  return image;
}

/* A round Gaussian of total flux `total` in every band, centred at (cx, cy). */
std::vector<float>
gaussian_image (int height, int width, double cx, double cy, double sigma, double total)
{
  std::vector<float> image ((size_t) 3 * height * width);
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        image[((size_t) b * height + y) * width + x] =
            (float) (total * std::exp (-0.5 * r2 / (sigma * sigma)) / (2 * M_PI * sigma * sigma));
      }
  return image;
}

std::vector<float>
augment (const AclipAugmentConfig &config, const AclipAugmentParams &params,
         const std::vector<float> &image, int height, int width)
{
  int size = aclip_augment_output_size (&config);
  std::vector<float> out ((size_t) 3 * size * size, NAN);
  std::vector<float> workspace (aclip_augment_workspace_size (&config));
  aclip_augment_image (&config, &params, out.data (), image.data (), height, width,
                       workspace.data ());
  return out;
}

double
plane_sum (const std::vector<float> &image, int band, int size)
{
  double sum = 0.0;
  for (int i = 0; i < size * size; i++)
    sum += image[(size_t) band * size * size + i];
  return sum;
}

/* ---- Augmentations -------------------------------------------------------------------------- */

TEST (Augment, IdentityIsTheCentreCrop)
{
  /* W − N odd and H − N even: the crop starts at ((W − N)/2, (H − N)/2), integer division. */
  const int height = 30, width = 27, crop = 16;
  std::vector<float> image = random_image (height, width, 1);
  image[5] = NAN; /* outside the crop; non-finite pixels count as 0 anyway */
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, crop, 1);
  AclipAugmentParams params;
  aclip_augment_params_init_identity (&params);
  std::vector<float> out = augment (config, params, image, height, width);
  int x0 = (width - crop) / 2, y0 = (height - crop) / 2;
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < crop; y++)
      for (int x = 0; x < crop; x++)
        ASSERT_EQ (out[((size_t) b * crop + y) * crop + x],
                   image[((size_t) b * height + y + y0) * width + x + x0])
            << "band " << b << " at (" << x << ", " << y << ")";

  /* Downsampling by 2: the means of 2×2 blocks of that crop. */
  aclip_augment_config_init_default (&config, crop, 2);
  std::vector<float> binned = augment (config, params, image, height, width);
  int size = crop / 2;
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < size; y++)
      for (int x = 0; x < size; x++) {
        double sum = 0.0;
        for (int dy = 0; dy < 2; dy++)
          for (int dx = 0; dx < 2; dx++)
            sum += out[((size_t) b * crop + 2 * y + dy) * crop + 2 * x + dx];
        EXPECT_NEAR (binned[((size_t) b * size + y) * size + x], sum / 4, 1e-6);
      }
}

/* Pixel (x, y) of a crop of side n relative to its centre, and back. */
struct Centred
{
  int n;
  double rel (int i) const
  {
    return i - (n - 1) / 2.0;
  }
  int abs (double r) const
  {
    return (int) std::lround (r + (n - 1) / 2.0);
  }
};

TEST (Augment, QuarterTurnAndFlipMovePixelsExactly)
{
  const int side = 24, crop = 12;
  std::vector<float> image = random_image (side, side, 2);
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, crop, 1);
  AclipAugmentParams identity;
  aclip_augment_params_init_identity (&identity);
  std::vector<float> base = augment (config, identity, image, side, side);

  /* Counter-clockwise by 90° (x right, y up): the content at (rx, ry) moves to (−ry, rx). */
  AclipAugmentParams turn = identity;
  turn.angle = M_PI / 2;
  std::vector<float> turned = augment (config, turn, image, side, side);
  /* Mirror: the content at (rx, ry) moves to (−rx, ry). */
  AclipAugmentParams flip = identity;
  flip.flip = TRUE;
  std::vector<float> flipped = augment (config, flip, image, side, side);
  /* Flip, then turn by 90°: (rx, ry) → (−rx, ry) → (−ry, −rx). */
  AclipAugmentParams both = turn;
  both.flip = TRUE;
  std::vector<float> flipped_turned = augment (config, both, image, side, side);

  Centred c{ crop };
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < crop; y++)
      for (int x = 0; x < crop; x++) {
        float value = base[((size_t) b * crop + y) * crop + x];
        double rx = c.rel (x), ry = c.rel (y);
        EXPECT_NEAR (turned[((size_t) b * crop + c.abs (rx)) * crop + c.abs (-ry)], value, 1e-6);
        EXPECT_NEAR (flipped[((size_t) b * crop + y) * crop + c.abs (-rx)], value, 1e-6);
        EXPECT_NEAR (flipped_turned[((size_t) b * crop + c.abs (-rx)) * crop + c.abs (-ry)], value,
                     1e-6);
      }

  /* A bright pixel right of the centre ends up above it after the quarter turn. */
  std::vector<float> dot ((size_t) 3 * side * side, 0.0f);
  int cx = (side - crop) / 2 + crop / 2; /* the pixel at rx = +0.5 */
  int cy = (side - crop) / 2 + crop / 2 - 1;
  dot[(size_t) cy * side + cx + 3] = 1.0f; /* rx = 3.5, ry = −0.5 */
  std::vector<float> dot_turned = augment (config, turn, dot, side, side);
  EXPECT_NEAR (dot_turned[(size_t) c.abs (3.5) * crop + c.abs (0.5)], 1.0f, 1e-6);
}

TEST (Augment, ScalingAndBlurConserveFlux)
{
  const int side = 64, crop = 48;
  const double total = 10.0;
  std::vector<float> image = gaussian_image (side, side, 31.5, 31.5, 3.0, total);
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, crop, 1);
  for (double scale : { 0.9, 1.0, 1.1 })
    for (double blur : { 0.0, 0.5, 1.0 }) {
      AclipAugmentParams params;
      aclip_augment_params_init_identity (&params);
      params.scale = scale;
      params.blur_sigma = blur;
      params.angle = 0.7; /* any angle: the Gaussian is round */
      params.shift_x = 2.3;
      params.shift_y = -1.6;
      std::vector<float> out = augment (config, params, image, side, side);
      for (int b = 0; b < 3; b++)
        EXPECT_NEAR (plane_sum (out, b, crop), total, 2e-4 * total)
            << "scale " << scale << ", blur " << blur;

      /* The second moment: (σ·s)² + blur² per axis, about the shifted centre. */
      /* The shift moves the crop's centre, so the galaxy moves the other way, turned and
       * scaled with the content. */
      double c = std::cos (params.angle), s = std::sin (params.angle), sum = 0.0, moment = 0.0;
      double gx = (crop - 1) / 2.0 - scale * (c * params.shift_x - s * params.shift_y);
      double gy = (crop - 1) / 2.0 - scale * (s * params.shift_x + c * params.shift_y);
      for (int y = 0; y < crop; y++)
        for (int x = 0; x < crop; x++) {
          double v = out[(size_t) y * crop + x];
          sum += v;
          moment += v * ((x - gx) * (x - gx) + (y - gy) * (y - gy)) / 2;
        }
      /* Bilinear interpolation at a fraction t of a pixel widens by t(1 − t) px² per axis,
       * 1/6 on average over a turned grid; the discrete blur kernel is a little narrower than
       * its σ. */
      double expected = 9.0 * scale * scale + blur * blur + 1.0 / 6;
      EXPECT_NEAR (moment / sum, expected, 0.1) << "scale " << scale << ", blur " << blur;
    }
}

TEST (Augment, ReddeningFactors)
{
  const int side = 20, crop = 8;
  std::vector<float> ones ((size_t) 3 * side * side, 1.0f);
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, crop, 1);
  AclipAugmentParams params;
  aclip_augment_params_init_identity (&params);
  params.ebv = 0.1;
  std::vector<float> out = augment (config, params, ones, side, side);
  const double r[3] = { 3.214, 2.165, 1.211 }; /* DECam g, r, z */
  for (int b = 0; b < 3; b++)
    for (int i = 0; i < crop * crop; i++)
      ASSERT_NEAR (out[(size_t) b * crop * crop + i], std::pow (10.0, -0.4 * r[b] * 0.1), 1e-6);
  EXPECT_NEAR (out[0], 0.7437, 1e-4); /* g loses 26% at ΔE = 0.1 */
}

TEST (Augment, NoiseMatchesSurveyDepth)
{
  const int side = 140, crop = 128;
  std::vector<float> blank ((size_t) 3 * side * side, 0.0f);
  const double sky[3] = { 0.0032, 0.0057, 0.0157 };
  for (int d : { 1, 2 }) {
    AclipAugmentConfig config;
    aclip_augment_config_init_default (&config, crop, d);
    AclipAugmentParams params;
    aclip_augment_params_init_identity (&params);
    params.noise_fraction[0] = 1.0;
    params.noise_fraction[1] = 0.5;
    params.noise_fraction[2] = 0.25;
    params.noise_seed = 77;
    std::vector<float> out = augment (config, params, blank, side, side);
    int size = crop / d;
    for (int b = 0; b < 3; b++) {
      double sum = 0.0, sum2 = 0.0;
      for (int i = 0; i < size * size; i++) {
        double v = out[(size_t) b * size * size + i];
        sum += v;
        sum2 += v * v;
      }
      double n = size * size, mean = sum / n;
      double sigma = std::sqrt (sum2 / n - mean * mean);
      double expected = params.noise_fraction[b] * sky[b] / d;
      EXPECT_NEAR (sigma, expected, (d == 1 ? 0.03 : 0.05) * expected) << "band " << b;
      EXPECT_NEAR (mean, 0.0, 5 * expected / std::sqrt (n));
    }
  }
}

TEST (Augment, DrawsAreDeterministicAndInRange)
{
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, 64, 1);
  AclipAugmentParams a, b;
  aclip_augment_params_draw (&config, 5, 17, 3, 1, &a);
  aclip_augment_params_draw (&config, 5, 17, 3, 1, &b);
  EXPECT_EQ (std::memcmp (&a, &b, sizeof a), 0);
  /* Any other seed, step, sample or view gives other values. */
  const gint64 others[4][4] = {
    { 6, 17, 3, 1 }, { 5, 18, 3, 1 }, { 5, 17, 4, 1 }, { 5, 17, 3, 0 }
  };
  for (const auto &other : others) {
    aclip_augment_params_draw (&config, other[0], other[1], other[2], (int) other[3], &b);
    EXPECT_NE (a.angle, b.angle);
    EXPECT_NE (a.noise_seed, b.noise_seed);
  }

  int flips = 0;
  double min_scale = 2, max_scale = 0, max_shift = 0, max_ebv = 0, max_blur = 0;
  for (int i = 0; i < 2000; i++) {
    aclip_augment_params_draw (&config, 1, i, i % 7, i % 2, &a);
    flips += a.flip;
    min_scale = std::min (min_scale, a.scale);
    max_scale = std::max (max_scale, a.scale);
    max_shift = std::max ({ max_shift, std::fabs (a.shift_x), std::fabs (a.shift_y) });
    ASSERT_GE (a.ebv, 0.0);
    ASSERT_GE (a.blur_sigma, 0.0);
    ASSERT_GE (a.angle, 0.0);
    ASSERT_LT (a.angle, 2 * M_PI);
    max_ebv = std::max (max_ebv, a.ebv);
    max_blur = std::max (max_blur, a.blur_sigma);
    for (int band = 0; band < 3; band++) {
      ASSERT_GE (a.noise_fraction[band], 0.0);
      ASSERT_LE (a.noise_fraction[band], 1.0);
    }
  }
  EXPECT_NEAR (flips / 2000.0, 0.5, 0.05);
  EXPECT_GE (min_scale, 0.9);
  EXPECT_LT (min_scale, 0.91);
  EXPECT_LE (max_scale, 1.1);
  EXPECT_GT (max_scale, 1.09);
  EXPECT_LE (max_shift, 7.0);
  EXPECT_GT (max_shift, 6.9);
  EXPECT_LE (max_ebv, 0.1);
  EXPECT_LE (max_blur, 1.0);

  /* A configuration without randomness draws the identity (but keeps the noise seed). */
  aclip_augment_config_init_none (&config, 64, 1);
  aclip_augment_params_draw (&config, 1, 2, 3, 0, &a);
  EXPECT_FALSE (a.flip);
  EXPECT_EQ (a.angle, 0.0);
  EXPECT_EQ (a.scale, 1.0);
  EXPECT_EQ (a.shift_x, 0.0);
  EXPECT_EQ (a.ebv, 0.0);
  EXPECT_EQ (a.blur_sigma, 0.0);
  EXPECT_EQ (a.noise_fraction[0], 0.0);
}

TEST (Augment, BatchMapsToRgbWhateverTheThreads)
{
  const int side = 80, crop = 32, n = 5, views = 2;
  std::vector<float> images;
  for (int i = 0; i < n; i++) {
    std::vector<float> image = random_image (side, side, 10 + i, 0.3f);
    images.insert (images.end (), image.begin (), image.end ());
  }
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, crop, 2);
  AclipRgbParams rgb;
  aclip_rgb_params_init_legacy (&rgb);
  std::vector<AclipAugmentParams> params (n * views);
  for (int v = 0; v < views; v++)
    for (int i = 0; i < n; i++)
      aclip_augment_params_draw (&config, 9, 4, i, v, &params[v * n + i]);

  int size = crop / 2;
  size_t per_view = (size_t) 3 * size * size;
  std::vector<float> serial (per_view * n * views), parallel (serial.size ());
  std::vector<float> workspace (aclip_augment_batch_workspace_size (&config, 3));
  aclip_augment_batch (nullptr, &config, &rgb, params.data (), serial.data (), images.data (), n,
                       views, side, side, workspace.data ());
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (3);
  aclip_augment_batch (pool, &config, &rgb, params.data (), parallel.data (), images.data (), n,
                       views, side, side, workspace.data ());
  EXPECT_EQ (std::memcmp (serial.data (), parallel.data (), serial.size () * sizeof (float)), 0);

  /* Output j is view j / n of image j % n, mapped by aclip_rgb_forward and stored planar. */
  std::vector<float> flux_workspace (aclip_augment_workspace_size (&config));
  std::vector<float> rgb_pixels ((size_t) size * size * 3);
  for (int j = 0; j < n * views; j++) {
    std::vector<float> flux (per_view);
    std::vector<float> image (images.begin () + (size_t) (j % n) * 3 * side * side,
                              images.begin () + (size_t) (j % n + 1) * 3 * side * side);
    aclip_augment_image (&config, &params[j], flux.data (), image.data (), side, side,
                         flux_workspace.data ());
    aclip_rgb_forward (&rgb, flux.data (), size, size, rgb_pixels.data ());
    for (int channel = 0; channel < 3; channel++)
      for (int p = 0; p < size * size; p++)
        ASSERT_EQ (serial[j * per_view + (size_t) channel * size * size + p],
                   rgb_pixels[(size_t) p * 3 + channel]);
  }
  /* The identity (params NULL) is the centre crop. */
  aclip_augment_batch (nullptr, &config, &rgb, nullptr, serial.data (), images.data (), n, 1, side,
                       side, workspace.data ());
  for (float value : std::vector<float> (serial.begin (), serial.begin () + per_view * n)) {
    ASSERT_GE (value, 0.0f);
    ASSERT_LE (value, 1.0f);
  }
}

TEST (Augment, MinimumImageSizeKeepsEverySampleInside)
{
  AclipAugmentConfig config;
  aclip_augment_config_init_default (&config, 64, 1);
  int side = aclip_augment_min_image_size (&config);
  EXPECT_EQ (side, 124); /* so a 128-pixel catalogue is enough */
  std::vector<float> ones ((size_t) 3 * side * side, 1.0f);
  /* The extremes: smallest scale, 45°, the largest shift, the largest blur. */
  for (double angle : { M_PI / 4, 3 * M_PI / 4, 5 * M_PI / 4, 7 * M_PI / 4 }) {
    AclipAugmentParams params;
    aclip_augment_params_init_identity (&params);
    params.scale = 0.9;
    params.angle = angle;
    params.shift_x = angle < M_PI ? 7.0 : -7.0;
    params.shift_y = angle < M_PI / 2 || angle > 3 * M_PI / 2 ? 7.0 : -7.0;
    params.blur_sigma = 1.0;
    std::vector<float> out = augment (config, params, ones, side, side);
    for (float value : out)
      ASSERT_NEAR (value, 1.0 / (0.9 * 0.9), 1e-5) << "a sample fell outside";
  }
  /* Without blur the margin is smaller; then a cutout 2 pixels smaller than the minimum
   * (so that the centre stays put) loses samples at the corners. */
  config.max_blur_sigma = 0.0f;
  side = aclip_augment_min_image_size (&config);
  EXPECT_EQ (side, 114);
  for (int smaller : { 0, 2 }) {
    int s = side - smaller;
    std::vector<float> image ((size_t) 3 * s * s, 1.0f);
    AclipAugmentParams params;
    aclip_augment_params_init_identity (&params);
    params.scale = 0.9;
    params.angle = M_PI / 4;
    params.shift_x = 7.0;
    params.shift_y = 7.0;
    std::vector<float> out = augment (config, params, image, s, s);
    float least = *std::min_element (out.begin (), out.end ());
    if (smaller == 0)
      EXPECT_NEAR (least, 1.0 / (0.9 * 0.9), 1e-5);
    else
      EXPECT_LT (least, 0.9 / (0.9 * 0.9));
  }
}

TEST (Augment, ConfigurationRoundTrips)
{
  AclipAugmentConfig config, loaded;
  aclip_augment_config_init_default (&config, 48, 2);
  config.max_ebv = 0.07f;
  config.sky_sigma[2] = 0.02f;
  config.rotate = FALSE;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_augment_config_save (&config, key_file);
  aclip_augment_config_init_none (&loaded, 1, 1);
  ErrorHolder error;
  ASSERT_TRUE (aclip_augment_config_load (&loaded, key_file, error.out ()));
  EXPECT_EQ (std::memcmp (&config, &loaded, sizeof config), 0);

  g_key_file_set_string (key_file, "augment", "max_scale", "0.5");
  EXPECT_FALSE (aclip_augment_config_load (&loaded, key_file, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "scale");
}

/* ---- The encoder ---------------------------------------------------------------------------- */

AclipImageEncoderConfig
fixture_config (const Fixture &f)
{
  const FixtureTensor &c = f["config"];
  AclipImageEncoderConfig config;
  aclip_image_encoder_config_init_default (&config);
  config.crop = (int) c.values[0];
  config.downsample = 1;
  config.stem_channels = (int) c.values[1];
  config.stem_stride = (int) c.values[2];
  config.n_stages = (int) c.values[3];
  for (int i = 0; i < config.n_stages; i++) {
    config.stage_channels[i] = (int) c.values[4 + i];
    config.stage_blocks[i] = (int) c.values[4 + config.n_stages + i];
  }
  return config;
}

AclipSimclrConfig
fixture_head (const Fixture &f)
{
  AclipSimclrConfig head;
  head.hidden = (int) f["head"].values[0];
  head.dim = (int) f["head"].values[1];
  head.temperature = (float) f["head"].values[2];
  return head;
}

/* A training table with the fixture's encoder and head, its values copied in. */
AclipParams *
fixture_params (const Fixture &f)
{
  ErrorHolder error;
  AclipImageEncoderConfig config = fixture_config (f);
  AclipSimclrConfig head = fixture_head (f);
  AclipParams *params = aclip_params_new ();
  EXPECT_TRUE (aclip_image_encoder_register (&config, params, "image.", error.out ()));
  EXPECT_TRUE (aclip_simclr_register (&head, aclip_image_encoder_config_channels (&config), params,
                                      "simclr.", error.out ()));
  EXPECT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_TRAINING, error.out ()));
  for (int t = 0; t < aclip_params_n_tensors (params); t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    std::string name = std::string ("param/") + info->name;
    EXPECT_TRUE (f.has (name)) << "the fixture lacks " << name;
    if (!f.has (name))
      continue;
    std::vector<float> values = f[name].as_float ();
    EXPECT_EQ ((gint64) values.size (), info->n_elements) << name;
    std::copy (values.begin (), values.end (), aclip_params_value (params, t));
  }
  return params;
}

void
expect_gradients (AclipParams *params, const Fixture &f, const std::string &prefix, bool with_head)
{
  int checked = 0;
  for (int t = 0; t < aclip_params_n_tensors (params); t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    std::string name = info->name;
    if (name.find ("running") != std::string::npos) {
      /* Running statistics never get a gradient. */
      const float *grad = aclip_params_grad (params, t);
      for (gint64 i = 0; i < info->n_elements; i++)
        ASSERT_EQ (grad[i], 0.0f) << name;
      continue;
    }
    if (!with_head && name.rfind ("simclr.", 0) == 0)
      continue;
    const FixtureTensor &reference = f[prefix + name];
    ASSERT_EQ (reference.size (), info->n_elements) << name;
    double scale = 0.0;
    for (double v : reference.values)
      scale = std::max (scale, std::fabs (v));
    EXPECT_CLOSE_TO_REFERENCE (aclip_params_grad (params, t), reference.values.data (),
                               (size_t) info->n_elements, 1e-5 * scale + 1e-12, 1e-3, name);
    checked++;
  }
  EXPECT_GT (checked, 10);
}

TEST (ImageEncoder, TensorNamesAndDefaultSize)
{
  AclipImageEncoderConfig config;
  aclip_image_encoder_config_init_default (&config);
  EXPECT_EQ (aclip_image_encoder_config_input_size (&config), 64);
  EXPECT_EQ (aclip_image_encoder_config_map_size (&config), 4);
  EXPECT_EQ (aclip_image_encoder_config_n_tokens (&config), 16);
  EXPECT_EQ (aclip_image_encoder_config_channels (&config), 256);
  EXPECT_NEAR (aclip_image_encoder_config_flops (&config), 44.9e6, 0.1e6);

  g_autoptr (AclipParams) params = aclip_params_new ();
  ErrorHolder error;
  ASSERT_TRUE (aclip_image_encoder_register (&config, params, "image.", error.out ()));
  EXPECT_GE (aclip_params_lookup (params, "image.conv1.weight"), 0);
  EXPECT_GE (aclip_params_lookup (params, "image.bn1.running_var"), 0);
  EXPECT_GE (aclip_params_lookup (params, "image.layer1.0.downsample.0.weight"), 0);
  EXPECT_GE (aclip_params_lookup (params, "image.layer3.0.bn2.weight"), 0);
  EXPECT_LT (aclip_params_lookup (params, "image.layer4.0.bn2.weight"), 0);
  /* Weights decay; BN's parameters and statistics do not. */
  const AclipParamInfo *conv =
      aclip_params_info (params, aclip_params_lookup (params, "image.layer2.0.conv1.weight"));
  const AclipParamInfo *bn =
      aclip_params_info (params, aclip_params_lookup (params, "image.layer2.0.bn1.weight"));
  EXPECT_TRUE (conv->flags & ACLIP_PARAM_DECAY);
  EXPECT_FALSE (bn->flags & ACLIP_PARAM_DECAY);
  /* 1.20M weights and 4k BN values. */
  EXPECT_NEAR ((double) aclip_params_n_elements (params), 1.21e6, 0.01e6);

  /* The configuration round-trips through a key file. */
  config.stage_blocks[2] = 3;
  config.downsample = 2;
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  aclip_image_encoder_config_save (&config, key_file);
  AclipImageEncoderConfig loaded;
  ASSERT_TRUE (aclip_image_encoder_config_load (&loaded, key_file, error.out ()));
  EXPECT_EQ (std::memcmp (&config, &loaded, sizeof config), 0);
  g_key_file_set_string (key_file, "image_encoder", "stage_blocks", "1;1");
  EXPECT_FALSE (aclip_image_encoder_config_load (&loaded, key_file, error.out ()));
}

TEST (ImageEncoder, MatchesPyTorchInTrainingMode)
{
  Fixture f ("image-encoder.bin");
  ASSERT_TRUE (f.ok ());
  AclipImageEncoderConfig config = fixture_config (f);
  g_autoptr (AclipParams) params = fixture_params (f);
  ErrorHolder error;
  const FixtureTensor &input = f["input"];
  int batch = (int) input.shape[0];
  g_autoptr (AclipImageEncoder) encoder =
      aclip_image_encoder_new (&config, params, "image.", batch + 2, error.out ());
  ASSERT_NE (encoder, nullptr) << error->message;

  std::vector<float> x = input.as_float ();
  aclip_params_zero_grads (params);
  const float *tokens = aclip_image_encoder_forward (encoder, nullptr, x.data (), batch, TRUE);
  const FixtureTensor &expected = f["train/tokens"];
  EXPECT_CLOSE_TO_REFERENCE (tokens, expected.values.data (), (size_t) expected.size (), 1e-5, 1e-4,
                             "tokens");
  /* The feature map holds the same values, channels first. */
  const float *map = aclip_image_encoder_feature_map (encoder);
  int t_count = aclip_image_encoder_config_n_tokens (&config);
  int channels = aclip_image_encoder_config_channels (&config);
  EXPECT_EQ (map[(size_t) 1 * channels * t_count + 2 * t_count + 3],
             tokens[((size_t) 1 * t_count + 3) * channels + 2]);

  for (int t = 0; t < aclip_params_n_tensors (params); t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    std::string name = std::string ("train/after/") + info->name;
    if (f.has (name))
      EXPECT_CLOSE_TO_REFERENCE (aclip_params_value (params, t), f[name].values.data (),
                                 (size_t) info->n_elements, 1e-6, 1e-5, name);
  }

  std::vector<float> d_tokens = f["train/d_tokens"].as_float ();
  std::vector<float> d_input (x.size (), 0.0f);
  aclip_image_encoder_backward (encoder, nullptr, d_tokens.data (), d_input.data ());
  const FixtureTensor &expected_d_input = f["train/d_input"];
  double scale = 0.0;
  for (double v : expected_d_input.values)
    scale = std::max (scale, std::fabs (v));
  EXPECT_CLOSE_TO_REFERENCE (d_input.data (), expected_d_input.values.data (), d_input.size (),
                             1e-5 * scale, 1e-3, "d_input");
  expect_gradients (params, f, "train/grad/", false);

  /* The backward accumulates: a second one doubles every gradient. */
  std::vector<float> once (aclip_params_grads (params),
                           aclip_params_grads (params) + aclip_params_n_floats (params));
  aclip_image_encoder_backward (encoder, nullptr, d_tokens.data (), nullptr);
  for (size_t i = 0; i < once.size (); i++)
    ASSERT_NEAR (aclip_params_grads (params)[i], 2 * once[i], 1e-6 + 1e-5 * std::fabs (once[i]));
}

TEST (ImageEncoder, BackwardFromAStageEqualsTheFullBackwardAboveIt)
{
  /* Fine-tuning the last stage stops the backward below it: the gradients it computes must be
   * the full backward's, bit for bit; the stem's and earlier stages' stay zero, and so does
   * d_input. */
  Fixture f ("image-encoder.bin");
  ASSERT_TRUE (f.ok ());
  AclipImageEncoderConfig config = fixture_config (f);
  ASSERT_GE (config.n_stages, 2);
  std::vector<float> x = f["input"].as_float ();
  std::vector<float> d_tokens = f["train/d_tokens"].as_float ();
  int batch = (int) f["input"].shape[0];
  auto gradients = [&] (int first_stage, AclipParams *params, std::vector<float> *d_input) {
    g_autoptr (AclipImageEncoder) encoder =
        aclip_image_encoder_new (&config, params, "image.", batch, nullptr);
    ASSERT_NE (encoder, nullptr);
    aclip_params_zero_grads (params);
    aclip_image_encoder_forward (encoder, nullptr, x.data (), batch, TRUE);
    aclip_image_encoder_backward_from (encoder, nullptr, d_tokens.data (), first_stage,
                                       d_input->data ());
  };
  g_autoptr (AclipParams) full = fixture_params (f);
  std::vector<float> d_input_full (x.size (), 0.0f);
  gradients (0, full, &d_input_full);
  for (int first_stage = 1; first_stage <= config.n_stages; first_stage++) {
    g_autoptr (AclipParams) part = fixture_params (f);
    std::vector<float> d_input (x.size (), 0.0f);
    gradients (first_stage, part, &d_input);
    EXPECT_EQ (*std::max_element (d_input.begin (), d_input.end ()), 0.0f);
    EXPECT_EQ (*std::min_element (d_input.begin (), d_input.end ()), 0.0f);
    int n_trained = 0;
    for (int t = 0; t < aclip_params_n_tensors (part); t++) {
      const AclipParamInfo *info = aclip_params_info (part, t);
      std::string name = info->name;
      bool trained = false;
      for (int s = first_stage; s < config.n_stages; s++)
        trained |= name.rfind ("image.layer" + std::to_string (s + 1) + ".", 0) == 0;
      const float *got = aclip_params_grad (part, t);
      size_t bytes = (size_t) info->n_elements * sizeof (float);
      if (trained) {
        n_trained++;
        EXPECT_EQ (0, std::memcmp (got, aclip_params_grad (full, t), bytes))
            << name << " from stage " << first_stage;
      } else {
        std::vector<float> zeros ((size_t) info->n_elements, 0.0f);
        EXPECT_EQ (0, std::memcmp (got, zeros.data (), bytes))
            << name << " got a gradient from stage " << first_stage;
      }
    }
    EXPECT_EQ (n_trained > 0, first_stage < config.n_stages) << "from stage " << first_stage;
  }
}

TEST (ImageEncoder, MatchesPyTorchInEvaluationModeImageByImage)
{
  Fixture f ("image-encoder.bin");
  ASSERT_TRUE (f.ok ());
  AclipImageEncoderConfig config = fixture_config (f);
  g_autoptr (AclipParams) params = fixture_params (f);
  std::vector<float> before (aclip_params_values (params),
                             aclip_params_values (params) + aclip_params_n_floats (params));
  ErrorHolder error;
  const FixtureTensor &input = f["input"];
  int batch = (int) input.shape[0];
  g_autoptr (AclipImageEncoder) encoder =
      aclip_image_encoder_new (&config, params, "image.", batch, error.out ());
  ASSERT_NE (encoder, nullptr);
  std::vector<float> x = input.as_float ();
  const float *tokens = aclip_image_encoder_forward (encoder, nullptr, x.data (), batch, FALSE);
  const FixtureTensor &expected = f["eval/tokens"];
  EXPECT_CLOSE_TO_REFERENCE (tokens, expected.values.data (), (size_t) expected.size (), 1e-5, 1e-4,
                             "tokens");
  /* Evaluation leaves the running statistics alone. */
  EXPECT_EQ (
      std::memcmp (before.data (), aclip_params_values (params), before.size () * sizeof (float)),
      0);

  /* One image alone gives the same tokens as within the batch. */
  size_t per_image = (size_t) aclip_image_encoder_config_n_tokens (&config) *
                     aclip_image_encoder_config_channels (&config);
  std::vector<float> all (tokens, tokens + per_image * batch);
  size_t image_floats = (size_t) 3 * config.crop * config.crop;
  const float *alone =
      aclip_image_encoder_forward (encoder, nullptr, x.data () + 4 * image_floats, 1, FALSE);
  for (size_t i = 0; i < per_image; i++)
    ASSERT_NEAR (alone[i], all[4 * per_image + i], 1e-5);
}

TEST (ImagePretrain, SimclrMatchesPyTorch)
{
  Fixture f ("image-encoder.bin");
  ASSERT_TRUE (f.ok ());
  AclipImageEncoderConfig config = fixture_config (f);
  AclipSimclrConfig head = fixture_head (f);
  g_autoptr (AclipParams) params = fixture_params (f);
  ErrorHolder error;
  const FixtureTensor &input = f["input"];
  int batch = (int) input.shape[0];
  g_autoptr (AclipImageEncoder) encoder =
      aclip_image_encoder_new (&config, params, "image.", batch, error.out ());
  ASSERT_NE (encoder, nullptr);
  g_autoptr (AclipSimclr) simclr =
      aclip_simclr_new (&head, encoder, params, "simclr.", batch / 2, error.out ());
  ASSERT_NE (simclr, nullptr) << error->message;

  std::vector<float> x = input.as_float ();
  aclip_params_zero_grads (params);
  float accuracy[2];
  float loss = aclip_simclr_forward (simclr, nullptr, x.data (), batch / 2, TRUE, accuracy);
  EXPECT_NEAR (loss, f.scalar ("simclr/loss"), 1e-5 * (1 + std::fabs (loss)));
  const FixtureTensor &z = f["simclr/projections"];
  EXPECT_CLOSE_TO_REFERENCE (aclip_simclr_projections (simclr), z.values.data (),
                             (size_t) z.size (), 1e-5, 1e-4, "projections");
  aclip_simclr_backward (simclr, nullptr, 1.0f);
  expect_gradients (params, f, "simclr/grad/", true);
}

TEST (ImageEncoder, RestoresItsTensorsFromALargerCheckpoint)
{
  Fixture f ("image-encoder.bin");
  ASSERT_TRUE (f.ok ());
  AclipImageEncoderConfig config = fixture_config (f);
  g_autoptr (AclipParams) saved = fixture_params (f); /* encoder + head */
  TempDir dir;
  std::string path = dir.path ("pretrained.ckpt");
  ErrorHolder error;
  ASSERT_TRUE (
      aclip_checkpoint_save (path.c_str (), "", saved, FALSE, nullptr, nullptr, error.out ()));
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (path.c_str (), error.out ());
  ASSERT_NE (checkpoint, nullptr);

  /* A table with the encoder only, under the same prefix. */
  g_autoptr (AclipParams) params = aclip_params_new ();
  ASSERT_TRUE (aclip_image_encoder_register (&config, params, "image.", error.out ()));
  ASSERT_TRUE (aclip_params_seal (params, ACLIP_PARAMS_INFERENCE, error.out ()));
  ASSERT_TRUE (aclip_image_encoder_restore (params, "image.", checkpoint, error.out ()))
      << error->message;
  for (int t = 0; t < aclip_params_n_tensors (params); t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    const float *expected = aclip_params_value_by_name (saved, info->name);
    EXPECT_EQ (
        std::memcmp (aclip_params_value (params, t), expected, sizeof (float) * info->n_elements),
        0)
        << info->name;
  }
  /* Another architecture is refused and nothing is copied. */
  AclipImageEncoderConfig wider = config;
  wider.stem_channels += 1;
  g_autoptr (AclipParams) other = aclip_params_new ();
  ASSERT_TRUE (aclip_image_encoder_register (&wider, other, "image.", error.out ()));
  ASSERT_TRUE (aclip_params_seal (other, ACLIP_PARAMS_INFERENCE, error.out ()));
  EXPECT_FALSE (aclip_image_encoder_restore (other, "image.", checkpoint, error.out ()));
  EXPECT_ERROR_MENTIONS (error.error, "image.conv1.weight");
}

/* ---- The trainer ---------------------------------------------------------------------------- */

std::vector<std::string>
split_lines (const std::string &text)
{
  std::vector<std::string> lines;
  gchar **parts = g_strsplit (text.c_str (), "\n", -1);
  for (gchar **p = parts; *p; p++)
    if (**p)
      lines.emplace_back (*p);
  g_strfreev (parts);
  return lines;
}

/* Every stdout line is one JSON object with an "event" (the plugin's contract). */
void
expect_json_lines (const std::vector<std::string> &lines)
{
  for (const auto &line : lines) {
    EXPECT_EQ (line.rfind ("{\"event\":\"", 0), 0u) << line;
    EXPECT_EQ (line.back (), '}') << line;
  }
}

std::vector<std::string>
events_named (const std::vector<std::string> &lines, const std::string &event)
{
  std::vector<std::string> found;
  for (const auto &line : lines)
    if (line.find ("{\"event\":\"" + event + "\"") == 0)
      found.push_back (line);
  return found;
}

/* The values of metric `name`, in order. */
std::vector<double>
metric_values (const std::vector<std::string> &lines, const std::string &name)
{
  std::vector<double> values;
  for (const auto &line : events_named (lines, "metric"))
    if (line.find ("\"name\":\"" + name + "\"") != std::string::npos) {
      size_t at = line.find ("\"value\":");
      values.push_back (g_ascii_strtod (line.c_str () + at + 8, nullptr));
    }
  return values;
}

/* One small catalogue for the trainer's tests, made once. */
class PretrainImages : public ::testing::Test {
protected:
  static void SetUpTestSuite ()
  {
    dir_ = new TempDir ();
    catalogue_ = dir_->path ("small.fits");
    std::string out, err;
    ASSERT_EQ (run_astroclip ({ "simulate", "--n", "300", "--image-size", "48", "--no-spectra",
                                "--seed", "3", "--quiet", "--out", catalogue_ },
                              &out, &err),
               0)
        << err;
    /* A tiny model: 32-pixel crops averaged 2×2, two stages of 16 and 32 channels. */
    config_ = dir_->path ("tiny.conf");
    const char *text = "[image_encoder]\ncrop=32\ndownsample=2\nstem_channels=8\nstem_stride=1\n"
                       "stage_channels=16;32;\nstage_blocks=1;1;\n"
                       "[simclr]\nhidden=64\ndim=32\n";
    ASSERT_TRUE (g_file_set_contents (config_.c_str (), text, -1, nullptr));
  }

  static void TearDownTestSuite ()
  {
    delete dir_;
    dir_ = nullptr;
  }

  static std::vector<std::string> tiny_run (const std::string &out, const std::string &steps)
  {
    /* clang-format off */
    return { "pretrain-images", "--catalogue", catalogue_, "--out", out, "--config", config_,
             "--steps", steps, "--batch-size", "16", "--lr", "0.003", "--validate-every", "50",
             "--threads", "1", "--progress", "json", "--save-every", "0" };
    /* clang-format on */
  }

  static TempDir *dir_;
  static std::string catalogue_, config_;
};

TempDir *PretrainImages::dir_ = nullptr;
std::string PretrainImages::catalogue_, PretrainImages::config_;

TEST_F (PretrainImages, LearnsToMatchViewsOfHeldOutGalaxies)
{
  std::string model = dir_->path ("learn.ckpt"), out, err;
  ASSERT_EQ (run_astroclip (tiny_run (model, "100"), &out, &err), 0) << err;
  std::vector<std::string> lines = split_lines (out);
  expect_json_lines (lines);
  std::vector<double> top1 = metric_values (lines, "val_top1");
  ASSERT_EQ (top1.size (), 3u); /* steps 0, 50 and 100 */
  std::vector<std::string> done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"finished\""), std::string::npos) << done[0];
  g_autoptr (AclipCheckpoint) checkpoint = aclip_checkpoint_open (model.c_str (), nullptr);
  ASSERT_NE (checkpoint, nullptr);
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  ASSERT_TRUE (g_key_file_load_from_data (key_file, aclip_checkpoint_get_text (checkpoint), -1,
                                          G_KEY_FILE_NONE, nullptr));
  gint64 n_validation = g_key_file_get_int64 (key_file, "training", "val_galaxies", nullptr);
  ASSERT_GE (n_validation, 20);
  double chance = 1.0 / (double) n_validation;
  std::printf ("[measured] val_top1 among %" G_GINT64_FORMAT " held-out galaxies: %.3f at step 0, "
               "%.3f at 50, %.3f at 100 (chance %.3f)\n",
               n_validation, top1[0], top1[1], top1[2], chance);
  EXPECT_GT (top1[2], 0.3);
  EXPECT_GT (top1[2], 6 * chance);
  EXPECT_GT (top1[2], top1[0]);

  /* The checkpoint holds the encoder and the head, and says what it is. */
  EXPECT_EQ (aclip_checkpoint_get_step (checkpoint), 100);
  EXPECT_GE (aclip_checkpoint_lookup (checkpoint, "image.layer2.0.conv2.weight"), 0);
  EXPECT_GE (aclip_checkpoint_lookup (checkpoint, "image.bn1.running_mean"), 0);
  EXPECT_GE (aclip_checkpoint_lookup (checkpoint, "simclr.head.2.weight"), 0);
  g_autofree char *stage = g_key_file_get_string (key_file, "training", "stage", nullptr);
  EXPECT_STREQ (stage, "pretrain-images");
  AclipImageEncoderConfig config;
  ErrorHolder error;
  ASSERT_TRUE (aclip_image_encoder_config_load (&config, key_file, error.out ()));
  EXPECT_EQ (config.crop, 32);
  EXPECT_EQ (config.downsample, 2);
  EXPECT_EQ (config.n_stages, 2);
}

TEST_F (PretrainImages, StopsOnSigtermAndResumesBitForBit)
{
  std::string straight = dir_->path ("straight.ckpt"), interrupted = dir_->path ("stopped.ckpt");
  std::string out, err;
  ASSERT_EQ (run_astroclip (tiny_run (straight, "40"), &out, &err), 0) << err;

  /* The same run, stopped by SIGTERM once it reports its first step. */
  std::vector<std::string> arguments = tiny_run (interrupted, "40");
  std::vector<const char *> argv = { g_getenv ("ASTROCLIP") };
  for (const auto &argument : arguments)
    argv.push_back (argument.c_str ());
  argv.push_back (nullptr);
  ErrorHolder error;
  g_autoptr (GSubprocess) process = g_subprocess_newv (
      argv.data (),
      (GSubprocessFlags) (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE),
      error.out ());
  ASSERT_NE (process, nullptr) << error->message;
  g_autoptr (GDataInputStream) stream =
      g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  std::vector<std::string> lines;
  bool signalled = false;
  while (true) {
    gsize length = 0;
    g_autofree char *line =
        g_data_input_stream_read_line_utf8 (stream, &length, nullptr, error.out ());
    if (line == nullptr)
      break;
    lines.emplace_back (line);
    if (!signalled && lines.back ().find ("{\"event\":\"step\"") == 0) {
      g_subprocess_send_signal (process, SIGTERM);
      signalled = true;
    }
  }
  ASSERT_TRUE (g_subprocess_wait (process, nullptr, error.out ()));
  ASSERT_TRUE (signalled);
  ASSERT_TRUE (g_subprocess_get_if_exited (process));
  EXPECT_EQ (g_subprocess_get_exit_status (process), 0);
  expect_json_lines (lines);
  std::vector<std::string> done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"stopped\""), std::string::npos) << done[0];
  ASSERT_EQ (events_named (lines, "checkpoint").size (), 1u);
  gint64 stopped_at = 0;
  {
    g_autoptr (AclipCheckpoint) checkpoint =
        aclip_checkpoint_open (interrupted.c_str (), error.out ());
    ASSERT_NE (checkpoint, nullptr) << error->message;
    stopped_at = aclip_checkpoint_get_step (checkpoint);
  }
  std::printf ("[measured] SIGTERM after the first step event: stopped at step %" G_GINT64_FORMAT
               "\n",
               stopped_at);
  EXPECT_GE (stopped_at, 1);
  EXPECT_LT (stopped_at, 40);

  /* A conflicting option is refused on --resume. */
  EXPECT_EQ (run_astroclip ({ "pretrain-images", "--out", interrupted, "--resume", "--lr", "0.1" },
                            &out, &err),
             2);
  EXPECT_NE (err.find ("--lr"), std::string::npos) << err;

  /* Resume (the settings come from the checkpoint) and finish: the same bits. */
  ASSERT_EQ (run_astroclip ({ "pretrain-images", "--out", interrupted, "--resume", "--threads", "1",
                              "--progress", "json" },
                            &out, &err),
             0)
      << err;
  lines = split_lines (out);
  expect_json_lines (lines);
  bool mentions_resume = false;
  for (const auto &line : events_named (lines, "message"))
    mentions_resume |=
        line.find ("resuming at step " + std::to_string (stopped_at)) != std::string::npos;
  EXPECT_TRUE (mentions_resume) << out;
  done = events_named (lines, "done");
  ASSERT_EQ (done.size (), 1u);
  EXPECT_NE (done[0].find ("\"status\":\"finished\""), std::string::npos);

  g_autoptr (AclipCheckpoint) a = aclip_checkpoint_open (straight.c_str (), error.out ());
  g_autoptr (AclipCheckpoint) b = aclip_checkpoint_open (interrupted.c_str (), error.out ());
  ASSERT_NE (a, nullptr);
  ASSERT_NE (b, nullptr);
  EXPECT_EQ (aclip_checkpoint_get_step (a), 40);
  EXPECT_EQ (aclip_checkpoint_get_step (b), 40);
  ASSERT_EQ (aclip_checkpoint_n_tensors (a), aclip_checkpoint_n_tensors (b));
  int differing = 0;
  for (int t = 0; t < aclip_checkpoint_n_tensors (a); t++) {
    int n_dims = 0;
    const gint64 *shape = aclip_checkpoint_tensor_shape (a, t, &n_dims);
    gint64 n = 1;
    for (int d = 0; d < n_dims; d++)
      n *= shape[d];
    int u = aclip_checkpoint_lookup (b, aclip_checkpoint_tensor_name (a, t));
    ASSERT_GE (u, 0);
    differing += std::memcmp (aclip_checkpoint_tensor_values (a, t),
                              aclip_checkpoint_tensor_values (b, u), sizeof (float) * n) != 0;
  }
  EXPECT_EQ (differing, 0) << "tensors differ between the straight and the resumed run";
  /* The AdamW moments too: the whole files agree but for nothing (same text, same bits). */
  gsize length_a = 0, length_b = 0;
  g_autofree char *bytes_a = nullptr, *bytes_b = nullptr;
  ASSERT_TRUE (g_file_get_contents (straight.c_str (), &bytes_a, &length_a, nullptr));
  ASSERT_TRUE (g_file_get_contents (interrupted.c_str (), &bytes_b, &length_b, nullptr));
  EXPECT_EQ (aclip_checkpoint_hash (bytes_a, length_a), aclip_checkpoint_hash (bytes_b, length_b));
}

TEST_F (PretrainImages, RefusesBadUsage)
{
  std::string out, err;
  EXPECT_EQ (run_astroclip ({ "pretrain-images", "--out", dir_->path ("x.ckpt") }, &out, &err), 2);
  EXPECT_NE (err.find ("--catalogue"), std::string::npos) << err;
  EXPECT_EQ (run_astroclip ({ "pretrain-images", "--catalogue", catalogue_, "--out",
                              dir_->path ("x.ckpt"), "--batch-size", "1" },
                            &out, &err),
             2);
  EXPECT_EQ (run_astroclip ({ "pretrain-images", "--catalogue", dir_->path ("missing.fits"),
                              "--out", dir_->path ("x.ckpt") },
                            &out, &err),
             1);
  EXPECT_FALSE (g_file_test (dir_->path ("x.ckpt").c_str (), G_FILE_TEST_EXISTS));
}

} // namespace
