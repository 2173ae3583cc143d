/* gv-image-view.c — a zoomable, pannable cutout with stretches and a pixel read-out
 * (gv-image-view.h).
 *
 * The flux cube is rendered once per change of mode, stretch or limits to 8-bit RGB at its
 * native size on the main thread: gv_render_image_u8 takes under a millisecond for a 152×152
 * cutout (measured in test-detail-math's TimeOfALargeCutout: colour 0.9 ms, asinh with
 * percentile limits 0.7 ms, zscale 0.3 ms); the time is logged with
 * G_MESSAGES_DEBUG=galaxy-viewer. Drawing magnifies that
 * small image with cairo's nearest-neighbour filter, because GTK 4.8's texture nodes are
 * always filtered linearly and DS9-like square pixels are what an astronomer expects.
 *
 * The view is kept as the image point (in display pixels from the image's top-left corner) at
 * the centre of the widget, plus the zoom; widget point s maps to image point
 *   i = centre + (s − size/2)/zoom.
 */
#include "gv-image-view.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#define ZOOM_MIN  0.125
#define ZOOM_MAX  64.0
#define ZOOM_STEP G_SQRT2

struct _GvImageView
{
  GtkWidget parent_instance;

  /* The data: 3×height×width nanomaggies, FITS row order. */
  float *flux;
  int height, width;
  double ra, dec, pixscale;

  /* How it is shown. */
  GvImageRendering rendering;
  double low, high; /* limits in use, NaN in colour mode */

  /* The native rendering: H×W×3 bytes, display order, and the same as a cairo surface. */
  guint8 *rgb;
  cairo_surface_t *surface;

  /* The view. */
  double zoom;
  double centre_x, centre_y;
  gboolean fit;
  double drag_centre_x, drag_centre_y;
  double pointer_x, pointer_y; /* last pointer position, widget coordinates, or −1 */
  int hover_x, hover_y;        /* last reported pixel, or −1 */
};

enum
{
  PROP_0,
  PROP_MODE,
  PROP_STRETCH,
  PROP_LIMITS,
  PROP_LOW_PERCENT,
  PROP_HIGH_PERCENT,
  PROP_ZOOM,
  N_PROPS
};

enum
{
  SIGNAL_PIXEL_HOVERED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (GvImageView, gv_image_view, GTK_TYPE_WIDGET)

/* ---------------------------------------------------------------------------------------- */
/* Rendering                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void
rerender (GvImageView *self)
{
  g_clear_pointer (&self->surface, cairo_surface_destroy);
  g_clear_pointer (&self->rgb, g_free);
  self->low = self->high = NAN;

  if (self->flux != NULL) {
    gint64 start = g_get_monotonic_time ();
    gsize n = (gsize) self->height * self->width;

    self->rgb = g_malloc (n * 3);
    gv_render_image_u8 (self->flux, self->height, self->width, &self->rendering, self->rgb,
                        &self->low, &self->high);

    /* cairo's RGB24 is one native-endian 32-bit word per pixel, 0xXXRRGGBB. */
    self->surface = cairo_image_surface_create (CAIRO_FORMAT_RGB24, self->width, self->height);
    cairo_surface_flush (self->surface);
    guint8 *data = cairo_image_surface_get_data (self->surface);
    int stride = cairo_image_surface_get_stride (self->surface);
    for (int y = 0; y < self->height; y++) {
      guint32 *row = (guint32 *) (gpointer) (data + (gsize) y * stride);
      const guint8 *src = self->rgb + (gsize) y * self->width * 3;
      for (int x = 0; x < self->width; x++)
        row[x] = ((guint32) src[3 * x] << 16) | ((guint32) src[3 * x + 1] << 8) | src[3 * x + 2];
    }
    cairo_surface_mark_dirty (self->surface);

    g_debug ("image view: rendered %d×%d (mode %d) in %.2f ms", self->width, self->height,
             self->rendering.mode, (g_get_monotonic_time () - start) / 1000.0);
  }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* ---------------------------------------------------------------------------------------- */
/* The view                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static double
fit_zoom (GvImageView *self)
{
  int ww = gtk_widget_get_width (GTK_WIDGET (self));
  int wh = gtk_widget_get_height (GTK_WIDGET (self));

  if (self->flux == NULL || ww <= 0 || wh <= 0)
    return 1.0;
  return CLAMP (MIN ((double) ww / self->width, (double) wh / self->height), ZOOM_MIN, ZOOM_MAX);
}

/* Keeps some of the image in view: the centre stays within the image. */
static void
clamp_centre (GvImageView *self)
{
  self->centre_x = CLAMP (self->centre_x, 0.0, (double) self->width);
  self->centre_y = CLAMP (self->centre_y, 0.0, (double) self->height);
}

static void
widget_to_image (GvImageView *self, double wx, double wy, double *ix, double *iy)
{
  *ix = self->centre_x + (wx - gtk_widget_get_width (GTK_WIDGET (self)) / 2.0) / self->zoom;
  *iy = self->centre_y + (wy - gtk_widget_get_height (GTK_WIDGET (self)) / 2.0) / self->zoom;
}

void
gv_image_view_set_zoom (GvImageView *self, double zoom, double cx, double cy)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));

  zoom = CLAMP (zoom, ZOOM_MIN, ZOOM_MAX);
  if (cx < 0 || cy < 0) {
    cx = gtk_widget_get_width (GTK_WIDGET (self)) / 2.0;
    cy = gtk_widget_get_height (GTK_WIDGET (self)) / 2.0;
  }
  /* The image point under (cx, cy) stays there. */
  double ix, iy;
  widget_to_image (self, cx, cy, &ix, &iy);
  self->zoom = zoom;
  self->fit = FALSE;
  self->centre_x = ix - (cx - gtk_widget_get_width (GTK_WIDGET (self)) / 2.0) / zoom;
  self->centre_y = iy - (cy - gtk_widget_get_height (GTK_WIDGET (self)) / 2.0) / zoom;
  clamp_centre (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

double
gv_image_view_get_zoom (GvImageView *self)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), 1.0);
  return self->fit ? fit_zoom (self) : self->zoom;
}

void
gv_image_view_zoom_in (GvImageView *self)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  gv_image_view_set_zoom (self, gv_image_view_get_zoom (self) * ZOOM_STEP, -1, -1);
}

void
gv_image_view_zoom_out (GvImageView *self)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  gv_image_view_set_zoom (self, gv_image_view_get_zoom (self) / ZOOM_STEP, -1, -1);
}

void
gv_image_view_zoom_fit (GvImageView *self)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  self->fit = TRUE;
  self->zoom = fit_zoom (self);
  self->centre_x = self->width / 2.0;
  self->centre_y = self->height / 2.0;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
gv_image_view_zoom_actual (GvImageView *self)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  gv_image_view_set_zoom (self, 1.0, -1, -1);
}

static void
pan_by (GvImageView *self, double dx_widget, double dy_widget)
{
  if (self->fit) {
    self->zoom = fit_zoom (self);
    self->fit = FALSE;
  }
  self->centre_x += dx_widget / self->zoom;
  self->centre_y += dy_widget / self->zoom;
  clamp_centre (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
gv_image_view_widget_to_pixel (GvImageView *self, double wx, double wy, int *x, int *y)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), FALSE);

  if (self->flux == NULL)
    return FALSE;
  if (self->fit)
    self->zoom = fit_zoom (self);
  double ix, iy;
  widget_to_image (self, wx, wy, &ix, &iy);
  if (ix < 0 || iy < 0 || ix >= self->width || iy >= self->height)
    return FALSE;
  *x = (int) floor (ix);
  *y = self->height - 1 - (int) floor (iy); /* display row → FITS row */
  return TRUE;
}

gboolean
gv_image_view_get_pixel_info (GvImageView *self, int x, int y, double *ra, double *dec,
                              double flux[3])
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), FALSE);

  if (self->flux == NULL || x < 0 || y < 0 || x >= self->width || y >= self->height)
    return FALSE;
  gv_pixel_to_sky (self->ra, self->dec, self->pixscale, self->width, self->height, x, y, ra, dec);
  if (flux != NULL)
    for (int b = 0; b < 3; b++)
      flux[b] = self->flux[((gsize) b * self->height + y) * self->width + x];
  return TRUE;
}

static void
report_hover (GvImageView *self, int x, int y)
{
  if (x == self->hover_x && y == self->hover_y)
    return;
  self->hover_x = x;
  self->hover_y = y;
  g_signal_emit (self, signals[SIGNAL_PIXEL_HOVERED], 0, x, y);
}

static void
update_hover (GvImageView *self)
{
  int x, y;

  if (self->pointer_x >= 0 &&
      gv_image_view_widget_to_pixel (self, self->pointer_x, self->pointer_y, &x, &y))
    report_hover (self, x, y);
  else
    report_hover (self, -1, -1);
}

/* ---------------------------------------------------------------------------------------- */
/* Input                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static void
on_motion (GtkEventControllerMotion *controller, double x, double y, GvImageView *self)
{
  self->pointer_x = x;
  self->pointer_y = y;
  update_hover (self);
}

static void
on_leave (GtkEventControllerMotion *controller, GvImageView *self)
{
  self->pointer_x = self->pointer_y = -1;
  report_hover (self, -1, -1);
}

static gboolean
on_scroll (GtkEventControllerScroll *controller, double dx, double dy, GvImageView *self)
{
  if (self->flux == NULL || dy == 0)
    return FALSE;
  double factor = pow (ZOOM_STEP, -dy);
  gv_image_view_set_zoom (self, gv_image_view_get_zoom (self) * factor, self->pointer_x,
                          self->pointer_y);
  update_hover (self);
  return TRUE;
}

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, GvImageView *self)
{
  if (self->fit) {
    self->zoom = fit_zoom (self);
    self->fit = FALSE;
  }
  self->drag_centre_x = self->centre_x;
  self->drag_centre_y = self->centre_y;
  gtk_widget_grab_focus (GTK_WIDGET (self));
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "grabbing");
}

static void
on_drag_update (GtkGestureDrag *gesture, double dx, double dy, GvImageView *self)
{
  self->centre_x = self->drag_centre_x - dx / self->zoom;
  self->centre_y = self->drag_centre_y - dy / self->zoom;
  clamp_centre (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_drag_end (GtkGestureDrag *gesture, double dx, double dy, GvImageView *self)
{
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "crosshair");
}

static gboolean
on_key_pressed (GtkEventControllerKey *controller, guint keyval, guint keycode,
                GdkModifierType state, GvImageView *self)
{
  if (state & (GDK_CONTROL_MASK | GDK_ALT_MASK))
    return FALSE;
  double step = 0.1 * MIN (gtk_widget_get_width (GTK_WIDGET (self)),
                           gtk_widget_get_height (GTK_WIDGET (self)));
  switch (keyval) {
    case GDK_KEY_plus:
    case GDK_KEY_equal:
    case GDK_KEY_KP_Add:
      gv_image_view_zoom_in (self);
      return TRUE;
    case GDK_KEY_minus:
    case GDK_KEY_KP_Subtract:
      gv_image_view_zoom_out (self);
      return TRUE;
    case GDK_KEY_0:
    case GDK_KEY_KP_0:
      gv_image_view_zoom_fit (self);
      return TRUE;
    case GDK_KEY_1:
    case GDK_KEY_KP_1:
      gv_image_view_zoom_actual (self);
      return TRUE;
    case GDK_KEY_Left:
      pan_by (self, -step, 0);
      return TRUE;
    case GDK_KEY_Right:
      pan_by (self, step, 0);
      return TRUE;
    case GDK_KEY_Up:
      pan_by (self, 0, -step);
      return TRUE;
    case GDK_KEY_Down:
      pan_by (self, 0, step);
      return TRUE;
    default:
      return FALSE;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* GtkWidget                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void
gv_image_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  GvImageView *self = GV_IMAGE_VIEW (widget);
  int ww = gtk_widget_get_width (widget), wh = gtk_widget_get_height (widget);

  if (ww <= 0 || wh <= 0)
    return;

  /* A neutral dark background, as image viewers use, so faint outskirts read correctly. */
  GdkRGBA background = { 0.12f, 0.12f, 0.12f, 1.0f };
  gtk_snapshot_append_color (snapshot, &background, &GRAPHENE_RECT_INIT (0, 0, ww, wh));
  if (self->surface == NULL)
    return;

  if (self->fit)
    self->zoom = fit_zoom (self);
  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, ww, wh));
  cairo_translate (cr, ww / 2.0 - self->centre_x * self->zoom,
                   wh / 2.0 - self->centre_y * self->zoom);
  cairo_scale (cr, self->zoom, self->zoom);
  cairo_set_source_surface (cr, self->surface, 0, 0);
  cairo_pattern_set_filter (cairo_get_source (cr),
                            self->zoom >= 1.0 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  cairo_rectangle (cr, 0, 0, self->width, self->height);
  cairo_fill (cr);
  cairo_destroy (cr);
}

static void
gv_image_view_size_allocate (GtkWidget *widget, int width, int height, int baseline)
{
  GvImageView *self = GV_IMAGE_VIEW (widget);

  if (self->fit) {
    self->zoom = fit_zoom (self);
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
  }
}

static void
gv_image_view_measure (GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                       int *natural, int *minimum_baseline, int *natural_baseline)
{
  *minimum = 128;
  *natural = 384;
}

/* ---------------------------------------------------------------------------------------- */
/* Public setters                                                                            */
/* ---------------------------------------------------------------------------------------- */

void
gv_image_view_set_image (GvImageView *self, const float *flux, int height, int width, double ra,
                         double dec, double pixscale)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  g_return_if_fail (flux == NULL || (height > 0 && width > 0));

  g_clear_pointer (&self->flux, g_free);
  self->height = self->width = 0;
  if (flux != NULL) {
    self->flux = g_memdup2 (flux, sizeof (float) * 3 * (gsize) height * width);
    self->height = height;
    self->width = width;
  }
  self->ra = ra;
  self->dec = dec;
  self->pixscale = pixscale;
  rerender (self);
  gv_image_view_zoom_fit (self);
  self->hover_x = self->hover_y = -2; /* report afresh */
  update_hover (self);
}

gboolean
gv_image_view_has_image (GvImageView *self)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), FALSE);
  return self->flux != NULL;
}

void
gv_image_view_set_mode (GvImageView *self, GvImageMode mode)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  g_return_if_fail (mode <= GV_IMAGE_MODE_Z);
  if (self->rendering.mode == mode)
    return;
  self->rendering.mode = mode;
  rerender (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODE]);
}

GvImageMode
gv_image_view_get_mode (GvImageView *self)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), GV_IMAGE_MODE_COLOUR);
  return self->rendering.mode;
}

void
gv_image_view_set_stretch (GvImageView *self, AclipStretch stretch)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  g_return_if_fail (stretch <= ACLIP_STRETCH_ASINH);
  if (self->rendering.stretch == stretch)
    return;
  self->rendering.stretch = stretch;
  if (self->rendering.mode != GV_IMAGE_MODE_COLOUR)
    rerender (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STRETCH]);
}

AclipStretch
gv_image_view_get_stretch (GvImageView *self)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), ACLIP_STRETCH_LINEAR);
  return self->rendering.stretch;
}

void
gv_image_view_set_limits (GvImageView *self, AclipLimitsMethod limits)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));
  g_return_if_fail (limits <= ACLIP_LIMITS_ZSCALE);
  if (self->rendering.limits == limits)
    return;
  self->rendering.limits = limits;
  if (self->rendering.mode != GV_IMAGE_MODE_COLOUR)
    rerender (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LIMITS]);
}

AclipLimitsMethod
gv_image_view_get_limits (GvImageView *self)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), ACLIP_LIMITS_MINMAX);
  return self->rendering.limits;
}

void
gv_image_view_set_percentiles (GvImageView *self, double low_percent, double high_percent)
{
  g_return_if_fail (GV_IS_IMAGE_VIEW (self));

  low_percent = CLAMP (low_percent, 0.0, 100.0);
  high_percent = CLAMP (high_percent, 0.0, 100.0);
  gboolean low_changed = low_percent != self->rendering.low_percent;
  gboolean high_changed = high_percent != self->rendering.high_percent;
  if (!low_changed && !high_changed)
    return;
  self->rendering.low_percent = low_percent;
  self->rendering.high_percent = high_percent;
  if (self->rendering.mode != GV_IMAGE_MODE_COLOUR &&
      self->rendering.limits == ACLIP_LIMITS_PERCENTILE)
    rerender (self);
  if (low_changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LOW_PERCENT]);
  if (high_changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HIGH_PERCENT]);
}

gboolean
gv_image_view_get_display_limits (GvImageView *self, double *low, double *high)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), FALSE);
  if (!isfinite (self->low) || !isfinite (self->high))
    return FALSE;
  if (low != NULL)
    *low = self->low;
  if (high != NULL)
    *high = self->high;
  return TRUE;
}

GdkTexture *
gv_image_view_get_texture (GvImageView *self)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), NULL);

  if (self->rgb == NULL)
    return NULL;
  gsize stride = (gsize) self->width * 3;
  g_autoptr (GBytes) bytes = g_bytes_new (self->rgb, stride * self->height);
  return gdk_memory_texture_new (self->width, self->height, GDK_MEMORY_R8G8B8, bytes, stride);
}

gboolean
gv_image_view_save_png (GvImageView *self, const char *path, GError **error)
{
  g_return_val_if_fail (GV_IS_IMAGE_VIEW (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_autoptr (GdkTexture) texture = gv_image_view_get_texture (self);
  if (texture == NULL) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("There is no image to save"));
    return FALSE;
  }
  g_autoptr (GBytes) png = gdk_texture_save_to_png_bytes (texture);
  gsize size;
  const char *data = g_bytes_get_data (png, &size);
  /* g_file_set_contents writes a temporary file and renames it into place. */
  return g_file_set_contents (path, data, (gssize) size, error);
}

/* ---------------------------------------------------------------------------------------- */
/* GObject                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void
gv_image_view_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GvImageView *self = GV_IMAGE_VIEW (object);

  switch (prop_id) {
    case PROP_MODE:
      g_value_set_uint (value, self->rendering.mode);
      break;
    case PROP_STRETCH:
      g_value_set_uint (value, self->rendering.stretch);
      break;
    case PROP_LIMITS:
      g_value_set_uint (value, self->rendering.limits);
      break;
    case PROP_LOW_PERCENT:
      g_value_set_double (value, self->rendering.low_percent);
      break;
    case PROP_HIGH_PERCENT:
      g_value_set_double (value, self->rendering.high_percent);
      break;
    case PROP_ZOOM:
      g_value_set_double (value, gv_image_view_get_zoom (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gv_image_view_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GvImageView *self = GV_IMAGE_VIEW (object);

  switch (prop_id) {
    case PROP_MODE:
      gv_image_view_set_mode (self, (GvImageMode) g_value_get_uint (value));
      break;
    case PROP_STRETCH:
      gv_image_view_set_stretch (self, (AclipStretch) g_value_get_uint (value));
      break;
    case PROP_LIMITS:
      gv_image_view_set_limits (self, (AclipLimitsMethod) g_value_get_uint (value));
      break;
    case PROP_LOW_PERCENT:
      gv_image_view_set_percentiles (self, g_value_get_double (value),
                                     self->rendering.high_percent);
      break;
    case PROP_HIGH_PERCENT:
      gv_image_view_set_percentiles (self, self->rendering.low_percent, g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
gv_image_view_finalize (GObject *object)
{
  GvImageView *self = GV_IMAGE_VIEW (object);

  g_clear_pointer (&self->flux, g_free);
  g_clear_pointer (&self->rgb, g_free);
  g_clear_pointer (&self->surface, cairo_surface_destroy);

  G_OBJECT_CLASS (gv_image_view_parent_class)->finalize (object);
}

static void
gv_image_view_class_init (GvImageViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->get_property = gv_image_view_get_property;
  object_class->set_property = gv_image_view_set_property;
  object_class->finalize = gv_image_view_finalize;
  widget_class->snapshot = gv_image_view_snapshot;
  widget_class->measure = gv_image_view_measure;
  widget_class->size_allocate = gv_image_view_size_allocate;

  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  properties[PROP_MODE] =
      g_param_spec_uint ("mode", NULL, NULL, 0, GV_IMAGE_MODE_Z, GV_IMAGE_MODE_COLOUR, flags);
  properties[PROP_STRETCH] =
      g_param_spec_uint ("stretch", NULL, NULL, 0, ACLIP_STRETCH_ASINH, ACLIP_STRETCH_ASINH, flags);
  properties[PROP_LIMITS] = g_param_spec_uint ("limits", NULL, NULL, 0, ACLIP_LIMITS_ZSCALE,
                                               ACLIP_LIMITS_PERCENTILE, flags);
  properties[PROP_LOW_PERCENT] =
      g_param_spec_double ("low-percent", NULL, NULL, 0.0, 100.0, 0.5, flags);
  properties[PROP_HIGH_PERCENT] =
      g_param_spec_double ("high-percent", NULL, NULL, 0.0, 100.0, 99.5, flags);
  properties[PROP_ZOOM] = g_param_spec_double ("zoom", NULL, NULL, ZOOM_MIN, ZOOM_MAX, 1.0,
                                               G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_PIXEL_HOVERED] =
      g_signal_new ("pixel-hovered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);

  gtk_widget_class_set_css_name (widget_class, "gv-image-view");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
gv_image_view_init (GvImageView *self)
{
  GtkWidget *widget = GTK_WIDGET (self);

  self->rendering.mode = GV_IMAGE_MODE_COLOUR;
  self->rendering.stretch = ACLIP_STRETCH_ASINH;
  self->rendering.limits = ACLIP_LIMITS_PERCENTILE;
  self->rendering.low_percent = 0.5;
  self->rendering.high_percent = 99.5;
  self->low = self->high = NAN;
  self->zoom = 1.0;
  self->fit = TRUE;
  self->pointer_x = self->pointer_y = -1;
  self->hover_x = self->hover_y = -1;

  gtk_widget_set_focusable (widget, TRUE);
  gtk_widget_set_overflow (widget, GTK_OVERFLOW_HIDDEN);
  gtk_widget_set_cursor_from_name (widget, "crosshair");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Galaxy image"), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                  _("Plus and minus zoom, 0 fits, 1 shows one image pixel per "
                                    "screen pixel, arrow keys pan"),
                                  -1);

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "enter", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (widget, motion);

  GtkEventController *scroll =
      gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (widget, scroll);

  GtkGesture *drag = gtk_gesture_drag_new ();
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (on_drag_end), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (drag));

  GtkEventController *keys = gtk_event_controller_key_new ();
  g_signal_connect (keys, "key-pressed", G_CALLBACK (on_key_pressed), self);
  gtk_widget_add_controller (widget, keys);
}

GtkWidget *
gv_image_view_new (void)
{
  return g_object_new (GV_TYPE_IMAGE_VIEW, NULL);
}
