#include "aclip-split.h"

#include <string.h>

/* splitmix64's finaliser: a bijection of 64-bit integers that mixes every input bit into every
 * output bit, so consecutive IDs land in unrelated splits. */
static guint64
mix64 (guint64 x)
{
  x += G_GUINT64_CONSTANT (0x9E3779B97F4A7C15);
  x = (x ^ (x >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  x = (x ^ (x >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return x ^ (x >> 31);
}

AclipSplit
aclip_split_of_id (gint64 id)
{
  guint64 bucket = mix64 ((guint64) id) % 100;
  if (bucket < 80)
    return ACLIP_SPLIT_TRAIN;
  return bucket < 90 ? ACLIP_SPLIT_VALIDATION : ACLIP_SPLIT_TEST;
}

static const char *const split_names[] = { "train", "validation", "test" };

const char *
aclip_split_name (AclipSplit split)
{
  return (guint) split < G_N_ELEMENTS (split_names) ? split_names[split] : "unknown";
}

gboolean
aclip_split_from_name (const char *name, AclipSplit *split)
{
  for (guint i = 0; i < G_N_ELEMENTS (split_names); i++)
    if (name && strcmp (name, split_names[i]) == 0) {
      *split = (AclipSplit) i;
      return TRUE;
    }
  return FALSE;
}
