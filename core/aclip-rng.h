/* aclip-rng.h — reproducible random numbers for the simulator.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64 from (seed, index, stream): every
 * galaxy and every purpose within it (its properties, its spectrum noise, its image noise) has
 * its own generator, so a catalogue does not depend on how its rows are shared among threads,
 * and adding a draw to one purpose does not shift the numbers of another.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  guint64 state[4];
} AclipRng;

/* Seeds `rng` for (seed, index, stream); equal triples give equal sequences. */
void aclip_rng_init (AclipRng *rng, guint64 seed, guint64 index, guint64 stream);
guint64 aclip_rng_next (AclipRng *rng);
/* Uniform on [0, 1), 53 random bits. */
double aclip_rng_uniform (AclipRng *rng);
/* Uniform on [low, high). */
double aclip_rng_uniform_range (AclipRng *rng, double low, double high);
/* Uniform integer on [0, n); n > 0. */
guint64 aclip_rng_below (AclipRng *rng, guint64 n);
/* Standard normal (ziggurat method). */
double aclip_rng_normal (AclipRng *rng);
/* n standard normal values into out[n]. */
void aclip_rng_fill_normal (AclipRng *rng, gsize n, float *out);

G_END_DECLS
