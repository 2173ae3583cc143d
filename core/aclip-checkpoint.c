/* aclip-checkpoint.c — writing, mapping and restoring checkpoints (aclip-checkpoint.h; the
 * byte layout is in docs/checkpoint.md, and the constants below follow it). */
#include "aclip-checkpoint.h"

#include "aclip-error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define MAGIC         "ACLIPCKP"
#define HEADER_SIZE   128
#define ENTRY_FIXED   56 /* bytes of a directory entry before its shape and name */
#define DTYPE_FLOAT32 1
#define FLAG_TRAINING 1u /* header flags: AdamW moments present */
#define ENTRY_DECAY   1u /* entry flags: weight decay applies */
#define CHECKSUM_SIZE 8
#define WRITE_PIECE   (16u << 20) /* bytes hashed and written between progress calls */

/* Header field offsets. */
enum
{
  H_MAGIC = 0,
  H_VERSION = 8,
  H_FLAGS = 12,
  H_FILE_SIZE = 16,
  H_TEXT_OFFSET = 24,
  H_TEXT_LENGTH = 32,
  H_DIRECTORY_OFFSET = 40,
  H_DIRECTORY_LENGTH = 48,
  H_N_TENSORS = 56,
  H_STEP = 64,
  H_DATA_OFFSET = 72,
};

/* Directory entry field offsets. */
enum
{
  E_LENGTH = 0,
  E_NAME_LENGTH = 4,
  E_DTYPE = 8,
  E_N_DIMS = 12,
  E_FLAGS = 16,
  E_N_ELEMENTS = 24,
  E_VALUE_OFFSET = 32,
  E_M_OFFSET = 40,
  E_V_OFFSET = 48,
  E_SHAPE = ENTRY_FIXED,
};

#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "checkpoints store little-endian floats that are used in place; port the reader first"
#endif

static guint64
round_up (guint64 n, guint64 multiple)
{
  return (n + multiple - 1) / multiple * multiple;
}

/* ACLIP-H64 ------------------------------------------------------------------------------
 * Four independent 64-bit lanes take one 8-byte word each per 32-byte stripe through
 * lane ← rotl (lane + word·K2, 31)·K1; a bijection of the lane for a given word, so a change
 * of any word changes its lane. The lanes are then folded together with the length and the
 * tail, and the result goes through a final avalanche. Meant to catch corruption (truncation,
 * flipped bits, torn writes), not deliberate tampering. */

#define K1 G_GUINT64_CONSTANT (0x9e3779b97f4a7c15)
#define K2 G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9)
#define K3 G_GUINT64_CONSTANT (0x94d049bb133111eb)
#define K4 G_GUINT64_CONSTANT (0xd6e8feb86659fd93)

typedef struct
{
  guint64 lane[4];
  guint8 pending[32];
  gsize n_pending;
  guint64 length;
} Hasher;

static inline guint64
rotl (guint64 x, int r)
{
  return (x << r) | (x >> (64 - r));
}

static inline guint64
lane_round (guint64 lane, guint64 word)
{
  return rotl (lane + word * K2, 31) * K1;
}

static inline guint64
load64 (const guint8 *p)
{
  guint64 word;
  memcpy (&word, p, 8);
  return GUINT64_FROM_LE (word);
}

static void
hasher_init (Hasher *h)
{
  h->lane[0] = K1 + K2;
  h->lane[1] = K2;
  h->lane[2] = K3;
  h->lane[3] = K4;
  h->n_pending = 0;
  h->length = 0;
}

static void
hash_stripes (Hasher *h, const guint8 *p, gsize n_stripes)
{
  guint64 l0 = h->lane[0], l1 = h->lane[1], l2 = h->lane[2], l3 = h->lane[3];
  for (gsize s = 0; s < n_stripes; s++, p += 32) {
    l0 = lane_round (l0, load64 (p));
    l1 = lane_round (l1, load64 (p + 8));
    l2 = lane_round (l2, load64 (p + 16));
    l3 = lane_round (l3, load64 (p + 24));
  }
  h->lane[0] = l0;
  h->lane[1] = l1;
  h->lane[2] = l2;
  h->lane[3] = l3;
}

static void
hasher_update (Hasher *h, const void *data, gsize length)
{
  const guint8 *p = data;
  h->length += length;
  if (h->n_pending > 0) {
    gsize take = MIN (length, 32 - h->n_pending);
    memcpy (h->pending + h->n_pending, p, take);
    h->n_pending += take;
    p += take;
    length -= take;
    if (h->n_pending < 32)
      return;
    hash_stripes (h, h->pending, 1);
    h->n_pending = 0;
  }
  hash_stripes (h, p, length / 32);
  p += length / 32 * 32;
  length %= 32;
  memcpy (h->pending, p, length);
  h->n_pending = length;
}

static guint64
hasher_finish (const Hasher *h)
{
  guint64 x =
      rotl (h->lane[0], 1) + rotl (h->lane[1], 7) + rotl (h->lane[2], 12) + rotl (h->lane[3], 18);
  for (int j = 0; j < 4; j++)
    x = (x ^ lane_round (0, h->lane[j])) * K1 + K4;
  x += h->length;
  gsize i = 0;
  for (; i + 8 <= h->n_pending; i += 8)
    x = rotl (x ^ lane_round (0, load64 (h->pending + i)), 27) * K1 + K4;
  for (; i < h->n_pending; i++)
    x = rotl (x ^ (h->pending[i] * K3), 11) * K1;
  x ^= x >> 33;
  x *= K2;
  x ^= x >> 29;
  x *= K3;
  x ^= x >> 32;
  return x;
}

guint64
aclip_checkpoint_hash (const void *data, gsize length)
{
  Hasher h;
  hasher_init (&h);
  hasher_update (&h, data, length);
  return hasher_finish (&h);
}

/* Errors ---------------------------------------------------------------------------------- */

static gboolean fail (GError **error, int code, const char *path, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

/* Sets "<path>: <problem>" and returns FALSE. */
static gboolean
fail (GError **error, int code, const char *path, const char *format, ...)
{
  va_list arguments;
  va_start (arguments, format);
  g_autofree char *problem = g_strdup_vprintf (format, arguments);
  va_end (arguments);
  g_set_error (error, ACLIP_ERROR, code, "%s: %s", path, problem);
  return FALSE;
}

/* Writing -------------------------------------------------------------------------------- */

static void
put_u32 (GByteArray *bytes, gsize at, guint32 value)
{
  value = GUINT32_TO_LE (value);
  memcpy (bytes->data + at, &value, 4);
}

static void
put_u64 (GByteArray *bytes, gsize at, guint64 value)
{
  value = GUINT64_TO_LE (value);
  memcpy (bytes->data + at, &value, 8);
}

typedef struct
{
  int fd;
  const char *path; /* the destination, for messages */
  Hasher hasher;
  guint64 written, total;
  AclipCheckpointProgressFunc progress;
  gpointer user_data;
} Writer;

static gboolean
write_all (Writer *writer, const guint8 *p, gsize length, GError **error)
{
  while (length > 0) {
    ssize_t done = write (writer->fd, p, MIN (length, (gsize) G_MAXSSIZE));
    if (done < 0 && errno == EINTR)
      continue;
    if (done <= 0) {
      int saved = done < 0 ? errno : ENOSPC;
      return fail (error, ACLIP_ERROR_IO, writer->path, _("cannot write the checkpoint: %s"),
                   g_strerror (saved));
    }
    p += done;
    length -= (gsize) done;
  }
  return TRUE;
}

/* Hashes and writes `length` bytes in pieces, reporting progress after each piece. */
static gboolean
writer_put (Writer *writer, const void *data, gsize length, GError **error)
{
  const guint8 *p = data;
  do {
    gsize piece = MIN (length, WRITE_PIECE);
    hasher_update (&writer->hasher, p, piece);
    if (!write_all (writer, p, piece, error))
      return FALSE;
    p += piece;
    length -= piece;
    writer->written += piece;
    if (writer->progress &&
        !writer->progress ((double) writer->written / (double) writer->total, writer->user_data))
      return fail (error, ACLIP_ERROR_CANCELLED, writer->path,
                   _("saving the checkpoint was cancelled"));
  } while (length > 0);
  return TRUE;
}

/* Header, text and directory, padded to the start of the data; fills *file_size. */
static GByteArray *
build_front (const char *text, AclipParams *params, gboolean training_state, guint64 *file_size)
{
  const int n_tensors = aclip_params_n_tensors (params);
  const guint64 text_length = text ? strlen (text) : 0;
  const guint64 directory_offset = round_up (HEADER_SIZE + text_length, 8);
  guint64 directory_length = 0;
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    directory_length +=
        ENTRY_FIXED + 8 * (guint64) info->n_dims + round_up (strlen (info->name), 8);
  }
  const guint64 data_offset = round_up (directory_offset + directory_length, 64);
  const guint64 block_bytes = (guint64) aclip_params_n_floats (params) * sizeof (float);
  const guint64 data_end = data_offset + block_bytes * (training_state ? 3 : 1);
  *file_size = data_end + CHECKSUM_SIZE;

  GByteArray *front = g_byte_array_sized_new ((guint) data_offset);
  g_byte_array_set_size (front, (guint) data_offset);
  memset (front->data, 0, data_offset);
  memcpy (front->data + H_MAGIC, MAGIC, 8);
  put_u32 (front, H_VERSION, ACLIP_CHECKPOINT_VERSION);
  put_u32 (front, H_FLAGS, training_state ? FLAG_TRAINING : 0);
  put_u64 (front, H_FILE_SIZE, *file_size);
  put_u64 (front, H_TEXT_OFFSET, HEADER_SIZE);
  put_u64 (front, H_TEXT_LENGTH, text_length);
  put_u64 (front, H_DIRECTORY_OFFSET, directory_offset);
  put_u64 (front, H_DIRECTORY_LENGTH, directory_length);
  put_u32 (front, H_N_TENSORS, (guint32) n_tensors);
  put_u64 (front, H_STEP, (guint64) aclip_params_get_step (params));
  put_u64 (front, H_DATA_OFFSET, data_offset);
  if (text_length)
    memcpy (front->data + HEADER_SIZE, text, text_length);

  guint64 at = directory_offset;
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    const guint64 name_length = strlen (info->name);
    const guint64 entry_length =
        ENTRY_FIXED + 8 * (guint64) info->n_dims + round_up (name_length, 8);
    const guint64 value_offset = data_offset + (guint64) info->offset * sizeof (float);
    put_u32 (front, at + E_LENGTH, (guint32) entry_length);
    put_u32 (front, at + E_NAME_LENGTH, (guint32) name_length);
    put_u32 (front, at + E_DTYPE, DTYPE_FLOAT32);
    put_u32 (front, at + E_N_DIMS, (guint32) info->n_dims);
    put_u32 (front, at + E_FLAGS, (info->flags & ACLIP_PARAM_DECAY) ? ENTRY_DECAY : 0);
    put_u64 (front, at + E_N_ELEMENTS, (guint64) info->n_elements);
    put_u64 (front, at + E_VALUE_OFFSET, value_offset);
    put_u64 (front, at + E_M_OFFSET, training_state ? value_offset + block_bytes : 0);
    put_u64 (front, at + E_V_OFFSET, training_state ? value_offset + 2 * block_bytes : 0);
    for (int d = 0; d < info->n_dims; d++)
      put_u64 (front, at + E_SHAPE + 8 * d, (guint64) info->shape[d]);
    memcpy (front->data + at + E_SHAPE + 8 * info->n_dims, info->name, name_length);
    at += entry_length;
  }
  return front;
}

/* Makes the rename itself durable; a failure here is not reported (the file is in place). */
static void
sync_parent_folder (const char *path)
{
  g_autofree char *folder = g_path_get_dirname (path);
  int fd = open (folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync (fd);
    close (fd);
  }
}

gboolean
aclip_checkpoint_save (const char *path, const char *text, AclipParams *params,
                       gboolean training_state, AclipCheckpointProgressFunc progress,
                       gpointer user_data, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!aclip_params_is_sealed (params))
    return fail (error, ACLIP_ERROR_INVALID_ARG, path,
                 _("cannot save a parameter table that is not sealed"));
  if (training_state && !aclip_params_is_training (params))
    return fail (error, ACLIP_ERROR_INVALID_ARG, path,
                 _("cannot save training state: the parameters were not set up for training"));
  if (text && !g_utf8_validate (text, -1, NULL))
    return fail (error, ACLIP_ERROR_INVALID_ARG, path,
                 _("the configuration text is not valid UTF-8"));

  guint64 file_size = 0;
  g_autoptr (GByteArray) front = build_front (text, params, training_state, &file_size);

  g_autofree char *temporary = g_strdup_printf ("%s.tmp-XXXXXX", path);
  int fd = g_mkstemp_full (temporary, O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0)
    return fail (error, ACLIP_ERROR_IO, path, _("cannot create a temporary file: %s"),
                 g_strerror (errno));

  Writer writer = {
    .fd = fd, .path = path, .total = file_size, .progress = progress, .user_data = user_data
  };
  hasher_init (&writer.hasher);
  const gsize block_floats = aclip_params_n_floats (params);
  gboolean ok =
      writer_put (&writer, front->data, front->len, error) &&
      writer_put (&writer, aclip_params_values (params), block_floats * sizeof (float), error);
  if (ok && training_state)
    ok = writer_put (&writer, aclip_params_adam_m (params), block_floats * sizeof (float), error) &&
         writer_put (&writer, aclip_params_adam_v (params), block_floats * sizeof (float), error);
  if (ok) {
    guint64 checksum = GUINT64_TO_LE (hasher_finish (&writer.hasher));
    ok = write_all (&writer, (const guint8 *) &checksum, CHECKSUM_SIZE, error);
  }
  if (ok && fsync (fd) != 0)
    ok = fail (error, ACLIP_ERROR_IO, path, _("cannot write the checkpoint: %s"),
               g_strerror (errno));
  if (close (fd) != 0 && ok)
    ok = fail (error, ACLIP_ERROR_IO, path, _("cannot write the checkpoint: %s"),
               g_strerror (errno));
  if (ok && g_rename (temporary, path) != 0)
    ok = fail (error, ACLIP_ERROR_IO, path, _("cannot replace the checkpoint: %s"),
               g_strerror (errno));
  if (!ok) {
    g_unlink (temporary);
    return FALSE;
  }
  sync_parent_folder (path);
  return TRUE;
}

/* Reading -------------------------------------------------------------------------------- */

typedef struct
{
  char *name;
  int n_dims;
  gint64 shape[ACLIP_PARAMS_MAX_DIMS];
  gint64 n_elements;
  const float *values, *m, *v; /* into the mapping; m and v NULL without training state */
} Entry;

struct _AclipCheckpoint
{
  char *path;
  GMappedFile *file;
  char *text;
  gboolean training;
  gint64 step;
  int n_entries;
  Entry *entries;      /* [n_entries] */
  GHashTable *by_name; /* name (borrowed) → index + 1 */
};

void
aclip_checkpoint_free (AclipCheckpoint *checkpoint)
{
  if (!checkpoint)
    return;
  for (int i = 0; i < checkpoint->n_entries; i++)
    g_free (checkpoint->entries[i].name);
  g_free (checkpoint->entries);
  if (checkpoint->by_name)
    g_hash_table_unref (checkpoint->by_name);
  if (checkpoint->file)
    g_mapped_file_unref (checkpoint->file);
  g_free (checkpoint->text);
  g_free (checkpoint->path);
  g_free (checkpoint);
}

static guint32
get_u32 (const guint8 *base, guint64 at)
{
  guint32 value;
  memcpy (&value, base + at, 4);
  return GUINT32_FROM_LE (value);
}

static guint64
get_u64 (const guint8 *base, guint64 at)
{
  guint64 value;
  memcpy (&value, base + at, 8);
  return GUINT64_FROM_LE (value);
}

/* TRUE when [offset, offset + length) lies inside [low, high) — without overflow. */
static gboolean
span_inside (guint64 offset, guint64 length, guint64 low, guint64 high)
{
  return offset >= low && offset <= high && length <= high - offset;
}

/* Reads the directory entry at `at` into `entry`; the bounds of the data are
 * [data_offset, data_end). */
static gboolean
parse_entry (const AclipCheckpoint *checkpoint, const guint8 *base, guint64 at,
             guint64 directory_end, guint64 data_offset, guint64 data_end, int index, Entry *entry,
             guint64 *entry_length, GError **error)
{
  const char *path = checkpoint->path;
  if (!span_inside (at, ENTRY_FIXED, at, directory_end))
    return fail (error, ACLIP_ERROR_FORMAT, path, _("the tensor directory ends inside entry %d"),
                 index);
  *entry_length = get_u32 (base, at + E_LENGTH);
  guint32 name_length = get_u32 (base, at + E_NAME_LENGTH);
  guint32 dtype = get_u32 (base, at + E_DTYPE);
  guint32 n_dims = get_u32 (base, at + E_N_DIMS);
  if (n_dims < 1 || n_dims > ACLIP_PARAMS_MAX_DIMS || name_length < 1 ||
      name_length > ACLIP_PARAMS_MAX_NAME || *entry_length % 8 != 0 ||
      *entry_length < ENTRY_FIXED + 8 * n_dims + name_length ||
      !span_inside (at, *entry_length, at, directory_end))
    return fail (error, ACLIP_ERROR_FORMAT, path, _("directory entry %d is malformed"), index);
  const char *name_bytes = (const char *) base + at + E_SHAPE + 8 * n_dims;
  if (!g_utf8_validate (name_bytes, name_length, NULL))
    return fail (error, ACLIP_ERROR_FORMAT, path,
                 _("the name of directory entry %d is not valid UTF-8"), index);
  entry->name = g_strndup (name_bytes, name_length);
  if (dtype != DTYPE_FLOAT32)
    return fail (error, ACLIP_ERROR_FORMAT, path,
                 _("the tensor “%s” has an unknown element type %u"), entry->name, dtype);
  entry->n_dims = (int) n_dims;
  guint64 count = 1;
  for (guint32 d = 0; d < n_dims; d++) {
    guint64 size = get_u64 (base, at + E_SHAPE + 8 * d);
    if (size == 0 || size > data_end || count > data_end / size)
      return fail (error, ACLIP_ERROR_FORMAT, path, _("the tensor “%s” has an impossible shape"),
                   entry->name);
    entry->shape[d] = (gint64) size;
    count *= size;
  }
  if (count != get_u64 (base, at + E_N_ELEMENTS))
    return fail (error, ACLIP_ERROR_FORMAT, path,
                 _("the tensor “%s” has a size that does not match its shape"), entry->name);
  entry->n_elements = (gint64) count;

  const guint64 bytes = count * sizeof (float);
  const guint64 offsets[3] = { get_u64 (base, at + E_VALUE_OFFSET), get_u64 (base, at + E_M_OFFSET),
                               get_u64 (base, at + E_V_OFFSET) };
  const float **targets[3] = { &entry->values, &entry->m, &entry->v };
  for (int k = 0; k < 3; k++) {
    if (k > 0 && !checkpoint->training) {
      if (offsets[k] != 0)
        return fail (error, ACLIP_ERROR_FORMAT, path,
                     _("the tensor “%s” has optimiser state the header does not announce"),
                     entry->name);
      continue;
    }
    if (offsets[k] % 64 != 0 || !span_inside (offsets[k], bytes, data_offset, data_end))
      return fail (error, ACLIP_ERROR_FORMAT, path,
                   _("the data of the tensor “%s” lies outside the data section"), entry->name);
    *targets[k] = (const float *) (base + offsets[k]);
  }
  return TRUE;
}

AclipCheckpoint *
aclip_checkpoint_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    fail (error, ACLIP_ERROR_IO, path, _("cannot open the checkpoint: %s"), g_strerror (errno));
    return NULL;
  }
  g_autoptr (GError) map_error = NULL;
  GMappedFile *file = g_mapped_file_new_from_fd (fd, FALSE, &map_error);
  close (fd); /* the mapping keeps what it needs */
  if (!file) {
    fail (error, ACLIP_ERROR_IO, path, _("cannot map the checkpoint: %s"), map_error->message);
    return NULL;
  }
  g_autoptr (AclipCheckpoint) checkpoint = g_new0 (AclipCheckpoint, 1);
  checkpoint->path = g_strdup (path);
  checkpoint->file = file;
  const guint8 *base = (const guint8 *) g_mapped_file_get_contents (file);
  const guint64 length = g_mapped_file_get_length (file);

  /* Magic, then version, then size: each check only reads bytes the previous ones vouched
   * for, and a file of another version is named as such even if its layout differs. */
  if (length < 8 ? memcmp (base ? (const char *) base : "", MAGIC, length) != 0
                 : memcmp (base, MAGIC, 8) != 0) {
    fail (error, ACLIP_ERROR_FORMAT, path, _("not a Galaxy Viewer checkpoint"));
    return NULL;
  }
  if (length >= H_VERSION + 4 && get_u32 (base, H_VERSION) != ACLIP_CHECKPOINT_VERSION) {
    fail (error, ACLIP_ERROR_VERSION, path,
          _("checkpoint format version %u is not supported (this program reads version %d)"),
          get_u32 (base, H_VERSION), ACLIP_CHECKPOINT_VERSION);
    return NULL;
  }
  if (length < HEADER_SIZE) {
    fail (error, ACLIP_ERROR_FORMAT, path,
          _("the file is truncated: %" PRIu64 " bytes, shorter than the header"),
          (uint64_t) length);
    return NULL;
  }
  const guint64 file_size = get_u64 (base, H_FILE_SIZE);
  if (length < file_size) {
    fail (error, ACLIP_ERROR_FORMAT, path,
          _("the file is truncated: %" PRIu64 " of %" PRIu64 " bytes"), (uint64_t) length,
          (uint64_t) file_size);
    return NULL;
  }
  if (length > file_size || file_size < HEADER_SIZE + CHECKSUM_SIZE) {
    fail (error, ACLIP_ERROR_FORMAT, path,
          _("the file has %" PRIu64 " bytes but its header says %" PRIu64), (uint64_t) length,
          (uint64_t) file_size);
    return NULL;
  }
  const guint64 data_end = file_size - CHECKSUM_SIZE;
  if (aclip_checkpoint_hash (base, data_end) != get_u64 (base, data_end)) {
    fail (error, ACLIP_ERROR_FORMAT, path, _("the checksum does not match: the file is corrupt"));
    return NULL;
  }

  /* The structure (only a faulty writer gets past the checksum with these wrong). */
  const guint32 flags = get_u32 (base, H_FLAGS);
  const guint64 text_offset = get_u64 (base, H_TEXT_OFFSET);
  const guint64 text_length = get_u64 (base, H_TEXT_LENGTH);
  const guint64 directory_offset = get_u64 (base, H_DIRECTORY_OFFSET);
  const guint64 directory_length = get_u64 (base, H_DIRECTORY_LENGTH);
  const guint32 n_tensors = get_u32 (base, H_N_TENSORS);
  const guint64 data_offset = get_u64 (base, H_DATA_OFFSET);
  checkpoint->training = (flags & FLAG_TRAINING) != 0;
  checkpoint->step = (gint64) get_u64 (base, H_STEP);
  if ((flags & ~FLAG_TRAINING) != 0 || checkpoint->step < 0 ||
      !span_inside (text_offset, text_length, HEADER_SIZE, data_end) ||
      !span_inside (directory_offset, directory_length, text_offset + text_length, data_end) ||
      !span_inside (data_offset, 0, directory_offset + directory_length, data_end) ||
      n_tensors == 0 || n_tensors > directory_length / ENTRY_FIXED) {
    fail (error, ACLIP_ERROR_FORMAT, path, _("the header is inconsistent"));
    return NULL;
  }
  if (!g_utf8_validate ((const char *) base + text_offset, (gssize) text_length, NULL)) {
    fail (error, ACLIP_ERROR_FORMAT, path, _("the configuration text is not valid UTF-8"));
    return NULL;
  }
  checkpoint->text = g_strndup ((const char *) base + text_offset, text_length);

  checkpoint->entries = g_new0 (Entry, n_tensors);
  checkpoint->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  guint64 at = directory_offset;
  const guint64 directory_end = directory_offset + directory_length;
  for (guint32 i = 0; i < n_tensors; i++) {
    Entry *entry = &checkpoint->entries[i];
    guint64 entry_length = 0;
    checkpoint->n_entries = (int) i + 1; /* so that the name is freed on failure */
    if (!parse_entry (checkpoint, base, at, directory_end, data_offset, data_end, (int) i, entry,
                      &entry_length, error))
      return NULL;
    if (g_hash_table_contains (checkpoint->by_name, entry->name)) {
      fail (error, ACLIP_ERROR_FORMAT, path, _("the tensor “%s” appears twice"), entry->name);
      return NULL;
    }
    g_hash_table_insert (checkpoint->by_name, entry->name, GINT_TO_POINTER (i + 1));
    at += entry_length;
  }
  return g_steal_pointer (&checkpoint);
}

const char *
aclip_checkpoint_get_path (const AclipCheckpoint *checkpoint)
{
  return checkpoint->path;
}

const char *
aclip_checkpoint_get_text (const AclipCheckpoint *checkpoint)
{
  return checkpoint->text;
}

gboolean
aclip_checkpoint_has_training_state (const AclipCheckpoint *checkpoint)
{
  return checkpoint->training;
}

gint64
aclip_checkpoint_get_step (const AclipCheckpoint *checkpoint)
{
  return checkpoint->step;
}

int
aclip_checkpoint_n_tensors (const AclipCheckpoint *checkpoint)
{
  return checkpoint->n_entries;
}

const char *
aclip_checkpoint_tensor_name (const AclipCheckpoint *checkpoint, int index)
{
  g_return_val_if_fail (index >= 0 && index < checkpoint->n_entries, NULL);
  return checkpoint->entries[index].name;
}

const gint64 *
aclip_checkpoint_tensor_shape (const AclipCheckpoint *checkpoint, int index, int *n_dims)
{
  g_return_val_if_fail (index >= 0 && index < checkpoint->n_entries, NULL);
  if (n_dims)
    *n_dims = checkpoint->entries[index].n_dims;
  return checkpoint->entries[index].shape;
}

const float *
aclip_checkpoint_tensor_values (const AclipCheckpoint *checkpoint, int index)
{
  g_return_val_if_fail (index >= 0 && index < checkpoint->n_entries, NULL);
  return checkpoint->entries[index].values;
}

int
aclip_checkpoint_lookup (const AclipCheckpoint *checkpoint, const char *name)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (checkpoint->by_name, name)) - 1;
}

static char *
shape_string (int n_dims, const gint64 *shape)
{
  GString *text = g_string_new ("[");
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (text, d ? ", %" PRId64 : "%" PRId64, shape[d]);
  g_string_append_c (text, ']');
  return g_string_free (text, FALSE);
}

gboolean
aclip_checkpoint_restore (const AclipCheckpoint *checkpoint, AclipParams *params,
                          gboolean training_state, GError **error)
{
  g_return_val_if_fail (checkpoint != NULL && params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  const char *path = checkpoint->path;

  if (!aclip_params_is_sealed (params))
    return fail (error, ACLIP_ERROR_INVALID_ARG, path,
                 _("cannot restore into a parameter table that is not sealed"));
  if (training_state && !checkpoint->training)
    return fail (error, ACLIP_ERROR_MISSING, path,
                 _("the checkpoint holds no optimiser state to resume training from"));
  if (training_state && !aclip_params_is_training (params))
    return fail (error, ACLIP_ERROR_INVALID_ARG, path,
                 _("cannot restore training state: the parameters were not set up for training"));

  /* Check everything before copying anything, so that a failure leaves the table as it was. */
  const int n_tensors = aclip_params_n_tensors (params);
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    int index = aclip_checkpoint_lookup (checkpoint, info->name);
    if (index < 0)
      return fail (error, ACLIP_ERROR_MISSING, path,
                   _("the checkpoint has no tensor “%s”, which the model needs"), info->name);
    const Entry *entry = &checkpoint->entries[index];
    if (entry->n_dims != info->n_dims ||
        memcmp (entry->shape, info->shape, (size_t) info->n_dims * sizeof (gint64)) != 0) {
      g_autofree char *saved = shape_string (entry->n_dims, entry->shape);
      g_autofree char *wanted = shape_string (info->n_dims, info->shape);
      return fail (error, ACLIP_ERROR_SHAPE, path,
                   _("the tensor “%s” has the shape %s in the checkpoint but %s in the model"),
                   info->name, saved, wanted);
    }
  }
  for (int i = 0; i < checkpoint->n_entries; i++)
    if (aclip_params_lookup (params, checkpoint->entries[i].name) < 0)
      return fail (error, ACLIP_ERROR_SHAPE, path,
                   _("the checkpoint has a tensor “%s” that the model does not have"),
                   checkpoint->entries[i].name);

  float *values = aclip_params_values (params);
  float *m = aclip_params_adam_m (params), *v = aclip_params_adam_v (params);
  for (int t = 0; t < n_tensors; t++) {
    const AclipParamInfo *info = aclip_params_info (params, t);
    const Entry *entry = &checkpoint->entries[aclip_checkpoint_lookup (checkpoint, info->name)];
    const gsize bytes = (gsize) info->n_elements * sizeof (float);
    memcpy (values + info->offset, entry->values, bytes);
    if (training_state) {
      memcpy (m + info->offset, entry->m, bytes);
      memcpy (v + info->offset, entry->v, bytes);
    }
  }
  if (training_state) {
    aclip_params_set_step (params, checkpoint->step);
  } else if (m) {
    memset (m, 0, 2 * aclip_params_n_floats (params) * sizeof (float));
    aclip_params_set_step (params, 0);
  }
  return TRUE;
}
