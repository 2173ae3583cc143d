/* aclip-split.h — the train / validation / test split, by a hash of the galaxy ID.
 *
 * The rule (docs/trainer.md): h = splitmix64 (ID as unsigned 64-bit); h mod 100 < 80 is
 * training, 80–89 validation, 90–99 test. It depends on the ID alone, so a galaxy keeps its
 * split across catalogues, subsets and runs, and test galaxies are never trained on.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  ACLIP_SPLIT_TRAIN,
  ACLIP_SPLIT_VALIDATION,
  ACLIP_SPLIT_TEST,
} AclipSplit;

AclipSplit aclip_split_of_id (gint64 id);
const char *aclip_split_name (AclipSplit split); /* "train", "validation", "test" */
/* Parses a split name; FALSE for anything else. */
gboolean aclip_split_from_name (const char *name, AclipSplit *split);

G_END_DECLS
