/* aclip-nn-private.h — vector helpers shared by the dense and attention kernels; not installed.
 *
 * The build compiles with -O2 and no -march flag, and GCC's -O2 cost model does not vectorise
 * loops whose trip count is unknown. The hot loops therefore work on GCC vector-extension
 * values (`AclipVec`, four floats on the x86-64 baseline, eight when AVX is enabled): portable
 * C that GCC maps to SSE2 or AVX instructions. The loops dominated by exp and erfc (GELU,
 * softmax) are compiled a second time with AVX2 and FMA (aclip-nn-vector.inc, 3–5× faster on
 * this machine) and the variant is picked at run time. Every lane is computed independently
 * with the same operations, so a value does not depend on where a parallel chunk starts or
 * whether it falls in a loop's tail: results are bit-identical for any thread count (the two
 * variants differ by roundings, FMA contracting some products).
 *
 * Transcendentals are our own, accurate to float precision (measured in tests/test-nn-dense.cc):
 *  - aclip_vec_exp: Cody–Waite reduction by ln 2 and a degree-6 polynomial fitted for minimum
 *    relative error on [−ln2/2, ln2/2] (fit error 1.9e−9; about 1 ulp overall). Arguments
 *    below −86.5 give exactly 0 (e^−86.5 ≈ 3e−38: flushing keeps the exponent arithmetic in
 *    the normal range); arguments above 88 are clamped to 88.
 *  - aclip_vec_erfc_nonneg: erfc(z) = t·exp(−z² + P(t − 7/12)), t = 1/(1 + z/2), z ≥ 0, with
 *    P a degree-9 polynomial fitted (by us, iteratively reweighted least squares against
 *    mpmath) on z ∈ [0, 10], fit error 4.5e−8 relative. z² is carried in two floats so that
 *    the exponent does not lose precision in the tail.
 */
#pragma once

#include <glib.h>
#include <string.h>

#include "aclip-nn.h"

G_BEGIN_DECLS

/* GCC on x86-64 compiles the AVX2 variant (aclip-nn-vector-avx2.c; Clang lacks the target
 * pragma it uses). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define ACLIP_NN_HAVE_AVX2_VARIANT 1
#endif

/* Eight floats when the compiler targets AVX, otherwise four (one SSE register): a vector type
 * wider than the target's registers would be passed differently between functions, which GCC
 * reports (-Wpsabi) even for inline helpers. */
#if defined(__AVX__)
#define ACLIP_VEC_WIDTH 8
#else
#define ACLIP_VEC_WIDTH 4
#endif

typedef float AclipVec __attribute__ ((vector_size (ACLIP_VEC_WIDTH * sizeof (float))));
typedef gint32 AclipVecInt __attribute__ ((vector_size (ACLIP_VEC_WIDTH * sizeof (gint32))));
typedef guint8 AclipVecByte __attribute__ ((vector_size (ACLIP_VEC_WIDTH)));
typedef guint32 AclipVecUint __attribute__ ((vector_size (ACLIP_VEC_WIDTH * sizeof (guint32))));

#define ACLIP_INLINE static inline __attribute__ ((always_inline))

ACLIP_INLINE AclipVec
aclip_vec_load (const float *source)
{
  AclipVec value;
  memcpy (&value, source, sizeof value);
  return value;
}

ACLIP_INLINE void
aclip_vec_store (float *destination, AclipVec value)
{
  memcpy (destination, &value, sizeof value);
}

ACLIP_INLINE AclipVec
aclip_vec_splat (float value)
{
  AclipVec zero = { 0 };
  return zero + value;
}

/* The first `count` (< ACLIP_VEC_WIDTH) floats of `source`, the other lanes set to `fill`: lets a
 * loop's tail go through the same vector code as its body. */
ACLIP_INLINE AclipVec
aclip_vec_load_partial (const float *source, gsize count, float fill)
{
  float lanes[ACLIP_VEC_WIDTH];
  for (int i = 0; i < ACLIP_VEC_WIDTH; i++)
    lanes[i] = fill;
  memcpy (lanes, source, count * sizeof (float));
  return aclip_vec_load (lanes);
}

ACLIP_INLINE void
aclip_vec_store_partial (float *destination, AclipVec value, gsize count)
{
  float lanes[ACLIP_VEC_WIDTH];
  aclip_vec_store (lanes, value);
  memcpy (destination, lanes, count * sizeof (float));
}

/* Lane-wise `mask ? when_true : when_false`; mask lanes are all ones or all zeros, as vector
 * comparisons produce. */
ACLIP_INLINE AclipVec
aclip_vec_select (AclipVecInt mask, AclipVec when_true, AclipVec when_false)
{
  return (AclipVec) (((AclipVecInt) when_true & mask) | ((AclipVecInt) when_false & ~mask));
}

/* max(a, b) and min(a, b); where a is NaN the result is a, so clamping a NaN keeps it NaN. */
ACLIP_INLINE AclipVec
aclip_vec_max (AclipVec a, AclipVec b)
{
  return aclip_vec_select (b > a, b, a);
}

ACLIP_INLINE AclipVec
aclip_vec_min (AclipVec a, AclipVec b)
{
  return aclip_vec_select (b < a, b, a);
}

ACLIP_INLINE AclipVec
aclip_vec_abs (AclipVec a)
{
  return (AclipVec) ((AclipVecInt) a & 0x7fffffff);
}

/* Sum of the lanes, pairwise in a fixed order. */
ACLIP_INLINE float
aclip_vec_sum (AclipVec a)
{
#if ACLIP_VEC_WIDTH == 8
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
#else
  return (a[0] + a[2]) + (a[1] + a[3]);
#endif
}

ACLIP_INLINE float
aclip_vec_hmax (AclipVec a)
{
  float best = a[0];
  for (int i = 1; i < ACLIP_VEC_WIDTH; i++)
    best = a[i] > best ? a[i] : best;
  return best;
}

/* exp(high + low) for |low| ≲ 2, with high's rounding-free part kept exact: the reduced
 * argument (high − k·ln2) + low is formed without rounding `high`, so an argument carried in
 * two floats (high large, low small) keeps its precision. */
ACLIP_INLINE AclipVec
aclip_vec_exp_split (AclipVec high, AclipVec low)
{
  const float log2e = 1.44269504088896341f;
  /* ln 2 split so that k·ln2_high is exact for |k| < 2^9. */
  const float ln2_high = 0.693145751953125f;
  const float ln2_low = 1.42860682030941723212e-6f;
  const float round_magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */

  AclipVec x = high + low;
  AclipVecInt underflow = x < -86.5f;
  x = aclip_vec_min (x, aclip_vec_splat (88.0f));
  x = aclip_vec_max (x, aclip_vec_splat (-86.5f));
  AclipVec k = (x * log2e + round_magic) - round_magic;
  /* Where x was clamped, high + low is replaced by x itself. */
  AclipVecInt clamped = (x != high + low);
  high = aclip_vec_select (clamped, x, high);
  low = aclip_vec_select (clamped, aclip_vec_splat (0.0f), low);
  AclipVec r = ((high - k * ln2_high) - k * ln2_low) + low;
  AclipVec p = aclip_vec_splat (0.0013836841949695748f);
  p = p * r + 0.008374815782069014f;
  p = p * r + 0.04166822564177702f;
  p = p * r + 0.1666642017018346f;
  p = p * r + 0.4999999207949542f;
  p = p * r + 1.0000000363231f;
  p = p * r + 1.0f;
  /* 2^k by adding k to the exponent field (shifted as unsigned: k may be negative). */
  AclipVecUint k_bits = (AclipVecUint) __builtin_convertvector(k, AclipVecInt);
  AclipVecInt exponent = (AclipVecInt) (k_bits << 23);
  AclipVec result = (AclipVec) ((AclipVecInt) p + exponent);
  return aclip_vec_select (underflow, aclip_vec_splat (0.0f), result);
}

ACLIP_INLINE AclipVec
aclip_vec_exp (AclipVec x)
{
  return aclip_vec_exp_split (x, aclip_vec_splat (0.0f));
}

/* x²/2 as high + low with high exact: x is split into its upper 12 significant bits and the
 * rest, whose products are exact in float. Lets exp(−x²/2) keep float precision for large
 * |x| (a single rounded x²/2 ≈ 50 would carry an absolute error of 2e−6 into the exponent). */
ACLIP_INLINE void
aclip_vec_half_square (AclipVec x, AclipVec *high, AclipVec *low)
{
  AclipVec x_high = (AclipVec) ((AclipVecInt) x & ~(gint32) 0xfff);
  AclipVec x_low = x - x_high;
  *high = 0.5f * x_high * x_high;
  *low = x_high * x_low + 0.5f * x_low * x_low;
}

/* erfc(z) for z ≥ 0, given z² = z2_high + z2_low (aclip_vec_half_square of z·√2); exactly 0
 * once z² > 86.5 (z > 9.3, erfc < 1e−38). */
ACLIP_INLINE AclipVec
aclip_vec_erfc_nonneg (AclipVec z, AclipVec z2_high, AclipVec z2_low)
{
  AclipVec t = 1.0f / (1.0f + 0.5f * z);
  AclipVec s = t - 0.58333333333f;
  AclipVec p = aclip_vec_splat (0.14219442009925842f);
  p = p * s + 0.08045674115419388f;
  p = p * s - 0.2440139353275299f;
  p = p * s - 0.04332061856985092f;
  p = p * s + 0.29507872462272644f;
  p = p * s - 0.0352664478123188f;
  p = p * s - 0.4073916971683502f;
  p = p * s + 0.09070397168397903f;
  p = p * s + 1.368736982345581f;
  p = p * s - 0.5585954189300537f;
  return t * aclip_vec_exp_split (-z2_high, p - z2_low);
}

/* Σ a[j]·b[j] in vector lanes, then a fixed-order lane sum. */
ACLIP_INLINE float
aclip_vec_row_dot (const float *a, const float *b, int length)
{
  AclipVec acc = aclip_vec_splat (0.0f);
  int j = 0;
  for (; j + ACLIP_VEC_WIDTH <= length; j += ACLIP_VEC_WIDTH)
    acc += aclip_vec_load (a + j) * aclip_vec_load (b + j);
  if (j < length)
    acc += aclip_vec_load_partial (a + j, (gsize) (length - j), 0.0f) *
           aclip_vec_load_partial (b + j, (gsize) (length - j), 0.0f);
  return aclip_vec_sum (acc);
}

/* The loops whose speed depends on the instruction set (aclip-nn-vector.inc), in a baseline
 * and an AVX2+FMA variant. */
typedef struct
{
  /* out[i] = GELU(in[i]) for i in [begin, end). */
  void (*gelu_forward) (float *out, const float *in, gint64 begin, gint64 end, AclipGeluForm form);
  /* d_in[i] += d_out[i]·GELU′(in[i]) for i in [begin, end). */
  void (*gelu_backward) (float *d_in, const float *d_out, const float *in, gint64 begin, gint64 end,
                         AclipGeluForm form);
  /* One row: out[j] = exp(in[j] − max) / Σ over the keys not masked (key_mask[j] ≠ 0 marks a
   * masked key; NULL: none). Masked entries get exactly 0; a row whose keys are all masked
   * becomes all zeros; a NaN score makes the row NaN. `in` may equal `out`. */
  void (*softmax_row) (float *out, const float *in, const guint8 *key_mask, int length);
  /* One row, written (not accumulated): d_scores[j] = scale·probs[j]·(d_probs[j] −
   * Σ_k probs[k]·d_probs[k]). d_scores may equal d_probs. */
  void (*softmax_backward_row) (float *d_scores, const float *d_probs, const float *probs,
                                float scale, int length);
} AclipNnVectorKernels;

G_GNUC_INTERNAL extern const AclipNnVectorKernels aclip_nn_vector_kernels_baseline;
#if defined(ACLIP_NN_HAVE_AVX2_VARIANT)
G_GNUC_INTERNAL extern const AclipNnVectorKernels aclip_nn_vector_kernels_avx2;
#endif

/* The variant for this CPU (AVX2 and FMA when present, unless aclip_nn_use_baseline_code). */
G_GNUC_INTERNAL const AclipNnVectorKernels *aclip_nn_vector_kernels (void);

G_END_DECLS
