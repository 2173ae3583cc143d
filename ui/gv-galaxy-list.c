/* gv-galaxy-list.c — the sorted, filtered list of a catalogue's rows (gv-galaxy-list.h).
 *
 * Data: `sorted` holds every row number in the sort order (n_total); `shown` the subset the
 * filter keeps, in the same order (n_shown); `position` maps a row to its index in `shown`
 * (or −1), for selecting a galaxy by row or ID.
 */
#include "gv-galaxy-list.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Items ------------------------------------------------------------------------------------ */

struct _GvGalaxyItem
{
  GObject parent_instance;
  gint64 row, id;
  double z;
};

G_DEFINE_FINAL_TYPE (GvGalaxyItem, gv_galaxy_item, G_TYPE_OBJECT)

enum
{
  ITEM_PROP_0,
  ITEM_PROP_ROW,
  ITEM_PROP_ID,
  ITEM_PROP_Z,
  ITEM_N_PROPS
};
static GParamSpec *item_properties[ITEM_N_PROPS];

static void
gv_galaxy_item_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GvGalaxyItem *self = GV_GALAXY_ITEM (object);
  switch (prop_id)
    {
    case ITEM_PROP_ROW:
      g_value_set_int64 (value, self->row);
      break;
    case ITEM_PROP_ID:
      g_value_set_int64 (value, self->id);
      break;
    case ITEM_PROP_Z:
      g_value_set_double (value, self->z);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gv_galaxy_item_class_init (GvGalaxyItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->get_property = gv_galaxy_item_get_property;
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;
  item_properties[ITEM_PROP_ROW] = g_param_spec_int64 ("row", NULL, NULL, 0, G_MAXINT64, 0, flags);
  item_properties[ITEM_PROP_ID]
      = g_param_spec_int64 ("id", NULL, NULL, G_MININT64, G_MAXINT64, 0, flags);
  item_properties[ITEM_PROP_Z]
      = g_param_spec_double ("z", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, flags);
  g_object_class_install_properties (object_class, ITEM_N_PROPS, item_properties);
}

static void
gv_galaxy_item_init (GvGalaxyItem *self)
{
  self->z = NAN;
}

gint64
gv_galaxy_item_get_row (GvGalaxyItem *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_ITEM (self), -1);
  return self->row;
}

gint64
gv_galaxy_item_get_id (GvGalaxyItem *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_ITEM (self), -1);
  return self->id;
}

double
gv_galaxy_item_get_z (GvGalaxyItem *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_ITEM (self), NAN);
  return self->z;
}

/* The list ------------------------------------------------------------------------------- */

struct _GvGalaxyList
{
  GObject parent_instance;

  GvCatalogue *catalogue; /* or NULL */
  guint n_total, n_shown;
  gint64 *sorted;   /* n_total rows in sort order */
  gint64 *shown;    /* n_shown rows */
  gint32 *position; /* n_total: index in shown, or −1 */
  char *sort_column;
  gboolean descending;
  GvFilter *filter;
};

static void gv_galaxy_list_model_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (GvGalaxyList, gv_galaxy_list, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL,
                                                      gv_galaxy_list_model_init))

enum
{
  PROP_0,
  PROP_N_SHOWN,
  PROP_N_TOTAL,
  N_PROPS
};
static GParamSpec *properties[N_PROPS];

static GType
gv_galaxy_list_get_item_type (GListModel *model)
{
  (void) model;
  return GV_TYPE_GALAXY_ITEM;
}

static guint
gv_galaxy_list_get_n_items (GListModel *model)
{
  return GV_GALAXY_LIST (model)->n_shown;
}

static gpointer
gv_galaxy_list_get_item (GListModel *model, guint position)
{
  GvGalaxyList *self = GV_GALAXY_LIST (model);
  if (position >= self->n_shown)
    return NULL;

  GvGalaxyItem *item = g_object_new (GV_TYPE_GALAXY_ITEM, NULL);
  item->row = self->shown[position];
  item->id = gv_catalogue_get_ids (self->catalogue)[item->row];
  const double *z = gv_catalogue_get_column (self->catalogue, "Z");
  item->z = z != NULL ? z[item->row] : NAN;
  return item;
}

static void
gv_galaxy_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = gv_galaxy_list_get_item_type;
  iface->get_n_items = gv_galaxy_list_get_n_items;
  iface->get_item = gv_galaxy_list_get_item;
}

static void
gv_galaxy_list_finalize (GObject *object)
{
  GvGalaxyList *self = GV_GALAXY_LIST (object);
  g_clear_object (&self->catalogue);
  g_free (self->sorted);
  g_free (self->shown);
  g_free (self->position);
  g_free (self->sort_column);
  g_clear_pointer (&self->filter, gv_filter_unref);
  G_OBJECT_CLASS (gv_galaxy_list_parent_class)->finalize (object);
}

static void
gv_galaxy_list_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GvGalaxyList *self = GV_GALAXY_LIST (object);
  switch (prop_id)
    {
    case PROP_N_SHOWN:
      g_value_set_uint (value, self->n_shown);
      break;
    case PROP_N_TOTAL:
      g_value_set_uint (value, self->n_total);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gv_galaxy_list_class_init (GvGalaxyListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->finalize = gv_galaxy_list_finalize;
  object_class->get_property = gv_galaxy_list_get_property;
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;
  properties[PROP_N_SHOWN] = g_param_spec_uint ("n-shown", NULL, NULL, 0, G_MAXUINT, 0, flags);
  properties[PROP_N_TOTAL] = g_param_spec_uint ("n-total", NULL, NULL, 0, G_MAXUINT, 0, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gv_galaxy_list_init (GvGalaxyList *self)
{
  (void) self;
}

/* Recomputes `shown` and `position` from `sorted` and the filter, and tells the views. */
static void
refilter (GvGalaxyList *self)
{
  guint old_n_shown = self->n_shown;
  if (self->filter != NULL)
    self->n_shown
        = (guint) gv_filter_select (self->filter, self->sorted, self->n_total, self->shown);
  else
    {
      if (self->n_total > 0)
        memcpy (self->shown, self->sorted, self->n_total * sizeof (gint64));
      self->n_shown = self->n_total;
    }
  for (guint r = 0; r < self->n_total; r++)
    self->position[r] = -1;
  for (guint i = 0; i < self->n_shown; i++)
    self->position[self->shown[i]] = (gint32) i;

  g_list_model_items_changed (G_LIST_MODEL (self), 0, old_n_shown, self->n_shown);
  if (old_n_shown != self->n_shown)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_SHOWN]);
}

typedef struct
{
  double key;
  gint64 row;
} KeyRow;

static int
compare_ascending (const void *a, const void *b)
{
  const KeyRow *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->row < y->row ? -1 : (x->row > y->row);
}

static int
compare_descending (const void *a, const void *b)
{
  const KeyRow *x = a, *y = b;
  if (x->key != y->key)
    return x->key > y->key ? -1 : 1;
  return x->row < y->row ? -1 : (x->row > y->row);
}

/* Fills `sorted` by the sort column: finite and infinite values sorted, NaN rows after them
 * in file order. Sorting (key, row) pairs keeps the comparisons in cache. */
static void
resort (GvGalaxyList *self)
{
  const double *values
      = self->sort_column != NULL ? gv_catalogue_get_column (self->catalogue, self->sort_column)
                                  : NULL;
  if (values == NULL)
    {
      for (guint r = 0; r < self->n_total; r++)
        self->sorted[r] = r;
      return;
    }

  KeyRow *pairs = g_new (KeyRow, MAX (self->n_total, 1));
  guint n_keyed = 0, n_missing = 0;
  for (guint r = 0; r < self->n_total; r++)
    if (!isnan (values[r]))
      pairs[n_keyed++] = (KeyRow) { values[r], r };
    else
      self->sorted[self->n_total - 1 - n_missing++] = r; /* reversed; fixed below */
  qsort (pairs, n_keyed, sizeof *pairs, self->descending ? compare_descending : compare_ascending);
  for (guint i = 0; i < n_keyed; i++)
    self->sorted[i] = pairs[i].row;
  /* The NaN rows were stored from the end backwards: put them back in file order. */
  for (guint i = 0; i < n_missing / 2; i++)
    {
      gint64 *a = &self->sorted[n_keyed + i], *b = &self->sorted[self->n_total - 1 - i];
      gint64 t = *a;
      *a = *b;
      *b = t;
    }
  g_free (pairs);
}

GvGalaxyList *
gv_galaxy_list_new (GvCatalogue *catalogue)
{
  g_return_val_if_fail (catalogue == NULL || GV_IS_CATALOGUE (catalogue), NULL);
  GvGalaxyList *self = g_object_new (GV_TYPE_GALAXY_LIST, NULL);
  gv_galaxy_list_set_catalogue (self, catalogue);
  return self;
}

GvCatalogue *
gv_galaxy_list_get_catalogue (GvGalaxyList *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), NULL);
  return self->catalogue;
}

void
gv_galaxy_list_set_catalogue (GvGalaxyList *self, GvCatalogue *catalogue)
{
  g_return_if_fail (GV_IS_GALAXY_LIST (self));
  g_return_if_fail (catalogue == NULL || GV_IS_CATALOGUE (catalogue));

  guint old_n_total = self->n_total;
  g_set_object (&self->catalogue, catalogue);
  g_clear_pointer (&self->filter, gv_filter_unref);
  g_clear_pointer (&self->sort_column, g_free);
  self->descending = FALSE;

  gint64 n = catalogue != NULL ? gv_catalogue_get_n_rows (catalogue) : 0;
  /* GListModel positions are guint and `position` is gint32: 2^31 rows is far beyond what a
   * grid can browse anyway. */
  self->n_total = (guint) CLAMP (n, 0, G_MAXINT32);
  g_free (self->sorted);
  g_free (self->shown);
  g_free (self->position);
  self->sorted = g_new (gint64, MAX (self->n_total, 1));
  self->shown = g_new (gint64, MAX (self->n_total, 1));
  self->position = g_new (gint32, MAX (self->n_total, 1));
  resort (self);
  refilter (self);
  if (old_n_total != self->n_total)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_TOTAL]);
}

gboolean
gv_galaxy_list_set_sort (GvGalaxyList *self, const char *column, gboolean descending)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), FALSE);

  if (column != NULL
      && (self->catalogue == NULL || gv_catalogue_get_column (self->catalogue, column) == NULL))
    return FALSE;
  g_free (self->sort_column);
  self->sort_column = g_strdup (column);
  self->descending = column != NULL && descending;
  resort (self);
  refilter (self);
  return TRUE;
}

const char *
gv_galaxy_list_get_sort_column (GvGalaxyList *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), NULL);
  return self->sort_column;
}

gboolean
gv_galaxy_list_get_sort_descending (GvGalaxyList *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), FALSE);
  return self->descending;
}

void
gv_galaxy_list_set_filter (GvGalaxyList *self, GvFilter *filter)
{
  g_return_if_fail (GV_IS_GALAXY_LIST (self));
  if (filter == self->filter)
    return;
  if (filter != NULL)
    gv_filter_ref (filter);
  g_clear_pointer (&self->filter, gv_filter_unref);
  self->filter = filter;
  refilter (self);
}

GvFilter *
gv_galaxy_list_get_filter (GvGalaxyList *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), NULL);
  return self->filter;
}

static const double *
lookup_catalogue_column (const char *name, gpointer catalogue)
{
  return gv_catalogue_get_column (catalogue, name);
}

GvFilter *
gv_catalogue_parse_filter (GvCatalogue *catalogue, const char *text, GError **error)
{
  g_return_val_if_fail (GV_IS_CATALOGUE (catalogue), NULL);
  return gv_filter_new (text, lookup_catalogue_column, catalogue, error);
}

gboolean
gv_galaxy_list_set_filter_text (GvGalaxyList *self, const char *text, GError **error)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (gv_filter_text_is_blank (text) || self->catalogue == NULL)
    {
      gv_galaxy_list_set_filter (self, NULL);
      return TRUE;
    }
  g_autoptr (GvFilter) filter = gv_catalogue_parse_filter (self->catalogue, text, error);
  if (filter == NULL)
    return FALSE;
  gv_galaxy_list_set_filter (self, filter);
  return TRUE;
}

guint
gv_galaxy_list_get_n_shown (GvGalaxyList *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), 0);
  return self->n_shown;
}

guint
gv_galaxy_list_get_n_total (GvGalaxyList *self)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), 0);
  return self->n_total;
}

gint64
gv_galaxy_list_get_row (GvGalaxyList *self, guint position)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), -1);
  return position < self->n_shown ? self->shown[position] : -1;
}

gint64
gv_galaxy_list_find_row (GvGalaxyList *self, gint64 row)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), -1);
  if (row < 0 || row >= self->n_total)
    return -1;
  return self->position[row];
}

const gint64 *
gv_galaxy_list_get_rows (GvGalaxyList *self, guint *n_rows)
{
  g_return_val_if_fail (GV_IS_GALAXY_LIST (self), NULL);
  if (n_rows != NULL)
    *n_rows = self->n_shown;
  return self->shown;
}
