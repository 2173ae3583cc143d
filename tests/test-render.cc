/* test-render.cc — the Legacy Survey RGB mapping, its inverse, stretches and display limits.
 *
 * Expected values of the mapping and the stretches were computed by hand (the arithmetic is in
 * the comments, to 7 significant digits); the tolerances say why they are what they are. */
#include "test-support.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "aclip-render.h"

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN ();
const float kInf = std::numeric_limits<float>::infinity ();

/* Interleaved channel indices of the H×W×3 output. */
enum
{
  RED,
  GREEN,
  BLUE
};

/* A 1×N image of N pixels; flux holds the g, r, z planes of N pixels each (3×1×N). */
struct Strip
{
  std::vector<float> flux;
  int width;

  explicit Strip (const std::vector<std::array<float, 3>> &pixels_grz)
      : flux (3 * pixels_grz.size ()), width ((int) pixels_grz.size ())
  {
    for (size_t p = 0; p < pixels_grz.size (); p++)
      for (int band = 0; band < 3; band++)
        flux[band * pixels_grz.size () + p] = pixels_grz[p][band];
  }
  float band (int band_index, int pixel) const
  {
    return flux[band_index * width + pixel];
  }
};

AclipRgbParams
legacy_params ()
{
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  return params;
}

} // namespace

/* ---------------------------------------------------------------------------------------- */
/* Forward mapping                                                                           */
/* ---------------------------------------------------------------------------------------- */

TEST (RgbForward, LegacyParameters)
{
  AclipRgbParams params = legacy_params ();
  EXPECT_FLOAT_EQ (params.scale[0], 6.0f); /* g */
  EXPECT_FLOAT_EQ (params.scale[1], 3.4f); /* r */
  EXPECT_FLOAT_EQ (params.scale[2], 2.2f); /* z */
  EXPECT_FLOAT_EQ (params.offset, 0.03f);
  EXPECT_FLOAT_EQ (params.q, 20.0f);
}

/* The hand values below carry 7 significant digits; the output is float (relative rounding
 * 6e-8) and the float parameters 3.4f, 2.2f, 0.03f differ from the decimal ones by < 3e-8
 * relative. 2e-6 absolute covers both with room, and is far below any formula mistake (a wrong
 * band order, a missing offset or √Q moves these by > 1e-2). */
constexpr double kChannelTolerance = 2e-6;

TEST (RgbForward, HandComputedPixels)
{
  AclipRgbParams params = legacy_params ();
  /* Pixels (g, r, z) in nanomaggies. */
  Strip strip ({
      { 0.01f, 0.02f, 0.03f }, /* ordinary faint galaxy light */
      { 0.1f, 0.5f, 2.0f },    /* bright red: z clips at 1 */
      { -0.01f, 0.0f, 0.01f }, /* negative g flux */
      { 0.0f, 0.0f, 0.0f },    /* blank sky */
  });
  std::vector<float> rgb (strip.width * 3, -1.0f);
  aclip_rgb_forward (&params, strip.flux.data (), 1, strip.width, rgb.data ());

  /* Pixel 0: v_g = 0.01·6 + 0.03 = 0.09, v_r = 0.02·3.4 + 0.03 = 0.098,
   * v_z = 0.03·2.2 + 0.03 = 0.096; I = (0.09 + 0.098 + 0.096)/3 = 0.0946667;
   * Q·I = 1.893333; asinh(1.893333) = 1.394889; F = 1.394889/√20/0.0946667
   * = 1.394889/4.472136/0.0946667 = 3.294789;
   * B = 0.09·F = 0.2965310, G = 0.098·F = 0.3228893, R = 0.096·F = 0.3162997. */
  EXPECT_NEAR (rgb[0 * 3 + RED], 0.3162997, kChannelTolerance);
  EXPECT_NEAR (rgb[0 * 3 + GREEN], 0.3228893, kChannelTolerance);
  EXPECT_NEAR (rgb[0 * 3 + BLUE], 0.2965310, kChannelTolerance);

  /* Pixel 1: v_g = 0.6 + 0.03 = 0.63, v_r = 1.7 + 0.03 = 1.73, v_z = 4.4 + 0.03 = 4.43;
   * I = 6.79/3 = 2.263333; Q·I = 45.26667; asinh(45.26667) = 4.505840;
   * F = 4.505840/4.472136/2.263333 = 0.4451560;
   * B = 0.63·F = 0.2804483, G = 1.73·F = 0.7701199, R = 4.43·F = 1.972 → clipped to 1. */
  EXPECT_NEAR (rgb[1 * 3 + RED], 1.0, 0.0);
  EXPECT_NEAR (rgb[1 * 3 + GREEN], 0.7701199, kChannelTolerance);
  EXPECT_NEAR (rgb[1 * 3 + BLUE], 0.2804483, kChannelTolerance);

  /* Pixel 2: v_g = −0.06 + 0.03 = −0.03 (counts 0 in I), v_r = 0.03, v_z = 0.022 + 0.03 =
   * 0.052; I = (0 + 0.03 + 0.052)/3 = 0.02733333; Q·I = 0.5466667; asinh = 0.5225577;
   * F = 0.5225577/4.472136/0.02733333 = 4.274907;
   * B = −0.03·F < 0 → 0, G = 0.03·F = 0.1282472, R = 0.052·F = 0.2222951. */
  EXPECT_NEAR (rgb[2 * 3 + RED], 0.2222951, kChannelTolerance);
  EXPECT_NEAR (rgb[2 * 3 + GREEN], 0.1282472, kChannelTolerance);
  EXPECT_EQ (rgb[2 * 3 + BLUE], 0.0f);

  /* Pixel 3: v_b = m = 0.03 in every band; I = 0.03; Q·I = 0.6; asinh(0.6) = 0.5688249;
   * F = 0.5688249/4.472136/0.03 = 4.239770; every channel 0.03·F = 0.1271931. */
  for (int channel = 0; channel < 3; channel++)
    EXPECT_NEAR (rgb[3 * 3 + channel], 0.1271931, kChannelTolerance);
}

TEST (RgbForward, ZeroFluxLimit)
{
  /* Unit scales and no offset make v_b = x_b exactly, so I can be exactly 0. */
  AclipRgbParams params = { { 1.0f, 1.0f, 1.0f }, 0.0f, 20.0f };
  Strip strip ({
      { 0.0f, 0.0f, 0.0f },   /* I = 0: F is the limit √Q, not 0/0 */
      { 1e-3f, 0.0f, 0.0f },  /* I → 0 from above */
      { -1.0f, -2.0f, 0.0f }, /* negative and zero: still I = 0 */
  });
  std::vector<float> rgb (strip.width * 3, -1.0f);
  aclip_rgb_forward (&params, strip.flux.data (), 1, strip.width, rgb.data ());

  for (int channel = 0; channel < 3; channel++) {
    EXPECT_EQ (rgb[0 * 3 + channel], 0.0f) << "channel " << channel;
    EXPECT_EQ (rgb[2 * 3 + channel], 0.0f) << "channel " << channel;
  }
  /* Pixel 1: I = 1e-3/3; Q·I = y = 6.666667e-3; asinh(y)/y = 1 − y²/6 + … = 0.9999926;
   * F = √20·0.9999926 = 4.472103; B = 1e-3·F = 4.472103e-3 (the limit δ·√Q = 4.472136e-3 is
   * 3.3e-8 away, so this also shows the limit is approached). 1e-9 absolute is 2e-7 relative:
   * float rounding of the result (3e-10) fits, a mistaken F (e.g. 1 or Q) does not. */
  EXPECT_NEAR (rgb[1 * 3 + BLUE], 4.472103e-3, 1e-9);
  EXPECT_NEAR (rgb[1 * 3 + BLUE], 1e-3 * std::sqrt (20.0), 1e-7);
  EXPECT_EQ (rgb[1 * 3 + GREEN], 0.0f);
  EXPECT_EQ (rgb[1 * 3 + RED], 0.0f);

  /* Legacy parameters, fluxes far below −m/s_b in every band: black, never NaN. */
  AclipRgbParams legacy = legacy_params ();
  Strip dark ({ { -1.0f, -1.0f, -1.0f } });
  float dark_rgb[3] = { -1, -1, -1 };
  aclip_rgb_forward (&legacy, dark.flux.data (), 1, 1, dark_rgb);
  for (float channel : dark_rgb)
    EXPECT_EQ (channel, 0.0f);
}

TEST (RgbForward, NonFiniteFluxCountsAsZero)
{
  AclipRgbParams params = legacy_params ();
  Strip strip ({
      { kNaN, 0.0f, 0.0f },
      { 0.0f, kInf, -kInf },
      { 0.0f, 0.0f, 0.0f },
  });
  std::vector<float> rgb (strip.width * 3, -1.0f);
  aclip_rgb_forward (&params, strip.flux.data (), 1, strip.width, rgb.data ());
  for (int channel = 0; channel < 3; channel++) {
    EXPECT_FALSE (std::isnan (rgb[channel]));
    EXPECT_FLOAT_EQ (rgb[0 * 3 + channel], rgb[2 * 3 + channel]);
    EXPECT_FLOAT_EQ (rgb[1 * 3 + channel], rgb[2 * 3 + channel]);
    EXPECT_NEAR (rgb[2 * 3 + channel], 0.1271931, kChannelTolerance); /* blank sky, above */
  }
}

TEST (RgbForward, EightBitRoundsToNearest)
{
  AclipRgbParams params = legacy_params ();
  Strip strip ({
      { 0.01f, 0.02f, 0.03f },
      { 0.1f, 0.5f, 2.0f },
      { -0.01f, 0.0f, 0.01f },
      { 0.0f, 0.0f, 0.0f },
  });
  std::vector<guint8> rgb (strip.width * 3, 7);
  aclip_rgb_forward_u8 (&params, strip.flux.data (), 1, strip.width, rgb.data ());
  /* 255·c + ½, truncated, with c from HandComputedPixels:
   * pixel 0: R 255·0.3162997 = 80.66 → 81, G 82.34 → 82, B 75.61 → 76;
   * pixel 1: R 255, G 196.38 → 196, B 71.51 → 72;
   * pixel 2: R 56.69 → 57, G 32.70 → 33, B 0;
   * pixel 3: 32.43 → 32 in all channels. */
  const guint8 expected[] = { 81, 82, 76, 255, 196, 72, 57, 33, 0, 32, 32, 32 };
  for (size_t i = 0; i < G_N_ELEMENTS (expected); i++)
    EXPECT_EQ (rgb[i], expected[i]) << "pixel " << i / 3 << " channel " << i % 3;
}

TEST (RgbForward, PlaneLayoutOfALargerImage)
{
  /* A 2×3 image where only one pixel (row 1, column 2) has flux, in the z plane only: its red
   * channel must be the brightest channel anywhere, and every other pixel is blank sky. */
  AclipRgbParams params = legacy_params ();
  const int height = 2, width = 3, plane = height * width;
  std::vector<float> flux (3 * plane, 0.0f);
  flux[2 * plane + 1 * width + 2] = 0.2f;
  std::vector<float> rgb (plane * 3);
  aclip_rgb_forward (&params, flux.data (), height, width, rgb.data ());
  const int lit = (1 * width + 2) * 3;
  EXPECT_GT (rgb[lit + RED], rgb[lit + GREEN]);
  EXPECT_FLOAT_EQ (rgb[lit + GREEN], rgb[lit + BLUE]);
  for (int pixel = 0; pixel < plane; pixel++) {
    if (pixel == 1 * width + 2)
      continue;
    for (int channel = 0; channel < 3; channel++)
      EXPECT_NEAR (rgb[pixel * 3 + channel], 0.1271931, kChannelTolerance);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Inverse mapping                                                                           */
/* ---------------------------------------------------------------------------------------- */

TEST (RgbInverse, HandComputedPixel)
{
  AclipRgbParams params = legacy_params ();
  /* R 255 (saturated z), G 128, B 0 (black g). c_z = 1, c_r = 128/255 = 0.5019608, c_g = 0;
   * c̄ = 1.5019608/3 = 0.5006536; √Q·c̄ = 2.238991; sinh(2.238991) = 4.638646;
   * I = 4.638646/20 = 0.2319323; I/c̄ = 0.4632590;
   * v_z = 1·0.4632590 → x_z = (0.4632590 − 0.03)/2.2 = 0.1969359;
   * v_r = 0.5019608·0.4632590 = 0.2325378 → x_r = (0.2325378 − 0.03)/3.4 = 0.05956995;
   * v_g = 0 → x_g = −0.03/6 = −0.005. */
  const guint8 rgb[3] = { 255, 128, 0 };
  float flux[3];
  aclip_rgb_inverse_u8 (&params, rgb, 1, 1, flux);
  /* Float output of values ~0.2 rounds by 1.5e-8; the 7-digit hand values by 5e-8. */
  EXPECT_NEAR (flux[0], -0.005, 1e-7);
  EXPECT_NEAR (flux[1], 0.05956995, 1e-7);
  EXPECT_NEAR (flux[2], 0.1969359, 1e-7);

  /* All black: I = 0 and every band returns its upper bound −m/s_b. */
  const guint8 black[3] = { 0, 0, 0 };
  aclip_rgb_inverse_u8 (&params, black, 1, 1, flux);
  EXPECT_NEAR (flux[0], -0.03 / 6.0, 1e-8);
  EXPECT_NEAR (flux[1], -0.03 / 3.4, 1e-8);
  EXPECT_NEAR (flux[2], -0.03 / 2.2, 1e-8);
}

/* The inverse of any 8-bit pixel must render back to the same 8 bits: it is a preimage. */
TEST (RgbInverse, EveryCodeIsReproducedByTheForwardMapping)
{
  AclipRgbParams params = legacy_params ();
  std::vector<guint8> codes;
  for (int r = 0; r < 256; r += 5)
    for (int g = 0; g < 256; g += 5)
      for (int b = 0; b < 256; b += 5)
        codes.insert (codes.end (), { (guint8) r, (guint8) g, (guint8) b });
  /* 0, 5, …, 255 includes both ends. */
  const int width = (int) codes.size () / 3;
  std::vector<float> flux (3 * width);
  aclip_rgb_inverse_u8 (&params, codes.data (), 1, width, flux.data ());
  std::vector<guint8> again (codes.size ());
  aclip_rgb_forward_u8 (&params, flux.data (), 1, width, again.data ());
  int mismatches = 0;
  for (size_t i = 0; i < codes.size (); i++)
    if (codes[i] != again[i] && mismatches++ < 10)
      ADD_FAILURE () << "pixel " << i / 3 << " channel " << i % 3 << ": " << (int) codes[i] << " → "
                     << (int) again[i];
  EXPECT_EQ (mismatches, 0);
}

namespace {

/* g(u) = I/c̄ = sinh(√Q·u)/(Q·u) as a function of the mean channel u, and its derivative.
 * Both are power series in u with positive coefficients, so both increase with u. */
double
shift_per_channel (double q, double u)
{
  return std::sinh (std::sqrt (q) * u) / (q * u);
}

double
shift_per_channel_slope (double q, double u)
{
  double a = std::sqrt (q);
  return (a * u * std::cosh (a * u) - std::sinh (a * u)) / (q * u * u);
}

} // namespace

/* Forward then inverse: where no channel is 0 or 255, every flux comes back to within the
 * quantisation bound. v_b = c_b·g(c̄), and 8-bit rounding moves each c by at most h = ½/255,
 * hence c̄ by at most h, so by the mean value theorem
 *   |Δv_b| ≤ h·(g + c_b·g′)  ≤ h·(g(c̄ + h) + (c_b + h)·g′(c̄ + h)),   |Δx_b| = |Δv_b|/s_b
 * (g, g′ increase). A decoding off by half a code (k + ½)/255 breaks this bound. */
TEST (RgbInverse, RoundTripWithinQuantisationBound)
{
  AclipRgbParams params = legacy_params ();
  const int height = 48, width = 48, plane = height * width;
  GRand *rand = g_rand_new_with_seed (20240611);
  std::vector<float> flux (3 * plane);
  for (float &value : flux)
    value = (float) g_rand_double_range (rand, -0.004, 0.15);
  g_rand_free (rand);

  std::vector<guint8> rgb (plane * 3);
  aclip_rgb_forward_u8 (&params, flux.data (), height, width, rgb.data ());
  std::vector<float> recovered (3 * plane);
  aclip_rgb_inverse_u8 (&params, rgb.data (), height, width, recovered.data ());

  const int channel_of_band[3] = { BLUE, GREEN, RED };
  const double h = 0.5 / 255.0;
  int checked = 0;
  double worst_fraction_of_bound = 0.0;
  for (int pixel = 0; pixel < plane; pixel++) {
    const guint8 *codes = &rgb[pixel * 3];
    if (std::any_of (codes, codes + 3, [] (guint8 c) { return c == 0 || c == 255; }))
      continue;
    double mean_channel = (codes[0] + codes[1] + codes[2]) / 255.0 / 3.0;
    for (int band = 0; band < 3; band++) {
      double channel = codes[channel_of_band[band]] / 255.0;
      double bound = h *
                     (shift_per_channel (params.q, mean_channel + h) +
                      (channel + h) * shift_per_channel_slope (params.q, mean_channel + h)) /
                     params.scale[band];
      /* Plus float rounding of the stored fluxes (≤ 0.2: 1.5e-8 each way). */
      double error = std::fabs ((double) recovered[band * plane + pixel] -
                                (double) flux[band * plane + pixel]);
      EXPECT_LE (error, bound + 3e-8) << "pixel " << pixel << " band " << band;
      worst_fraction_of_bound = std::max (worst_fraction_of_bound, error / bound);
    }
    checked++;
  }
  /* Most pixels of this range are unsaturated and not black; the bound is also not slack by
   * orders of magnitude (the worst error uses a sizeable part of it). */
  EXPECT_GT (checked, plane / 2);
  EXPECT_GT (worst_fraction_of_bound, 0.3);
}

/* Saturated pixels: every returned non-black flux is a lower bound of the true flux; black
 * channels of clearly negative flux return −m/s_b, an upper bound. */
TEST (RgbInverse, SaturatedAndBlackChannelsGiveBounds)
{
  AclipRgbParams params = legacy_params ();
  Strip strip ({
      { 0.1f, 0.5f, 2.0f },    /* z saturates */
      { 1.0f, 2.0f, 3.0f },    /* all saturate */
      { 0.3f, 0.05f, 0.6f },   /* g and z saturate */
      { -0.2f, 0.4f, 1.5f },   /* black g, saturated z */
      { -0.05f, 0.02f, 0.1f }, /* black g, others fine */
  });
  std::vector<guint8> rgb (strip.width * 3);
  aclip_rgb_forward_u8 (&params, strip.flux.data (), 1, strip.width, rgb.data ());
  std::vector<float> recovered (3 * strip.width);
  aclip_rgb_inverse_u8 (&params, rgb.data (), 1, strip.width, recovered.data ());

  const int channel_of_band[3] = { BLUE, GREEN, RED };
  int saturated_pixels = 0;
  for (int pixel = 0; pixel < strip.width; pixel++) {
    const guint8 *codes = &rgb[pixel * 3];
    bool saturated = std::any_of (codes, codes + 3, [] (guint8 c) { return c == 255; });
    saturated_pixels += saturated;
    for (int band = 0; band < 3; band++) {
      float truth = strip.band (band, pixel);
      float got = recovered[band * strip.width + pixel];
      if (codes[channel_of_band[band]] == 0) {
        EXPECT_FLOAT_EQ (got, -params.offset / params.scale[band]);
        EXPECT_GE (got, truth) << "pixel " << pixel << " band " << band;
      } else if (saturated) {
        EXPECT_LE (got, truth) << "pixel " << pixel << " band " << band;
      }
    }
  }
  EXPECT_EQ (saturated_pixels, 4);
  /* The last pixel has no saturation: its non-black channels are estimates (round trip). */
  EXPECT_NEAR (recovered[1 * strip.width + 4], 0.02, 2e-3);
  EXPECT_NEAR (recovered[2 * strip.width + 4], 0.1, 2e-3);
}

/* ---------------------------------------------------------------------------------------- */
/* Stretches                                                                                 */
/* ---------------------------------------------------------------------------------------- */

namespace {

std::vector<float>
stretched (const std::vector<float> &values, AclipStretch stretch, double low, double high)
{
  std::vector<float> out (values.size (), -1.0f);
  aclip_stretch_apply (values.data (), values.size (), stretch, low, high, out.data ());
  return out;
}

} // namespace

TEST (Stretch, HandComputedPoints)
{
  /* Limits 10..30: 15 → t = 0.25, 26.2 → t = 0.81, 5 → t clipped to 0, 40 → 1. */
  const std::vector<float> values = { 15.0f, 26.2f, 5.0f, 40.0f, 10.0f, 30.0f };
  /* Float output rounds by < 6e-8; 26.2f is 26.2000008, moving t by 4e-8 (and the steepest
   * stretch here, sqrt at 0.81, by 2e-8). 1e-6 covers that and the 7-digit hand values. */
  const double tolerance = 1e-6;

  auto linear = stretched (values, ACLIP_STRETCH_LINEAR, 10.0, 30.0);
  EXPECT_NEAR (linear[0], 0.25, tolerance);
  EXPECT_NEAR (linear[1], 0.81, tolerance);

  /* √0.25 = 0.5, √0.81 = 0.9. */
  auto root = stretched (values, ACLIP_STRETCH_SQRT, 10.0, 30.0);
  EXPECT_NEAR (root[0], 0.5, tolerance);
  EXPECT_NEAR (root[1], 0.9, tolerance);

  /* log10(1 + 1000·0.25)/log10(1001) = log10(251)/log10(1001) = 2.399674/3.000434 = 0.7997755;
   * log10(1 + 810)/log10(1001) = 2.909021/3.000434 = 0.9695333. */
  auto logarithmic = stretched (values, ACLIP_STRETCH_LOG, 10.0, 30.0);
  EXPECT_NEAR (logarithmic[0], 0.7997755, tolerance);
  EXPECT_NEAR (logarithmic[1], 0.9695333, tolerance);

  /* asinh(2.5)/asinh(10) = 1.647231/2.998223 = 0.5494025;
   * asinh(8.1)/asinh(10) = 2.788800/2.998223 = 0.9301510. */
  auto hyperbolic = stretched (values, ACLIP_STRETCH_ASINH, 10.0, 30.0);
  EXPECT_NEAR (hyperbolic[0], 0.5494025, tolerance);
  EXPECT_NEAR (hyperbolic[1], 0.9301510, tolerance);

  /* Every stretch maps below/at the low limit to exactly 0 and above/at the high one to 1. */
  for (const auto &out : { linear, root, logarithmic, hyperbolic }) {
    EXPECT_EQ (out[2], 0.0f);
    EXPECT_EQ (out[3], 1.0f);
    EXPECT_EQ (out[4], 0.0f);
    EXPECT_EQ (out[5], 1.0f);
  }
}

TEST (Stretch, NonFiniteValuesGiveZero)
{
  const std::vector<float> values = { kNaN, kInf, -kInf, 20.0f };
  for (AclipStretch stretch :
       { ACLIP_STRETCH_LINEAR, ACLIP_STRETCH_LOG, ACLIP_STRETCH_SQRT, ACLIP_STRETCH_ASINH }) {
    auto out = stretched (values, stretch, 10.0, 30.0);
    EXPECT_EQ (out[0], 0.0f);
    EXPECT_EQ (out[1], 0.0f);
    EXPECT_EQ (out[2], 0.0f);
    EXPECT_GT (out[3], 0.0f);
  }
}

TEST (Stretch, EqualLimitsGiveAStep)
{
  auto out = stretched ({ 4.0f, 5.0f, 6.0f }, ACLIP_STRETCH_LINEAR, 5.0, 5.0);
  EXPECT_EQ (out[0], 0.0f);
  EXPECT_EQ (out[1], 0.0f);
  EXPECT_EQ (out[2], 1.0f);
}

/* ---------------------------------------------------------------------------------------- */
/* Display limits                                                                            */
/* ---------------------------------------------------------------------------------------- */

namespace {

struct Limits
{
  bool ok;
  double low, high;
};

Limits
limits_of (const std::vector<float> &values, AclipLimitsMethod method, double low_percent = 0,
           double high_percent = 100)
{
  Limits limits;
  limits.ok = aclip_stretch_limits (values.data (), values.size (), method, low_percent,
                                    high_percent, &limits.low, &limits.high);
  return limits;
}

/* Reference percentile, definition 7 of Hyndman & Fan, by a full sort. */
double
reference_percentile (std::vector<float> values, double percent)
{
  std::sort (values.begin (), values.end ());
  double position = (values.size () - 1) * percent / 100.0;
  size_t below = (size_t) std::floor (position);
  if (below + 1 >= values.size ())
    return values.back ();
  double fraction = position - below;
  return values[below] + fraction * ((double) values[below + 1] - values[below]);
}

} // namespace

TEST (Limits, MinMaxIgnoresNonFinite)
{
  auto limits = limits_of ({ kNaN, 1.0f, 5.0f, kInf, -kInf, 3.0f, -2.5f }, ACLIP_LIMITS_MINMAX);
  ASSERT_TRUE (limits.ok);
  EXPECT_EQ (limits.low, -2.5);
  EXPECT_EQ (limits.high, 5.0);
}

TEST (Limits, PercentilesOfASmallArray)
{
  /* Sorted: 1 3 5 7 9 (NaN ignored), N = 5, position h = (N − 1)·p/100 = 4p/100.
   * p = 10: h = 0.4 → 1 + 0.4·(3 − 1) = 1.8;  p = 90: h = 3.6 → 7 + 0.6·(9 − 7) = 8.2;
   * p = 25: h = 1 → 3;  p = 50: h = 2 → 5;  p = 0 → 1;  p = 100 → 9. */
  const std::vector<float> values = { 7.0f, kNaN, 1.0f, 3.0f, 9.0f, 5.0f };
  auto limits = limits_of (values, ACLIP_LIMITS_PERCENTILE, 10, 90);
  ASSERT_TRUE (limits.ok);
  EXPECT_NEAR (limits.low, 1.8, 1e-12);
  EXPECT_NEAR (limits.high, 8.2, 1e-12);

  limits = limits_of (values, ACLIP_LIMITS_PERCENTILE, 25, 50);
  EXPECT_EQ (limits.low, 3.0);
  EXPECT_EQ (limits.high, 5.0);

  limits = limits_of (values, ACLIP_LIMITS_PERCENTILE, 0, 100);
  EXPECT_EQ (limits.low, 1.0);
  EXPECT_EQ (limits.high, 9.0);

  /* Out-of-range percentiles are clamped, reversed ones swapped. */
  limits = limits_of (values, ACLIP_LIMITS_PERCENTILE, 120, -5);
  EXPECT_EQ (limits.low, 1.0);
  EXPECT_EQ (limits.high, 9.0);

  /* One finite value: every percentile is that value. */
  limits = limits_of ({ kNaN, 4.0f }, ACLIP_LIMITS_PERCENTILE, 0.5, 99.5);
  ASSERT_TRUE (limits.ok);
  EXPECT_EQ (limits.low, 4.0);
  EXPECT_EQ (limits.high, 4.0);
}

TEST (Limits, PercentilesMatchASortOnLargeArraysWithTies)
{
  /* Random values and heavy ties (many equal sky values, a sorted run, a reversed run) exercise
   * the selection's partitioning; the reference sorts. Both interpolate the same two floats,
   * so they agree to the last bit of a double computation. */
  GRand *rand = g_rand_new_with_seed (7);
  std::vector<float> values (20011);
  for (size_t i = 0; i < values.size (); i++) {
    if (i % 3 == 0)
      values[i] = (float) g_rand_int_range (rand, 0, 5);
    else if (i < 4000)
      values[i] = (float) i;
    else if (i < 8000)
      values[i] = (float) (10000 - i);
    else
      values[i] = (float) g_rand_double_range (rand, -100, 100);
  }
  g_rand_free (rand);

  for (double percent : { 0.0, 0.5, 1.0, 25.0, 33.3, 50.0, 99.5, 100.0 }) {
    auto limits = limits_of (values, ACLIP_LIMITS_PERCENTILE, percent, percent);
    ASSERT_TRUE (limits.ok);
    double expected = reference_percentile (values, percent);
    EXPECT_NEAR (limits.low, expected, 1e-9 * (1 + std::fabs (expected))) << percent;
  }
}

TEST (Limits, NoFiniteValueFails)
{
  const std::vector<float> nothing = { kNaN, kInf, -kInf };
  for (AclipLimitsMethod method :
       { ACLIP_LIMITS_MINMAX, ACLIP_LIMITS_PERCENTILE, ACLIP_LIMITS_ZSCALE }) {
    EXPECT_FALSE (limits_of (nothing, method, 1, 99).ok);
    EXPECT_FALSE (limits_of ({}, method, 1, 99).ok);
  }
}

/* A sorted sample of 600 values: 3 at −1000, a ramp j/64 for j = 0…593 at sample indices
 * 3…596, 3 at +1000, handed over in scrambled order. The first fit is dragged by the ±1000
 * outliers (residuals ≈ 1000 against σ ≈ 100), which are rejected; the ramp is an exact line of
 * slope 1/64 per sample index, so the refit has no residual and the iteration stops.
 * Median (N = 600 even) = (s₂₉₉ + s₃₀₀)/2 = (296/64 + 297/64)/2 = 4.6328125; centre c = 299;
 *   z1 = 4.6328125 − 299·(1/64)/0.25 = 4.6328125 − 18.6875 = −14.0546875,
 *   z2 = 4.6328125 + 300·(1/64)/0.25 = 4.6328125 + 18.75 = 23.3828125,
 * both inside the data range ±1000. All values are exact binary fractions; the fit runs in
 * double, so 1e-9 is ample, and a wrong contrast, centre or median moves them by ≥ 1/128. */
TEST (Limits, ZscaleOfARampWithOutliers)
{
  std::vector<float> sorted;
  for (int i = 0; i < 3; i++)
    sorted.push_back (-1000.0f);
  for (int j = 0; j <= 593; j++)
    sorted.push_back (j / 64.0f);
  for (int i = 0; i < 3; i++)
    sorted.push_back (1000.0f);
  ASSERT_EQ (sorted.size (), 600u);
  std::vector<float> scrambled (600);
  for (size_t i = 0; i < 600; i++)
    scrambled[(i * 7919) % 600] = sorted[i]; /* 7919 is prime, so coprime to 600 */

  auto limits = limits_of (scrambled, ACLIP_LIMITS_ZSCALE);
  ASSERT_TRUE (limits.ok);
  EXPECT_NEAR (limits.low, -14.0546875, 1e-9);
  EXPECT_NEAR (limits.high, 23.3828125, 1e-9);

  /* Non-finite values in between are skipped before sampling: the same answer. */
  std::vector<float> with_gaps;
  for (float value : scrambled) {
    with_gaps.push_back (value);
    with_gaps.push_back (kNaN);
    with_gaps.push_back (kInf);
  }
  auto gapped = limits_of (with_gaps, ACLIP_LIMITS_ZSCALE);
  ASSERT_TRUE (gapped.ok);
  EXPECT_EQ (gapped.low, limits.low);
  EXPECT_EQ (gapped.high, limits.high);
}

/* A plain ramp 0…5999: 6000 finite values, stride ⌈6000/600⌉ = 10, samples 0, 10, …, 5990
 * (600 of them), an exact line of slope 10 per sample. Median 2995; the stretched line reaches
 * 2995 − 299·10/0.25 = −8965 and 2995 + 300·10/0.25 = 14995, beyond the data, so the limits are
 * the data range [0, 5999] (of all values, not just the sample's 5990). */
TEST (Limits, ZscaleOfAPlainRampIsClippedToTheData)
{
  std::vector<float> ramp (6000);
  for (size_t i = 0; i < ramp.size (); i++)
    ramp[i] = (float) i;
  auto limits = limits_of (ramp, ACLIP_LIMITS_ZSCALE);
  ASSERT_TRUE (limits.ok);
  EXPECT_EQ (limits.low, 0.0);
  EXPECT_EQ (limits.high, 5999.0);
}

TEST (Limits, ZscaleWithFewValuesIsMinMax)
{
  /* Fewer than 5 finite values: no line is fitted. */
  auto limits = limits_of ({ 3.0f, kNaN, 1.0f, 2.0f }, ACLIP_LIMITS_ZSCALE);
  ASSERT_TRUE (limits.ok);
  EXPECT_EQ (limits.low, 1.0);
  EXPECT_EQ (limits.high, 3.0);
}

/* 100×100 Gaussian noise, mean 10, σ 1, then the same with five stars of peak 1000 (Gaussian
 * PSF, σ 2 pixels; about 7 % of the pixels are > 3σ above the noise).
 * Noise alone: a least-squares line through sorted Gaussian samples has slope ≈ 12·E[z·Φ(z)]σ
 * = 12σ/(2√π) = 3.4σ per unit sample fraction, so z2 − z1 ≈ 3.4σ/0.25 ≈ 13.5σ: wider than the
 * noise's ≈ ±3.9σ, and the limits are the data's min and max.
 * With stars: the star pixels are rejected from the fit, so the limits must stay near the
 * noise (within 10σ of the mean) rather than reach towards the stars (max ≈ 1010; even the
 * 99.5th percentile is > 500). */
TEST (Limits, ZscaleIgnoresBrightStars)
{
  const int height = 100, width = 100;
  const double mean = 10.0, sigma = 1.0;
  std::vector<float> noise (height * width);
  GRand *rand = g_rand_new_with_seed (12345);
  for (float &value : noise) {
    /* Box–Muller: deterministic across platforms, unlike std::normal_distribution. */
    double u1 = g_rand_double (rand), u2 = g_rand_double (rand);
    value = (float) (mean +
                     sigma * std::sqrt (-2.0 * std::log (1.0 - u1)) * std::cos (2.0 * G_PI * u2));
  }
  g_rand_free (rand);

  std::vector<float> stars = noise;
  const int star_x[] = { 20, 70, 40, 85, 10 }, star_y[] = { 30, 15, 60, 80, 90 };
  for (int s = 0; s < 5; s++)
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        double r2 = (x - star_x[s]) * (x - star_x[s]) + (y - star_y[s]) * (y - star_y[s]);
        stars[y * width + x] += (float) (1000.0 * std::exp (-r2 / (2 * 2.0 * 2.0)));
      }

  auto noise_range = limits_of (noise, ACLIP_LIMITS_MINMAX);
  auto noise_limits = limits_of (noise, ACLIP_LIMITS_ZSCALE);
  ASSERT_TRUE (noise_limits.ok);
  EXPECT_EQ (noise_limits.low, noise_range.low);
  EXPECT_EQ (noise_limits.high, noise_range.high);
  EXPECT_LT (noise_range.low, mean - 3 * sigma);
  EXPECT_GT (noise_range.high, mean + 3 * sigma);

  auto star_range = limits_of (stars, ACLIP_LIMITS_MINMAX);
  auto star_percentiles = limits_of (stars, ACLIP_LIMITS_PERCENTILE, 0.5, 99.5);
  auto star_limits = limits_of (stars, ACLIP_LIMITS_ZSCALE);
  ASSERT_TRUE (star_limits.ok);
  EXPECT_GT (star_range.high, 1000.0);
  EXPECT_GT (star_percentiles.high, 500.0);
  /* The low side is pure noise: still the data's minimum. */
  EXPECT_EQ (star_limits.low, star_range.low);
  /* The high side: above the bulk of the noise, far below the stars. */
  EXPECT_GT (star_limits.high, mean + 3 * sigma);
  EXPECT_LT (star_limits.high, mean + 10 * sigma);
}
