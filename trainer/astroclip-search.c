/* astroclip search — the exact nearest neighbours of one galaxy or a list, in the embedding
 * space, with catalogue columns beside them (docs/embeddings.md). */
#include "astroclip-commands.h"

#include "aclip-catalogue.h"
#include "aclip-embeddings.h"
#include "aclip-parallel.h"
#include "aclip-search.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum
{
  FORMAT_TEXT,
  FORMAT_CSV,
  FORMAT_JSON,
} OutputFormat;

typedef struct
{
  gint64 id;
  gint64 row;
} IdRow;

static int
compare_id_rows (const void *a, const void *b)
{
  const IdRow *x = a, *y = b;
  return (x->id > y->id) - (x->id < y->id);
}

/* The catalogue's IDs sorted, for looking rows up by ID. */
typedef struct
{
  IdRow *entries; /* [n] */
  gint64 n;
} IdTable;

static void
id_table_clear (IdTable *table)
{
  g_clear_pointer (&table->entries, g_free);
  table->n = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (IdTable, id_table_clear)

static gboolean
id_table_load (IdTable *table, AclipCatalogue *catalogue, GError **error)
{
  gint64 n = aclip_catalogue_n_rows (catalogue);
  g_autofree gint64 *ids = g_new (gint64, MAX (n, 1));
  if (n > 0 && !aclip_catalogue_read_ids (catalogue, 0, n, ids, error))
    return FALSE;
  table->entries = g_new (IdRow, MAX (n, 1));
  table->n = n;
  for (gint64 row = 0; row < n; row++)
    table->entries[row] = (IdRow) { ids[row], row };
  qsort (table->entries, n, sizeof (IdRow), compare_id_rows);
  return TRUE;
}

/* The catalogue row of `id`, or −1. */
static gint64
id_table_find (const IdTable *table, gint64 id)
{
  IdRow key = { id, 0 };
  const IdRow *found = bsearch (&key, table->entries, table->n, sizeof (IdRow), compare_id_rows);
  return found ? found->row : -1;
}

static gboolean
parse_int64 (const char *text, gint64 *value)
{
  g_autofree char *stripped = g_strstrip (g_strdup (text));
  return g_ascii_string_to_signed (stripped, 10, G_MININT64, G_MAXINT64, value, NULL);
}

/* IDs from "1,2,3" appended to ids. */
static gboolean
parse_id_list (const char *text, const char *option, GArray *ids, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text, ",", -1);
  for (char **part = parts; *part; part++) {
    gint64 value;
    if (!parse_int64 (*part, &value)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s: “%s” is not an integer"), option, *part);
      return FALSE;
    }
    g_array_append_val (ids, value);
  }
  return TRUE;
}

/* One ID per line; blank lines and lines starting with # are skipped. */
static gboolean
read_ids_file (const char *path, GArray *ids, GError **error)
{
  g_autofree char *contents = NULL;
  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  int number = 0;
  for (char **line = lines; *line; line++) {
    number++;
    char *text = g_strstrip (*line);
    if (*text == '\0' || *text == '#')
      continue;
    gint64 value;
    if (!parse_int64 (text, &value)) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   _("%s, line %d: “%s” is not a galaxy ID"), path, number, text);
      return FALSE;
    }
    g_array_append_val (ids, value);
  }
  if (ids->len == 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, _("%s holds no galaxy IDs"), path);
    return FALSE;
  }
  return TRUE;
}

/* Appends value to line as text: NaN as `nan_text`. */
static void
append_number (GString *line, double value, const char *format, const char *nan_text)
{
  if (!isfinite (value)) {
    g_string_append (line, isnan (value) ? nan_text : (value > 0 ? "inf" : "-inf"));
    return;
  }
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];
  g_string_append (line, g_ascii_formatd (buffer, sizeof buffer, format, value));
}

static void
append_json_string (GString *line, const char *text)
{
  g_string_append_c (line, '"');
  for (const char *c = text; *c; c++) {
    if (*c == '"' || *c == '\\')
      g_string_append_printf (line, "\\%c", *c);
    else if ((unsigned char) *c < 0x20)
      g_string_append_printf (line, "\\u%04x", *c);
    else
      g_string_append_c (line, *c);
  }
  g_string_append_c (line, '"');
}

typedef struct
{
  OutputFormat format;
  AclipSearchMode mode;
  int k;
  char **columns; /* [n_columns] */
  int n_columns;
  AclipCatalogue *catalogue; /* NULL: no columns */
  const IdTable *ids;
  gint64 n_missing; /* neighbours not found in the catalogue */
} Output;

/* values [n_columns] of the galaxy `id`'s catalogue row (NaN when it is not there). */
static gboolean
read_columns (Output *output, gint64 id, double *values, GError **error)
{
  gint64 row = output->catalogue ? id_table_find (output->ids, id) : -1;
  if (output->catalogue && row < 0)
    output->n_missing++;
  for (int c = 0; c < output->n_columns; c++) {
    values[c] = NAN;
    if (row >= 0 &&
        !aclip_catalogue_read_column (output->catalogue, output->columns[c], row, 1, &values[c],
                                      error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
print_query (Output *output, gint64 query_id, const AclipNeighbour *neighbours, int n_found,
             GError **error)
{
  g_autofree double *values = g_new (double, MAX (output->n_columns, 1));
  g_autoptr (GString) line = g_string_new (NULL);
  if (output->format == FORMAT_TEXT) {
    printf (ngettext ("# galaxy %" PRId64 ", %s: %d neighbour\n",
                         "# galaxy %" PRId64 ", %s: %d neighbours\n", n_found),
            query_id, aclip_search_mode_name (output->mode), n_found);
    astroclip_append_column (line, _("rank"), 5);
    g_string_append_c (line, ' ');
    astroclip_append_column (line, _("ID"), 20);
    g_string_append_c (line, ' ');
    astroclip_append_column (line, _("similarity"), 11);
    for (int c = 0; c < output->n_columns; c++)
      g_string_append_printf (line, " %12s", output->columns[c]);
    printf ("%s\n", line->str);
  } else if (output->format == FORMAT_JSON) {
    g_string_printf (line, "{\"query_id\": %" PRId64 ", \"mode\": ", query_id);
    append_json_string (line, aclip_search_mode_name (output->mode));
    g_string_append (line, ", \"neighbours\": [");
  }
  for (int i = 0; i < n_found; i++) {
    const AclipNeighbour *neighbour = &neighbours[i];
    if (!read_columns (output, neighbour->id, values, error))
      return FALSE;
    switch (output->format) {
      case FORMAT_TEXT:
        g_string_printf (line, "%5d %20" PRId64 " ", i + 1, neighbour->id);
        append_number (line, neighbour->similarity, "%11.6f", "nan");
        for (int c = 0; c < output->n_columns; c++) {
          g_string_append_c (line, ' ');
          append_number (line, values[c], "%12.6g", "         nan");
        }
        printf ("%s\n", line->str);
        break;
      case FORMAT_CSV:
        g_string_printf (line, "%" PRId64 ",%d,%" PRId64 ",", query_id, i + 1, neighbour->id);
        append_number (line, neighbour->similarity, "%.9g", "");
        for (int c = 0; c < output->n_columns; c++) {
          g_string_append_c (line, ',');
          append_number (line, values[c], "%.9g", "");
        }
        printf ("%s\n", line->str);
        break;
      case FORMAT_JSON:
        g_string_append_printf (line, "%s{\"rank\": %d, \"id\": %" PRId64 ", \"similarity\": ",
                                i > 0 ? ", " : "", i + 1, neighbour->id);
        append_number (line, neighbour->similarity, "%.9g", "null");
        for (int c = 0; c < output->n_columns; c++) {
          g_string_append (line, ", ");
          append_json_string (line, output->columns[c]);
          g_string_append (line, ": ");
          append_number (line, values[c], "%.9g", "null");
        }
        g_string_append_c (line, '}');
        break;
    }
  }
  if (output->format == FORMAT_JSON)
    printf ("%s]}\n", line->str);
  else if (output->format == FORMAT_TEXT)
    printf ("\n");
  return TRUE;
}

int
astroclip_search_main (int argc, char **argv)
{
  g_autofree char *embeddings_path = NULL, *catalogue_path = NULL, *id_text = NULL,
                  *ids_file = NULL, *mode_name = NULL, *columns_text = NULL, *format_name = NULL;
  gint64 catalogue_row = -1;
  int k = 12, n_threads = 0;
  gboolean include_self = FALSE;
  const GOptionEntry entries[] = {
    { "embeddings", 'e', 0, G_OPTION_ARG_FILENAME, &embeddings_path,
      N_("Embeddings file written by “astroclip embed”"), N_("FILE") },
    { "catalogue", 'c', 0, G_OPTION_ARG_FILENAME, &catalogue_path,
      N_("Catalogue the galaxies come from (for --row and --columns)"), N_("FILE") },
    { "id", 'i', 0, G_OPTION_ARG_STRING, &id_text,
      N_("Galaxy ID to search from (several: comma-separated)"), N_("ID") },
    { "ids-file", 0, 0, G_OPTION_ARG_FILENAME, &ids_file,
      N_("File of galaxy IDs, one per line"), N_("FILE") },
    { "row", 'r', 0, G_OPTION_ARG_INT64, &catalogue_row,
      N_("Search from the galaxy in this catalogue row (0-based)"), N_("N") },
    { "mode", 'm', 0, G_OPTION_ARG_STRING, &mode_name,
      N_("image-image, spectrum-spectrum, image-spectrum, spectrum-image or both "
         "(default image-image)"),
      N_("MODE") },
    { "k", 'k', 0, G_OPTION_ARG_INT, &k, N_("Number of neighbours (default 12)"), N_("K") },
    { "columns", 0, 0, G_OPTION_ARG_STRING, &columns_text,
      N_("Catalogue columns to print, comma-separated (default Z,LOGMSTAR; “” for none)"),
      N_("LIST") },
    { "format", 'f', 0, G_OPTION_ARG_STRING, &format_name,
      N_("Output: text, csv or json (one line per query) (default text)"), N_("FORMAT") },
    { "include-self", 0, 0, G_OPTION_ARG_NONE, &include_self,
      N_("Keep the query galaxy among its neighbours"), NULL },
    { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads,
      N_("Threads (default: one per core)"), N_("N") },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_option_context_set_summary (
      context, _("Finds the galaxies most similar to one galaxy or a list, by cosine similarity "
                 "of their AstroCLIP embeddings (exact search), and prints their ID, similarity "
                 "and catalogue columns."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!astroclip_parse_options (context, &argc, &argv, "search"))
    return 2;

  int n_sources = (id_text != NULL) + (ids_file != NULL) + (catalogue_row >= 0);
  const char *usage = NULL;
  AclipSearchMode mode = ACLIP_SEARCH_IMAGE_IMAGE;
  OutputFormat format = FORMAT_TEXT;
  if (argc > 1)
    usage = _("unexpected arguments; the files are given with --embeddings and --catalogue");
  else if (embeddings_path == NULL)
    usage = _("give the embeddings file with --embeddings");
  else if (n_sources != 1)
    usage = _("give exactly one of --id, --ids-file and --row");
  else if (catalogue_row >= 0 && catalogue_path == NULL)
    usage = _("--row needs --catalogue");
  else if (mode_name && !aclip_search_mode_from_name (mode_name, &mode))
    usage = _("--mode must be image-image, spectrum-spectrum, image-spectrum, spectrum-image "
              "or both");
  else if (k < 1)
    usage = _("--k must be at least 1");
  else if (format_name && strcmp (format_name, "text") != 0 && strcmp (format_name, "csv") != 0 &&
           strcmp (format_name, "json") != 0)
    usage = _("--format must be text, csv or json");
  else if (columns_text && *columns_text && catalogue_path == NULL)
    usage = _("--columns needs --catalogue");
  if (usage) {
    g_printerr ("astroclip search: %s\n", usage);
    g_printerr (_("Try “astroclip %s --help”.\n"), "search");
    return 2;
  }
  if (format_name)
    format = strcmp (format_name, "csv") == 0 ? FORMAT_CSV
             : strcmp (format_name, "json") == 0 ? FORMAT_JSON
                                                 : FORMAT_TEXT;

  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) query_ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  if (id_text && !parse_id_list (id_text, "--id", query_ids, &error)) {
    g_printerr ("astroclip search: %s\n", error->message);
    return 2;
  }
  if (ids_file && !read_ids_file (ids_file, query_ids, &error))
    return astroclip_report_error ("search", error);

  g_autoptr (AclipEmbeddings) embeddings = aclip_embeddings_open (embeddings_path, &error);
  if (embeddings == NULL)
    return astroclip_report_error ("search", error);

  g_autoptr (AclipCatalogue) catalogue = NULL;
  g_auto (IdTable) id_table = { 0 };
  g_autoptr (GPtrArray) columns = g_ptr_array_new_with_free_func (g_free);
  if (catalogue_path) {
    catalogue = aclip_catalogue_open (catalogue_path, &error);
    if (catalogue == NULL || !id_table_load (&id_table, catalogue, &error))
      return astroclip_report_error ("search", error);
    g_auto (GStrv) names = g_strsplit (columns_text ? columns_text : "Z,LOGMSTAR", ",", -1);
    for (char **name = names; *name; name++) {
      g_strstrip (*name);
      if (**name == '\0')
        continue; /* --columns "" prints none */
      if (!aclip_catalogue_has_column (catalogue, *name)) {
        g_autofree char *known =
            g_strjoinv (", ", (char **) aclip_catalogue_numeric_columns (catalogue));
        g_printerr (_("astroclip search: %s has no numeric column %s (it has %s)\n"),
                    catalogue_path, *name, known);
        return 1;
      }
      g_ptr_array_add (columns, g_strdup (*name));
    }
    if (catalogue_row >= 0) {
      if (catalogue_row >= aclip_catalogue_n_rows (catalogue)) {
        g_printerr (_("astroclip search: %s has %" PRId64 " rows; there is no row %" PRId64 "\n"),
                    catalogue_path, aclip_catalogue_n_rows (catalogue), catalogue_row);
        return 1;
      }
      gint64 id;
      if (!aclip_catalogue_read_ids (catalogue, catalogue_row, 1, &id, &error)) {
        return astroclip_report_error ("search", error);
      }
      g_array_append_val (query_ids, id);
    }
    const char *expected = aclip_embeddings_catalogue (embeddings);
    g_autofree char *base = g_path_get_basename (catalogue_path);
    g_autofree char *expected_base = g_path_get_basename (expected);
    if (*expected && strcmp (base, expected_base) != 0)
      g_printerr (_("astroclip search: warning: %s was made from %s, not %s\n"),
                  embeddings_path, expected, catalogue_path);
  }
  int n_columns = (int) columns->len;
  /* Queries: stored rows, their own ID excluded unless --include-self. */
  gint64 n_queries = query_ids->len;
  g_autofree AclipSearchQuery *queries = g_new0 (AclipSearchQuery, n_queries);
  for (gint64 q = 0; q < n_queries; q++) {
    gint64 id = g_array_index (query_ids, gint64, q);
    gint64 row = aclip_embeddings_find (embeddings, id);
    if (row < 0) {
      g_printerr (_("astroclip search: galaxy %" PRId64 " is not in %s\n"), id, embeddings_path);
      return 1;
    }
    aclip_search_query_for_row (&queries[q], embeddings, row, !include_self);
    for (int m = 0; m < ACLIP_N_MODALITIES; m++) {
      const float *vector = m == ACLIP_MODALITY_IMAGE ? queries[q].image : queries[q].spectrum;
      if (aclip_search_mode_uses_query (mode, m) && vector == NULL) {
        g_printerr (_("astroclip search: galaxy %" PRId64 " has no %s embedding in %s, which a "
                      "%s search needs\n"),
                    id, aclip_modality_label (m), embeddings_path, aclip_search_mode_name (mode));
        return 1;
      }
    }
  }

  aclip_set_blas_threads (n_threads);
  g_autoptr (AclipThreadPool) pool = aclip_thread_pool_new (n_threads);
  g_autoptr (AclipSearchIndex) index = aclip_search_index_new (embeddings, pool, &error);
  /* No more neighbours than rows: a huge --k costs no memory. */
  k = (int) MIN ((gint64) k, MAX (aclip_embeddings_n_rows (embeddings), 1));
  g_autofree AclipNeighbour *neighbours = g_new (AclipNeighbour, (gsize) n_queries * k);
  g_autofree int *n_found = g_new (int, n_queries);
  if (index == NULL || !aclip_search (index, pool, ACLIP_SEARCH_KERNEL_AUTO, mode, n_queries,
                                      queries, k, neighbours, n_found, &error)) {
    return astroclip_report_error ("search", error);
  }

  Output output = {
    format, mode, k, (char **) columns->pdata, n_columns, catalogue, &id_table, 0,
  };
  if (format == FORMAT_CSV) {
    g_autoptr (GString) header = g_string_new ("query_id,rank,id,similarity");
    for (int c = 0; c < n_columns; c++)
      g_string_append_printf (header, ",%s", output.columns[c]);
    printf ("%s\n", header->str);
  }
  for (gint64 q = 0; q < n_queries; q++)
    if (!print_query (&output, g_array_index (query_ids, gint64, q), neighbours + q * k,
                      n_found[q], &error)) {
      return astroclip_report_error ("search", error);
    }
  if (output.n_missing > 0)
    g_printerr (ngettext ("astroclip search: warning: %" PRId64
                          " neighbour is not in the catalogue\n",
                          "astroclip search: warning: %" PRId64
                          " neighbours are not in the catalogue\n",
                          (unsigned long) output.n_missing),
                output.n_missing);
  return fflush (stdout) == 0 ? 0 : 1;
}
