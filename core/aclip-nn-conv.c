/* aclip-nn-conv.c — convolutional kernels (see aclip-nn-conv.h and docs/kernels.md).
 *
 * The convolution is im2col + one OpenBLAS sgemm per group of images: the im2col matrix has a
 * row per (ic, kh, kw) and a column per (image, oh, ow), so a group of n images becomes one
 * [OC, K] × [K, n·OH·OW] product, wide enough for sgemm to run near peak even when the
 * feature maps are small (a ResNet's last stage has 2×2 maps). im2col, col2im, the
 * normalisations and the pooling run on the project's pool; sgemm runs between those loops on
 * OpenBLAS's own threads.
 */
#include "aclip-nn-conv.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- Small helpers ---- */

/* Four floats: one SSE register on the x86-64 baseline the project compiles for. GCC's -O2
 * does not vectorise loops of unknown length, so the hot loops work on vector-extension
 * values explicitly; every lane goes through the same operations as the scalar tails, and no
 * result depends on where a parallel chunk starts. */
typedef float Float4 __attribute__ ((vector_size (16)));

static inline Float4
load4 (const float *source)
{
  Float4 value;
  memcpy (&value, source, sizeof value);
  return value;
}

static inline void
store4 (float *destination, Float4 value)
{
  memcpy (destination, &value, sizeof value);
}

/* The sums below run in float over blocks short enough to stay accurate, with eight
 * independent partial sums (two vectors), and in double across blocks; the order is fixed by
 * n alone. */
#define SUM_BLOCK 256

static double
sum_lanes (Float4 low, Float4 high, float tail)
{
  float lanes[8];
  store4 (lanes, low);
  store4 (lanes + 4, high);
  double total = tail;
  for (int j = 0; j < 8; j++)
    total += lanes[j];
  return total;
}

static double
sum_of (const float *values, gint64 n)
{
  double total = 0.0;
  for (gint64 start = 0; start < n; start += SUM_BLOCK) {
    gint64 stop = MIN (n, start + SUM_BLOCK), i = start;
    Float4 low = { 0 }, high = { 0 };
    for (; i + 8 <= stop; i += 8) {
      low += load4 (values + i);
      high += load4 (values + i + 4);
    }
    float tail = 0.0f;
    for (; i < stop; i++)
      tail += values[i];
    total += sum_lanes (low, high, tail);
  }
  return total;
}

/* Σ (values − centre)². */
static double
sum_of_squared_deviations (const float *values, gint64 n, float centre)
{
  double total = 0.0;
  for (gint64 start = 0; start < n; start += SUM_BLOCK) {
    gint64 stop = MIN (n, start + SUM_BLOCK), i = start;
    Float4 low = { 0 }, high = { 0 };
    for (; i + 8 <= stop; i += 8) {
      Float4 a = load4 (values + i) - centre, b = load4 (values + i + 4) - centre;
      low += a * a;
      high += b * b;
    }
    float tail = 0.0f;
    for (; i < stop; i++)
      tail += (values[i] - centre) * (values[i] - centre);
    total += sum_lanes (low, high, tail);
  }
  return total;
}

/* Σ weights · (values − centre). */
static double
sum_of_products (const float *weights, const float *values, gint64 n, float centre)
{
  double total = 0.0;
  for (gint64 start = 0; start < n; start += SUM_BLOCK) {
    gint64 stop = MIN (n, start + SUM_BLOCK), i = start;
    Float4 low = { 0 }, high = { 0 };
    for (; i + 8 <= stop; i += 8) {
      low += load4 (weights + i) * (load4 (values + i) - centre);
      high += load4 (weights + i + 4) * (load4 (values + i + 4) - centre);
    }
    float tail = 0.0f;
    for (; i < stop; i++)
      tail += weights[i] * (values[i] - centre);
    total += sum_lanes (low, high, tail);
  }
  return total;
}

/* out[i] = (in[i] − centre)·scale + shift */
static void
affine_row (float *out, const float *in, gint64 n, float centre, float scale, float shift)
{
  gint64 i = 0;
  for (; i + 4 <= n; i += 4)
    store4 (out + i, (load4 (in + i) - centre) * scale + shift);
  for (; i < n; i++)
    out[i] = (in[i] - centre) * scale + shift;
}

/* dx[i] += dy_scale·dy[i] + centred_scale·(x[i] − centre) + shift */
static void
normalisation_gradient_row (float *dx, const float *dy, const float *x, gint64 n, float dy_scale,
                            float centred_scale, float centre, float shift)
{
  gint64 i = 0;
  for (; i + 4 <= n; i += 4)
    store4 (dx + i, load4 (dx + i) + (dy_scale * load4 (dy + i) +
                                      centred_scale * (load4 (x + i) - centre) + shift));
  for (; i < n; i++)
    dx[i] += dy_scale * dy[i] + centred_scale * (x[i] - centre) + shift;
}

/* Items per parallel chunk below which a loop is not worth splitting. */
static gint64
grain_for (gint64 work_per_item)
{
  const gint64 minimum_work = 16384;
  return MAX ((gint64) 1, minimum_work / MAX (work_per_item, (gint64) 1));
}

/* ---- 2-D convolution ---- */

int
aclip_conv2d_out_height (const AclipConv2dShape *shape)
{
  return (shape->in_height + 2 * shape->pad_height - shape->kernel_height) / shape->stride_height +
         1;
}

int
aclip_conv2d_out_width (const AclipConv2dShape *shape)
{
  return (shape->in_width + 2 * shape->pad_width - shape->kernel_width) / shape->stride_width + 1;
}

static gboolean winograd_applies (const AclipConv2dShape *shape);

static gboolean
conv2d_shape_is_valid (const AclipConv2dShape *shape)
{
  if (shape->algorithm == ACLIP_CONV_WINOGRAD && !winograd_applies (shape))
    return FALSE;
  return shape->batch > 0 && shape->in_channels > 0 && shape->in_height > 0 &&
         shape->in_width > 0 && shape->out_channels > 0 && shape->kernel_height > 0 &&
         shape->kernel_width > 0 && shape->stride_height > 0 && shape->stride_width > 0 &&
         shape->pad_height >= 0 && shape->pad_width >= 0 && shape->images_per_gemm >= 0 &&
         shape->in_height + 2 * shape->pad_height >= shape->kernel_height &&
         shape->in_width + 2 * shape->pad_width >= shape->kernel_width;
}

/* Columns per sgemm the automatic choice aims for: past a few thousand, sgemm's speed no
 * longer grows while the im2col matrix keeps growing out of the caches. */
#define CONV_TARGET_COLUMNS 2048

static int
conv2d_images_per_gemm (const AclipConv2dShape *shape)
{
  if (shape->images_per_gemm > 0)
    return MIN (shape->images_per_gemm, shape->batch);
  gint64 pixels = (gint64) aclip_conv2d_out_height (shape) * aclip_conv2d_out_width (shape);
  gint64 images = (CONV_TARGET_COLUMNS + pixels - 1) / pixels;
  return (int) CLAMP (images, 1, shape->batch);
}

/* A 1×1 convolution with stride 1 and no padding: one image's input [IC, H·W] is already its
 * im2col matrix. */
static gboolean
conv2d_is_pointwise (const AclipConv2dShape *shape)
{
  return shape->kernel_height == 1 && shape->kernel_width == 1 && shape->stride_height == 1 &&
         shape->stride_width == 1 && shape->pad_height == 0 && shape->pad_width == 0;
}

static gsize
im2col_workspace_size (const AclipConv2dShape *shape)
{
  gsize rows = (gsize) shape->in_channels * shape->kernel_height * shape->kernel_width;
  gsize pixels = (gsize) aclip_conv2d_out_height (shape) * aclip_conv2d_out_width (shape);
  gsize images = (gsize) conv2d_images_per_gemm (shape);
  gsize columns = images * pixels;
  /* The product matrix is only needed when several images share an sgemm: with one image
   * the product is the output (or doutput) itself. */
  return rows * columns + (images > 1 ? (gsize) shape->out_channels * columns : 0);
}

/* The output columns [first, last) for which the input column ow·stride − pad + k lies
 * inside [0, size). */
static void
valid_output_range (int size, int out_size, int stride, int pad, int k, int *first, int *last)
{
  int offset = k - pad; /* input column of output column 0 */
  int low = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int high = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  *first = MIN (low, out_size);
  *last = CLAMP (high, *first, out_size);
}

typedef struct
{
  const AclipConv2dShape *shape;
  int out_height, out_width;
  int n_images;           /* images in this group */
  const float *images;    /* [n_images, IC, H, W]: the group's first image */
  float *columns;         /* [IC·KH·KW, n_images·OH·OW] */
  float *image_gradients; /* col2im: [n_images, IC, H, W] (+=) */
} Im2colTask;

/* Items are (image in group, input channel); each fills the KH·KW rows of its channel within
 * its image's block of columns. */
static void
im2col_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const Im2colTask *task = data;
  const AclipConv2dShape *s = task->shape;
  int OH = task->out_height, OW = task->out_width, H = s->in_height, W = s->in_width;
  gint64 pixels = (gint64) OH * OW;
  gint64 row_length = pixels * task->n_images;
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / s->in_channels;
    int channel = (int) (item % s->in_channels);
    const float *plane = task->images + (image * s->in_channels + channel) * H * W;
    for (int kh = 0; kh < s->kernel_height; kh++)
      for (int kw = 0; kw < s->kernel_width; kw++) {
        gint64 row = ((gint64) channel * s->kernel_height + kh) * s->kernel_width + kw;
        float *out = task->columns + row * row_length + image * pixels;
        int first, last;
        valid_output_range (W, OW, s->stride_width, s->pad_width, kw, &first, &last);
        int column_offset = kw - s->pad_width;
        for (int oh = 0; oh < OH; oh++, out += OW) {
          int ih = oh * s->stride_height - s->pad_height + kh;
          if (ih < 0 || ih >= H) {
            memset (out, 0, sizeof (float) * OW);
            continue;
          }
          const float *source = plane + (gint64) ih * W;
          for (int ow = 0; ow < first; ow++)
            out[ow] = 0.0f;
          if (s->stride_width == 1) {
            memcpy (out + first, source + first + column_offset, sizeof (float) * (last - first));
          } else {
            for (int ow = first; ow < last; ow++)
              out[ow] = source[ow * s->stride_width + column_offset];
          }
          for (int ow = last; ow < OW; ow++)
            out[ow] = 0.0f;
        }
      }
  }
}

/* The adjoint of im2col_items: adds each column entry back to the input pixel it came from.
 * Each item touches only its own (image, channel) plane, in a fixed order. */
static void
col2im_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const Im2colTask *task = data;
  const AclipConv2dShape *s = task->shape;
  int OH = task->out_height, OW = task->out_width, H = s->in_height, W = s->in_width;
  gint64 pixels = (gint64) OH * OW;
  gint64 row_length = pixels * task->n_images;
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / s->in_channels;
    int channel = (int) (item % s->in_channels);
    float *plane = task->image_gradients + (image * s->in_channels + channel) * H * W;
    for (int kh = 0; kh < s->kernel_height; kh++)
      for (int kw = 0; kw < s->kernel_width; kw++) {
        gint64 row = ((gint64) channel * s->kernel_height + kh) * s->kernel_width + kw;
        const float *in = task->columns + row * row_length + image * pixels;
        int first, last;
        valid_output_range (W, OW, s->stride_width, s->pad_width, kw, &first, &last);
        int column_offset = kw - s->pad_width;
        for (int oh = 0; oh < OH; oh++, in += OW) {
          int ih = oh * s->stride_height - s->pad_height + kh;
          if (ih < 0 || ih >= H)
            continue;
          float *target = plane + (gint64) ih * W + column_offset;
          if (s->stride_width == 1) {
            for (int ow = first; ow < last; ow++)
              target[ow] += in[ow];
          } else {
            for (int ow = first; ow < last; ow++)
              target[ow * s->stride_width] += in[ow];
          }
        }
      }
  }
}

/* Moves planes between the product layout [OC, n·P] and the image layout [n, OC, P]. */
typedef struct
{
  int n_images, channels;
  gint64 pixels;
  const float *product; /* [OC, n·P] */
  float *images;        /* [n, OC, P] (written, or biased in place) */
  const float *bias;    /* [OC] or NULL: added when scattering */
} ScatterTask;

typedef struct
{
  int n_images, channels;
  gint64 pixels;
  float *product;      /* [OC, n·P] (written) */
  const float *images; /* [n, OC, P] */
} GatherTask;

/* Items are (image, channel). */
static void
scatter_product_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ScatterTask *task = data;
  gint64 P = task->pixels;
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / task->channels;
    int channel = (int) (item % task->channels);
    const float *from = task->product + ((gint64) channel * task->n_images + image) * P;
    float *to = task->images + item * P;
    float shift = task->bias ? task->bias[channel] : 0.0f;
    for (gint64 p = 0; p < P; p++)
      to[p] = from[p] + shift;
  }
}

static void
gather_product_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const GatherTask *task = data;
  gint64 P = task->pixels;
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / task->channels;
    int channel = (int) (item % task->channels);
    memcpy (task->product + ((gint64) channel * task->n_images + image) * P,
            task->images + item * P, sizeof (float) * P);
  }
}

/* Items are (image, channel) planes of [n, OC, P]. */
static void
add_bias_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ScatterTask *task = data;
  gint64 P = task->pixels;
  for (gint64 item = begin; item < end; item++) {
    float shift = task->bias[item % task->channels];
    float *plane = task->images + item * P;
    for (gint64 p = 0; p < P; p++)
      plane[p] += shift;
  }
}

static void
im2col_conv2d_forward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *output,
                       const float *input, const float *weight, const float *bias, float *workspace)
{
  int OH = aclip_conv2d_out_height (shape), OW = aclip_conv2d_out_width (shape);
  int IC = shape->in_channels, OC = shape->out_channels;
  gint64 P = (gint64) OH * OW;
  gint64 K = (gint64) IC * shape->kernel_height * shape->kernel_width;
  gint64 image_size = (gint64) IC * shape->in_height * shape->in_width;
  int group_size = conv2d_images_per_gemm (shape);
  gboolean pointwise = conv2d_is_pointwise (shape);

  for (int first = 0; first < shape->batch; first += group_size) {
    int n = MIN (group_size, shape->batch - first);
    gint64 N = n * P;
    const float *images = input + first * image_size;
    float *outputs = output + first * OC * P;

    const float *columns; /* [K, N] */
    if (pointwise && n == 1) {
      columns = images;
    } else {
      Im2colTask task = { shape, OH, OW, n, images, workspace, NULL };
      aclip_parallel_for (pool, (gint64) n * IC, grain_for (K / IC * P), im2col_items, &task);
      columns = workspace;
    }

    /* With one image the product [OC, P] is the output itself; with several it goes to the
     * workspace after the im2col matrix and is scattered to [n, OC, P]. */
    float *product = n == 1 ? outputs : workspace + K * N;
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int) N, (int) K, 1.0f, weight,
                 (int) K, columns, (int) N, 0.0f, product, (int) N);

    ScatterTask scatter = { n, OC, P, product, outputs, bias };
    if (n > 1)
      aclip_parallel_for (pool, (gint64) n * OC, grain_for (P), scatter_product_items, &scatter);
    else if (bias != NULL)
      aclip_parallel_for (pool, OC, grain_for (P), add_bias_items, &scatter);
  }
}

typedef struct
{
  float *dbias;         /* [OC] (+=) */
  const float *doutput; /* [B, OC, P] */
  int batch, channels;
  gint64 pixels;
} BiasGradientTask;

/* Items are output channels; each sums its planes in image order. */
static void
bias_gradient_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const BiasGradientTask *task = data;
  for (gint64 channel = begin; channel < end; channel++) {
    double total = 0.0;
    for (int image = 0; image < task->batch; image++)
      total += sum_of (task->doutput + ((gint64) image * task->channels + channel) * task->pixels,
                       task->pixels);
    task->dbias[channel] += (float) total;
  }
}

/* The input and weight gradients (the bias gradient is common to both algorithms). */
static void
im2col_conv2d_backward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *dinput,
                        float *dweight, const float *doutput, const float *input,
                        const float *weight, float *workspace)
{
  int OH = aclip_conv2d_out_height (shape), OW = aclip_conv2d_out_width (shape);
  int IC = shape->in_channels, OC = shape->out_channels;
  gint64 P = (gint64) OH * OW;
  gint64 K = (gint64) IC * shape->kernel_height * shape->kernel_width;
  gint64 image_size = (gint64) IC * shape->in_height * shape->in_width;
  int group_size = conv2d_images_per_gemm (shape);
  gboolean pointwise = conv2d_is_pointwise (shape);

  for (int first = 0; first < shape->batch; first += group_size) {
    int n = MIN (group_size, shape->batch - first);
    gint64 N = n * P;
    const float *images = input ? input + first * image_size : NULL;

    /* The output gradient as a [OC, N] matrix. */
    const float *product;
    if (n == 1) {
      product = doutput + first * OC * P;
    } else {
      float *gathered = workspace + K * N;
      GatherTask gather = { n, OC, P, gathered, doutput + first * OC * P };
      aclip_parallel_for (pool, (gint64) n * OC, grain_for (P), gather_product_items, &gather);
      product = gathered;
    }

    if (dweight != NULL) {
      /* dweight[OC, K] += product[OC, N] · columnsᵀ[N, K] */
      const float *columns;
      if (pointwise && n == 1) {
        columns = images;
      } else {
        Im2colTask task = { shape, OH, OW, n, images, workspace, NULL };
        aclip_parallel_for (pool, (gint64) n * IC, grain_for (K / IC * P), im2col_items, &task);
        columns = workspace;
      }
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, OC, (int) K, (int) N, 1.0f, product,
                   (int) N, columns, (int) N, 1.0f, dweight, (int) K);
    }

    if (dinput != NULL) {
      float *gradients = dinput + first * image_size;
      if (pointwise && n == 1) {
        /* The column gradient is the input gradient: accumulate straight into it. */
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) K, (int) N, OC, 1.0f, weight,
                     (int) K, product, (int) N, 1.0f, gradients, (int) N);
      } else {
        /* dcolumns[K, N] = weightᵀ[K, OC] · product[OC, N], over the im2col matrix (no
         * longer needed), then added back to the pixels. */
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) K, (int) N, OC, 1.0f, weight,
                     (int) K, product, (int) N, 0.0f, workspace, (int) N);
        Im2colTask task = { shape, OH, OW, n, NULL, workspace, gradients };
        aclip_parallel_for (pool, (gint64) n * IC, grain_for (K / IC * P), col2im_items, &task);
      }
    }
  }
}

/* ---- Winograd F(2×2, 3×3) ----
 *
 * Lavin and Gray's minimal filtering: for a 4×4 input tile d and a 3×3 kernel g the 2×2
 * outputs of their correlation are Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with
 *   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
 *   Aᵀ = [1 1 1 0; 0 1 −1 −1].
 * Summing over input channels inside the ⊙ turns a layer into 16 independent products, one
 * per element e of the 4×4 transformed tile: M_e[OC, T] = U_e[OC, IC] · V_e[IC, T] over T
 * tiles, with U = G g Gᵀ and V = Bᵀ d B. By linearity the gradients reuse the pieces:
 *   weight: dU_e[OC, IC] = Σ_t (A dy Aᵀ)_e[OC, t] · V_e[IC, t], then dg = Gᵀ dU G;
 *   input:  the adjoint of a stride-1 correlation is the correlation of dy, padded by
 *           2 − pad, with the kernel flipped and its two channel axes swapped.
 * The transforms only add, subtract and halve, so the result stays within a few roundings of
 * im2col's.
 */

/* A correlation with a 3×3 kernel and stride 1, as the transforms see it. */
typedef struct
{
  int channels;               /* planes per image going into the transform */
  int height, width;          /* their size */
  int pad_height, pad_width;  /* zero border */
  int out_height, out_width;  /* = height + 2·pad − 2, and likewise */
  int tiles_high, tiles_wide; /* 2×2 output tiles: ⌈out / 2⌉ */
} WinogradGeometry;

/* Longest tile row the transforms stage on the stack (4 rows of it): outputs up to 1036
 * pixels wide, beyond which the im2col path is used. */
#define WINOGRAD_MAX_ROW 1040

static WinogradGeometry
winograd_geometry (int channels, int height, int width, int pad_height, int pad_width)
{
  WinogradGeometry g;
  g.channels = channels;
  g.height = height;
  g.width = width;
  g.pad_height = pad_height;
  g.pad_width = pad_width;
  g.out_height = height + 2 * pad_height - 2;
  g.out_width = width + 2 * pad_width - 2;
  g.tiles_high = (g.out_height + 1) / 2;
  g.tiles_wide = (g.out_width + 1) / 2;
  return g;
}

/* The forward correlation (input → output) and the input gradient's (doutput → dinput). */
static WinogradGeometry
winograd_forward_geometry (const AclipConv2dShape *s)
{
  return winograd_geometry (s->in_channels, s->in_height, s->in_width, s->pad_height, s->pad_width);
}

static WinogradGeometry
winograd_input_gradient_geometry (const AclipConv2dShape *s)
{
  return winograd_geometry (s->out_channels, aclip_conv2d_out_height (s),
                            aclip_conv2d_out_width (s), 2 - s->pad_height, 2 - s->pad_width);
}

static gboolean
winograd_applies (const AclipConv2dShape *s)
{
  if (s->kernel_height != 3 || s->kernel_width != 3 || s->stride_height != 1 ||
      s->stride_width != 1 || s->pad_height > 2 || s->pad_width > 2)
    return FALSE;
  WinogradGeometry forward = winograd_forward_geometry (s);
  WinogradGeometry backward = winograd_input_gradient_geometry (s);
  return 2 * MAX (forward.tiles_wide, backward.tiles_wide) + 2 <= WINOGRAD_MAX_ROW;
}

/* Tiles per group of 16 sgemms the automatic choice aims for. */
#define WINOGRAD_TARGET_TILES 512

static int
winograd_images_per_group (const AclipConv2dShape *s)
{
  if (s->images_per_gemm > 0)
    return MIN (s->images_per_gemm, s->batch);
  WinogradGeometry g = winograd_forward_geometry (s);
  gint64 tiles = (gint64) g.tiles_high * g.tiles_wide;
  return (int) CLAMP ((WINOGRAD_TARGET_TILES + tiles - 1) / tiles, 1, s->batch);
}

/* Sizes of the workspace regions for `images` images per group: the transformed weights U
 * (the input gradient uses them too), the weight gradient's dU, then regions A and B holding
 * the tiles going into and coming out of the 16 products. */
typedef struct
{
  gsize weights, weight_gradient, region_a, region_b;
} WinogradWorkspace;

static WinogradWorkspace
winograd_workspace (const AclipConv2dShape *s, int images)
{
  WinogradGeometry forward = winograd_forward_geometry (s);
  WinogradGeometry backward = winograd_input_gradient_geometry (s);
  gsize IC = (gsize) s->in_channels, OC = (gsize) s->out_channels;
  gsize forward_tiles = (gsize) images * forward.tiles_high * forward.tiles_wide;
  gsize backward_tiles = (gsize) images * backward.tiles_high * backward.tiles_wide;
  WinogradWorkspace w;
  w.weights = 16 * OC * IC;
  w.weight_gradient = 16 * OC * IC;
  /* Forward and weight gradient: V [16, IC, T] in A; M or A dy Aᵀ [16, OC, T] in B.
   * Input gradient: V of dy [16, OC, T′] in A; M [16, IC, T′] in B. */
  w.region_a = 16 * MAX (IC * forward_tiles, OC * backward_tiles);
  w.region_b = 16 * MAX (OC * forward_tiles, IC * backward_tiles);
  return w;
}

typedef struct
{
  const WinogradGeometry *geometry;
  const float *images; /* [n, channels, height, width] */
  float *tiles;        /* [16, channels, T]: Bᵀ d B of every tile (written) */
  gint64 total_tiles;  /* T = n · tiles_high · tiles_wide */
} WinogradInputTask;

/* Staged tile rows hold a whole number of vectors of tiles plus the next tile's start. */
#define WINOGRAD_STAGE (WINOGRAD_MAX_ROW / 2 + 8)

static int
round_up_to_4 (int n)
{
  return (n + 3) & ~3;
}

/* Stages row `row` of `plane` for tiles starting every 2 columns: even[j] is the pixel in
 * column 2j − pad and odd[j] the one in column 2j + 1 − pad, zero outside the image, for
 * j < count. Tile tw then reads even[tw], odd[tw], even[tw + 1], odd[tw + 1]: contiguous in tw,
 * so four tiles are four vector loads. */
static inline void
stage_split_row (float *even, float *odd, int count, const float *plane, int height, int width,
                 int row, int pad)
{
  if (row < 0 || row >= height) {
    memset (even, 0, sizeof (float) * count);
    memset (odd, 0, sizeof (float) * count);
    return;
  }
  const float *source = plane + (gint64) row * width;
  /* Columns 2j − pad and 2j + 1 − pad are both inside for first ≤ j < last. */
  int first = MIN ((pad + 1) / 2, count);
  int span = width - 2 + pad; /* the last such j is ⌊span / 2⌋, if span ≥ 0 */
  int last = span < 0 ? first : CLAMP (span / 2 + 1, first, count);
  for (int j = 0; j < first; j++) {
    int column = 2 * j - pad;
    even[j] = column >= 0 && column < width ? source[column] : 0.0f;
    odd[j] = column + 1 >= 0 && column + 1 < width ? source[column + 1] : 0.0f;
  }
  int j = first;
  for (; j + 4 <= last; j += 4) {
    /* Eight consecutive pixels, split into even and odd columns. */
    Float4 low = load4 (source + 2 * j - pad), high = load4 (source + 2 * j - pad + 4);
    store4 (even + j, __builtin_shufflevector (low, high, 0, 2, 4, 6));
    store4 (odd + j, __builtin_shufflevector (low, high, 1, 3, 5, 7));
  }
  for (; j < last; j++) {
    even[j] = source[2 * j - pad];
    odd[j] = source[2 * j + 1 - pad];
  }
  for (; j < count; j++) {
    int column = 2 * j - pad;
    even[j] = column < width ? source[column] : 0.0f;
    odd[j] = column + 1 < width ? source[column + 1] : 0.0f;
  }
}

/* Stores the 16 transformed elements of four tiles (v[e] holds element e of tiles tw … tw+3)
 * to out[e·element_stride + tw …], only the first `valid` tiles at a row's end. */
static inline void
store_tiles (float *out, gint64 element_stride, int tw, int valid, const Float4 v[16])
{
  for (int e = 0; e < 16; e++) {
    if (valid == 4) {
      store4 (out + e * element_stride + tw, v[e]);
    } else {
      float lanes[4];
      store4 (lanes, v[e]);
      memcpy (out + e * element_stride + tw, lanes, sizeof (float) * valid);
    }
  }
}

/* Items are (image, channel) planes: Bᵀ d B for every 4×4 tile d (stride 2). */
static void
winograd_input_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const WinogradInputTask *t = data;
  const WinogradGeometry *g = t->geometry;
  int TH = g->tiles_high, TW = g->tiles_wide, staged = round_up_to_4 (TW) + 1;
  gint64 tiles_per_image = (gint64) TH * TW;
  gint64 element_stride = (gint64) g->channels * t->total_tiles;
  float even[4][WINOGRAD_STAGE], odd[4][WINOGRAD_STAGE];
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / g->channels;
    int channel = (int) (item % g->channels);
    const float *plane = t->images + item * g->height * g->width;
    float *out = t->tiles + channel * t->total_tiles + image * tiles_per_image;
    for (int th = 0; th < TH; th++, out += TW) {
      /* Tile row th reads input rows 2·th − pad … 2·th − pad + 3; the staged rows form a ring
       * (input row i in slot i mod 4), so each row is staged once though read twice. */
      int top = 2 * th - g->pad_height;
      for (int r = th == 0 ? 0 : 2; r < 4; r++) {
        int slot = (top + r) & 3;
        stage_split_row (even[slot], odd[slot], staged, plane, g->height, g->width, top + r,
                         g->pad_width);
      }
      int slots[4] = { top & 3, (top + 1) & 3, (top + 2) & 3, (top + 3) & 3 };
      for (int tw = 0; tw < TW; tw += 4) {
        /* d B: the column transform of each of the 4 rows. */
        Float4 x[4][4];
        for (int r = 0; r < 4; r++) {
          const float *even_row = even[slots[r]], *odd_row = odd[slots[r]];
          Float4 d0 = load4 (even_row + tw), d1 = load4 (odd_row + tw);
          Float4 d2 = load4 (even_row + tw + 1), d3 = load4 (odd_row + tw + 1);
          x[r][0] = d0 - d2;
          x[r][1] = d1 + d2;
          x[r][2] = d2 - d1;
          x[r][3] = d1 - d3;
        }
        /* Bᵀ (d B). */
        Float4 v[16];
        for (int b = 0; b < 4; b++) {
          v[b] = x[0][b] - x[2][b];
          v[4 + b] = x[1][b] + x[2][b];
          v[8 + b] = x[2][b] - x[1][b];
          v[12 + b] = x[1][b] - x[3][b];
        }
        store_tiles (out, element_stride, tw, MIN (4, TW - tw), v);
      }
    }
  }
}

typedef struct
{
  const WinogradGeometry *geometry;
  const float *products; /* [16, out_channels, T] */
  int out_channels;
  gint64 total_tiles;
  float *images;       /* [n, out_channels, out_height, out_width] */
  const float *bias;   /* [out_channels] or NULL */
  gboolean accumulate; /* += (input gradient) rather than = (forward) */
} WinogradOutputTask;

/* Items are (image, output channel) planes: Aᵀ M A for every tile. */
static void
winograd_output_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const WinogradOutputTask *t = data;
  const WinogradGeometry *g = t->geometry;
  int TH = g->tiles_high, TW = g->tiles_wide, OH = g->out_height, OW = g->out_width;
  gint64 tiles_per_image = (gint64) TH * TW;
  gint64 element_stride = (gint64) t->out_channels * t->total_tiles;
  float rows[2][WINOGRAD_MAX_ROW + 8];
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / t->out_channels;
    int channel = (int) (item % t->out_channels);
    const float *in = t->products + channel * t->total_tiles + image * tiles_per_image;
    float *plane = t->images + item * OH * OW;
    float shift = t->bias ? t->bias[channel] : 0.0f;
    for (int th = 0; th < TH; th++, in += TW) {
      for (int tw = 0; tw < TW; tw += 4) {
        Float4 m[16];
        int valid = MIN (4, TW - tw);
        for (int e = 0; e < 16; e++) {
          if (valid == 4) {
            m[e] = load4 (in + e * element_stride + tw);
          } else { /* past the row's last tile lie other rows' tiles, or the buffer's end */
            float lanes[4] = { 0 };
            memcpy (lanes, in + e * element_stride + tw, sizeof (float) * valid);
            m[e] = load4 (lanes);
          }
        }
        /* Aᵀ M, then (Aᵀ M) A: y[u][v] for the tile's row u and column v. */
        for (int u = 0; u < 2; u++) {
          Float4 s[4];
          for (int b = 0; b < 4; b++)
            s[b] = u == 0 ? m[b] + m[4 + b] + m[8 + b] : m[4 + b] - m[8 + b] - m[12 + b];
          Float4 left = s[0] + s[1] + s[2], right = s[1] - s[2] - s[3];
          /* Interleave: output columns 2tw, 2tw + 1, 2tw + 2, … */
          Float4 low = __builtin_shufflevector (left, right, 0, 4, 1, 5);
          Float4 high = __builtin_shufflevector (left, right, 2, 6, 3, 7);
          store4 (rows[u] + 2 * tw, low);
          store4 (rows[u] + 2 * tw + 4, high);
        }
      }
      for (int u = 0; u < 2 && 2 * th + u < OH; u++) {
        float *target = plane + (gint64) (2 * th + u) * OW;
        int i = 0;
        if (t->accumulate) {
          for (; i + 4 <= OW; i += 4)
            store4 (target + i, load4 (target + i) + load4 (rows[u] + i));
          for (; i < OW; i++)
            target[i] += rows[u][i];
        } else {
          for (; i + 4 <= OW; i += 4)
            store4 (target + i, load4 (rows[u] + i) + shift);
          for (; i < OW; i++)
            target[i] = rows[u][i] + shift;
        }
      }
    }
  }
}

typedef struct
{
  const WinogradGeometry *geometry; /* the forward's: out_* is doutput's size */
  const float *doutput;             /* [n, OC, OH, OW] */
  int out_channels;
  gint64 total_tiles;
  float *tiles; /* [16, OC, T]: A dy Aᵀ of every tile (written) */
} WinogradGradientTask;

/* Items are (image, output channel) planes: A dy Aᵀ for every 2×2 tile of doutput, the
 * outputs beyond the edge counting as zero. */
static void
winograd_output_gradient_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const WinogradGradientTask *t = data;
  const WinogradGeometry *g = t->geometry;
  int TH = g->tiles_high, TW = g->tiles_wide, OH = g->out_height, OW = g->out_width;
  int staged = round_up_to_4 (TW);
  gint64 tiles_per_image = (gint64) TH * TW;
  gint64 element_stride = (gint64) t->out_channels * t->total_tiles;
  float even[2][WINOGRAD_STAGE], odd[2][WINOGRAD_STAGE];
  for (gint64 item = begin; item < end; item++) {
    gint64 image = item / t->out_channels;
    int channel = (int) (item % t->out_channels);
    const float *plane = t->doutput + item * OH * OW;
    float *out = t->tiles + channel * t->total_tiles + image * tiles_per_image;
    for (int th = 0; th < TH; th++, out += TW) {
      for (int u = 0; u < 2; u++)
        stage_split_row (even[u], odd[u], staged, plane, OH, OW, 2 * th + u, 0);
      for (int tw = 0; tw < TW; tw += 4) {
        /* dy Aᵀ, with A = [1 0; 1 1; 1 −1; 0 −1]: two rows of 4. */
        Float4 z[2][4];
        for (int u = 0; u < 2; u++) {
          Float4 p0 = load4 (even[u] + tw), p1 = load4 (odd[u] + tw);
          z[u][0] = p0;
          z[u][1] = p0 + p1;
          z[u][2] = p0 - p1;
          z[u][3] = -p1;
        }
        /* A (dy Aᵀ). */
        Float4 v[16];
        for (int b = 0; b < 4; b++) {
          v[b] = z[0][b];
          v[4 + b] = z[0][b] + z[1][b];
          v[8 + b] = z[0][b] - z[1][b];
          v[12 + b] = -z[1][b];
        }
        store_tiles (out, element_stride, tw, MIN (4, TW - tw), v);
      }
    }
  }
}

typedef struct
{
  int in_channels, out_channels;
  const float *weight;          /* [OC, IC, 3, 3] */
  float *transformed;           /* U [16, OC, IC] (written) */
  float *dweight;               /* [OC, IC, 3, 3] (+=) */
  const float *weight_gradient; /* dU [16, OC, IC] */
} WinogradWeightTask;

/* Items are output channels: U = G k Gᵀ for each of their kernels k, four input channels at
 * a time (lane l holds input channel ic + l). */
static void
winograd_weight_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const WinogradWeightTask *t = data;
  int IC = t->in_channels;
  gint64 element_stride = (gint64) IC * t->out_channels;
  for (gint64 oc = begin; oc < end; oc++)
    for (int ic = 0; ic < IC; ic += 4) {
      int lanes = MIN (4, IC - ic);
      const float *kernels = t->weight + (oc * IC + ic) * 9; /* [lanes, 9] */
      Float4 k[9];
      for (int tap = 0; tap < 9; tap++) {
        float gathered[4] = { 0 };
        for (int l = 0; l < lanes; l++)
          gathered[l] = kernels[l * 9 + tap];
        k[tap] = load4 (gathered);
      }
      /* G k: four rows of 3. */
      Float4 z[4][3];
      for (int c = 0; c < 3; c++) {
        z[0][c] = k[c];
        z[1][c] = 0.5f * (k[c] + k[3 + c] + k[6 + c]);
        z[2][c] = 0.5f * (k[c] - k[3 + c] + k[6 + c]);
        z[3][c] = k[6 + c];
      }
      /* (G k) Gᵀ. */
      Float4 u[16];
      for (int a = 0; a < 4; a++) {
        u[4 * a + 0] = z[a][0];
        u[4 * a + 1] = 0.5f * (z[a][0] + z[a][1] + z[a][2]);
        u[4 * a + 2] = 0.5f * (z[a][0] - z[a][1] + z[a][2]);
        u[4 * a + 3] = z[a][2];
      }
      store_tiles (t->transformed + oc * IC, element_stride, ic, lanes, u);
    }
}

/* Items are output channels: dweight += Gᵀ dU G, four input channels at a time. */
static void
winograd_weight_gradient_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const WinogradWeightTask *t = data;
  int IC = t->in_channels;
  gint64 element_stride = (gint64) IC * t->out_channels;
  for (gint64 oc = begin; oc < end; oc++)
    for (int ic = 0; ic < IC; ic += 4) {
      int lanes = MIN (4, IC - ic);
      const float *in = t->weight_gradient + oc * IC + ic;
      Float4 x[4][4];
      for (int e = 0; e < 16; e++) {
        float lane_values[4] = { 0 };
        memcpy (lane_values, in + e * element_stride, sizeof (float) * lanes);
        x[e / 4][e % 4] = load4 (lane_values);
      }
      /* Gᵀ X, with Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1]: three rows of 4. */
      Float4 z[3][4];
      for (int b = 0; b < 4; b++) {
        z[0][b] = x[0][b] + 0.5f * (x[1][b] + x[2][b]);
        z[1][b] = 0.5f * (x[1][b] - x[2][b]);
        z[2][b] = 0.5f * (x[1][b] + x[2][b]) + x[3][b];
      }
      /* (Gᵀ X) G, then added to each lane's kernel. */
      float taps[9][4];
      for (int r = 0; r < 3; r++) {
        store4 (taps[3 * r + 0], z[r][0] + 0.5f * (z[r][1] + z[r][2]));
        store4 (taps[3 * r + 1], 0.5f * (z[r][1] - z[r][2]));
        store4 (taps[3 * r + 2], 0.5f * (z[r][1] + z[r][2]) + z[r][3]);
      }
      float *kernels = t->dweight + (oc * IC + ic) * 9; /* [lanes, 9] */
      for (int l = 0; l < lanes; l++)
        for (int tap = 0; tap < 9; tap++)
          kernels[l * 9 + tap] += taps[tap][l];
    }
}

/* The 16 products C_e = A_e · op (B_e) + beta·C_e, e = 0 … 15, with the given element
 * strides. */
static void
sixteen_products (CBLAS_TRANSPOSE transpose_b, int m, int n, int k, const float *a, gint64 a_stride,
                  const float *b, gint64 b_stride, int ldb, float beta, float *c, gint64 c_stride)
{
  for (int e = 0; e < 16; e++)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, transpose_b, m, n, k, 1.0f, a + e * a_stride, k,
                 b + e * b_stride, ldb, beta, c + e * c_stride, n);
}

/* The transform of the flipped kernel in terms of the kernel's: G J = S G, with J reversing
 * the 3 taps and S swapping rows 0 and 3 of 4, so G (J k J) Gᵀ = S U Sᵀ: element (a, b) of
 * the flipped kernel's transform is element (s (a), s (b)) of U. */
static int
flipped_element (int e)
{
  static const int swap_ends[4] = { 3, 1, 2, 0 };
  return 4 * swap_ends[e / 4] + swap_ends[e % 4];
}

static void
winograd_conv2d_forward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *output,
                         const float *input, const float *weight, const float *bias,
                         float *workspace)
{
  int IC = shape->in_channels, OC = shape->out_channels;
  WinogradGeometry g = winograd_forward_geometry (shape);
  gint64 tiles_per_image = (gint64) g.tiles_high * g.tiles_wide;
  gint64 image_size = (gint64) IC * shape->in_height * shape->in_width;
  gint64 output_size = (gint64) OC * g.out_height * g.out_width;
  int group_size = winograd_images_per_group (shape);
  WinogradWorkspace w = winograd_workspace (shape, group_size);
  float *transformed_weight = workspace;                          /* U [16, OC, IC] */
  float *input_tiles = workspace + w.weights + w.weight_gradient; /* V [16, IC, T] */
  float *output_tiles = input_tiles + w.region_a;                 /* M [16, OC, T] */

  WinogradWeightTask weights = { IC, OC, weight, transformed_weight, NULL, NULL };
  aclip_parallel_for (pool, OC, grain_for ((gint64) IC * 40), winograd_weight_items, &weights);

  for (int first = 0; first < shape->batch; first += group_size) {
    int n = MIN (group_size, shape->batch - first);
    gint64 T = n * tiles_per_image;
    WinogradInputTask in = { &g, input + first * image_size, input_tiles, T };
    aclip_parallel_for (pool, (gint64) n * IC, grain_for (tiles_per_image * 40),
                        winograd_input_items, &in);
    /* M_e [OC, T] = U_e [OC, IC] · V_e [IC, T] */
    sixteen_products (CblasNoTrans, OC, (int) T, IC, transformed_weight, (gint64) OC * IC,
                      input_tiles, IC * T, (int) T, 0.0f, output_tiles, OC * T);
    WinogradOutputTask out = { &g, output_tiles, OC, T, output + first * output_size, bias, FALSE };
    aclip_parallel_for (pool, (gint64) n * OC, grain_for (tiles_per_image * 30),
                        winograd_output_items, &out);
  }
}

static void
winograd_conv2d_backward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *dinput,
                          float *dweight, const float *doutput, const float *input,
                          const float *weight, float *workspace)
{
  int IC = shape->in_channels, OC = shape->out_channels;
  WinogradGeometry forward = winograd_forward_geometry (shape);
  WinogradGeometry backward = winograd_input_gradient_geometry (shape);
  gint64 forward_tiles = (gint64) forward.tiles_high * forward.tiles_wide;
  gint64 backward_tiles = (gint64) backward.tiles_high * backward.tiles_wide;
  gint64 image_size = (gint64) IC * shape->in_height * shape->in_width;
  gint64 output_size = (gint64) OC * forward.out_height * forward.out_width;
  int group_size = winograd_images_per_group (shape);
  WinogradWorkspace w = winograd_workspace (shape, group_size);
  float *transformed_weight = workspace;          /* U [16, OC, IC] */
  float *weight_gradient = workspace + w.weights; /* dU [16, OC, IC] */
  float *region_a = weight_gradient + w.weight_gradient;
  float *region_b = region_a + w.region_a;

  if (dinput != NULL) {
    WinogradWeightTask weights = { IC, OC, weight, transformed_weight, NULL, NULL };
    aclip_parallel_for (pool, OC, grain_for ((gint64) IC * 40), winograd_weight_items, &weights);
  }

  for (int first = 0; first < shape->batch; first += group_size) {
    int n = MIN (group_size, shape->batch - first);
    const float *gradients = doutput + first * output_size;
    if (dweight != NULL) {
      gint64 T = n * forward_tiles;
      WinogradInputTask in = { &forward, input + first * image_size, region_a, T };
      aclip_parallel_for (pool, (gint64) n * IC, grain_for (forward_tiles * 40),
                          winograd_input_items, &in);
      WinogradGradientTask dy = { &forward, gradients, OC, T, region_b };
      aclip_parallel_for (pool, (gint64) n * OC, grain_for (forward_tiles * 30),
                          winograd_output_gradient_items, &dy);
      /* dU_e [OC, IC] (+)= (A dy Aᵀ)_e [OC, T] · V_eᵀ [T, IC], summed over the groups. */
      sixteen_products (CblasTrans, OC, IC, (int) T, region_b, OC * T, region_a, IC * T, (int) T,
                        first == 0 ? 0.0f : 1.0f, weight_gradient, (gint64) OC * IC);
    }
    if (dinput != NULL) {
      gint64 T = n * backward_tiles;
      WinogradInputTask in = { &backward, gradients, region_a, T };
      aclip_parallel_for (pool, (gint64) n * OC, grain_for (backward_tiles * 40),
                          winograd_input_items, &in);
      /* M_e [IC, T] = U′_e [IC, OC] · V_e [OC, T], with U′ the transform of the kernels
       * flipped and transposed: U′_e = U_{flipped (e)}ᵀ. */
      for (int e = 0; e < 16; e++)
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, IC, (int) T, OC, 1.0f,
                     transformed_weight + flipped_element (e) * (gint64) OC * IC, IC,
                     region_a + e * OC * T, (int) T, 0.0f, region_b + e * IC * T, (int) T);
      WinogradOutputTask out = {
        &backward, region_b, IC, T, dinput + first * image_size, NULL, TRUE
      };
      aclip_parallel_for (pool, (gint64) n * IC, grain_for (backward_tiles * 30),
                          winograd_output_items, &out);
    }
  }

  if (dweight != NULL) {
    WinogradWeightTask task = { IC, OC, NULL, NULL, dweight, weight_gradient };
    aclip_parallel_for (pool, OC, grain_for ((gint64) IC * 40), winograd_weight_gradient_items,
                        &task);
  }
}

/* ---- 2-D convolution: choice of algorithm ---- */

static gboolean
conv2d_uses_winograd (const AclipConv2dShape *shape)
{
  switch (shape->algorithm) {
    case ACLIP_CONV_WINOGRAD:
      return TRUE; /* conv2d_shape_is_valid checked that it applies */
    case ACLIP_CONV_IM2COL:
      return FALSE;
    case ACLIP_CONV_AUTO:
    default:
      break;
  }
  if (!winograd_applies (shape))
    return FALSE;
  /* Winograd transforms the weights on every call (16·OC·IC values) and the tiles (16·(IC +
   * OC) values per tile), against 16·OC·IC multiply-adds per tile in the products: it pays
   * with enough tiles and channels. Measured on ResNet-18 shapes (batch 32): 2.25× fewer
   * flops turn into ~1.4× faster convolutions with 512 or more tiles, break even near 128,
   * and lose at 32 (512 channels of 2×2 maps). */
  WinogradGeometry g = winograd_forward_geometry (shape);
  gint64 tiles = (gint64) shape->batch * g.tiles_high * g.tiles_wide;
  return tiles >= 256 && shape->in_channels >= 8 && shape->out_channels >= 8;
}

gsize
aclip_conv2d_workspace_size (const AclipConv2dShape *shape)
{
  g_return_val_if_fail (shape != NULL && conv2d_shape_is_valid (shape), 0);
  if (conv2d_uses_winograd (shape)) {
    WinogradWorkspace w = winograd_workspace (shape, winograd_images_per_group (shape));
    return w.weights + w.weight_gradient + w.region_a + w.region_b;
  }
  return im2col_workspace_size (shape);
}

void
aclip_conv2d_forward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *output,
                      const float *input, const float *weight, const float *bias, float *workspace)
{
  g_return_if_fail (shape != NULL && conv2d_shape_is_valid (shape));
  g_return_if_fail (output != NULL && input != NULL && weight != NULL && workspace != NULL);
  if (conv2d_uses_winograd (shape))
    winograd_conv2d_forward (pool, shape, output, input, weight, bias, workspace);
  else
    im2col_conv2d_forward (pool, shape, output, input, weight, bias, workspace);
}

void
aclip_conv2d_backward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *dinput,
                       float *dweight, float *dbias, const float *doutput, const float *input,
                       const float *weight, float *workspace)
{
  g_return_if_fail (shape != NULL && conv2d_shape_is_valid (shape));
  g_return_if_fail (doutput != NULL && workspace != NULL);
  g_return_if_fail (dweight == NULL || input != NULL);
  g_return_if_fail (dinput == NULL || weight != NULL);

  if (dbias != NULL) {
    gint64 P = (gint64) aclip_conv2d_out_height (shape) * aclip_conv2d_out_width (shape);
    BiasGradientTask task = { dbias, doutput, shape->batch, shape->out_channels, P };
    aclip_parallel_for (pool, shape->out_channels, grain_for (shape->batch * P),
                        bias_gradient_items, &task);
  }
  if (dinput == NULL && dweight == NULL)
    return;
  if (conv2d_uses_winograd (shape))
    winograd_conv2d_backward (pool, shape, dinput, dweight, doutput, input, weight, workspace);
  else
    im2col_conv2d_backward (pool, shape, dinput, dweight, doutput, input, weight, workspace);
}

/* ---- Batch normalisation ---- */

typedef struct
{
  float *output;
  float *saved_mean, *saved_invstd;
  float *running_mean, *running_var;
  const float *input, *weight, *bias;
  int batch, channels;
  gint64 spatial;
  float eps, momentum;
  gboolean training;
} BatchNormForwardTask;

/* Items are channels: statistics over the channel's B planes, then the affine map. */
static void
batchnorm_forward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const BatchNormForwardTask *t = data;
  gint64 HW = t->spatial, plane_stride = (gint64) t->channels * HW;
  double count = (double) t->batch * HW;
  for (gint64 c = begin; c < end; c++) {
    const float *first_plane = t->input + c * HW;
    float mean, invstd;
    if (t->training) {
      double total = 0.0;
      for (int b = 0; b < t->batch; b++)
        total += sum_of (first_plane + b * plane_stride, HW);
      double batch_mean = total / count;
      /* Second pass about the mean: no cancellation, unlike E[x²] − E[x]². */
      double squares = 0.0;
      for (int b = 0; b < t->batch; b++)
        squares +=
            sum_of_squared_deviations (first_plane + b * plane_stride, HW, (float) batch_mean);
      /* Correct for the float-rounded centre: Σ(x − m̃)² = Σ(x − m)² + N·(m − m̃)². */
      double centre_error = batch_mean - (double) (float) batch_mean;
      double variance = fmax (squares / count - centre_error * centre_error, 0.0);
      mean = (float) batch_mean;
      invstd = (float) (1.0 / sqrt (variance + t->eps));
      if (t->running_mean != NULL)
        t->running_mean[c] =
            (float) ((1.0 - t->momentum) * t->running_mean[c] + t->momentum * batch_mean);
      if (t->running_var != NULL) {
        double unbiased = count > 1 ? variance * count / (count - 1) : variance;
        t->running_var[c] =
            (float) ((1.0 - t->momentum) * t->running_var[c] + t->momentum * unbiased);
      }
    } else {
      mean = t->running_mean[c];
      invstd = (float) (1.0 / sqrt ((double) t->running_var[c] + t->eps));
    }
    if (t->saved_mean != NULL)
      t->saved_mean[c] = mean;
    if (t->saved_invstd != NULL)
      t->saved_invstd[c] = invstd;

    /* (x − μ)·scale + β rather than x·scale + (β − μ·scale): the latter loses the digits of
     * x − μ when the mean is large next to the spread. */
    float scale = invstd * (t->weight ? t->weight[c] : 1.0f);
    float shift = t->bias ? t->bias[c] : 0.0f;
    for (int b = 0; b < t->batch; b++)
      affine_row (t->output + c * HW + b * plane_stride, first_plane + b * plane_stride, HW, mean,
                  scale, shift);
  }
}

void
aclip_batchnorm2d_forward (AclipThreadPool *pool, float *output, float *saved_mean,
                           float *saved_invstd, float *running_mean, float *running_var,
                           const float *input, const float *weight, const float *bias, int batch,
                           int channels, int spatial, float eps, float momentum, gboolean training)
{
  g_return_if_fail (output != NULL && input != NULL);
  g_return_if_fail (batch > 0 && channels > 0 && spatial > 0);
  g_return_if_fail (training || (running_mean != NULL && running_var != NULL));
  g_return_if_fail (!training || (saved_mean != NULL && saved_invstd != NULL));

  BatchNormForwardTask task = {
    .output = output,
    .saved_mean = saved_mean,
    .saved_invstd = saved_invstd,
    .running_mean = running_mean,
    .running_var = running_var,
    .input = input,
    .weight = weight,
    .bias = bias,
    .batch = batch,
    .channels = channels,
    .spatial = spatial,
    .eps = eps,
    .momentum = momentum,
    .training = training,
  };
  aclip_parallel_for (pool, channels, grain_for ((gint64) batch * spatial), batchnorm_forward_items,
                      &task);
}

typedef struct
{
  float *dinput, *dweight, *dbias;
  const float *doutput, *input, *saved_mean, *saved_invstd, *weight;
  int batch, channels;
  gint64 spatial;
  gboolean training;
} BatchNormBackwardTask;

/* Items are channels. With x̂ = (x − μ)·σ⁻¹ and y = γx̂ + β:
 *   dβ = Σ dy, dγ = Σ dy·x̂, and in training (μ, σ depend on x)
 *   dx = γσ⁻¹·(dy − dβ/N − x̂·dγ/N); in evaluation dx = γσ⁻¹·dy. */
static void
batchnorm_backward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const BatchNormBackwardTask *t = data;
  gint64 HW = t->spatial, plane_stride = (gint64) t->channels * HW;
  double count = (double) t->batch * HW;
  for (gint64 c = begin; c < end; c++) {
    float mean = t->saved_mean[c], invstd = t->saved_invstd[c];
    double sum_dy = 0.0, sum_dy_centred = 0.0;
    for (int b = 0; b < t->batch; b++) {
      gint64 offset = c * HW + b * plane_stride;
      sum_dy += sum_of (t->doutput + offset, HW);
      sum_dy_centred += sum_of_products (t->doutput + offset, t->input + offset, HW, mean);
    }
    double sum_dy_xhat = sum_dy_centred * invstd;
    if (t->dbias != NULL)
      t->dbias[c] += (float) sum_dy;
    if (t->dweight != NULL)
      t->dweight[c] += (float) sum_dy_xhat;
    if (t->dinput == NULL)
      continue;

    /* dx = g·dy − g·k·(x − μ) − g·a with g = γσ⁻¹, a = Σdy/N, k = σ⁻¹·Σdy·x̂/N, written as
     * dy_scale·dy + centred_scale·(x − μ) + shift for one pass. */
    float gain = invstd * (t->weight ? t->weight[c] : 1.0f);
    float dy_scale = gain, centred_scale = 0.0f, shift = 0.0f;
    if (t->training) {
      centred_scale = (float) (-gain * invstd * sum_dy_xhat / count);
      shift = (float) (-gain * sum_dy / count);
    }
    for (int b = 0; b < t->batch; b++) {
      gint64 offset = c * HW + b * plane_stride;
      normalisation_gradient_row (t->dinput + offset, t->doutput + offset, t->input + offset, HW,
                                  dy_scale, centred_scale, mean, shift);
    }
  }
}

void
aclip_batchnorm2d_backward (AclipThreadPool *pool, float *dinput, float *dweight, float *dbias,
                            const float *doutput, const float *input, const float *saved_mean,
                            const float *saved_invstd, const float *weight, int batch, int channels,
                            int spatial, gboolean training)
{
  g_return_if_fail (doutput != NULL && input != NULL);
  g_return_if_fail (saved_mean != NULL && saved_invstd != NULL);
  g_return_if_fail (batch > 0 && channels > 0 && spatial > 0);

  BatchNormBackwardTask task = {
    .dinput = dinput,
    .dweight = dweight,
    .dbias = dbias,
    .doutput = doutput,
    .input = input,
    .saved_mean = saved_mean,
    .saved_invstd = saved_invstd,
    .weight = weight,
    .batch = batch,
    .channels = channels,
    .spatial = spatial,
    .training = training,
  };
  aclip_parallel_for (pool, channels, grain_for ((gint64) batch * spatial),
                      batchnorm_backward_items, &task);
}

/* ---- Group normalisation ---- */

typedef struct
{
  float *output, *saved_mean, *saved_invstd;
  const float *input, *weight, *bias;
  int channels, groups;
  gint64 spatial;
  float eps;
} GroupNormForwardTask;

/* Items are (image, group); a group's channels are contiguous in memory. */
static void
groupnorm_forward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const GroupNormForwardTask *t = data;
  int group_channels = t->channels / t->groups;
  gint64 HW = t->spatial, group_size = group_channels * HW;
  for (gint64 item = begin; item < end; item++) {
    const float *in = t->input + item * group_size;
    float *out = t->output + item * group_size;
    double mean = sum_of (in, group_size) / group_size;
    double squares = sum_of_squared_deviations (in, group_size, (float) mean);
    double centre_error = mean - (double) (float) mean;
    double variance = fmax (squares / group_size - centre_error * centre_error, 0.0);
    float invstd = (float) (1.0 / sqrt (variance + t->eps));
    t->saved_mean[item] = (float) mean;
    t->saved_invstd[item] = invstd;

    int first_channel = (int) (item % t->groups) * group_channels;
    for (int j = 0; j < group_channels; j++) {
      int c = first_channel + j;
      float scale = invstd * (t->weight ? t->weight[c] : 1.0f);
      float shift = t->bias ? t->bias[c] : 0.0f;
      affine_row (out + j * HW, in + j * HW, HW, (float) mean, scale, shift);
    }
  }
}

void
aclip_groupnorm_forward (AclipThreadPool *pool, float *output, float *saved_mean,
                         float *saved_invstd, const float *input, const float *weight,
                         const float *bias, int batch, int channels, int spatial, int groups,
                         float eps)
{
  g_return_if_fail (output != NULL && input != NULL && saved_mean != NULL && saved_invstd != NULL);
  g_return_if_fail (batch > 0 && channels > 0 && spatial > 0 && groups > 0);
  g_return_if_fail (channels % groups == 0);

  GroupNormForwardTask task = {
    .output = output,
    .saved_mean = saved_mean,
    .saved_invstd = saved_invstd,
    .input = input,
    .weight = weight,
    .bias = bias,
    .channels = channels,
    .groups = groups,
    .spatial = spatial,
    .eps = eps,
  };
  aclip_parallel_for (pool, (gint64) batch * groups,
                      grain_for ((gint64) channels / groups * spatial), groupnorm_forward_items,
                      &task);
}

typedef struct
{
  float *dinput, *dweight, *dbias;
  const float *doutput, *input, *saved_mean, *saved_invstd, *weight;
  int batch, channels, groups;
  gint64 spatial;
} GroupNormBackwardTask;

/* Items are (image, group). With d = γ_c·dy per channel and M values per group:
 *   dx = σ⁻¹·(d − Σd/M − x̂·Σd·x̂/M). */
static void
groupnorm_input_gradient_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const GroupNormBackwardTask *t = data;
  int group_channels = t->channels / t->groups;
  gint64 HW = t->spatial, group_size = group_channels * HW;
  for (gint64 item = begin; item < end; item++) {
    const float *dy = t->doutput + item * group_size, *x = t->input + item * group_size;
    float *dx = t->dinput + item * group_size;
    float mean = t->saved_mean[item], invstd = t->saved_invstd[item];
    int first_channel = (int) (item % t->groups) * group_channels;

    double sum_d = 0.0, sum_d_centred = 0.0;
    for (int j = 0; j < group_channels; j++) {
      double gamma = t->weight ? t->weight[first_channel + j] : 1.0;
      sum_d += gamma * sum_of (dy + j * HW, HW);
      sum_d_centred += gamma * sum_of_products (dy + j * HW, x + j * HW, HW, mean);
    }
    /* σ⁻¹·x̂·Σd·x̂/M = centred_scale·(x − μ) with centred_scale = −σ⁻³·Σd·(x − μ)/M. */
    float centred_scale = (float) (-(double) invstd * invstd * invstd * sum_d_centred / group_size);
    float shift = (float) (-invstd * sum_d / group_size);
    for (int j = 0; j < group_channels; j++) {
      float dy_scale = invstd * (t->weight ? t->weight[first_channel + j] : 1.0f);
      normalisation_gradient_row (dx + j * HW, dy + j * HW, x + j * HW, HW, dy_scale, centred_scale,
                                  mean, shift);
    }
  }
}

/* Items are channels; each sums over the images in order, so the result does not depend on
 * how channels are shared among threads. */
static void
groupnorm_parameter_gradient_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const GroupNormBackwardTask *t = data;
  int group_channels = t->channels / t->groups;
  gint64 HW = t->spatial;
  for (gint64 c = begin; c < end; c++) {
    int group = (int) c / group_channels;
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int b = 0; b < t->batch; b++) {
      gint64 offset = ((gint64) b * t->channels + c) * HW;
      gint64 statistic = (gint64) b * t->groups + group;
      sum_dy += sum_of (t->doutput + offset, HW);
      sum_dy_xhat +=
          t->saved_invstd[statistic] *
          sum_of_products (t->doutput + offset, t->input + offset, HW, t->saved_mean[statistic]);
    }
    if (t->dweight != NULL)
      t->dweight[c] += (float) sum_dy_xhat;
    if (t->dbias != NULL)
      t->dbias[c] += (float) sum_dy;
  }
}

void
aclip_groupnorm_backward (AclipThreadPool *pool, float *dinput, float *dweight, float *dbias,
                          const float *doutput, const float *input, const float *saved_mean,
                          const float *saved_invstd, const float *weight, int batch, int channels,
                          int spatial, int groups)
{
  g_return_if_fail (doutput != NULL && input != NULL && saved_mean != NULL && saved_invstd != NULL);
  g_return_if_fail (batch > 0 && channels > 0 && spatial > 0 && groups > 0);
  g_return_if_fail (channels % groups == 0);

  GroupNormBackwardTask task = {
    .dinput = dinput,
    .dweight = dweight,
    .dbias = dbias,
    .doutput = doutput,
    .input = input,
    .saved_mean = saved_mean,
    .saved_invstd = saved_invstd,
    .weight = weight,
    .batch = batch,
    .channels = channels,
    .groups = groups,
    .spatial = spatial,
  };
  if (dinput != NULL)
    aclip_parallel_for (pool, (gint64) batch * groups,
                        grain_for ((gint64) channels / groups * spatial),
                        groupnorm_input_gradient_items, &task);
  if (dweight != NULL || dbias != NULL)
    aclip_parallel_for (pool, channels, grain_for ((gint64) batch * spatial),
                        groupnorm_parameter_gradient_items, &task);
}

/* ---- Pooling ---- */

int
aclip_pool2d_out_height (const AclipPool2dShape *shape)
{
  return (shape->in_height + 2 * shape->pad_height - shape->kernel_height) / shape->stride_height +
         1;
}

int
aclip_pool2d_out_width (const AclipPool2dShape *shape)
{
  return (shape->in_width + 2 * shape->pad_width - shape->kernel_width) / shape->stride_width + 1;
}

static gboolean
pool2d_shape_is_valid (const AclipPool2dShape *shape)
{
  return shape->batch > 0 && shape->channels > 0 && shape->in_height > 0 && shape->in_width > 0 &&
         shape->kernel_height > 0 && shape->kernel_width > 0 && shape->stride_height > 0 &&
         shape->stride_width > 0 && shape->pad_height >= 0 && shape->pad_width >= 0 &&
         2 * shape->pad_height <= shape->kernel_height &&
         2 * shape->pad_width <= shape->kernel_width &&
         shape->in_height + 2 * shape->pad_height >= shape->kernel_height &&
         shape->in_width + 2 * shape->pad_width >= shape->kernel_width;
}

typedef struct
{
  const AclipPool2dShape *shape;
  int out_height, out_width;
  gboolean count_include_pad;
  float *output, *dinput;
  gint32 *argmax;
  const float *input, *doutput;
  const gint32 *saved_argmax;
} PoolTask;

/* A window's rows [*h0, *h1) and columns [*w0, *w1), clipped to the image, and the divisor
 * average pooling uses for it. */
static void
pool_window (const AclipPool2dShape *s, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
  int top = oh * s->stride_height - s->pad_height;
  int left = ow * s->stride_width - s->pad_width;
  *h0 = MAX (top, 0);
  *h1 = MIN (top + s->kernel_height, s->in_height);
  *w0 = MAX (left, 0);
  *w1 = MIN (left + s->kernel_width, s->in_width);
}

/* Items are (image, channel) planes. */
static void
maxpool_forward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const PoolTask *t = data;
  const AclipPool2dShape *s = t->shape;
  gint64 in_plane = (gint64) s->in_height * s->in_width;
  gint64 out_plane = (gint64) t->out_height * t->out_width;
  for (gint64 item = begin; item < end; item++) {
    const float *in = t->input + item * in_plane;
    float *out = t->output + item * out_plane;
    gint32 *arg = t->argmax + item * out_plane;
    for (int oh = 0; oh < t->out_height; oh++)
      for (int ow = 0; ow < t->out_width; ow++) {
        int h0, h1, w0, w1;
        pool_window (s, oh, ow, &h0, &h1, &w0, &w1);
        /* The first real pixel starts the search: windows always hold one (pad ≤ k/2). */
        gint32 best_index = h0 * s->in_width + w0;
        float best = in[best_index];
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++) {
            float value = in[ih * s->in_width + iw];
            /* Strictly greater keeps the first of equal values; a NaN wins, as in PyTorch. */
            if (value > best || isnan (value)) {
              best = value;
              best_index = ih * s->in_width + iw;
            }
          }
        out[oh * t->out_width + ow] = best;
        arg[oh * t->out_width + ow] = best_index;
      }
  }
}

void
aclip_maxpool2d_forward (AclipThreadPool *pool, const AclipPool2dShape *shape, float *output,
                         gint32 *argmax, const float *input)
{
  g_return_if_fail (shape != NULL && pool2d_shape_is_valid (shape));
  g_return_if_fail (output != NULL && argmax != NULL && input != NULL);
  PoolTask task = {
    .shape = shape,
    .out_height = aclip_pool2d_out_height (shape),
    .out_width = aclip_pool2d_out_width (shape),
    .output = output,
    .argmax = argmax,
    .input = input,
  };
  gint64 work =
      (gint64) task.out_height * task.out_width * shape->kernel_height * shape->kernel_width;
  aclip_parallel_for (pool, (gint64) shape->batch * shape->channels, grain_for (work),
                      maxpool_forward_items, &task);
}

static void
maxpool_backward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const PoolTask *t = data;
  const AclipPool2dShape *s = t->shape;
  gint64 in_plane = (gint64) s->in_height * s->in_width;
  gint64 out_plane = (gint64) t->out_height * t->out_width;
  for (gint64 item = begin; item < end; item++) {
    float *dx = t->dinput + item * in_plane;
    const float *dy = t->doutput + item * out_plane;
    const gint32 *arg = t->saved_argmax + item * out_plane;
    for (gint64 o = 0; o < out_plane; o++)
      dx[arg[o]] += dy[o];
  }
}

void
aclip_maxpool2d_backward (AclipThreadPool *pool, const AclipPool2dShape *shape, float *dinput,
                          const float *doutput, const gint32 *argmax)
{
  g_return_if_fail (shape != NULL && pool2d_shape_is_valid (shape));
  g_return_if_fail (dinput != NULL && doutput != NULL && argmax != NULL);
  PoolTask task = {
    .shape = shape,
    .out_height = aclip_pool2d_out_height (shape),
    .out_width = aclip_pool2d_out_width (shape),
    .dinput = dinput,
    .doutput = doutput,
    .saved_argmax = argmax,
  };
  aclip_parallel_for (pool, (gint64) shape->batch * shape->channels,
                      grain_for ((gint64) task.out_height * task.out_width), maxpool_backward_items,
                      &task);
}

static float
avgpool_divisor (const AclipPool2dShape *s, gboolean count_include_pad, int h0, int h1, int w0,
                 int w1)
{
  /* In floor mode a window never passes the padded border, so including the padding always
   * gives the full kernel area. */
  if (count_include_pad)
    return (float) (s->kernel_height * s->kernel_width);
  return (float) ((h1 - h0) * (w1 - w0));
}

static void
avgpool_forward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const PoolTask *t = data;
  const AclipPool2dShape *s = t->shape;
  gint64 in_plane = (gint64) s->in_height * s->in_width;
  gint64 out_plane = (gint64) t->out_height * t->out_width;
  for (gint64 item = begin; item < end; item++) {
    const float *in = t->input + item * in_plane;
    float *out = t->output + item * out_plane;
    for (int oh = 0; oh < t->out_height; oh++)
      for (int ow = 0; ow < t->out_width; ow++) {
        int h0, h1, w0, w1;
        pool_window (s, oh, ow, &h0, &h1, &w0, &w1);
        float total = 0.0f;
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++)
            total += in[ih * s->in_width + iw];
        out[oh * t->out_width + ow] =
            total / avgpool_divisor (s, t->count_include_pad, h0, h1, w0, w1);
      }
  }
}

void
aclip_avgpool2d_forward (AclipThreadPool *pool, const AclipPool2dShape *shape,
                         gboolean count_include_pad, float *output, const float *input)
{
  g_return_if_fail (shape != NULL && pool2d_shape_is_valid (shape));
  g_return_if_fail (output != NULL && input != NULL);
  PoolTask task = {
    .shape = shape,
    .out_height = aclip_pool2d_out_height (shape),
    .out_width = aclip_pool2d_out_width (shape),
    .count_include_pad = count_include_pad,
    .output = output,
    .input = input,
  };
  gint64 work =
      (gint64) task.out_height * task.out_width * shape->kernel_height * shape->kernel_width;
  aclip_parallel_for (pool, (gint64) shape->batch * shape->channels, grain_for (work),
                      avgpool_forward_items, &task);
}

static void
avgpool_backward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const PoolTask *t = data;
  const AclipPool2dShape *s = t->shape;
  gint64 in_plane = (gint64) s->in_height * s->in_width;
  gint64 out_plane = (gint64) t->out_height * t->out_width;
  for (gint64 item = begin; item < end; item++) {
    float *dx = t->dinput + item * in_plane;
    const float *dy = t->doutput + item * out_plane;
    for (int oh = 0; oh < t->out_height; oh++)
      for (int ow = 0; ow < t->out_width; ow++) {
        int h0, h1, w0, w1;
        pool_window (s, oh, ow, &h0, &h1, &w0, &w1);
        float share =
            dy[oh * t->out_width + ow] / avgpool_divisor (s, t->count_include_pad, h0, h1, w0, w1);
        for (int ih = h0; ih < h1; ih++)
          for (int iw = w0; iw < w1; iw++)
            dx[ih * s->in_width + iw] += share;
      }
  }
}

void
aclip_avgpool2d_backward (AclipThreadPool *pool, const AclipPool2dShape *shape,
                          gboolean count_include_pad, float *dinput, const float *doutput)
{
  g_return_if_fail (shape != NULL && pool2d_shape_is_valid (shape));
  g_return_if_fail (dinput != NULL && doutput != NULL);
  PoolTask task = {
    .shape = shape,
    .out_height = aclip_pool2d_out_height (shape),
    .out_width = aclip_pool2d_out_width (shape),
    .count_include_pad = count_include_pad,
    .dinput = dinput,
    .doutput = doutput,
  };
  gint64 work =
      (gint64) task.out_height * task.out_width * shape->kernel_height * shape->kernel_width;
  aclip_parallel_for (pool, (gint64) shape->batch * shape->channels, grain_for (work),
                      avgpool_backward_items, &task);
}

typedef struct
{
  float *output, *dinput;
  const float *input, *doutput;
  gint64 spatial;
} GlobalPoolTask;

/* Items are (image, channel) planes. */
static void
global_avgpool_forward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const GlobalPoolTask *t = data;
  for (gint64 item = begin; item < end; item++)
    t->output[item] = (float) (sum_of (t->input + item * t->spatial, t->spatial) / t->spatial);
}

void
aclip_global_avgpool_forward (AclipThreadPool *pool, float *output, const float *input, int batch,
                              int channels, int spatial)
{
  g_return_if_fail (output != NULL && input != NULL);
  g_return_if_fail (batch > 0 && channels > 0 && spatial > 0);
  GlobalPoolTask task = { .output = output, .input = input, .spatial = spatial };
  aclip_parallel_for (pool, (gint64) batch * channels, grain_for (spatial),
                      global_avgpool_forward_items, &task);
}

static void
global_avgpool_backward_items (gint64 begin, gint64 end, int worker, gpointer data)
{
  const GlobalPoolTask *t = data;
  for (gint64 item = begin; item < end; item++) {
    float share = t->doutput[item] / (float) t->spatial;
    float *dx = t->dinput + item * t->spatial;
    for (gint64 i = 0; i < t->spatial; i++)
      dx[i] += share;
  }
}

void
aclip_global_avgpool_backward (AclipThreadPool *pool, float *dinput, const float *doutput,
                               int batch, int channels, int spatial)
{
  g_return_if_fail (dinput != NULL && doutput != NULL);
  g_return_if_fail (batch > 0 && channels > 0 && spatial > 0);
  GlobalPoolTask task = { .dinput = dinput, .doutput = doutput, .spatial = spatial };
  aclip_parallel_for (pool, (gint64) batch * channels, grain_for (spatial),
                      global_avgpool_backward_items, &task);
}
