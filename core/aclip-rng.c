#include "aclip-rng.h"

#include <math.h>

static guint64
splitmix64 (guint64 *x)
{
  guint64 z = (*x += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static inline guint64
rotate_left (guint64 x, int k)
{
  return (x << k) | (x >> (64 - k));
}

void
aclip_rng_init (AclipRng *rng, guint64 seed, guint64 index, guint64 stream)
{
  /* Each input goes through a full splitmix round before the next is mixed in, so nearby
   * (seed, index, stream) triples give unrelated states. */
  guint64 x = seed;
  guint64 h = splitmix64 (&x);
  x = h ^ index;
  h = splitmix64 (&x);
  x = h ^ (stream * G_GUINT64_CONSTANT (0xd6e8feb86659fd93));
  for (int i = 0; i < 4; i++)
    rng->state[i] = splitmix64 (&x);
}

guint64
aclip_rng_next (AclipRng *rng)
{
  guint64 *s = rng->state;
  guint64 result = rotate_left (s[1] * 5, 7) * 9;
  guint64 t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotate_left (s[3], 45);
  return result;
}

double
aclip_rng_uniform (AclipRng *rng)
{
  return (double) (aclip_rng_next (rng) >> 11) * 0x1.0p-53;
}

double
aclip_rng_uniform_range (AclipRng *rng, double low, double high)
{
  return low + (high - low) * aclip_rng_uniform (rng);
}

guint64
aclip_rng_below (AclipRng *rng, guint64 n)
{
  g_return_val_if_fail (n > 0, 0);
  /* Rejection removes the modulo bias. */
  guint64 limit = G_MAXUINT64 - G_MAXUINT64 % n;
  guint64 value;
  do
    value = aclip_rng_next (rng);
  while (value >= limit);
  return value % n;
}

/* Normal deviates by the ziggurat method (Marsaglia & Tsang, J. Stat. Softw. 5(8), 2000):
 * the half-density f(x) = exp(−x²/2) is covered by ZIGGURAT_LAYERS horizontal layers of equal
 * area: layer 0 is the base, from height 0 to f(r), whose rectangle of width v/f(r) carries
 * the tail beyond r; layer i > 0 spans heights f(edge[i]) to f(edge[i+1]) with width edge[i].
 * A point uniform in a random layer lies under the curve for sure when |x| < edge[i+1]
 * (≈ 99% of draws: one random number, a multiply and a compare); otherwise the wedge or the
 * tail is sampled exactly. */
#define ZIGGURAT_LAYERS 128
#define ZIGGURAT_R      3.442619855899      /* where the tail starts */
#define ZIGGURAT_AREA   9.91256303526217e-3 /* of each layer */

static double ziggurat_edge[ZIGGURAT_LAYERS + 1];
static double ziggurat_height[ZIGGURAT_LAYERS + 1]; /* f(edge[i]) */

static void
ziggurat_init (void)
{
  double r = ZIGGURAT_R;
  double fr = exp (-0.5 * r * r);
  ziggurat_edge[0] = ZIGGURAT_AREA / fr;
  ziggurat_edge[1] = r;
  ziggurat_height[0] = 0.0; /* the base layer starts at height 0 */
  ziggurat_height[1] = fr;
  for (int i = 1; i < ZIGGURAT_LAYERS - 1; i++) {
    double next_height = ziggurat_height[i] + ZIGGURAT_AREA / ziggurat_edge[i];
    ziggurat_height[i + 1] = next_height;
    ziggurat_edge[i + 1] = sqrt (-2.0 * log (next_height));
  }
  ziggurat_edge[ZIGGURAT_LAYERS] = 0.0;
  ziggurat_height[ZIGGURAT_LAYERS] = 1.0;
}

static double
ziggurat_normal (AclipRng *rng)
{
  static gsize initialised = 0;
  if (g_once_init_enter (&initialised)) {
    ziggurat_init ();
    g_once_init_leave (&initialised, 1);
  }
  for (;;) {
    guint64 bits = aclip_rng_next (rng);
    int layer = (int) (bits & (ZIGGURAT_LAYERS - 1));
    /* u uniform in (−1, 1) from the top 53 bits. */
    double u = ((double) (bits >> 11) + 0.5) * 0x1.0p-52 - 1.0;
    double x = u * ziggurat_edge[layer];
    if (fabs (x) < ziggurat_edge[layer + 1])
      return x;
    if (layer == 0) {
      /* The tail beyond r (Marsaglia 1964). */
      double a, b;
      do {
        a = -log (((double) (aclip_rng_next (rng) >> 11) + 0.5) * 0x1.0p-53) / ZIGGURAT_R;
        b = -log (((double) (aclip_rng_next (rng) >> 11) + 0.5) * 0x1.0p-53);
      } while (2.0 * b < a * a);
      return u < 0 ? -(ZIGGURAT_R + a) : ZIGGURAT_R + a;
    }
    /* The wedge between the layer's inner and outer edges. */
    double y = ziggurat_height[layer] +
               aclip_rng_uniform (rng) * (ziggurat_height[layer + 1] - ziggurat_height[layer]);
    if (y < exp (-0.5 * x * x))
      return x;
  }
}

double
aclip_rng_normal (AclipRng *rng)
{
  return ziggurat_normal (rng);
}

void
aclip_rng_fill_normal (AclipRng *rng, gsize n, float *out)
{
  for (gsize i = 0; i < n; i++)
    out[i] = (float) ziggurat_normal (rng);
}
