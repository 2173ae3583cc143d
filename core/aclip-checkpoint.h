/* aclip-checkpoint.h — model checkpoints (byte layout in docs/checkpoint.md).
 *
 * One self-describing, versioned file: a text section (the model's configuration and the
 * trainer's state as a GKeyFile, written and parsed by the caller), a directory of every
 * tensor by name with its shape, the parameter values, optionally the AdamW state and step
 * count, and a 64-bit checksum of everything before it.
 *
 * Saving writes `<path>.tmp-XXXXXX` next to the destination, fsyncs it and renames it over
 * the destination, so a crash or kill during the write leaves the previous checkpoint intact
 * (and, at worst, a stale temporary file). Opening memory-maps the file and validates it in
 * full — magic, version, size, checksum, then the structure — before anything is used; each
 * problem is a GError naming the file.
 */
#pragma once

#include "aclip-params.h"

#include <glib.h>

G_BEGIN_DECLS

#define ACLIP_CHECKPOINT_VERSION 1

/* Called during a save with the fraction written so far; returning FALSE cancels the save
 * (the temporary file is removed, the destination is untouched, ACLIP_ERROR_CANCELLED). */
typedef gboolean (*AclipCheckpointProgressFunc) (double fraction, gpointer user_data);

/* Saves `params` (sealed) with `text` (UTF-8; NULL for none) to `path`. training_state: also
 * save the AdamW moments and the step count (the table must be sealed for training). */
gboolean aclip_checkpoint_save (const char *path, const char *text, AclipParams *params,
                                gboolean training_state, AclipCheckpointProgressFunc progress,
                                gpointer user_data, GError **error);

typedef struct _AclipCheckpoint AclipCheckpoint;

/* Maps and validates the file. */
AclipCheckpoint *aclip_checkpoint_open (const char *path, GError **error);
void aclip_checkpoint_free (AclipCheckpoint *checkpoint);

const char *aclip_checkpoint_get_path (const AclipCheckpoint *checkpoint);
/* The text section, NUL-terminated ("" when there is none). */
const char *aclip_checkpoint_get_text (const AclipCheckpoint *checkpoint);
gboolean aclip_checkpoint_has_training_state (const AclipCheckpoint *checkpoint);
gint64 aclip_checkpoint_get_step (const AclipCheckpoint *checkpoint);

int aclip_checkpoint_n_tensors (const AclipCheckpoint *checkpoint);
/* Tensor `index` of the directory: its name, dimensions and shape [n_dims], and its values
 * [n_elements], read from the mapping (valid while the checkpoint is open). */
const char *aclip_checkpoint_tensor_name (const AclipCheckpoint *checkpoint, int index);
const gint64 *aclip_checkpoint_tensor_shape (const AclipCheckpoint *checkpoint, int index,
                                             int *n_dims);
const float *aclip_checkpoint_tensor_values (const AclipCheckpoint *checkpoint, int index);
/* Index of the tensor called `name`, or −1. */
int aclip_checkpoint_lookup (const AclipCheckpoint *checkpoint, const char *name);

/* Copies every tensor into the table (sealed) by name. The file and the table must hold the
 * same names with the same shapes: a tensor missing from the file, a tensor the model does
 * not have or a different shape is an error, and then the table is left unchanged.
 * training_state TRUE: also restore the AdamW moments and the step count (the file must have
 * them and the table must be sealed for training), to resume training; FALSE: values only,
 * and a training table's AdamW state and step are reset (fine-tuning from saved weights). */
gboolean aclip_checkpoint_restore (const AclipCheckpoint *checkpoint, AclipParams *params,
                                   gboolean training_state, GError **error);

/* The checksum used by the format ("ACLIP-H64", docs/checkpoint.md), exposed for tests and
 * tools: a 64-bit hash of data [length]. */
guint64 aclip_checkpoint_hash (const void *data, gsize length);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipCheckpoint, aclip_checkpoint_free)

G_END_DECLS
