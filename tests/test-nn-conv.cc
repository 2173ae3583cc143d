/* The convolutional kernels (core/aclip-nn-conv.h) and the ResNet basic block
 * (core/aclip-resblock.h): the double references against central finite differences, the
 * float kernels against the references, both against PyTorch fixtures
 * (tests/reference/make_conv_fixtures.py), thread-count independence and the accumulation
 * convention.
 *
 * Tolerances. The float kernels are compared with exact (double) answers through
 *   |actual − expected| ≤ tol · (max |expected| over the array + |expected|),
 * since the rounding error of a float sum grows with the size of its terms, which the array's
 * largest value stands for. Unless a test says otherwise tol = 1e-5: the float32
 * accumulations here (a convolution's Σ over IC·KH·KW ≤ 147 products, its weight gradient's
 * Σ over B·OH·OW ≤ 450 products, normalisation sums over ≤ 1028 values in blocks of 256)
 * carry a relative error of order √n·2⁻²⁴ ≤ 2e-6 typically, and Winograd's transforms add
 * a few more roundings of the same size. Each check prints the worst error it saw
 * ("[ measured ]"), so the margin can be read in the log; the worst seen are below 2e-6.
 */
#include "test-support.h"

#include "reference-conv.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>

namespace {

const double kTolerance = 1e-5;

/* ---- Helpers ---- */

/* Normal values rounded to float, so that float and double kernels see the same inputs. */
RefArray
random_array (std::mt19937_64 &rng, size_t n, double scale = 1.0, double offset = 0.0)
{
  std::normal_distribution<double> normal;
  RefArray values (n);
  for (double &v : values)
    v = (double) (float) (normal (rng) * scale + offset);
  return values;
}

std::vector<float>
to_float (const RefArray &values)
{
  return std::vector<float> (values.begin (), values.end ());
}

double
max_abs (const RefArray &values)
{
  double largest = 0.0;
  for (double v : values)
    largest = std::max (largest, std::fabs (v));
  return largest;
}

/* Checks `actual` against `expected` with the scaled tolerance above and prints the worst
 * error relative to the array's scale. */
void
expect_close (const std::vector<float> &actual, const RefArray &expected, double tolerance,
              const std::string &what)
{
  ASSERT_EQ (actual.size (), expected.size ()) << what;
  if (tolerance == 0.0) {
    for (size_t i = 0; i < actual.size (); i++)
      ASSERT_EQ ((double) actual[i], expected[i]) << what << ": element " << i;
    std::printf ("[ measured ] %-58s exact\n", what.c_str ());
    return;
  }
  double scale = std::max (max_abs (expected), 1e-30);
  size_t worst = 0;
  double ratio = tolerance_ratio (actual.data (), expected.data (), actual.size (),
                                  tolerance * scale, tolerance, &worst);
  double worst_error = 0.0;
  for (size_t i = 0; i < actual.size (); i++)
    worst_error = std::max (worst_error, std::fabs (actual[i] - expected[i]) / scale);
  std::printf ("[ measured ] %-58s max |Δ|/max|ref| = %.2e (tolerance %.0e)\n", what.c_str (),
               worst_error, tolerance);
  EXPECT_LE (ratio, 1.0) << what << ": element " << worst << " is " << actual[worst]
                         << ", expected " << expected[worst];
}

/* Central differences of loss (θ) = Σ r·f(θ) against the analytic gradient, element by
 * element, relative to the larger of the two (floored at 1e-3 of the gradient's scale so
 * that near-zero entries are judged absolutely). Steps of 1e-5 in double: the truncation error
 * (h²·f‴/6, O(1e-11) here) and the rounding error (1e-16·|loss|/h ≈ 1e-11·|loss|) both stay
 * far below the 1e-6 limit. */
void
expect_finite_differences (RefArray &parameter, const RefArray &analytic,
                           const std::function<double ()> &loss, const std::string &what,
                           double limit = 1e-6)
{
  ASSERT_EQ (parameter.size (), analytic.size ()) << what;
  const double h = 1e-5;
  double floor = 1e-3 * std::max (max_abs (analytic), 1e-12);
  double worst = 0.0;
  for (size_t i = 0; i < parameter.size (); i++) {
    double saved = parameter[i];
    parameter[i] = saved + h;
    double up = loss ();
    parameter[i] = saved - h;
    double down = loss ();
    parameter[i] = saved;
    double numeric = (up - down) / (2 * h);
    double error = std::fabs (numeric - analytic[i]) /
                   std::max ({ std::fabs (numeric), std::fabs (analytic[i]), floor });
    worst = std::max (worst, error);
  }
  std::printf ("[ measured ] %-58s finite differences: worst relative error %.2e\n", what.c_str (),
               worst);
  EXPECT_LE (worst, limit) << what;
}

double
dot (const RefArray &a, const RefArray &b)
{
  double total = 0.0;
  for (size_t i = 0; i < a.size (); i++)
    total += a[i] * b[i];
  return total;
}

/* Bit-for-bit equality of float arrays. */
void
expect_identical (const std::vector<float> &a, const std::vector<float> &b, const std::string &what)
{
  ASSERT_EQ (a.size (), b.size ()) << what;
  if (a.empty ())
    return;
  EXPECT_EQ (std::memcmp (a.data (), b.data (), sizeof (float) * a.size ()), 0)
      << what << " differs between thread counts";
}

/* `twice` is the gradient after two backward passes into zeroed buffers, `once` after one:
 * accumulation must have doubled it (up to the rounding of the second pass's additions). */
void
expect_doubled (const std::vector<float> &twice, const std::vector<float> &once,
                const std::string &what)
{
  RefArray doubled (once.size ());
  for (size_t i = 0; i < once.size (); i++)
    doubled[i] = 2.0 * once[i];
  ASSERT_EQ (twice.size (), once.size ()) << what;
  double scale = std::max (max_abs (doubled), 1e-30);
  size_t worst = 0;
  double ratio =
      tolerance_ratio (twice.data (), doubled.data (), twice.size (), 1e-6 * scale, 1e-6, &worst);
  EXPECT_LE (ratio, 1.0) << what << ": second backward did not add its gradient (element " << worst
                         << ": " << twice[worst] << " vs 2×" << once[worst] << ")";
}

/* ---- Convolution ---- */

AclipConv2dShape
conv_shape (int B, int IC, int H, int W, int OC, int KH, int KW, int SH, int SW, int PH, int PW,
            int images_per_gemm = 0, AclipConvAlgorithm algorithm = ACLIP_CONV_AUTO)
{
  return { B, IC, H, W, OC, KH, KW, SH, SW, PH, PW, images_per_gemm, algorithm };
}

/* Where the Winograd path may be requested: 3×3 kernels, stride 1, padding ≤ 2. */
bool
winograd_applies (const AclipConv2dShape &s)
{
  return s.kernel_height == 3 && s.kernel_width == 3 && s.stride_height == 1 &&
         s.stride_width == 1 && s.pad_height <= 2 && s.pad_width <= 2;
}

/* The algorithms to test a shape with: always im2col and automatic, Winograd where it
 * applies. */
std::vector<AclipConvAlgorithm>
algorithms_for (const AclipConv2dShape &s)
{
  std::vector<AclipConvAlgorithm> list = { ACLIP_CONV_IM2COL, ACLIP_CONV_AUTO };
  if (winograd_applies (s))
    list.push_back (ACLIP_CONV_WINOGRAD);
  return list;
}

std::string
describe (const AclipConv2dShape &s)
{
  const char *algorithm = s.algorithm == ACLIP_CONV_IM2COL     ? "im2col"
                          : s.algorithm == ACLIP_CONV_WINOGRAD ? "winograd"
                                                               : "auto";
  char text[160];
  std::snprintf (text, sizeof text, "conv B%d IC%d %dx%d OC%d k%dx%d s%d,%d p%d,%d g%d %s", s.batch,
                 s.in_channels, s.in_height, s.in_width, s.out_channels, s.kernel_height,
                 s.kernel_width, s.stride_height, s.stride_width, s.pad_height, s.pad_width,
                 s.images_per_gemm, algorithm);
  return text;
}

size_t
conv_input_size (const AclipConv2dShape &s)
{
  return (size_t) s.batch * s.in_channels * s.in_height * s.in_width;
}

size_t
conv_output_size (const AclipConv2dShape &s)
{
  return (size_t) s.batch * s.out_channels * aclip_conv2d_out_height (&s) *
         aclip_conv2d_out_width (&s);
}

size_t
conv_weight_size (const AclipConv2dShape &s)
{
  return (size_t) s.out_channels * s.in_channels * s.kernel_height * s.kernel_width;
}

struct ConvResult
{
  std::vector<float> output, dinput, dweight, dbias;
};

/* Forward, then `passes` backward passes into zeroed gradients. */
ConvResult
run_conv (AclipThreadPool *pool, const AclipConv2dShape &s, const std::vector<float> &input,
          const std::vector<float> &weight, const std::vector<float> &bias,
          const std::vector<float> &doutput, int passes = 1)
{
  ConvResult r;
  std::vector<float> workspace (aclip_conv2d_workspace_size (&s));
  r.output.assign (conv_output_size (s), NAN);
  aclip_conv2d_forward (pool, &s, r.output.data (), input.data (), weight.data (),
                        bias.empty () ? nullptr : bias.data (), workspace.data ());
  r.dinput.assign (input.size (), 0.0f);
  r.dweight.assign (weight.size (), 0.0f);
  r.dbias.assign (s.out_channels, 0.0f);
  for (int pass = 0; pass < passes; pass++)
    aclip_conv2d_backward (pool, &s, r.dinput.data (), r.dweight.data (),
                           bias.empty () ? nullptr : r.dbias.data (), doutput.data (),
                           input.data (), weight.data (), workspace.data ());
  return r;
}

/* Shapes covering stride 2, padding, non-square kernels and strides, 1×1, a kernel larger
 * than the image (padding makes it fit) and the ResNet stem; for Winograd, paddings 0 to 2
 * (also unequal), odd sizes (partial tiles) and rows of more than four tiles (the vector
 * loops and their tails). */
std::vector<AclipConv2dShape>
conv_test_shapes ()
{
  return {
    conv_shape (2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1),   conv_shape (2, 3, 7, 13, 2, 3, 3, 1, 1, 0, 0),
    conv_shape (2, 2, 5, 6, 3, 3, 3, 1, 1, 2, 2),   conv_shape (3, 2, 9, 19, 3, 3, 3, 1, 1, 0, 2),
    conv_shape (1, 3, 4, 11, 2, 3, 3, 1, 1, 2, 1),  conv_shape (2, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1),
    conv_shape (3, 2, 7, 8, 3, 3, 3, 2, 2, 1, 1),   conv_shape (2, 2, 6, 7, 3, 2, 3, 2, 1, 1, 0),
    conv_shape (2, 3, 5, 6, 2, 3, 1, 1, 2, 0, 1),   conv_shape (3, 4, 5, 4, 3, 1, 1, 1, 1, 0, 0),
    conv_shape (2, 4, 7, 6, 3, 1, 1, 2, 2, 0, 0),   conv_shape (2, 2, 2, 3, 2, 3, 3, 1, 1, 1, 1),
    conv_shape (2, 3, 11, 10, 2, 7, 7, 2, 2, 3, 3), conv_shape (1, 2, 9, 9, 2, 5, 4, 3, 2, 2, 1),
  };
}

TEST (Conv2dReference, MatchesFiniteDifferences)
{
  std::mt19937_64 rng (11);
  for (const AclipConv2dShape &s : conv_test_shapes ()) {
    RefArray input = random_array (rng, conv_input_size (s));
    RefArray weight = random_array (rng, conv_weight_size (s), 0.5);
    RefArray bias = random_array (rng, s.out_channels);
    RefArray r = random_array (rng, conv_output_size (s));
    RefConv2dGradients g = ref_conv2d_backward (s, r, input, weight);
    auto loss = [&] () { return dot (r, ref_conv2d_forward (s, input, weight, bias)); };
    expect_finite_differences (input, g.dinput, loss, describe (s) + " dinput");
    expect_finite_differences (weight, g.dweight, loss, describe (s) + " dweight");
    expect_finite_differences (bias, g.dbias, loss, describe (s) + " dbias");
  }
}

TEST (Conv2d, OutputSizeFollowsPyTorch)
{
  AclipConv2dShape s = conv_shape (1, 1, 64, 63, 1, 7, 7, 2, 2, 3, 3);
  EXPECT_EQ (aclip_conv2d_out_height (&s), 32);
  EXPECT_EQ (aclip_conv2d_out_width (&s), 32);
  s = conv_shape (1, 1, 8, 8, 1, 1, 1, 2, 2, 0, 0);
  EXPECT_EQ (aclip_conv2d_out_height (&s), 4);
  s = conv_shape (1, 1, 6, 7, 1, 2, 3, 2, 1, 1, 0);
  EXPECT_EQ (aclip_conv2d_out_height (&s), 4);
  EXPECT_EQ (aclip_conv2d_out_width (&s), 5);
}

/* The float kernel against the double reference, for every algorithm and every grouping of
 * images per sgemm (one, all, automatic, and 2 with a smaller last group). */
TEST (Conv2d, MatchesReference)
{
  std::mt19937_64 rng (12);
  for (AclipConv2dShape s : conv_test_shapes ())
    for (AclipConvAlgorithm algorithm : algorithms_for (s))
      for (int grouping : { 1, 2, 0, 1000 }) {
        s.images_per_gemm = grouping;
        s.algorithm = algorithm;
        RefArray input = random_array (rng, conv_input_size (s));
        RefArray weight = random_array (rng, conv_weight_size (s), 0.5);
        RefArray bias = grouping == 2 ? RefArray () : random_array (rng, s.out_channels);
        RefArray doutput = random_array (rng, conv_output_size (s));
        RefArray expected = ref_conv2d_forward (s, input, weight, bias);
        RefConv2dGradients g = ref_conv2d_backward (s, doutput, input, weight);
        ConvResult r = run_conv (nullptr, s, to_float (input), to_float (weight), to_float (bias),
                                 to_float (doutput));
        std::string what = describe (s);
        expect_close (r.output, expected, kTolerance, what + " output");
        expect_close (r.dinput, g.dinput, kTolerance, what + " dinput");
        expect_close (r.dweight, g.dweight, kTolerance, what + " dweight");
        if (!bias.empty ())
          expect_close (r.dbias, g.dbias, kTolerance, what + " dbias");
      }
}

/* A larger image, so that the automatic choice puts one image per sgemm (and the 1×1 case
 * uses the input directly as its im2col matrix). */
TEST (Conv2d, MatchesReferenceOnWideImages)
{
  std::mt19937_64 rng (13);
  for (AclipConv2dShape s :
       { conv_shape (2, 3, 48, 50, 4, 3, 3, 1, 1, 1, 1, 0, ACLIP_CONV_IM2COL),
         conv_shape (2, 3, 49, 50, 4, 3, 3, 1, 1, 1, 1, 0, ACLIP_CONV_WINOGRAD),
         conv_shape (2, 5, 48, 48, 3, 1, 1, 1, 1, 0, 0) }) {
    RefArray input = random_array (rng, conv_input_size (s));
    RefArray weight = random_array (rng, conv_weight_size (s), 0.5);
    RefArray bias = random_array (rng, s.out_channels);
    RefArray doutput = random_array (rng, conv_output_size (s));
    RefArray expected = ref_conv2d_forward (s, input, weight, bias);
    RefConv2dGradients g = ref_conv2d_backward (s, doutput, input, weight);
    ConvResult r = run_conv (nullptr, s, to_float (input), to_float (weight), to_float (bias),
                             to_float (doutput));
    std::string what = describe (s);
    /* The weight gradient sums B·OH·OW = 4800 products: √4800·2⁻²⁴ ≈ 4e-6 typically, so
     * 2e-5. */
    expect_close (r.output, expected, kTolerance, what + " output");
    expect_close (r.dinput, g.dinput, kTolerance, what + " dinput");
    expect_close (r.dweight, g.dweight, 2e-5, what + " dweight");
    expect_close (r.dbias, g.dbias, 2e-5, what + " dbias");
  }
}

TEST (Conv2d, MatchesPyTorch)
{
  Fixture fixture ("conv-conv2d.bin");
  ASSERT_TRUE (fixture.ok ());
  int cases = (int) fixture.scalar ("cases");
  ASSERT_GE (cases, 6);
  for (int c = 0; c < cases; c++) {
    std::string prefix = "case" + std::to_string (c) + "/";
    const std::vector<double> &v = fixture[prefix + "shape"].values;
    ASSERT_EQ (v.size (), 12u);
    AclipConv2dShape fixture_shape =
        conv_shape ((int) v[0], (int) v[1], (int) v[2], (int) v[3], (int) v[4], (int) v[5],
                    (int) v[6], (int) v[7], (int) v[8], (int) v[9], (int) v[10]);
    for (AclipConvAlgorithm algorithm : algorithms_for (fixture_shape))
      for (int grouping : { 1, 0 }) {
        AclipConv2dShape s = fixture_shape;
        s.images_per_gemm = grouping;
        s.algorithm = algorithm;
        bool has_bias = v[11] != 0;
        ConvResult r =
            run_conv (nullptr, s, fixture[prefix + "input"].as_float (),
                      fixture[prefix + "weight"].as_float (),
                      has_bias ? fixture[prefix + "bias"].as_float () : std::vector<float> (),
                      fixture[prefix + "doutput"].as_float ());
        std::string what = "PyTorch " + describe (s);
        expect_close (r.output, fixture[prefix + "output"].values, kTolerance, what + " output");
        expect_close (r.dinput, fixture[prefix + "dinput"].values, kTolerance, what + " dinput");
        expect_close (r.dweight, fixture[prefix + "dweight"].values, kTolerance, what + " dweight");
        if (has_bias)
          expect_close (r.dbias, fixture[prefix + "dbias"].values, kTolerance, what + " dbias");
      }
  }
}

TEST (Conv2d, IndependentOfThreadCount)
{
  std::mt19937_64 rng (14);
  for (AclipConv2dShape s :
       { conv_shape (4, 8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 0, ACLIP_CONV_IM2COL),
         conv_shape (4, 8, 16, 17, 8, 3, 3, 1, 1, 1, 1, 0, ACLIP_CONV_WINOGRAD),
         conv_shape (4, 8, 16, 15, 8, 3, 3, 2, 2, 1, 1, 1),
         conv_shape (4, 8, 16, 16, 12, 1, 1, 1, 1, 0, 0, 1) }) {
    std::vector<float> input = to_float (random_array (rng, conv_input_size (s)));
    std::vector<float> weight = to_float (random_array (rng, conv_weight_size (s)));
    std::vector<float> bias = to_float (random_array (rng, s.out_channels));
    std::vector<float> doutput = to_float (random_array (rng, conv_output_size (s)));
    ConvResult serial = run_conv (nullptr, s, input, weight, bias, doutput);
    for (int threads : { 1, 2, 3 }) {
      g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (threads);
      ConvResult parallel = run_conv (pool, s, input, weight, bias, doutput);
      std::string what = describe (s) + " with " + std::to_string (threads) + " threads";
      expect_identical (parallel.output, serial.output, what + " output");
      expect_identical (parallel.dinput, serial.dinput, what + " dinput");
      expect_identical (parallel.dweight, serial.dweight, what + " dweight");
      expect_identical (parallel.dbias, serial.dbias, what + " dbias");
    }
  }
}

TEST (Conv2d, BackwardAccumulates)
{
  std::mt19937_64 rng (15);
  for (AclipConv2dShape s : { conv_shape (3, 3, 6, 7, 4, 3, 3, 2, 2, 1, 1, 2),
                              conv_shape (3, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 2, ACLIP_CONV_WINOGRAD),
                              conv_shape (2, 3, 6, 6, 4, 1, 1, 1, 1, 0, 0, 1) }) {
    std::vector<float> input = to_float (random_array (rng, conv_input_size (s)));
    std::vector<float> weight = to_float (random_array (rng, conv_weight_size (s)));
    std::vector<float> bias = to_float (random_array (rng, s.out_channels));
    std::vector<float> doutput = to_float (random_array (rng, conv_output_size (s)));
    ConvResult once = run_conv (nullptr, s, input, weight, bias, doutput, 1);
    ConvResult twice = run_conv (nullptr, s, input, weight, bias, doutput, 2);
    expect_doubled (twice.dinput, once.dinput, describe (s) + " dinput");
    expect_doubled (twice.dweight, once.dweight, describe (s) + " dweight");
    expect_doubled (twice.dbias, once.dbias, describe (s) + " dbias");
  }
}

/* Gradients the caller does not want are skipped, and the others are unchanged by that. */
TEST (Conv2d, NullGradientsAreSkipped)
{
  std::mt19937_64 rng (16);
  for (AclipConvAlgorithm algorithm : { ACLIP_CONV_IM2COL, ACLIP_CONV_WINOGRAD }) {
    AclipConv2dShape s = conv_shape (2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 0, algorithm);
    std::vector<float> input = to_float (random_array (rng, conv_input_size (s)));
    std::vector<float> weight = to_float (random_array (rng, conv_weight_size (s)));
    std::vector<float> doutput = to_float (random_array (rng, conv_output_size (s)));
    ConvResult full = run_conv (nullptr, s, input, weight, {}, doutput);
    std::vector<float> workspace (aclip_conv2d_workspace_size (&s));
    std::vector<float> dweight (weight.size (), 0.0f), dinput (input.size (), 0.0f);
    aclip_conv2d_backward (nullptr, &s, nullptr, dweight.data (), nullptr, doutput.data (),
                           input.data (), weight.data (), workspace.data ());
    aclip_conv2d_backward (nullptr, &s, dinput.data (), nullptr, nullptr, doutput.data (), nullptr,
                           weight.data (), workspace.data ());
    expect_identical (dweight, full.dweight, describe (s) + " dweight alone");
    expect_identical (dinput, full.dinput, describe (s) + " dinput alone");
  }
}

/* ---- Batch normalisation ---- */

struct NormResult
{
  std::vector<float> output, mean, invstd, running_mean, running_var, dinput, dweight, dbias;
};

NormResult
run_batchnorm (AclipThreadPool *pool, const std::vector<float> &input,
               const std::vector<float> &weight, const std::vector<float> &bias,
               const std::vector<float> &running_mean, const std::vector<float> &running_var,
               const std::vector<float> &doutput, int B, int C, int HW, float eps, float momentum,
               bool training, int passes = 1)
{
  NormResult r;
  r.output.assign (input.size (), NAN);
  r.mean.assign (C, NAN);
  r.invstd.assign (C, NAN);
  r.running_mean = running_mean;
  r.running_var = running_var;
  const float *w = weight.empty () ? nullptr : weight.data ();
  const float *b = bias.empty () ? nullptr : bias.data ();
  aclip_batchnorm2d_forward (pool, r.output.data (), r.mean.data (), r.invstd.data (),
                             r.running_mean.empty () ? nullptr : r.running_mean.data (),
                             r.running_var.empty () ? nullptr : r.running_var.data (),
                             input.data (), w, b, B, C, HW, eps, momentum, training);
  r.dinput.assign (input.size (), 0.0f);
  r.dweight.assign (C, 0.0f);
  r.dbias.assign (C, 0.0f);
  for (int pass = 0; pass < passes; pass++)
    aclip_batchnorm2d_backward (pool, r.dinput.data (), r.dweight.data (), r.dbias.data (),
                                doutput.data (), input.data (), r.mean.data (), r.invstd.data (), w,
                                B, C, HW, training);
  return r;
}

struct NormCase
{
  int batch, channels, spatial;
};

TEST (BatchNormReference, MatchesFiniteDifferences)
{
  std::mt19937_64 rng (21);
  for (bool training : { true, false })
    for (NormCase c : { NormCase{ 2, 3, 5 }, NormCase{ 4, 2, 1 }, NormCase{ 1, 2, 12 } }) {
      size_t n = (size_t) c.batch * c.channels * c.spatial;
      RefArray input = random_array (rng, n, 2.0, 0.5);
      RefArray weight = random_array (rng, c.channels, 0.5, 1.0);
      RefArray bias = random_array (rng, c.channels);
      RefArray running_mean = random_array (rng, c.channels, 0.3);
      RefArray running_var = random_array (rng, c.channels, 0.1, 1.5);
      RefArray r = random_array (rng, n);
      auto forward = [&] (RefNormState &state) {
        RefArray mean_copy = running_mean, var_copy = running_var;
        return ref_batchnorm2d_forward (input, weight, bias, c.batch, c.channels, c.spatial, 1e-5,
                                        0.1, training, mean_copy, var_copy, state);
      };
      RefNormState state;
      forward (state);
      RefNormGradients g = ref_batchnorm2d_backward (r, input, weight, state, c.batch, c.channels,
                                                     c.spatial, training);
      auto loss = [&] () {
        RefNormState scratch;
        return dot (r, forward (scratch));
      };
      std::string what = std::string ("batchnorm ") + (training ? "train " : "eval ") +
                         std::to_string (c.batch) + "x" + std::to_string (c.channels) + "x" +
                         std::to_string (c.spatial);
      expect_finite_differences (input, g.dinput, loss, what + " dinput");
      expect_finite_differences (weight, g.dweight, loss, what + " dweight");
      expect_finite_differences (bias, g.dbias, loss, what + " dbias");
    }
}

TEST (BatchNorm, MatchesReference)
{
  std::mt19937_64 rng (22);
  for (bool training : { true, false })
    for (bool affine : { true, false })
      for (NormCase c : { NormCase{ 4, 3, 30 }, NormCase{ 8, 5, 1 }, NormCase{ 2, 4, 257 } }) {
        size_t n = (size_t) c.batch * c.channels * c.spatial;
        RefArray input = random_array (rng, n, 2.0, 3.0);
        RefArray weight = affine ? random_array (rng, c.channels, 0.5, 1.0) : RefArray ();
        RefArray bias = affine ? random_array (rng, c.channels) : RefArray ();
        RefArray running_mean = random_array (rng, c.channels, 0.3);
        RefArray running_var = random_array (rng, c.channels, 0.1, 1.5);
        RefArray doutput = random_array (rng, n);
        RefArray ref_mean = running_mean, ref_var = running_var;
        RefNormState state;
        RefArray expected =
            ref_batchnorm2d_forward (input, weight, bias, c.batch, c.channels, c.spatial, 1e-5,
                                     0.25, training, ref_mean, ref_var, state);
        RefNormGradients g = ref_batchnorm2d_backward (doutput, input, weight, state, c.batch,
                                                       c.channels, c.spatial, training);
        NormResult r =
            run_batchnorm (nullptr, to_float (input), to_float (weight), to_float (bias),
                           to_float (running_mean), to_float (running_var), to_float (doutput),
                           c.batch, c.channels, c.spatial, 1e-5f, 0.25f, training);
        std::string what = std::string ("batchnorm ") + (training ? "train " : "eval ") +
                           (affine ? "affine " : "plain ") + std::to_string (c.batch) + "x" +
                           std::to_string (c.channels) + "x" + std::to_string (c.spatial);
        expect_close (r.output, expected, kTolerance, what + " output");
        expect_close (r.mean, state.mean, kTolerance, what + " saved mean");
        expect_close (r.invstd, state.invstd, kTolerance, what + " saved invstd");
        expect_close (r.running_mean, ref_mean, kTolerance, what + " running mean");
        expect_close (r.running_var, ref_var, kTolerance, what + " running var");
        expect_close (r.dinput, g.dinput, kTolerance, what + " dinput");
        expect_close (r.dweight, g.dweight, kTolerance, what + " dweight");
        expect_close (r.dbias, g.dbias, kTolerance, what + " dbias");
      }
}

/* Training then evaluation with PyTorch's momentum rule and unbiased running variance. */
TEST (BatchNorm, MatchesPyTorch)
{
  Fixture f ("conv-batchnorm.bin");
  ASSERT_TRUE (f.ok ());
  const std::vector<double> &shape = f["shape"].values;
  ASSERT_EQ (shape.size (), 4u);
  int B = (int) shape[0], C = (int) shape[1], HW = (int) (shape[2] * shape[3]);
  float eps = (float) f.scalar ("eps"), momentum = (float) f.scalar ("momentum");

  NormResult train = run_batchnorm (nullptr, f["input"].as_float (), f["weight"].as_float (),
                                    f["bias"].as_float (), f["running_mean_before"].as_float (),
                                    f["running_var_before"].as_float (),
                                    f["train/doutput"].as_float (), B, C, HW, eps, momentum, true);
  expect_close (train.output, f["train/output"].values, kTolerance, "PyTorch BN train output");
  expect_close (train.dinput, f["train/dinput"].values, kTolerance, "PyTorch BN train dinput");
  expect_close (train.dweight, f["train/dweight"].values, kTolerance, "PyTorch BN train dweight");
  expect_close (train.dbias, f["train/dbias"].values, kTolerance, "PyTorch BN train dbias");
  /* The running statistics are a handful of float operations on exact values: 1e-6. */
  expect_close (train.running_mean, f["running_mean_after"].values, 1e-6,
                "PyTorch BN running mean");
  expect_close (train.running_var, f["running_var_after"].values, 1e-6,
                "PyTorch BN running var (unbiased)");

  NormResult eval = run_batchnorm (nullptr, f["input"].as_float (), f["weight"].as_float (),
                                   f["bias"].as_float (), train.running_mean, train.running_var,
                                   f["eval/doutput"].as_float (), B, C, HW, eps, momentum, false);
  expect_close (eval.output, f["eval/output"].values, kTolerance, "PyTorch BN eval output");
  expect_close (eval.dinput, f["eval/dinput"].values, kTolerance, "PyTorch BN eval dinput");
  expect_close (eval.dweight, f["eval/dweight"].values, kTolerance, "PyTorch BN eval dweight");
  expect_close (eval.dbias, f["eval/dbias"].values, kTolerance, "PyTorch BN eval dbias");
  /* Evaluation leaves the running statistics alone. */
  expect_identical (eval.running_mean, train.running_mean, "eval running mean");
  expect_identical (eval.running_var, train.running_var, "eval running var");
}

TEST (BatchNorm, IndependentOfThreadCountAndAccumulates)
{
  std::mt19937_64 rng (23);
  int B = 8, C = 16, HW = 24 * 24;
  size_t n = (size_t) B * C * HW;
  std::vector<float> input = to_float (random_array (rng, n, 1.5, 0.5));
  std::vector<float> weight = to_float (random_array (rng, C, 0.5, 1.0));
  std::vector<float> bias = to_float (random_array (rng, C));
  std::vector<float> running_mean = to_float (random_array (rng, C, 0.3));
  std::vector<float> running_var = to_float (random_array (rng, C, 0.1, 1.5));
  std::vector<float> doutput = to_float (random_array (rng, n));
  for (bool training : { true, false }) {
    NormResult serial = run_batchnorm (nullptr, input, weight, bias, running_mean, running_var,
                                       doutput, B, C, HW, 1e-5f, 0.1f, training);
    for (int threads : { 1, 2, 3 }) {
      g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (threads);
      NormResult parallel = run_batchnorm (pool, input, weight, bias, running_mean, running_var,
                                           doutput, B, C, HW, 1e-5f, 0.1f, training);
      std::string what = std::string ("batchnorm ") + (training ? "train" : "eval") + " with " +
                         std::to_string (threads) + " threads";
      expect_identical (parallel.output, serial.output, what + " output");
      expect_identical (parallel.running_mean, serial.running_mean, what + " running mean");
      expect_identical (parallel.running_var, serial.running_var, what + " running var");
      expect_identical (parallel.dinput, serial.dinput, what + " dinput");
      expect_identical (parallel.dweight, serial.dweight, what + " dweight");
      expect_identical (parallel.dbias, serial.dbias, what + " dbias");
    }
    NormResult twice = run_batchnorm (nullptr, input, weight, bias, running_mean, running_var,
                                      doutput, B, C, HW, 1e-5f, 0.1f, training, 2);
    expect_doubled (twice.dinput, serial.dinput, "batchnorm dinput");
    expect_doubled (twice.dweight, serial.dweight, "batchnorm dweight");
    expect_doubled (twice.dbias, serial.dbias, "batchnorm dbias");
  }
}

/* Inputs far from zero relative to their spread: a one-pass E[x²] − E[x]² would lose the
 * variance; the two-pass float kernel keeps it. */
TEST (BatchNorm, LargeOffsetKeepsVariance)
{
  std::mt19937_64 rng (24);
  int B = 4, C = 2, HW = 64;
  size_t n = (size_t) B * C * HW;
  RefArray input = random_array (rng, n, 0.01, 300.0);
  RefArray doutput = random_array (rng, n);
  RefArray none, running_mean (C, 0.0), running_var (C, 1.0);
  RefNormState state;
  RefArray expected = ref_batchnorm2d_forward (input, none, none, B, C, HW, 1e-5, 0.1, true,
                                               running_mean, running_var, state);
  RefNormGradients g = ref_batchnorm2d_backward (doutput, input, none, state, B, C, HW, true);
  NormResult r =
      run_batchnorm (nullptr, to_float (input), {}, {}, std::vector<float> (C, 0.0f),
                     std::vector<float> (C, 1.0f), to_float (doutput), B, C, HW, 1e-5f, 0.1f, true);
  /* The float mean itself is off by up to half an ulp of 300 (1.5e-5, i.e. 1.5e-3 of the
   * spread), which shifts the outputs (range about ±3) by up to 5e-4 of their scale: 1e-3.
   * A one-pass E[x²] − E[x]² variance (E[x²] = 9e4, rounding 5e-3 against a variance of 1e-4)
   * would be off by orders of magnitude. */
  expect_close (r.output, expected, 1e-3, "batchnorm with offset 300, spread 0.01: output");
  expect_close (r.dinput, g.dinput, 1e-3, "batchnorm with offset 300, spread 0.01: dinput");
}

/* ---- Group normalisation ---- */

NormResult
run_groupnorm (AclipThreadPool *pool, const std::vector<float> &input,
               const std::vector<float> &weight, const std::vector<float> &bias,
               const std::vector<float> &doutput, int B, int C, int HW, int G, float eps,
               int passes = 1)
{
  NormResult r;
  r.output.assign (input.size (), NAN);
  r.mean.assign ((size_t) B * G, NAN);
  r.invstd.assign ((size_t) B * G, NAN);
  const float *w = weight.empty () ? nullptr : weight.data ();
  const float *b = bias.empty () ? nullptr : bias.data ();
  aclip_groupnorm_forward (pool, r.output.data (), r.mean.data (), r.invstd.data (), input.data (),
                           w, b, B, C, HW, G, eps);
  r.dinput.assign (input.size (), 0.0f);
  r.dweight.assign (C, 0.0f);
  r.dbias.assign (C, 0.0f);
  for (int pass = 0; pass < passes; pass++)
    aclip_groupnorm_backward (pool, r.dinput.data (), r.dweight.data (), r.dbias.data (),
                              doutput.data (), input.data (), r.mean.data (), r.invstd.data (), w,
                              B, C, HW, G);
  return r;
}

struct GroupCase
{
  int batch, channels, spatial, groups;
};

TEST (GroupNormReference, MatchesFiniteDifferences)
{
  std::mt19937_64 rng (31);
  for (GroupCase c : { GroupCase{ 2, 4, 5, 2 }, GroupCase{ 1, 6, 3, 3 }, GroupCase{ 2, 3, 4, 1 },
                       GroupCase{ 2, 2, 6, 2 } }) {
    size_t n = (size_t) c.batch * c.channels * c.spatial;
    RefArray input = random_array (rng, n, 1.5, -0.5);
    RefArray weight = random_array (rng, c.channels, 0.5, 1.0);
    RefArray bias = random_array (rng, c.channels);
    RefArray r = random_array (rng, n);
    RefNormState state;
    ref_groupnorm_forward (input, weight, bias, c.batch, c.channels, c.spatial, c.groups, 1e-5,
                           state);
    RefNormGradients g =
        ref_groupnorm_backward (r, input, weight, state, c.batch, c.channels, c.spatial, c.groups);
    auto loss = [&] () {
      RefNormState scratch;
      return dot (r, ref_groupnorm_forward (input, weight, bias, c.batch, c.channels, c.spatial,
                                            c.groups, 1e-5, scratch));
    };
    std::string what =
        "groupnorm " + std::to_string (c.channels) + "ch " + std::to_string (c.groups) + " groups";
    expect_finite_differences (input, g.dinput, loss, what + " dinput");
    expect_finite_differences (weight, g.dweight, loss, what + " dweight");
    expect_finite_differences (bias, g.dbias, loss, what + " dbias");
  }
}

TEST (GroupNorm, MatchesReference)
{
  std::mt19937_64 rng (32);
  for (bool affine : { true, false })
    for (GroupCase c : { GroupCase{ 3, 6, 20, 3 }, GroupCase{ 2, 8, 9, 8 },
                         GroupCase{ 2, 4, 50, 1 }, GroupCase{ 5, 4, 7, 2 } }) {
      size_t n = (size_t) c.batch * c.channels * c.spatial;
      RefArray input = random_array (rng, n, 2.0, 1.0);
      RefArray weight = affine ? random_array (rng, c.channels, 0.5, 1.0) : RefArray ();
      RefArray bias = affine ? random_array (rng, c.channels) : RefArray ();
      RefArray doutput = random_array (rng, n);
      RefNormState state;
      RefArray expected = ref_groupnorm_forward (input, weight, bias, c.batch, c.channels,
                                                 c.spatial, c.groups, 1e-5, state);
      RefNormGradients g = ref_groupnorm_backward (doutput, input, weight, state, c.batch,
                                                   c.channels, c.spatial, c.groups);
      NormResult r =
          run_groupnorm (nullptr, to_float (input), to_float (weight), to_float (bias),
                         to_float (doutput), c.batch, c.channels, c.spatial, c.groups, 1e-5f);
      std::string what = std::string ("groupnorm ") + (affine ? "affine " : "plain ") +
                         std::to_string (c.channels) + "ch " + std::to_string (c.groups) + "g";
      expect_close (r.output, expected, kTolerance, what + " output");
      expect_close (r.mean, state.mean, kTolerance, what + " saved mean");
      expect_close (r.invstd, state.invstd, kTolerance, what + " saved invstd");
      expect_close (r.dinput, g.dinput, kTolerance, what + " dinput");
      expect_close (r.dweight, g.dweight, kTolerance, what + " dweight");
      expect_close (r.dbias, g.dbias, kTolerance, what + " dbias");
    }
}

TEST (GroupNorm, MatchesPyTorch)
{
  Fixture f ("conv-groupnorm.bin");
  ASSERT_TRUE (f.ok ());
  int cases = (int) f.scalar ("cases");
  ASSERT_GE (cases, 3);
  float eps = (float) f.scalar ("eps");
  for (int c = 0; c < cases; c++) {
    std::string prefix = "case" + std::to_string (c) + "/";
    const std::vector<double> &v = f[prefix + "shape"].values;
    ASSERT_EQ (v.size (), 6u);
    int B = (int) v[0], C = (int) v[1], HW = (int) (v[2] * v[3]), G = (int) v[4];
    bool affine = v[5] != 0;
    NormResult r = run_groupnorm (nullptr, f[prefix + "input"].as_float (),
                                  affine ? f[prefix + "weight"].as_float () : std::vector<float> (),
                                  affine ? f[prefix + "bias"].as_float () : std::vector<float> (),
                                  f[prefix + "doutput"].as_float (), B, C, HW, G, eps);
    std::string what = "PyTorch groupnorm case " + std::to_string (c);
    expect_close (r.output, f[prefix + "output"].values, kTolerance, what + " output");
    expect_close (r.dinput, f[prefix + "dinput"].values, kTolerance, what + " dinput");
    if (affine) {
      expect_close (r.dweight, f[prefix + "dweight"].values, kTolerance, what + " dweight");
      expect_close (r.dbias, f[prefix + "dbias"].values, kTolerance, what + " dbias");
    }
  }
}

TEST (GroupNorm, IndependentOfThreadCountAndAccumulates)
{
  std::mt19937_64 rng (33);
  int B = 6, C = 16, HW = 20 * 20, G = 4;
  size_t n = (size_t) B * C * HW;
  std::vector<float> input = to_float (random_array (rng, n, 1.5, 0.5));
  std::vector<float> weight = to_float (random_array (rng, C, 0.5, 1.0));
  std::vector<float> bias = to_float (random_array (rng, C));
  std::vector<float> doutput = to_float (random_array (rng, n));
  NormResult serial = run_groupnorm (nullptr, input, weight, bias, doutput, B, C, HW, G, 1e-5f);
  for (int threads : { 1, 2, 3 }) {
    g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (threads);
    NormResult parallel = run_groupnorm (pool, input, weight, bias, doutput, B, C, HW, G, 1e-5f);
    std::string what = "groupnorm with " + std::to_string (threads) + " threads";
    expect_identical (parallel.output, serial.output, what + " output");
    expect_identical (parallel.dinput, serial.dinput, what + " dinput");
    expect_identical (parallel.dweight, serial.dweight, what + " dweight");
    expect_identical (parallel.dbias, serial.dbias, what + " dbias");
  }
  NormResult twice = run_groupnorm (nullptr, input, weight, bias, doutput, B, C, HW, G, 1e-5f, 2);
  expect_doubled (twice.dinput, serial.dinput, "groupnorm dinput");
  expect_doubled (twice.dweight, serial.dweight, "groupnorm dweight");
  expect_doubled (twice.dbias, serial.dbias, "groupnorm dbias");
}

/* ---- Pooling ---- */

AclipPool2dShape
pool_shape (int B, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW)
{
  return { B, C, H, W, KH, KW, SH, SW, PH, PW };
}

std::string
describe (const AclipPool2dShape &s)
{
  char text[128];
  std::snprintf (text, sizeof text, "pool %dx%d k%dx%d s%d,%d p%d,%d", s.in_height, s.in_width,
                 s.kernel_height, s.kernel_width, s.stride_height, s.stride_width, s.pad_height,
                 s.pad_width);
  return text;
}

size_t
pool_input_size (const AclipPool2dShape &s)
{
  return (size_t) s.batch * s.channels * s.in_height * s.in_width;
}

size_t
pool_output_size (const AclipPool2dShape &s)
{
  return (size_t) s.batch * s.channels * aclip_pool2d_out_height (&s) * aclip_pool2d_out_width (&s);
}

std::vector<AclipPool2dShape>
pool_test_shapes ()
{
  return {
    pool_shape (2, 3, 8, 8, 3, 3, 2, 2, 1, 1), pool_shape (2, 2, 6, 7, 2, 2, 2, 2, 0, 0),
    pool_shape (1, 3, 5, 6, 3, 2, 1, 2, 1, 1), pool_shape (2, 2, 7, 5, 3, 3, 1, 1, 1, 1),
    pool_shape (1, 2, 9, 9, 4, 5, 3, 2, 2, 2), pool_shape (2, 1, 3, 3, 3, 3, 1, 1, 0, 0),
  };
}

struct MaxPoolResult
{
  std::vector<float> output, dinput;
  std::vector<gint32> argmax;
};

MaxPoolResult
run_maxpool (AclipThreadPool *pool, const AclipPool2dShape &s, const std::vector<float> &input,
             const std::vector<float> &doutput, int passes = 1)
{
  MaxPoolResult r;
  r.output.assign (pool_output_size (s), NAN);
  r.argmax.assign (pool_output_size (s), -1);
  aclip_maxpool2d_forward (pool, &s, r.output.data (), r.argmax.data (), input.data ());
  r.dinput.assign (input.size (), 0.0f);
  for (int pass = 0; pass < passes; pass++)
    aclip_maxpool2d_backward (pool, &s, r.dinput.data (), doutput.data (), r.argmax.data ());
  return r;
}

struct AvgPoolResult
{
  std::vector<float> output, dinput;
};

AvgPoolResult
run_avgpool (AclipThreadPool *pool, const AclipPool2dShape &s, bool include_pad,
             const std::vector<float> &input, const std::vector<float> &doutput, int passes = 1)
{
  AvgPoolResult r;
  r.output.assign (pool_output_size (s), NAN);
  aclip_avgpool2d_forward (pool, &s, include_pad, r.output.data (), input.data ());
  r.dinput.assign (input.size (), 0.0f);
  for (int pass = 0; pass < passes; pass++)
    aclip_avgpool2d_backward (pool, &s, include_pad, r.dinput.data (), doutput.data ());
  return r;
}

TEST (PoolReference, MatchesFiniteDifferences)
{
  std::mt19937_64 rng (41);
  for (const AclipPool2dShape &s : pool_test_shapes ()) {
    /* Continuous values: no ties, and gaps far larger than the step. */
    RefArray input = random_array (rng, pool_input_size (s));
    RefArray r = random_array (rng, pool_output_size (s));
    RefArray argmax;
    ref_maxpool2d_forward (s, input, argmax);
    RefArray dmax = ref_maxpool2d_backward (s, r, argmax);
    expect_finite_differences (
        input, dmax,
        [&] () {
          RefArray scratch;
          return dot (r, ref_maxpool2d_forward (s, input, scratch));
        },
        "max " + describe (s) + " dinput");
    for (bool include_pad : { true, false }) {
      RefArray davg = ref_avgpool2d_backward (s, include_pad, r);
      expect_finite_differences (
          input, davg, [&] () { return dot (r, ref_avgpool2d_forward (s, include_pad, input)); },
          std::string ("avg ") + (include_pad ? "incl " : "excl ") + describe (s) + " dinput");
    }
  }
  RefArray input = random_array (rng, 2 * 3 * 10);
  RefArray r = random_array (rng, 2 * 3);
  expect_finite_differences (
      input, ref_global_avgpool_backward (r, 2, 3, 10),
      [&] () { return dot (r, ref_global_avgpool_forward (input, 2, 3, 10)); },
      "global avg pool dinput");
}

TEST (MaxPool, MatchesReference)
{
  std::mt19937_64 rng (42);
  std::uniform_int_distribution<int> small (-2, 2);
  for (const AclipPool2dShape &s : pool_test_shapes ())
    for (bool ties : { false, true }) {
      RefArray input = random_array (rng, pool_input_size (s));
      if (ties)
        for (double &v : input)
          v = small (rng);
      RefArray doutput = random_array (rng, pool_output_size (s));
      RefArray argmax;
      RefArray expected = ref_maxpool2d_forward (s, input, argmax);
      RefArray dinput = ref_maxpool2d_backward (s, doutput, argmax);
      MaxPoolResult r = run_maxpool (nullptr, s, to_float (input), to_float (doutput));
      std::string what = "max " + describe (s) + (ties ? " with ties" : "");
      /* Selecting and routing values is exact. */
      expect_close (r.output, expected, 0.0, what + " output");
      expect_close (r.dinput, dinput, 1e-7, what + " dinput");
      for (size_t i = 0; i < argmax.size (); i++)
        ASSERT_EQ (r.argmax[i], (gint32) argmax[i]) << what << " argmax " << i;
    }
}

/* Ties go to the first position in row-major order; NaN wins as in PyTorch. */
TEST (MaxPool, TiesGoToTheFirstAndNaNWins)
{
  AclipPool2dShape s = pool_shape (1, 1, 2, 3, 2, 2, 1, 1, 0, 0);
  std::vector<float> input = { 1, 5, 5, 5, 2, 5 };
  std::vector<float> output (2);
  std::vector<gint32> argmax (2);
  aclip_maxpool2d_forward (nullptr, &s, output.data (), argmax.data (), input.data ());
  EXPECT_EQ (argmax[0], 1); /* window {1, 5; 5, 2}: the 5 at (0, 1) */
  EXPECT_EQ (argmax[1], 1); /* window {5, 5; 2, 5}: the 5 at (0, 1), not (0, 2) or (1, 2) */
  input = { 1, NAN, 5, 5, 2, 7 };
  aclip_maxpool2d_forward (nullptr, &s, output.data (), argmax.data (), input.data ());
  EXPECT_TRUE (std::isnan (output[0]));
  EXPECT_EQ (argmax[0], 1);
  EXPECT_TRUE (std::isnan (output[1]));
}

TEST (MaxPool, MatchesPyTorch)
{
  Fixture f ("conv-pool.bin");
  ASSERT_TRUE (f.ok ());
  int cases = (int) f.scalar ("cases");
  ASSERT_GE (cases, 3);
  for (int c = 0; c < cases; c++) {
    std::string prefix = "case" + std::to_string (c) + "/";
    const std::vector<double> &v = f[prefix + "shape"].values;
    ASSERT_EQ (v.size (), 10u);
    AclipPool2dShape s = pool_shape ((int) v[0], (int) v[1], (int) v[2], (int) v[3], (int) v[4],
                                     (int) v[5], (int) v[6], (int) v[7], (int) v[8], (int) v[9]);
    MaxPoolResult r = run_maxpool (nullptr, s, f[prefix + "max/input"].as_float (),
                                   f[prefix + "max/doutput"].as_float ());
    std::string what = "PyTorch max " + describe (s);
    expect_close (r.output, f[prefix + "max/output"].values, 0.0, what + " output");
    expect_close (r.dinput, f[prefix + "max/dinput"].values, 1e-7, what + " dinput");
    const FixtureTensor &indices = f[prefix + "max/argmax"];
    ASSERT_EQ ((size_t) indices.size (), r.argmax.size ());
    for (size_t i = 0; i < r.argmax.size (); i++)
      ASSERT_EQ (r.argmax[i], (gint32) indices.values[i]) << what << " argmax " << i;

    for (bool include_pad : { true, false }) {
      std::string name = prefix + (include_pad ? "avg_include_pad/" : "avg_exclude_pad/");
      AvgPoolResult a = run_avgpool (nullptr, s, include_pad, f[name + "input"].as_float (),
                                     f[name + "doutput"].as_float ());
      std::string what_avg =
          std::string ("PyTorch avg ") + (include_pad ? "incl " : "excl ") + describe (s);
      expect_close (a.output, f[name + "output"].values, kTolerance, what_avg + " output");
      expect_close (a.dinput, f[name + "dinput"].values, kTolerance, what_avg + " dinput");
    }
  }
  std::vector<float> output (3 * 4), dinput (3 * 4 * 30, 0.0f);
  aclip_global_avgpool_forward (nullptr, output.data (), f["global/input"].as_float ().data (), 3,
                                4, 30);
  aclip_global_avgpool_backward (nullptr, dinput.data (), f["global/doutput"].as_float ().data (),
                                 3, 4, 30);
  expect_close (output, f["global/output"].values, kTolerance, "PyTorch global avg output");
  expect_close (dinput, f["global/dinput"].values, kTolerance, "PyTorch global avg dinput");
}

TEST (AvgPool, MatchesReference)
{
  std::mt19937_64 rng (43);
  for (const AclipPool2dShape &s : pool_test_shapes ())
    for (bool include_pad : { true, false }) {
      RefArray input = random_array (rng, pool_input_size (s));
      RefArray doutput = random_array (rng, pool_output_size (s));
      AvgPoolResult r = run_avgpool (nullptr, s, include_pad, to_float (input), to_float (doutput));
      std::string what = std::string ("avg ") + (include_pad ? "incl " : "excl ") + describe (s);
      expect_close (r.output, ref_avgpool2d_forward (s, include_pad, input), kTolerance,
                    what + " output");
      expect_close (r.dinput, ref_avgpool2d_backward (s, include_pad, doutput), kTolerance,
                    what + " dinput");
    }
  RefArray input = random_array (rng, 3 * 5 * 49);
  RefArray doutput = random_array (rng, 3 * 5);
  std::vector<float> output (15), dinput (input.size (), 0.0f);
  aclip_global_avgpool_forward (nullptr, output.data (), to_float (input).data (), 3, 5, 49);
  aclip_global_avgpool_backward (nullptr, dinput.data (), to_float (doutput).data (), 3, 5, 49);
  expect_close (output, ref_global_avgpool_forward (input, 3, 5, 49), kTolerance,
                "global avg output");
  expect_close (dinput, ref_global_avgpool_backward (doutput, 3, 5, 49), kTolerance,
                "global avg dinput");
}

/* PyTorch's default count_include_pad = True divides by the whole kernel area even at the
 * border; False divides by the real pixels only. */
TEST (AvgPool, CountIncludePadDivisor)
{
  AclipPool2dShape s = pool_shape (1, 1, 2, 2, 3, 3, 1, 1, 1, 1);
  std::vector<float> input = { 9, 9, 9, 9 }, output (4);
  aclip_avgpool2d_forward (nullptr, &s, TRUE, output.data (), input.data ());
  EXPECT_FLOAT_EQ (output[0], 4.0f); /* 36 / 9 */
  aclip_avgpool2d_forward (nullptr, &s, FALSE, output.data (), input.data ());
  EXPECT_FLOAT_EQ (output[0], 9.0f); /* 36 / 4 */
}

TEST (Pool, IndependentOfThreadCountAndAccumulates)
{
  std::mt19937_64 rng (44);
  AclipPool2dShape s = pool_shape (4, 16, 32, 32, 3, 3, 2, 2, 1, 1);
  std::vector<float> input = to_float (random_array (rng, pool_input_size (s)));
  std::vector<float> doutput = to_float (random_array (rng, pool_output_size (s)));
  MaxPoolResult max_serial = run_maxpool (nullptr, s, input, doutput);
  AvgPoolResult avg_serial = run_avgpool (nullptr, s, true, input, doutput);
  int B = s.batch, C = s.channels, HW = s.in_height * s.in_width;
  std::vector<float> global_serial (B * C), dglobal_serial (input.size (), 0.0f);
  aclip_global_avgpool_forward (nullptr, global_serial.data (), input.data (), B, C, HW);
  aclip_global_avgpool_backward (nullptr, dglobal_serial.data (), doutput.data (), B, C, HW);
  for (int threads : { 1, 2, 3 }) {
    g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (threads);
    std::string what = "pooling with " + std::to_string (threads) + " threads";
    MaxPoolResult max_parallel = run_maxpool (pool, s, input, doutput);
    expect_identical (max_parallel.output, max_serial.output, what + " max output");
    expect_identical (max_parallel.dinput, max_serial.dinput, what + " max dinput");
    AvgPoolResult avg_parallel = run_avgpool (pool, s, true, input, doutput);
    expect_identical (avg_parallel.output, avg_serial.output, what + " avg output");
    expect_identical (avg_parallel.dinput, avg_serial.dinput, what + " avg dinput");
    std::vector<float> global (B * C), dglobal (input.size (), 0.0f);
    aclip_global_avgpool_forward (pool, global.data (), input.data (), B, C, HW);
    aclip_global_avgpool_backward (pool, dglobal.data (), doutput.data (), B, C, HW);
    expect_identical (global, global_serial, what + " global output");
    expect_identical (dglobal, dglobal_serial, what + " global dinput");
  }
  expect_doubled (run_maxpool (nullptr, s, input, doutput, 2).dinput, max_serial.dinput,
                  "max pool dinput");
  expect_doubled (run_avgpool (nullptr, s, true, input, doutput, 2).dinput, avg_serial.dinput,
                  "avg pool dinput");
  aclip_global_avgpool_backward (nullptr, dglobal_serial.data (), doutput.data (), B, C, HW);
  std::vector<float> dglobal_once (input.size (), 0.0f);
  aclip_global_avgpool_backward (nullptr, dglobal_once.data (), doutput.data (), B, C, HW);
  expect_doubled (dglobal_serial, dglobal_once, "global avg pool dinput");
}

/* ---- The ResNet basic block ---- */

/* Float copies of a block's parameters (or gradients) and the pointer table the C API takes. */
struct BlockArrays
{
  std::vector<float> conv1_weight, bn1_weight, bn1_bias, conv2_weight, bn2_weight, bn2_bias,
      shortcut_weight, shortcut_bn_weight, shortcut_bn_bias;

  AclipResBlockParams table ()
  {
    auto ptr = [] (std::vector<float> &v) { return v.empty () ? nullptr : v.data (); };
    return { ptr (conv1_weight),    ptr (bn1_weight),         ptr (bn1_bias),
             ptr (conv2_weight),    ptr (bn2_weight),         ptr (bn2_bias),
             ptr (shortcut_weight), ptr (shortcut_bn_weight), ptr (shortcut_bn_bias) };
  }
  std::vector<std::pair<std::string, std::vector<float> *>> named ()
  {
    return { { "conv1.weight", &conv1_weight },
             { "bn1.weight", &bn1_weight },
             { "bn1.bias", &bn1_bias },
             { "conv2.weight", &conv2_weight },
             { "bn2.weight", &bn2_weight },
             { "bn2.bias", &bn2_bias },
             { "shortcut_conv.weight", &shortcut_weight },
             { "shortcut_bn.weight", &shortcut_bn_weight },
             { "shortcut_bn.bias", &shortcut_bn_bias } };
  }
};

BlockArrays
to_float (const RefResBlockParams &p)
{
  return { to_float (p.conv1_weight),    to_float (p.bn1_weight),
           to_float (p.bn1_bias),        to_float (p.conv2_weight),
           to_float (p.bn2_weight),      to_float (p.bn2_bias),
           to_float (p.shortcut_weight), to_float (p.shortcut_bn_weight),
           to_float (p.shortcut_bn_bias) };
}

std::vector<std::pair<std::string, const RefArray *>>
named (const RefResBlockParams &p)
{
  return { { "conv1.weight", &p.conv1_weight },
           { "bn1.weight", &p.bn1_weight },
           { "bn1.bias", &p.bn1_bias },
           { "conv2.weight", &p.conv2_weight },
           { "bn2.weight", &p.bn2_weight },
           { "bn2.bias", &p.bn2_bias },
           { "shortcut_conv.weight", &p.shortcut_weight },
           { "shortcut_bn.weight", &p.shortcut_bn_weight },
           { "shortcut_bn.bias", &p.shortcut_bn_bias } };
}

RefResBlockParams
random_block (std::mt19937_64 &rng, const AclipResBlockShape &s)
{
  int IC = s.in_channels, OC = s.out_channels;
  RefResBlockParams p;
  p.conv1_weight = random_array (rng, (size_t) OC * IC * 9, std::sqrt (2.0 / (IC * 9)));
  p.bn1_weight = random_array (rng, OC, 0.3, 1.0);
  p.bn1_bias = random_array (rng, OC, 0.3);
  p.conv2_weight = random_array (rng, (size_t) OC * OC * 9, std::sqrt (2.0 / (OC * 9)));
  p.bn2_weight = random_array (rng, OC, 0.3, 1.0);
  p.bn2_bias = random_array (rng, OC, 0.3);
  if (aclip_resblock_has_projection (&s)) {
    p.shortcut_weight = random_array (rng, (size_t) OC * IC, std::sqrt (2.0 / IC));
    p.shortcut_bn_weight = random_array (rng, OC, 0.3, 1.0);
    p.shortcut_bn_bias = random_array (rng, OC, 0.3);
  }
  return p;
}

RefResBlockRunning
initial_running (const AclipResBlockShape &s)
{
  int OC = s.out_channels;
  bool projection = aclip_resblock_has_projection (&s);
  RefResBlockRunning r;
  r.bn1_mean = r.bn2_mean = RefArray (OC, 0.0);
  r.bn1_var = r.bn2_var = RefArray (OC, 1.0);
  if (projection) {
    r.shortcut_mean = RefArray (OC, 0.0);
    r.shortcut_var = RefArray (OC, 1.0);
  }
  return r;
}

struct BlockRun
{
  std::vector<float> output, dinput;
  BlockArrays grads;
  std::vector<float> running[6]; /* bn1 mean, var, bn2 mean, var, shortcut mean, var */
};

BlockRun
run_block (AclipThreadPool *pool, const AclipResBlockShape &s, const std::vector<float> &input,
           BlockArrays params, const RefResBlockRunning &running_start,
           const std::vector<float> &doutput, bool training, int passes = 1)
{
  BlockRun r;
  const RefArray *starts[6] = { &running_start.bn1_mean,      &running_start.bn1_var,
                                &running_start.bn2_mean,      &running_start.bn2_var,
                                &running_start.shortcut_mean, &running_start.shortcut_var };
  for (int i = 0; i < 6; i++)
    r.running[i] = to_float (*starts[i]);
  auto ptr = [] (std::vector<float> &v) { return v.empty () ? nullptr : v.data (); };
  AclipResBlockRunningStats running = {
    ptr (r.running[0]), ptr (r.running[1]), ptr (r.running[2]),
    ptr (r.running[3]), ptr (r.running[4]), ptr (r.running[5])
  };
  int OH = aclip_resblock_out_height (&s), OW = aclip_resblock_out_width (&s);
  std::vector<float> activations (aclip_resblock_activations_size (&s));
  std::vector<float> workspace (aclip_resblock_workspace_size (&s));
  r.output.assign ((size_t) s.batch * s.out_channels * OH * OW, NAN);
  AclipResBlockParams table = params.table ();
  aclip_resblock_forward (pool, &s, r.output.data (), activations.data (), input.data (), &table,
                          &running, 1e-5f, 0.1f, training, workspace.data ());
  r.dinput.assign (input.size (), 0.0f);
  for (auto &entry : params.named ()) {
    std::vector<float> *gradient = nullptr;
    for (auto &g : r.grads.named ())
      if (g.first == entry.first)
        gradient = g.second;
    gradient->assign (entry.second->size (), 0.0f);
  }
  AclipResBlockParams grad_table = r.grads.table ();
  for (int pass = 0; pass < passes; pass++)
    aclip_resblock_backward (pool, &s, r.dinput.data (), &grad_table, doutput.data (),
                             r.output.data (), activations.data (), input.data (), &table, training,
                             workspace.data ());
  return r;
}

size_t
block_output_size (const AclipResBlockShape &s)
{
  return (size_t) s.batch * s.out_channels * aclip_resblock_out_height (&s) *
         aclip_resblock_out_width (&s);
}

std::string
describe (const AclipResBlockShape &s)
{
  char text[96];
  std::snprintf (text, sizeof text, "block %d→%d %dx%d s%d", s.in_channels, s.out_channels,
                 s.in_height, s.in_width, s.stride);
  return text;
}

TEST (ResBlockReference, MatchesFiniteDifferences)
{
  std::mt19937_64 rng (51);
  for (AclipResBlockShape s :
       { AclipResBlockShape{ 2, 3, 3, 5, 4, 1 }, AclipResBlockShape{ 2, 2, 4, 5, 5, 2 } }) {
    RefResBlockParams p = random_block (rng, s);
    RefArray input =
        random_array (rng, (size_t) s.batch * s.in_channels * s.in_height * s.in_width);
    RefArray r = random_array (rng, block_output_size (s));
    RefResBlockRunning running = initial_running (s);
    RefResBlockTape tape;
    ref_resblock_forward (s, input, p, running, 1e-5, 0.1, true, tape);
    RefResBlockGradients g = ref_resblock_backward (s, r, input, p, tape, true);
    auto loss = [&] () {
      RefResBlockRunning scratch = initial_running (s);
      RefResBlockTape scratch_tape;
      return dot (r, ref_resblock_forward (s, input, p, scratch, 1e-5, 0.1, true, scratch_tape));
    };
    /* The ReLUs' kinks make a few entries less smooth than the single kernels: 1e-5. */
    expect_finite_differences (input, g.dinput, loss, describe (s) + " dinput", 1e-5);
    auto parameters = named (p);
    auto gradients = named (g.dparams);
    for (size_t i = 0; i < parameters.size (); i++)
      if (!parameters[i].second->empty ())
        expect_finite_differences (*const_cast<RefArray *> (parameters[i].second),
                                   *gradients[i].second, loss,
                                   describe (s) + " " + parameters[i].first, 1e-5);
  }
}

TEST (ResBlock, MatchesReference)
{
  std::mt19937_64 rng (52);
  for (AclipResBlockShape s :
       { AclipResBlockShape{ 4, 8, 8, 10, 9, 1 }, AclipResBlockShape{ 3, 6, 12, 11, 10, 2 },
         AclipResBlockShape{ 2, 4, 8, 8, 8, 1 } })
    for (bool training : { true, false }) {
      RefResBlockParams p = random_block (rng, s);
      RefArray input =
          random_array (rng, (size_t) s.batch * s.in_channels * s.in_height * s.in_width);
      RefArray doutput = random_array (rng, block_output_size (s));
      RefResBlockRunning running = initial_running (s);
      if (!training) /* evaluation with statistics that are not the identity */
        for (RefArray *stat : { &running.bn1_var, &running.bn2_var, &running.shortcut_var })
          for (double &v : *stat)
            v = 0.5 + 0.25 * (&v - stat->data ());
      RefResBlockRunning ref_running = running;
      RefResBlockTape tape;
      RefArray expected =
          ref_resblock_forward (s, input, p, ref_running, 1e-5, 0.1, training, tape);
      RefResBlockGradients g = ref_resblock_backward (s, doutput, input, p, tape, training);
      BlockRun r = run_block (nullptr, s, to_float (input), to_float (p), running,
                              to_float (doutput), training);
      std::string what = describe (s) + (training ? " train" : " eval");
      /* Five float kernels deep, each within 1e-5 of the scale of its output, and BN's
       * rescaling can enlarge an error relative to the next layer's scale: 2e-5. */
      expect_close (r.output, expected, 2e-5, what + " output");
      expect_close (r.dinput, g.dinput, 2e-5, what + " dinput");
      auto fast = r.grads.named ();
      auto exact = named (g.dparams);
      for (size_t i = 0; i < fast.size (); i++)
        if (!exact[i].second->empty ())
          expect_close (*fast[i].second, *exact[i].second, 2e-5, what + " " + fast[i].first);
      const RefArray *stats[6] = { &ref_running.bn1_mean,      &ref_running.bn1_var,
                                   &ref_running.bn2_mean,      &ref_running.bn2_var,
                                   &ref_running.shortcut_mean, &ref_running.shortcut_var };
      for (int i = 0; i < 6; i++)
        if (!stats[i]->empty ())
          expect_close (r.running[i], *stats[i], 2e-5, what + " running " + std::to_string (i));
    }
}

TEST (ResBlock, MatchesPyTorch)
{
  Fixture f ("resblock.bin");
  ASSERT_TRUE (f.ok ());
  int cases = (int) f.scalar ("cases");
  ASSERT_GE (cases, 2);
  for (int c = 0; c < cases; c++) {
    std::string prefix = "case" + std::to_string (c) + "/";
    const std::vector<double> &v = f[prefix + "shape"].values;
    ASSERT_EQ (v.size (), 6u);
    AclipResBlockShape s = {
      (int) v[0], (int) v[1], (int) v[2], (int) v[3], (int) v[4], (int) v[5]
    };
    bool projection = aclip_resblock_has_projection (&s);
    BlockArrays params;
    for (auto &entry : params.named ())
      if (projection || entry.first.rfind ("shortcut", 0) != 0)
        *entry.second = f[prefix + entry.first].as_float ();
    RefResBlockRunning running = initial_running (s);
    BlockRun r = run_block (nullptr, s, f[prefix + "input"].as_float (), params, running,
                            f[prefix + "doutput"].as_float (), true);
    std::string what = "PyTorch " + describe (s);
    expect_close (r.output, f[prefix + "output"].values, 2e-5, what + " output");
    expect_close (r.dinput, f[prefix + "dinput"].values, 2e-5, what + " dinput");
    for (auto &entry : r.grads.named ())
      if (!entry.second->empty ())
        expect_close (*entry.second, f[prefix + "grad/" + entry.first].values, 2e-5,
                      what + " grad " + entry.first);
    const char *stat_names[6] = { "bn1.running_mean",         "bn1.running_var",
                                  "bn2.running_mean",         "bn2.running_var",
                                  "shortcut_bn.running_mean", "shortcut_bn.running_var" };
    for (int i = 0; i < (projection ? 6 : 4); i++)
      expect_close (r.running[i], f[prefix + stat_names[i]].values, 2e-5,
                    what + " " + stat_names[i]);

    /* Evaluation with the running statistics the training step left. */
    RefResBlockRunning updated;
    RefArray *targets[6] = { &updated.bn1_mean, &updated.bn1_var,       &updated.bn2_mean,
                             &updated.bn2_var,  &updated.shortcut_mean, &updated.shortcut_var };
    for (int i = 0; i < 6; i++)
      targets[i]->assign (r.running[i].begin (), r.running[i].end ());
    BlockRun eval = run_block (nullptr, s, f[prefix + "input"].as_float (), params, updated,
                               f[prefix + "doutput"].as_float (), false);
    expect_close (eval.output, f[prefix + "eval/output"].values, 2e-5, what + " eval output");
  }
}

TEST (ResBlock, IndependentOfThreadCountAndAccumulates)
{
  std::mt19937_64 rng (53);
  for (AclipResBlockShape s :
       { AclipResBlockShape{ 4, 16, 16, 16, 16, 1 }, AclipResBlockShape{ 4, 16, 32, 16, 16, 2 } }) {
    RefResBlockParams p = random_block (rng, s);
    std::vector<float> input =
        to_float (random_array (rng, (size_t) s.batch * s.in_channels * s.in_height * s.in_width));
    std::vector<float> doutput = to_float (random_array (rng, block_output_size (s)));
    RefResBlockRunning running = initial_running (s);
    BlockRun serial = run_block (nullptr, s, input, to_float (p), running, doutput, true);
    for (int threads : { 1, 2 }) {
      g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (threads);
      BlockRun parallel = run_block (pool, s, input, to_float (p), running, doutput, true);
      std::string what = describe (s) + " with " + std::to_string (threads) + " threads";
      expect_identical (parallel.output, serial.output, what + " output");
      expect_identical (parallel.dinput, serial.dinput, what + " dinput");
      auto a = parallel.grads.named (), b = serial.grads.named ();
      for (size_t i = 0; i < a.size (); i++)
        expect_identical (*a[i].second, *b[i].second, what + " " + a[i].first);
      for (int i = 0; i < 6; i++)
        expect_identical (parallel.running[i], serial.running[i], what + " running");
    }
    BlockRun twice = run_block (nullptr, s, input, to_float (p), running, doutput, true, 2);
    expect_doubled (twice.dinput, serial.dinput, describe (s) + " dinput");
    auto a = twice.grads.named (), b = serial.grads.named ();
    for (size_t i = 0; i < a.size (); i++)
      expect_doubled (*a[i].second, *b[i].second, describe (s) + " " + a[i].first);
  }
}

} // namespace
