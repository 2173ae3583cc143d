/* astroclip-plot.h — the figures of `astroclip eval` (docs/evaluation.md), drawn with cairo
 * into PNG files. Cairo is linked into the trainer only, never into the core library.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  const char *title;    /* first line, bold (e.g. "Redshift · image embeddings · R² = 0.93") */
  const char *subtitle; /* second line, grey; may be NULL */
  const char *x_label;  /* e.g. "true redshift" */
  const char *y_label;  /* e.g. "predicted redshift" */
  /* Lines for a box in the upper-left corner of the axes (R², RMSE, N); NULL-terminated, may
   * be NULL. */
  const char *const *notes;
} AstroclipPlotText;

/* A predicted-against-true figure: square axes sharing one range (the 0.5–99.5 percentiles of
 * truth and predictions together, padded by 5%; points beyond are clipped), ticks inward on
 * all four sides, a dashed 1:1 line, and the n pairs (non-finite pairs skipped) as
 * semi-transparent dots — or, beyond 4000 pairs, a 2-D histogram with a logarithmic colour
 * scale (viridis) and its colour bar. truth [n], predicted [n]. Writes a PNG to `path`. */
gboolean astroclip_plot_predicted_vs_true (const char *path, const double *truth,
                                           const double *predicted, gint64 n,
                                           const AstroclipPlotText *text, GError **error);

G_END_DECLS
