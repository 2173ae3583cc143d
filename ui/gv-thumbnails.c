/* gv-thumbnails.c — lazy thumbnail rendering and its cache (gv-thumbnails.h).
 *
 * Threads: the GvThumbnails object, its cache and its signal live on the main thread. The
 * workers see only `Shared`: the catalogue, the current size and generation, the set of
 * wanted rows, and the queue of finished renders, all behind one mutex. A worker takes a row
 * from the pool's queue, skips it when it is no longer wanted, otherwise reads and renders it
 * and appends the pixels to `results`; one idle callback on the main thread turns the batch
 * into textures, caches them and emits "thumbnail-ready". A size change bumps the generation:
 * renders begun at the old size are dropped when they arrive.
 */
#include "gv-thumbnails.h"

#include "aclip-render.h"

#include <math.h>
#include <string.h>

/* Rendering ------------------------------------------------------------------------------ */

void
gv_thumbnail_fit (int height, int width, int size, int *out_height, int *out_width)
{
  g_return_if_fail (height > 0 && width > 0 && size > 0);
  if (height >= width)
    {
      *out_height = size;
      *out_width = MAX (1, (int) lround ((double) width * size / height));
    }
  else
    {
      *out_width = size;
      *out_height = MAX (1, (int) lround ((double) height * size / width));
    }
}

/* Area-averaging weights along one axis, n input pixels onto m output pixels: output j covers
 * the input interval [j·n/m, (j+1)·n/m); input pixel i contributes its overlap with it,
 * divided by the interval's length n/m, so the weights of each output pixel sum to 1. */
typedef struct
{
  int *first; /* m: first input pixel of output j */
  int *count; /* m: how many input pixels */
  double *weight; /* count[j] weights per output, concatenated */
  int *offset;    /* m: start of output j's weights */
} AxisWeights;

static void
axis_weights_init (AxisWeights *axis, int n, int m)
{
  double step = (double) n / m;
  axis->first = g_new (int, m);
  axis->count = g_new (int, m);
  axis->offset = g_new (int, m);
  /* Each interval of length step overlaps at most ⌈step⌉ + 1 input pixels (+1 for rounding). */
  axis->weight = g_new (double, (gsize) m * ((int) ceil (step) + 2));
  int k = 0;
  for (int j = 0; j < m; j++)
    {
      double lo = j * step, hi = (j + 1) * step;
      int first = (int) floor (lo);
      int last = MIN (n - 1, (int) ceil (hi) - 1);
      axis->first[j] = first;
      axis->offset[j] = k;
      axis->count[j] = 0;
      for (int i = first; i <= last; i++)
        {
          double overlap = MIN (hi, i + 1.0) - MAX (lo, (double) i);
          if (overlap <= 0)
            continue;
          if (axis->count[j] == 0)
            axis->first[j] = i;
          axis->weight[k++] = overlap / step;
          axis->count[j]++;
        }
    }
}

static void
axis_weights_clear (AxisWeights *axis)
{
  g_free (axis->first);
  g_free (axis->count);
  g_free (axis->offset);
  g_free (axis->weight);
}

static inline float
finite_or_zero (float value)
{
  return isfinite (value) ? value : 0.0f;
}

void
gv_thumbnail_render (const float *flux, int height, int width, int out_height, int out_width,
                     guint8 *rgb)
{
  g_return_if_fail (flux != NULL && rgb != NULL);
  g_return_if_fail (height > 0 && width > 0 && out_height > 0 && out_width > 0);

  AxisWeights ys, xs;
  axis_weights_init (&ys, height, out_height);
  axis_weights_init (&xs, width, out_width);

  /* Separable: first along x into a 3×H×out_width buffer, then along y. */
  float *along_x = g_new (float, (gsize) 3 * height * out_width);
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < height; y++)
      {
        const float *in = flux + ((gsize) b * height + y) * width;
        float *out = along_x + ((gsize) b * height + y) * out_width;
        for (int j = 0; j < out_width; j++)
          {
            double sum = 0;
            const double *w = xs.weight + xs.offset[j];
            for (int c = 0; c < xs.count[j]; c++)
              sum += w[c] * finite_or_zero (in[xs.first[j] + c]);
            out[j] = (float) sum;
          }
      }
  float *reduced = g_new (float, (gsize) 3 * out_height * out_width);
  for (int b = 0; b < 3; b++)
    for (int i = 0; i < out_height; i++)
      {
        /* FITS row i of the reduced image (counted from the bottom) is stored as row
         * out_height − 1 − i, so that `reduced` runs from the top of the sky down. */
        float *out = reduced + ((gsize) b * out_height + (out_height - 1 - i)) * out_width;
        const double *w = ys.weight + ys.offset[i];
        for (int j = 0; j < out_width; j++)
          {
            double sum = 0;
            for (int c = 0; c < ys.count[i]; c++)
              sum += w[c] * along_x[((gsize) b * height + ys.first[i] + c) * out_width + j];
            out[j] = (float) sum;
          }
      }
  /* `reduced` already runs top-down, which is the order the mapping writes its rows in. */
  AclipRgbParams params;
  aclip_rgb_params_init_legacy (&params);
  aclip_rgb_forward_u8 (&params, reduced, out_height, out_width, rgb);
  g_free (reduced);
  g_free (along_x);
  axis_weights_clear (&ys);
  axis_weights_clear (&xs);
}

/* Shared state ----------------------------------------------------------------------------- */

typedef struct
{
  gint64 row;
  guint generation;
  int height, width;
  GBytes *pixels; /* height×width×3 */
} Result;

static void
result_free (Result *result)
{
  g_clear_pointer (&result->pixels, g_bytes_unref);
  g_free (result);
}

typedef struct
{
  gatomicrefcount ref_count;
  GvCatalogue *catalogue; /* immutable, thread-safe */
  GMutex lock;
  /* Behind the lock: */
  int size;
  guint generation;
  GHashTable *wanted; /* rows (GSIZE_TO_POINTER) requested and not yet delivered */
  GQueue results;     /* Result * waiting for the main thread */
  gboolean idle_scheduled;
  guint64 n_rendered, n_skipped;
  /* Main thread only: */
  GvThumbnails *owner; /* NULL once disposed */
  GMainContext *context;
} Shared;

static Shared *
shared_ref (Shared *shared)
{
  g_atomic_ref_count_inc (&shared->ref_count);
  return shared;
}

static void
shared_unref (Shared *shared)
{
  if (!g_atomic_ref_count_dec (&shared->ref_count))
    return;
  g_object_unref (shared->catalogue);
  g_hash_table_unref (shared->wanted);
  g_queue_clear_full (&shared->results, (GDestroyNotify) result_free);
  g_main_context_unref (shared->context);
  g_mutex_clear (&shared->lock);
  g_free (shared);
}

/* The object -------------------------------------------------------------------------------- */

typedef struct
{
  gint64 row;
  GdkTexture *texture;
  gsize bytes;
  GList link; /* in lru, data = the entry */
} CacheEntry;

struct _GvThumbnails
{
  GObject parent_instance;

  Shared *shared;
  GThreadPool *pool;
  GHashTable *cache; /* row → CacheEntry * */
  GQueue lru;        /* most recently used first */
  gsize cache_bytes, cache_budget;
};

G_DEFINE_FINAL_TYPE (GvThumbnails, gv_thumbnails, G_TYPE_OBJECT)

enum
{
  SIGNAL_THUMBNAIL_READY,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
cache_entry_free (CacheEntry *entry)
{
  g_object_unref (entry->texture);
  g_free (entry);
}

static void
cache_clear (GvThumbnails *self)
{
  /* The hash table owns the entries; the LRU queue only links them. */
  g_queue_init (&self->lru);
  g_hash_table_remove_all (self->cache);
  self->cache_bytes = 0;
}

static void
cache_insert (GvThumbnails *self, gint64 row, GdkTexture *texture, gsize bytes)
{
  CacheEntry *old = g_hash_table_lookup (self->cache, GSIZE_TO_POINTER ((gsize) row));
  if (old != NULL)
    {
      g_queue_unlink (&self->lru, &old->link);
      self->cache_bytes -= old->bytes;
      g_hash_table_remove (self->cache, GSIZE_TO_POINTER ((gsize) row));
    }
  CacheEntry *entry = g_new0 (CacheEntry, 1);
  entry->row = row;
  entry->texture = g_object_ref (texture);
  entry->bytes = bytes;
  entry->link.data = entry;
  g_hash_table_insert (self->cache, GSIZE_TO_POINTER ((gsize) row), entry);
  g_queue_push_head_link (&self->lru, &entry->link);
  self->cache_bytes += bytes;

  /* Evict the least recently used, never the one just added. */
  while (self->cache_bytes > self->cache_budget && self->lru.length > 1)
    {
      GList *last = g_queue_pop_tail_link (&self->lru);
      CacheEntry *victim = last->data;
      self->cache_bytes -= victim->bytes;
      g_hash_table_remove (self->cache, GSIZE_TO_POINTER ((gsize) victim->row));
    }
}

/* Main thread: the batch of finished renders. */
static gboolean
deliver_results (gpointer data)
{
  Shared *shared = data;
  g_mutex_lock (&shared->lock);
  GQueue batch = shared->results;
  g_queue_init (&shared->results);
  shared->idle_scheduled = FALSE;
  guint generation = shared->generation;
  /* Remove delivered rows from `wanted` now, so that a request made by a handler re-queues. */
  for (GList *l = batch.head; l != NULL; l = l->next)
    {
      Result *result = l->data;
      if (result->generation == generation)
        g_hash_table_remove (shared->wanted, GSIZE_TO_POINTER ((gsize) result->row));
    }
  g_mutex_unlock (&shared->lock);

  GvThumbnails *self = shared->owner;
  if (self != NULL)
    g_object_ref (self);
  Result *result;
  while ((result = g_queue_pop_head (&batch)) != NULL)
    {
      if (self != NULL && result->generation == generation)
        {
          g_autoptr (GdkTexture) texture
              = gdk_memory_texture_new (result->width, result->height, GDK_MEMORY_R8G8B8,
                                        result->pixels, (gsize) result->width * 3);
          cache_insert (self, result->row, texture, g_bytes_get_size (result->pixels));
          g_signal_emit (self, signals[SIGNAL_THUMBNAIL_READY], 0, result->row, texture);
        }
      result_free (result);
    }
  g_clear_object (&self);
  return G_SOURCE_REMOVE;
}

/* Worker thread: one row. */
static void
render_row (gpointer data, gpointer user_data)
{
  Shared *shared = user_data;
  gint64 row = (gint64) GPOINTER_TO_SIZE (data) - 1;

  g_mutex_lock (&shared->lock);
  gboolean wanted = g_hash_table_contains (shared->wanted, GSIZE_TO_POINTER ((gsize) row));
  guint generation = shared->generation;
  int size = shared->size;
  if (!wanted)
    shared->n_skipped++;
  g_mutex_unlock (&shared->lock);
  if (!wanted)
    return;

  g_autoptr (GError) error = NULL;
  g_autoptr (GvGalaxy) galaxy
      = gv_catalogue_read_galaxy (shared->catalogue, row, TRUE, FALSE, &error);
  int height = 0, width = 0;
  const float *flux = galaxy != NULL ? gv_galaxy_get_image (galaxy, &height, &width) : NULL;
  if (flux == NULL)
    {
      g_debug ("No thumbnail for row %" G_GINT64_FORMAT ": %s", row,
               error != NULL ? error->message : "no image");
      g_mutex_lock (&shared->lock);
      g_hash_table_remove (shared->wanted, GSIZE_TO_POINTER ((gsize) row));
      g_mutex_unlock (&shared->lock);
      return;
    }

  Result *result = g_new0 (Result, 1);
  result->row = row;
  result->generation = generation;
  gv_thumbnail_fit (height, width, size, &result->height, &result->width);
  gsize n_bytes = (gsize) result->height * result->width * 3;
  guint8 *rgb = g_malloc (n_bytes);
  gv_thumbnail_render (flux, height, width, result->height, result->width, rgb);
  result->pixels = g_bytes_new_take (rgb, n_bytes);

  g_mutex_lock (&shared->lock);
  shared->n_rendered++;
  g_queue_push_tail (&shared->results, result);
  gboolean schedule = !shared->idle_scheduled;
  shared->idle_scheduled = TRUE;
  g_mutex_unlock (&shared->lock);
  if (schedule)
    {
      /* After GTK's layout and paint (G_PRIORITY_HIGH_IDLE + 10/20), so a burst of results
       * never delays a frame; the textures appear in the next one. */
      GSource *source = g_idle_source_new ();
      g_source_set_priority (source, G_PRIORITY_DEFAULT_IDLE);
      g_source_set_callback (source, deliver_results, shared_ref (shared),
                             (GDestroyNotify) shared_unref);
      g_source_set_static_name (source, "[galaxy-viewer] thumbnails");
      g_source_attach (source, shared->context);
      g_source_unref (source);
    }
}

static void
gv_thumbnails_dispose (GObject *object)
{
  GvThumbnails *self = GV_THUMBNAILS (object);

  if (self->shared != NULL)
    {
      self->shared->owner = NULL;
      g_mutex_lock (&self->shared->lock);
      g_hash_table_remove_all (self->shared->wanted); /* queued rows are skipped */
      g_mutex_unlock (&self->shared->lock);
    }
  if (self->pool != NULL)
    {
      /* Drop what is queued, wait for the (at most two) renders in progress. */
      g_thread_pool_free (self->pool, TRUE, TRUE);
      self->pool = NULL;
    }
  g_clear_pointer (&self->shared, shared_unref);
  if (self->cache != NULL)
    cache_clear (self);

  G_OBJECT_CLASS (gv_thumbnails_parent_class)->dispose (object);
}

static void
gv_thumbnails_finalize (GObject *object)
{
  GvThumbnails *self = GV_THUMBNAILS (object);
  g_clear_pointer (&self->cache, g_hash_table_unref);
  G_OBJECT_CLASS (gv_thumbnails_parent_class)->finalize (object);
}

static void
gv_thumbnails_class_init (GvThumbnailsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = gv_thumbnails_dispose;
  object_class->finalize = gv_thumbnails_finalize;

  signals[SIGNAL_THUMBNAIL_READY]
      = g_signal_new ("thumbnail-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                      NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT64, GDK_TYPE_TEXTURE);
}

static void
gv_thumbnails_init (GvThumbnails *self)
{
  self->cache = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                       (GDestroyNotify) cache_entry_free);
  g_queue_init (&self->lru);
}

GvThumbnails *
gv_thumbnails_new (GvCatalogue *catalogue, int size, gsize cache_bytes)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), NULL);
  g_return_val_if_fail (size > 0, NULL);

  GvThumbnails *self = g_object_new (GV_TYPE_THUMBNAILS, NULL);
  self->cache_budget = cache_bytes > 0 ? cache_bytes : GV_THUMBNAILS_DEFAULT_CACHE_BYTES;

  Shared *shared = g_new0 (Shared, 1);
  g_atomic_ref_count_init (&shared->ref_count);
  shared->catalogue = g_object_ref (catalogue);
  g_mutex_init (&shared->lock);
  shared->size = size;
  shared->wanted = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_queue_init (&shared->results);
  shared->owner = self;
  shared->context = g_main_context_ref_thread_default ();
  self->shared = shared;

  /* Two workers at most: the machine may have two cores, and the main thread needs one. */
  int n_threads = CLAMP ((int) g_get_num_processors () - 1, 1, 2);
  self->pool = g_thread_pool_new (render_row, shared, n_threads, FALSE, NULL);
  return self;
}

GvCatalogue *
gv_thumbnails_get_catalogue (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), NULL);
  return self->shared->catalogue;
}

void
gv_thumbnails_set_size (GvThumbnails *self, int size)
{
  g_return_if_fail (GV_IS_THUMBNAILS (self));
  g_return_if_fail (size > 0);

  g_mutex_lock (&self->shared->lock);
  gboolean changed = self->shared->size != size;
  if (changed)
    {
      self->shared->size = size;
      self->shared->generation++;
      g_hash_table_remove_all (self->shared->wanted);
    }
  g_mutex_unlock (&self->shared->lock);
  if (changed)
    cache_clear (self);
}

int
gv_thumbnails_get_size (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), 0);
  g_mutex_lock (&self->shared->lock);
  int size = self->shared->size;
  g_mutex_unlock (&self->shared->lock);
  return size;
}

GdkTexture *
gv_thumbnails_lookup (GvThumbnails *self, gint64 row)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), NULL);
  CacheEntry *entry = g_hash_table_lookup (self->cache, GSIZE_TO_POINTER ((gsize) row));
  if (entry == NULL)
    return NULL;
  g_queue_unlink (&self->lru, &entry->link);
  g_queue_push_head_link (&self->lru, &entry->link);
  return g_object_ref (entry->texture);
}

GdkTexture *
gv_thumbnails_request (GvThumbnails *self, gint64 row)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), NULL);

  GvCatalogue *catalogue = self->shared->catalogue;
  if (row < 0 || row >= gv_catalogue_get_n_rows (catalogue) || !gv_catalogue_has_images (catalogue))
    return NULL;
  GdkTexture *texture = gv_thumbnails_lookup (self, row);
  if (texture != NULL)
    return texture;

  g_mutex_lock (&self->shared->lock);
  gboolean queued = g_hash_table_contains (self->shared->wanted, GSIZE_TO_POINTER ((gsize) row));
  if (!queued)
    g_hash_table_add (self->shared->wanted, GSIZE_TO_POINTER ((gsize) row));
  g_mutex_unlock (&self->shared->lock);
  if (!queued)
    g_thread_pool_push (self->pool, GSIZE_TO_POINTER ((gsize) row + 1), NULL);
  return NULL;
}

void
gv_thumbnails_cancel (GvThumbnails *self, gint64 row)
{
  g_return_if_fail (GV_IS_THUMBNAILS (self));
  g_mutex_lock (&self->shared->lock);
  g_hash_table_remove (self->shared->wanted, GSIZE_TO_POINTER ((gsize) row));
  g_mutex_unlock (&self->shared->lock);
}

void
gv_thumbnails_cancel_all (GvThumbnails *self)
{
  g_return_if_fail (GV_IS_THUMBNAILS (self));
  g_mutex_lock (&self->shared->lock);
  g_hash_table_remove_all (self->shared->wanted);
  g_mutex_unlock (&self->shared->lock);
}

guint
gv_thumbnails_get_n_pending (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), 0);
  g_mutex_lock (&self->shared->lock);
  guint n = g_hash_table_size (self->shared->wanted);
  g_mutex_unlock (&self->shared->lock);
  return n;
}

guint
gv_thumbnails_get_n_cached (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), 0);
  return g_hash_table_size (self->cache);
}

gsize
gv_thumbnails_get_cached_bytes (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), 0);
  return self->cache_bytes;
}

guint64
gv_thumbnails_get_n_rendered (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), 0);
  g_mutex_lock (&self->shared->lock);
  guint64 n = self->shared->n_rendered;
  g_mutex_unlock (&self->shared->lock);
  return n;
}

guint64
gv_thumbnails_get_n_skipped (GvThumbnails *self)
{
  g_return_val_if_fail (GV_IS_THUMBNAILS (self), 0);
  g_mutex_lock (&self->shared->lock);
  guint64 n = self->shared->n_skipped;
  g_mutex_unlock (&self->shared->lock);
  return n;
}
