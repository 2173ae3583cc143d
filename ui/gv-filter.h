/* gv-filter.h — filter expressions over a catalogue's numeric columns (GTK-free).
 *
 * What an astronomer types in the grid's filter entry, in the spirit of TOPCAT's row subsets:
 *
 *   Z < 0.2
 *   17 < MAG_R < 18                      (chained: 17 < MAG_R and MAG_R < 18)
 *   Z >= 0.1 && LOGMSTAR > 10
 *   (z < 0.1 or z > 0.3) and not logmstar < 9
 *   FLUX_G / FLUX_R > 0.5
 *   22.5 - 2.5 * log10(FLUX_R) < 19      (functions: abs sqrt log10 ln exp, isnan(x))
 *
 * Grammar, loosest binding first:
 *   or:         and { ("||" | "or") and }
 *   and:        not { ("&&" | "and") not }
 *   not:        ("!" | "not") not | comparison
 *   comparison: sum { ("<" | "<=" | ">" | ">=" | "==" | "=" | "!=" | "<>") sum }
 *   sum:        product { ("+" | "-") product }
 *   product:    unary { ("*" | "/") unary }
 *   unary:      ("-" | "+") unary | number | column | function "(" or ")" | "(" or ")"
 * Column names, keywords and functions are case-insensitive. The whole expression must be a
 * condition (a number alone is an error), logical operators take conditions and arithmetic
 * takes numbers. Any comparison involving NaN (a missing value) is false — including "!=" —
 * so `Z < 0.2` and `Z >= 0.2` both exclude galaxies without a redshift.
 *
 * Errors are GV_FILTER_ERROR with a message naming the 1-based character position.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define GV_FILTER_ERROR (gv_filter_error_quark ())
GQuark gv_filter_error_quark (void);

typedef enum
{
  GV_FILTER_ERROR_SYNTAX,         /* not a well-formed expression */
  GV_FILTER_ERROR_UNKNOWN_COLUMN, /* a name that is neither a column nor a function */
  GV_FILTER_ERROR_TYPE,           /* a number where a condition is needed, or the reverse */
} GvFilterError;

/* Resolves a column name (as typed) to its n_rows values, or NULL when there is no such
 * column. The arrays must outlive the filter. */
typedef const double *(*GvFilterLookupFunc) (const char *name, gpointer user_data);

typedef struct _GvFilter GvFilter;

#define GV_TYPE_FILTER (gv_filter_get_type ())
GType gv_filter_get_type (void) G_GNUC_CONST;

/* Parses `expression` and binds its column names through `lookup`. NULL with an error when
 * the expression is malformed or names an unknown column. */
GvFilter *gv_filter_new (const char *expression, GvFilterLookupFunc lookup, gpointer user_data,
                         GError **error);
GvFilter *gv_filter_ref (GvFilter *filter);
void gv_filter_unref (GvFilter *filter);

/* The text it was parsed from. */
const char *gv_filter_get_expression (GvFilter *filter);
/* TRUE when the text is empty or only white space: no filter at all, not an error. */
gboolean gv_filter_text_is_blank (const char *expression);

/* Whether the row satisfies the condition. Thread-safe (the filter is immutable). */
gboolean gv_filter_matches (GvFilter *filter, gint64 row);
/* Keeps the rows of `rows` (n_rows row numbers) that match, in order, writing them to
 * `matched` (may be `rows` itself); returns how many. */
gsize gv_filter_select (GvFilter *filter, const gint64 *rows, gsize n_rows, gint64 *matched);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GvFilter, gv_filter_unref)

G_END_DECLS
