/* astroclip-loader.c — batches of one split of a catalogue for training, read one batch ahead
 * on a background thread.
 *
 * The split's rows are found once, from the ID column (aclip_split_of_id), with the label
 * columns the command asked for. Batch b of epoch e holds the galaxies at positions
 * [b·batch_size, (b+1)·batch_size) of that epoch's order: the split in file order, shuffled
 * (Fisher–Yates) by a generator seeded from (seed, epoch) alone, so any batch of any epoch can
 * be produced without replaying the ones before it (resume), whatever the thread count.
 *
 * Two slots share one allocation. The consumer holds at most one (the batch it was last
 * given); the reading thread fills the other. Every batch has a position, epoch ×
 * batches_per_epoch + index; the thread fills positions in order and the consumer takes them
 * in order. A seek bumps a generation counter: batches of an older generation, ready or being
 * read, are dropped (a read in progress stops at the next row).
 */
#include "astroclip-train.h"

#include "aclip-catalogue.h"
#include "aclip-error.h"
#include "aclip-rng.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <string.h>

#define N_SLOTS        2
#define CHUNK_ROWS     65536 /* rows per read of the ID and label columns */
#define ALIGNMENT      64
#define SHUFFLE_STREAM G_GUINT64_CONSTANT (0x53485546464c45) /* "SHUFFLE" */

typedef enum
{
  SLOT_FREE,
  SLOT_FILLING, /* the thread is reading into it */
  SLOT_READY,   /* filled (or failed: error set), waiting for the consumer */
  SLOT_IN_USE,  /* given to the consumer */
} SlotState;

typedef struct
{
  SlotState state;
  gint64 position;
  gint generation;
  GError *error;
  AstroclipBatch batch; /* points into the arrays below */
  gint64 *rows;         /* [batch_size] */
  gint64 *ids;          /* [batch_size] */
  double *labels;       /* [batch_size, n_labels], NULL without labels */
  float *z;             /* [batch_size] */
  float *logmstar;      /* [batch_size] */
  float *flux_grz;      /* [batch_size, 3] */
  float *images;        /* [batch_size, 3, H, W] or NULL */
  float *flux;          /* [batch_size, n_wave] or NULL */
  float *ivar;          /* [batch_size, n_wave] or NULL */
} Slot;

struct _AstroclipLoader
{
  char *path;
  int batch_size;
  gboolean want_images, want_spectra, shuffle;
  guint64 seed;
  int n_labels;
  int height, width, n_wave;
  gint64 n_galaxies;
  gint64 batches_per_epoch;
  gint64 *split_rows; /* [n_galaxies] catalogue rows of the split, increasing */
  gint64 *split_ids;  /* [n_galaxies] */
  double *labels;     /* [n_galaxies, n_labels] */

  gpointer block; /* the one allocation behind both slots' arrays */
  Slot slots[N_SLOTS];

  GThread *thread;
  GMutex mutex;
  GCond cond;
  gboolean quit;
  gint generation;          /* written under the mutex, read by the thread between rows */
  gint64 worker_position;   /* the next position the thread reads */
  gint64 consumer_position; /* the next position astroclip_loader_next returns */
  int in_use;               /* the consumer's slot, or -1 */

  /* The thread's own. */
  AclipCatalogue *catalogue;
  gint64 *order;      /* [n_galaxies] this epoch's order: indices into split_rows */
  gint64 order_epoch; /* the epoch `order` is for, or -1 */
};

/* The reading thread ---------------------------------------------------------------------- */

/* Fisher–Yates from the identity with a generator seeded by (seed, epoch): each epoch's order
 * depends on nothing else. */
static void
prepare_order (AstroclipLoader *loader, gint64 epoch)
{
  if (loader->order_epoch == epoch)
    return;
  for (gint64 i = 0; i < loader->n_galaxies; i++)
    loader->order[i] = i;
  if (loader->shuffle) {
    AclipRng rng;
    aclip_rng_init (&rng, loader->seed, (guint64) epoch, SHUFFLE_STREAM);
    for (gint64 i = loader->n_galaxies - 1; i > 0; i--) {
      gint64 j = (gint64) aclip_rng_below (&rng, (guint64) i + 1);
      gint64 kept = loader->order[i];
      loader->order[i] = loader->order[j];
      loader->order[j] = kept;
    }
  }
  loader->order_epoch = epoch;
}

/* Reads the batch at `position` into `slot`. FALSE with `error` set when reading failed,
 * FALSE without when a seek or the loader's end made the batch unwanted. */
static gboolean
fill_slot (AstroclipLoader *loader, Slot *slot, gint64 position, gint generation, GError **error)
{
  gint64 epoch = position / loader->batches_per_epoch;
  gint64 index = position % loader->batches_per_epoch;
  prepare_order (loader, epoch);
  gint64 first = index * loader->batch_size;
  int n = (int) MIN ((gint64) loader->batch_size, loader->n_galaxies - first);
  gsize image_size = (gsize) 3 * loader->height * loader->width;

  for (int i = 0; i < n; i++) {
    if (g_atomic_int_get (&loader->generation) != generation)
      return FALSE;
    gint64 k = loader->order[first + i];
    AclipGalaxy galaxy = { 0 };
    galaxy.image = slot->images ? slot->images + i * image_size : NULL;
    galaxy.spectrum = slot->flux ? slot->flux + (gsize) i * loader->n_wave : NULL;
    galaxy.spectrum_ivar = slot->ivar ? slot->ivar + (gsize) i * loader->n_wave : NULL;
    if (!aclip_catalogue_read_galaxy (loader->catalogue, loader->split_rows[k], &galaxy, error))
      return FALSE;
    slot->rows[i] = loader->split_rows[k];
    slot->ids[i] = loader->split_ids[k];
    slot->z[i] = galaxy.z;
    slot->logmstar[i] = galaxy.logmstar;
    memcpy (slot->flux_grz + 3 * i, galaxy.flux, sizeof galaxy.flux);
    if (loader->n_labels > 0)
      memcpy (slot->labels + (gsize) i * loader->n_labels,
              loader->labels + (gsize) k * loader->n_labels, loader->n_labels * sizeof (double));
  }

  AstroclipBatch *batch = &slot->batch;
  batch->n = n;
  batch->epoch = (int) epoch;
  batch->index_in_epoch = index;
  batch->rows = slot->rows;
  batch->ids = slot->ids;
  batch->images = slot->images;
  batch->flux = slot->flux;
  batch->ivar = slot->ivar;
  batch->z = slot->z;
  batch->logmstar = slot->logmstar;
  batch->flux_grz = slot->flux_grz;
  batch->labels = slot->labels;
  return TRUE;
}

static Slot *
find_slot (AstroclipLoader *loader, SlotState state)
{
  for (int i = 0; i < N_SLOTS; i++)
    if (loader->slots[i].state == state)
      return &loader->slots[i];
  return NULL;
}

static gpointer
read_batches (gpointer data)
{
  AstroclipLoader *loader = data;
  g_mutex_lock (&loader->mutex);
  for (;;) {
    Slot *slot = NULL;
    while (!loader->quit && (slot = find_slot (loader, SLOT_FREE)) == NULL)
      g_cond_wait (&loader->cond, &loader->mutex);
    if (loader->quit)
      break;
    gint64 position = loader->worker_position++;
    gint generation = g_atomic_int_get (&loader->generation);
    slot->state = SLOT_FILLING;
    g_mutex_unlock (&loader->mutex);

    GError *error = NULL;
    fill_slot (loader, slot, position, generation, &error);

    g_mutex_lock (&loader->mutex);
    if (generation != g_atomic_int_get (&loader->generation)) { /* sought away, or ending */
      g_clear_error (&error);
      slot->state = SLOT_FREE;
      continue;
    }
    slot->position = position;
    slot->generation = generation;
    slot->error = error;
    slot->state = SLOT_READY;
    g_cond_broadcast (&loader->cond);
  }
  g_mutex_unlock (&loader->mutex);
  return NULL;
}

/* Setting up ------------------------------------------------------------------------------ */

static gboolean
is_numeric_column (AclipCatalogue *catalogue, const char *name)
{
  for (const char *const *column = aclip_catalogue_numeric_columns (catalogue); *column; column++)
    if (g_ascii_strcasecmp (*column, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
check_request (AclipCatalogue *catalogue, const AstroclipLoaderRequest *request, GError **error)
{
  const char *path = aclip_catalogue_path (catalogue);
  if (request->batch_size < 1 || request->max_galaxies < 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("%s: cannot make batches of %d galaxies from at most %" PRId64
                   " (the batch size must be 1 or more, the maximum 0 or more)"),
                 path, request->batch_size, request->max_galaxies);
    return FALSE;
  }
  if ((guint) request->split > ACLIP_SPLIT_TEST) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG, _("%s: there is no split %d"), path,
                 (int) request->split);
    return FALSE;
  }
  if (request->want_images && !aclip_catalogue_has_images (catalogue)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: the catalogue holds no images, and this command needs them"), path);
    return FALSE;
  }
  if (request->want_spectra && !aclip_catalogue_has_spectra (catalogue)) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                 _("%s: the catalogue holds no spectra, and this command needs them"), path);
    return FALSE;
  }
  for (char **name = request->label_columns; name && *name; name++)
    if (!is_numeric_column (catalogue, *name)) {
      g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_MISSING,
                   _("%s: the catalogue has no numeric column %s"), path, *name);
      return FALSE;
    }
  return TRUE;
}

/* Finds the split's rows (the first max_galaxies of them in file order when max_galaxies > 0)
 * from the ID column, read in chunks. */
static gboolean
find_split_rows (AstroclipLoader *loader, AclipCatalogue *catalogue,
                 const AstroclipLoaderRequest *request, GError **error)
{
  gint64 n_rows = aclip_catalogue_n_rows (catalogue);
  GArray *rows = g_array_new (FALSE, FALSE, sizeof (gint64));
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree gint64 *chunk = g_new (gint64, MIN (n_rows, CHUNK_ROWS) + 1);
  gboolean full = FALSE;
  for (gint64 first = 0; first < n_rows && !full; first += CHUNK_ROWS) {
    gint64 n = MIN (n_rows - first, CHUNK_ROWS);
    if (!aclip_catalogue_read_ids (catalogue, first, n, chunk, error)) {
      g_array_unref (rows);
      g_array_unref (ids);
      return FALSE;
    }
    for (gint64 i = 0; i < n && !full; i++)
      if (aclip_split_of_id (chunk[i]) == request->split) {
        gint64 row = first + i;
        g_array_append_val (rows, row);
        g_array_append_val (ids, chunk[i]);
        full = request->max_galaxies > 0 && (gint64) rows->len >= request->max_galaxies;
      }
  }
  loader->n_galaxies = rows->len;
  loader->split_rows = (gint64 *) (gpointer) g_array_free (rows, FALSE);
  loader->split_ids = (gint64 *) (gpointer) g_array_free (ids, FALSE);
  if (loader->n_galaxies == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%s: none of its %" PRId64 " galaxies is in the %s split"), loader->path,
                 n_rows, aclip_split_name (request->split));
    return FALSE;
  }
  return TRUE;
}

/* Reads the label columns for the split's rows, a chunk of rows at a time. */
static gboolean
read_labels (AstroclipLoader *loader, AclipCatalogue *catalogue, char **names, GError **error)
{
  if (loader->n_labels == 0)
    return TRUE;
  loader->labels = g_new (double, (gsize) loader->n_galaxies * loader->n_labels);
  gint64 last_row = loader->split_rows[loader->n_galaxies - 1];
  g_autofree double *chunk = g_new (double, MIN (last_row + 1, CHUNK_ROWS));
  for (int c = 0; c < loader->n_labels; c++) {
    gint64 k = 0; /* the next galaxy of the split to fill */
    for (gint64 first = loader->split_rows[0]; first <= last_row; first += CHUNK_ROWS) {
      gint64 n = MIN (last_row + 1 - first, CHUNK_ROWS);
      if (!aclip_catalogue_read_column (catalogue, names[c], first, n, chunk, error))
        return FALSE;
      for (; k < loader->n_galaxies && loader->split_rows[k] < first + n; k++)
        loader->labels[(gsize) k * loader->n_labels + c] = chunk[loader->split_rows[k] - first];
    }
  }
  return TRUE;
}

static gsize
aligned_size (gsize bytes)
{
  return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
}

/* Carves one slot's arrays out of the block from *offset; with `base` NULL only counts. */
static void
lay_out_slot (AstroclipLoader *loader, Slot *slot, char *base, gsize *offset)
{
  gsize b = (gsize) loader->batch_size;
  gsize image_floats = loader->want_images ? b * 3 * loader->height * loader->width : 0;
  gsize wave_floats = loader->want_spectra ? b * loader->n_wave : 0;
  struct
  {
    gpointer *pointer;
    gsize bytes;
  } arrays[] = {
    { (gpointer *) &slot->rows, b * sizeof (gint64) },
    { (gpointer *) &slot->ids, b * sizeof (gint64) },
    { (gpointer *) &slot->labels, b * loader->n_labels * sizeof (double) },
    { (gpointer *) &slot->z, b * sizeof (float) },
    { (gpointer *) &slot->logmstar, b * sizeof (float) },
    { (gpointer *) &slot->flux_grz, b * 3 * sizeof (float) },
    { (gpointer *) &slot->images, image_floats * sizeof (float) },
    { (gpointer *) &slot->flux, wave_floats * sizeof (float) },
    { (gpointer *) &slot->ivar, wave_floats * sizeof (float) },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (arrays); i++) {
    if (base != NULL)
      *arrays[i].pointer = arrays[i].bytes > 0 ? base + *offset : NULL;
    *offset += aligned_size (arrays[i].bytes);
  }
}

static gboolean
allocate_slots (AstroclipLoader *loader, GError **error)
{
  gsize bytes = 0;
  Slot counting = { 0 };
  for (int i = 0; i < N_SLOTS; i++)
    lay_out_slot (loader, &counting, NULL, &bytes);
  loader->block = g_try_malloc (bytes + ALIGNMENT);
  if (loader->block == NULL) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_INVALID_ARG,
                 _("%s: not enough memory for two batches of %d galaxies (%.0f MB)"), loader->path,
                 loader->batch_size, bytes / 1e6);
    return FALSE;
  }
  char *base = (char *) loader->block;
  base += (ALIGNMENT - (guintptr) base % ALIGNMENT) % ALIGNMENT;
  gsize offset = 0;
  for (int i = 0; i < N_SLOTS; i++)
    lay_out_slot (loader, &loader->slots[i], base, &offset);
  return TRUE;
}

AstroclipLoader *
astroclip_loader_new (const char *catalogue_path, const AstroclipLoaderRequest *request,
                      GError **error)
{
  g_return_val_if_fail (catalogue_path != NULL && request != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (AclipCatalogue) catalogue = aclip_catalogue_open (catalogue_path, error);
  if (catalogue == NULL || !check_request (catalogue, request, error))
    return NULL;

  g_autoptr (AstroclipLoader) loader = g_new0 (AstroclipLoader, 1);
  g_mutex_init (&loader->mutex);
  g_cond_init (&loader->cond);
  loader->in_use = -1;
  loader->order_epoch = -1;
  loader->path = g_strdup (catalogue_path);
  loader->batch_size = request->batch_size;
  loader->want_images = request->want_images;
  loader->want_spectra = request->want_spectra;
  loader->shuffle = request->shuffle;
  loader->seed = request->seed;
  loader->n_labels = request->label_columns ? (int) g_strv_length (request->label_columns) : 0;
  loader->height = aclip_catalogue_image_height (catalogue);
  loader->width = aclip_catalogue_image_width (catalogue);
  loader->n_wave = aclip_catalogue_n_wave (catalogue);

  if (!find_split_rows (loader, catalogue, request, error) ||
      !read_labels (loader, catalogue, request->label_columns, error))
    return NULL;
  loader->batches_per_epoch =
      request->drop_last ? loader->n_galaxies / request->batch_size
                         : (loader->n_galaxies + request->batch_size - 1) / request->batch_size;
  if (loader->batches_per_epoch == 0) {
    g_set_error (error, ACLIP_ERROR, ACLIP_ERROR_VALUE,
                 _("%s: the %s split holds %" PRId64 " galaxies, fewer than one batch of %d"),
                 loader->path, aclip_split_name (request->split), loader->n_galaxies,
                 request->batch_size);
    return NULL;
  }
  if (!allocate_slots (loader, error))
    return NULL;
  loader->order = g_new (gint64, loader->n_galaxies);

  /* From here on the catalogue is the reading thread's alone. */
  loader->catalogue = g_steal_pointer (&catalogue);
  loader->thread = g_thread_try_new ("astroclip-loader", read_batches, loader, error);
  if (loader->thread == NULL)
    return NULL;
  return g_steal_pointer (&loader);
}

void
astroclip_loader_free (AstroclipLoader *loader)
{
  if (loader == NULL)
    return;
  if (loader->thread != NULL) {
    g_mutex_lock (&loader->mutex);
    loader->quit = TRUE;
    g_atomic_int_inc (&loader->generation);
    g_cond_broadcast (&loader->cond);
    g_mutex_unlock (&loader->mutex);
    g_thread_join (loader->thread);
  }
  for (int i = 0; i < N_SLOTS; i++)
    g_clear_error (&loader->slots[i].error);
  aclip_catalogue_free (loader->catalogue);
  g_mutex_clear (&loader->mutex);
  g_cond_clear (&loader->cond);
  g_free (loader->block);
  g_free (loader->order);
  g_free (loader->labels);
  g_free (loader->split_ids);
  g_free (loader->split_rows);
  g_free (loader->path);
  g_free (loader);
}

/* Using it ------------------------------------------------------------------------------- */

gint64
astroclip_loader_n_galaxies (AstroclipLoader *loader)
{
  g_return_val_if_fail (loader != NULL, 0);
  return loader->n_galaxies;
}

gint64
astroclip_loader_batches_per_epoch (AstroclipLoader *loader)
{
  g_return_val_if_fail (loader != NULL, 0);
  return loader->batches_per_epoch;
}

int
astroclip_loader_image_height (AstroclipLoader *loader)
{
  g_return_val_if_fail (loader != NULL, 0);
  return loader->height;
}

int
astroclip_loader_image_width (AstroclipLoader *loader)
{
  g_return_val_if_fail (loader != NULL, 0);
  return loader->width;
}

int
astroclip_loader_n_wave (AstroclipLoader *loader)
{
  g_return_val_if_fail (loader != NULL, 0);
  return loader->n_wave;
}

int
astroclip_loader_n_label_columns (AstroclipLoader *loader)
{
  g_return_val_if_fail (loader != NULL, 0);
  return loader->n_labels;
}

void
astroclip_loader_seek (AstroclipLoader *loader, int epoch, gint64 index_in_epoch)
{
  g_return_if_fail (loader != NULL && epoch >= 0 && index_in_epoch >= 0);
  g_mutex_lock (&loader->mutex);
  g_atomic_int_inc (&loader->generation);
  for (int i = 0; i < N_SLOTS; i++)
    if (loader->slots[i].state == SLOT_READY) {
      loader->slots[i].state = SLOT_FREE;
      g_clear_error (&loader->slots[i].error);
    }
  gint64 position = (gint64) epoch * loader->batches_per_epoch + index_in_epoch;
  loader->worker_position = loader->consumer_position = position;
  g_cond_broadcast (&loader->cond);
  g_mutex_unlock (&loader->mutex);
}

const AstroclipBatch *
astroclip_loader_next (AstroclipLoader *loader, GError **error)
{
  g_return_val_if_fail (loader != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_mutex_lock (&loader->mutex);
  if (loader->in_use >= 0) { /* the consumer is done with its batch: the thread may refill it */
    loader->slots[loader->in_use].state = SLOT_FREE;
    loader->in_use = -1;
    g_cond_broadcast (&loader->cond);
  }
  Slot *slot = NULL;
  for (;;) {
    for (int i = 0; i < N_SLOTS && slot == NULL; i++) {
      Slot *candidate = &loader->slots[i];
      if (candidate->state == SLOT_READY && candidate->position == loader->consumer_position &&
          candidate->generation == g_atomic_int_get (&loader->generation))
        slot = candidate;
    }
    if (slot != NULL)
      break;
    g_cond_wait (&loader->cond, &loader->mutex);
  }
  loader->consumer_position++;
  if (slot->error != NULL) {
    g_propagate_error (error, g_steal_pointer (&slot->error));
    slot->state = SLOT_FREE;
    g_cond_broadcast (&loader->cond);
    g_mutex_unlock (&loader->mutex);
    return NULL;
  }
  slot->state = SLOT_IN_USE;
  loader->in_use = (int) (slot - loader->slots);
  g_mutex_unlock (&loader->mutex);
  return &slot->batch;
}
