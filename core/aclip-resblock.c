/* aclip-resblock.c — the ResNet basic block (see aclip-resblock.h). */
#include "aclip-resblock.h"

#include "aclip-nn-conv.h"

#include <string.h>

gboolean
aclip_resblock_has_projection (const AclipResBlockShape *shape)
{
  return shape->stride != 1 || shape->in_channels != shape->out_channels;
}

int
aclip_resblock_out_height (const AclipResBlockShape *shape)
{
  return (shape->in_height - 1) / shape->stride + 1;
}

int
aclip_resblock_out_width (const AclipResBlockShape *shape)
{
  return (shape->in_width - 1) / shape->stride + 1;
}

static gboolean
resblock_shape_is_valid (const AclipResBlockShape *shape)
{
  return shape->batch > 0 && shape->in_channels > 0 && shape->out_channels > 0 &&
         shape->in_height > 0 && shape->in_width > 0 && shape->stride > 0;
}

/* A convolution of the block: k×k kernel, stride, padding (k − 1) / 2, no bias. */
static AclipConv2dShape
block_conv (int batch, int in_channels, int height, int width, int out_channels, int kernel,
            int stride)
{
  AclipConv2dShape shape = { 0 };
  shape.batch = batch;
  shape.in_channels = in_channels;
  shape.in_height = height;
  shape.in_width = width;
  shape.out_channels = out_channels;
  shape.kernel_height = shape.kernel_width = kernel;
  shape.stride_height = shape.stride_width = stride;
  shape.pad_height = shape.pad_width = (kernel - 1) / 2;
  shape.algorithm = ACLIP_CONV_AUTO;
  return shape;
}

/* The three convolutions of the block. */
static AclipConv2dShape
conv1_shape (const AclipResBlockShape *s)
{
  return block_conv (s->batch, s->in_channels, s->in_height, s->in_width, s->out_channels, 3,
                     s->stride);
}

static AclipConv2dShape
conv2_shape (const AclipResBlockShape *s)
{
  return block_conv (s->batch, s->out_channels, aclip_resblock_out_height (s),
                     aclip_resblock_out_width (s), s->out_channels, 3, 1);
}

static AclipConv2dShape
shortcut_shape (const AclipResBlockShape *s)
{
  return block_conv (s->batch, s->in_channels, s->in_height, s->in_width, s->out_channels, 1,
                     s->stride);
}

static gsize
map_size (const AclipResBlockShape *s)
{
  return (gsize) s->batch * s->out_channels * aclip_resblock_out_height (s) *
         aclip_resblock_out_width (s);
}

/* Where each saved array lives within `activations`. */
typedef struct
{
  float *conv1_out;         /* [B, OC, OH, OW] before BN 1 */
  float *relu1_out;         /* [B, OC, OH, OW] after BN 1 and ReLU: conv 2's input */
  float *conv2_out;         /* [B, OC, OH, OW] before BN 2 */
  float *shortcut_conv_out; /* [B, OC, OH, OW] before the shortcut's BN; projection only */
  float *bn1_mean, *bn1_invstd, *bn2_mean, *bn2_invstd; /* [OC] each */
  float *shortcut_mean, *shortcut_invstd;               /* [OC] each; projection only */
} ActivationLayout;

static ActivationLayout
activation_layout (const AclipResBlockShape *s, float *base)
{
  gsize map = map_size (s), OC = (gsize) s->out_channels;
  gboolean projection = aclip_resblock_has_projection (s);
  ActivationLayout layout;
  layout.conv1_out = base;
  layout.relu1_out = base + map;
  layout.conv2_out = base + 2 * map;
  float *next = base + 3 * map;
  layout.shortcut_conv_out = projection ? next : NULL;
  next += projection ? map : 0;
  layout.bn1_mean = next;
  layout.bn1_invstd = next + OC;
  layout.bn2_mean = next + 2 * OC;
  layout.bn2_invstd = next + 3 * OC;
  layout.shortcut_mean = projection ? next + 4 * OC : NULL;
  layout.shortcut_invstd = projection ? next + 5 * OC : NULL;
  return layout;
}

gsize
aclip_resblock_activations_size (const AclipResBlockShape *shape)
{
  g_return_val_if_fail (shape != NULL && resblock_shape_is_valid (shape), 0);
  gboolean projection = aclip_resblock_has_projection (shape);
  return (projection ? 4 : 3) * map_size (shape) +
         (projection ? 6 : 4) * (gsize) shape->out_channels;
}

static gsize
conv_workspace_size (const AclipResBlockShape *shape)
{
  AclipConv2dShape c1 = conv1_shape (shape), c2 = conv2_shape (shape);
  gsize size = MAX (aclip_conv2d_workspace_size (&c1), aclip_conv2d_workspace_size (&c2));
  if (aclip_resblock_has_projection (shape)) {
    AclipConv2dShape sc = shortcut_shape (shape);
    size = MAX (size, aclip_conv2d_workspace_size (&sc));
  }
  return size;
}

gsize
aclip_resblock_workspace_size (const AclipResBlockShape *shape)
{
  g_return_val_if_fail (shape != NULL && resblock_shape_is_valid (shape), 0);
  /* The convolutions' scratch, then three maps: the shortcut's BN output in the forward,
   * the gradient at the sum and two gradients in flight in the backward. */
  return conv_workspace_size (shape) + 3 * map_size (shape);
}

/* ---- Element-wise steps, parallel over flat ranges ---- */

/* Four floats (one SSE register on the x86-64 baseline): GCC's -O2 does not vectorise loops
 * of unknown length, so these memory-bound loops use vector-extension values explicitly. */
typedef float Float4 __attribute__ ((vector_size (16)));
typedef gint32 Int4 __attribute__ ((vector_size (16)));

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

/* value where mask > 0, else 0 (also for a NaN mask). */
static inline Float4
where_positive (Float4 value, Float4 mask)
{
  Float4 zero = { 0 };
  return (Float4) ((Int4) value & (mask > zero));
}

typedef struct
{
  float *target;       /* [n], written or updated */
  const float *source; /* [n] */
  const float *mask;   /* [n] */
} ElementwiseTask;

/* target = ReLU (target) */
static void
relu_in_place_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ElementwiseTask *t = data;
  gint64 i = begin;
  for (; i + 4 <= end; i += 4) {
    Float4 value = load4 (t->target + i);
    store4 (t->target + i, where_positive (value, value));
  }
  for (; i < end; i++)
    t->target[i] = t->target[i] > 0.0f ? t->target[i] : 0.0f;
}

/* target = ReLU (target + source) */
static void
add_relu_in_place_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ElementwiseTask *t = data;
  gint64 i = begin;
  for (; i + 4 <= end; i += 4) {
    Float4 sum = load4 (t->target + i) + load4 (t->source + i);
    store4 (t->target + i, where_positive (sum, sum));
  }
  for (; i < end; i++) {
    float sum = t->target[i] + t->source[i];
    t->target[i] = sum > 0.0f ? sum : 0.0f;
  }
}

/* target = source where mask > 0, else 0: a ReLU's backward given its output as the mask. */
static void
masked_copy_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ElementwiseTask *t = data;
  gint64 i = begin;
  for (; i + 4 <= end; i += 4)
    store4 (t->target + i, where_positive (load4 (t->source + i), load4 (t->mask + i)));
  for (; i < end; i++)
    t->target[i] = t->mask[i] > 0.0f ? t->source[i] : 0.0f;
}

/* target += source */
static void
add_range (gint64 begin, gint64 end, int worker, gpointer data)
{
  const ElementwiseTask *t = data;
  gint64 i = begin;
  for (; i + 4 <= end; i += 4)
    store4 (t->target + i, load4 (t->target + i) + load4 (t->source + i));
  for (; i < end; i++)
    t->target[i] += t->source[i];
}

#define ELEMENTWISE_GRAIN 32768

static void
run_elementwise (AclipThreadPool *pool, gsize n, AclipParallelFunc func, float *target,
                 const float *source, const float *mask)
{
  ElementwiseTask task = { target, source, mask };
  aclip_parallel_for (pool, (gint64) n, ELEMENTWISE_GRAIN, func, &task);
}

/* ---- The block ---- */

void
aclip_resblock_forward (AclipThreadPool *pool, const AclipResBlockShape *shape, float *output,
                        float *activations, const float *input, const AclipResBlockParams *params,
                        const AclipResBlockRunningStats *running, float eps, float momentum,
                        gboolean training, float *workspace)
{
  g_return_if_fail (shape != NULL && resblock_shape_is_valid (shape));
  g_return_if_fail (output != NULL && activations != NULL && input != NULL && params != NULL);
  g_return_if_fail (running != NULL && workspace != NULL);

  gboolean projection = aclip_resblock_has_projection (shape);
  g_return_if_fail (!projection || params->shortcut_weight != NULL);
  ActivationLayout saved = activation_layout (shape, activations);
  AclipConv2dShape c1 = conv1_shape (shape), c2 = conv2_shape (shape);
  int B = shape->batch, OC = shape->out_channels;
  int spatial = aclip_resblock_out_height (shape) * aclip_resblock_out_width (shape);
  gsize map = map_size (shape);
  float *shortcut_out = workspace + conv_workspace_size (shape); /* [B, OC, OH, OW] */

  aclip_conv2d_forward (pool, &c1, saved.conv1_out, input, params->conv1_weight, NULL, workspace);
  aclip_batchnorm2d_forward (pool, saved.relu1_out, saved.bn1_mean, saved.bn1_invstd,
                             running->bn1_mean, running->bn1_var, saved.conv1_out,
                             params->bn1_weight, params->bn1_bias, B, OC, spatial, eps, momentum,
                             training);
  run_elementwise (pool, map, relu_in_place_range, saved.relu1_out, NULL, NULL);

  aclip_conv2d_forward (pool, &c2, saved.conv2_out, saved.relu1_out, params->conv2_weight, NULL,
                        workspace);
  aclip_batchnorm2d_forward (pool, output, saved.bn2_mean, saved.bn2_invstd, running->bn2_mean,
                             running->bn2_var, saved.conv2_out, params->bn2_weight,
                             params->bn2_bias, B, OC, spatial, eps, momentum, training);

  const float *shortcut = input;
  if (projection) {
    AclipConv2dShape sc = shortcut_shape (shape);
    aclip_conv2d_forward (pool, &sc, saved.shortcut_conv_out, input, params->shortcut_weight, NULL,
                          workspace);
    aclip_batchnorm2d_forward (pool, shortcut_out, saved.shortcut_mean, saved.shortcut_invstd,
                               running->shortcut_bn_mean, running->shortcut_bn_var,
                               saved.shortcut_conv_out, params->shortcut_bn_weight,
                               params->shortcut_bn_bias, B, OC, spatial, eps, momentum, training);
    shortcut = shortcut_out;
  }
  run_elementwise (pool, map, add_relu_in_place_range, output, shortcut, NULL);
}

void
aclip_resblock_backward (AclipThreadPool *pool, const AclipResBlockShape *shape, float *dinput,
                         const AclipResBlockParams *grads, const float *doutput,
                         const float *output, const float *activations, const float *input,
                         const AclipResBlockParams *params, gboolean training, float *workspace)
{
  g_return_if_fail (shape != NULL && resblock_shape_is_valid (shape));
  g_return_if_fail (grads != NULL && doutput != NULL && output != NULL && activations != NULL);
  g_return_if_fail (input != NULL && params != NULL && workspace != NULL);

  gboolean projection = aclip_resblock_has_projection (shape);
  /* The layout only reads through these pointers. */
  ActivationLayout saved = activation_layout (shape, (float *) activations);
  AclipConv2dShape c1 = conv1_shape (shape), c2 = conv2_shape (shape);
  int B = shape->batch, OC = shape->out_channels;
  int spatial = aclip_resblock_out_height (shape) * aclip_resblock_out_width (shape);
  gsize map = map_size (shape);
  float *dsum = workspace + conv_workspace_size (shape); /* [B, OC, OH, OW] at the sum */
  float *gradient_a = dsum + map;                        /* [B, OC, OH, OW] */
  float *gradient_b = gradient_a + map;                  /* [B, OC, OH, OW] */

  /* The last ReLU: its output is positive exactly where its input was. */
  run_elementwise (pool, map, masked_copy_range, dsum, doutput, output);

  /* Main path, last layer first: BN 2 → gradient_a (at conv2_out). */
  memset (gradient_a, 0, sizeof (float) * map);
  aclip_batchnorm2d_backward (pool, gradient_a, grads->bn2_weight, grads->bn2_bias, dsum,
                              saved.conv2_out, saved.bn2_mean, saved.bn2_invstd, params->bn2_weight,
                              B, OC, spatial, training);
  /* conv 2 → gradient_b (at relu1_out), then the first ReLU in place. */
  memset (gradient_b, 0, sizeof (float) * map);
  aclip_conv2d_backward (pool, &c2, gradient_b, grads->conv2_weight, NULL, gradient_a,
                         saved.relu1_out, params->conv2_weight, workspace);
  run_elementwise (pool, map, masked_copy_range, gradient_b, gradient_b, saved.relu1_out);
  /* BN 1 → gradient_a (at conv1_out), then conv 1 → dinput. */
  memset (gradient_a, 0, sizeof (float) * map);
  aclip_batchnorm2d_backward (pool, gradient_a, grads->bn1_weight, grads->bn1_bias, gradient_b,
                              saved.conv1_out, saved.bn1_mean, saved.bn1_invstd, params->bn1_weight,
                              B, OC, spatial, training);
  aclip_conv2d_backward (pool, &c1, dinput, grads->conv1_weight, NULL, gradient_a, input,
                         params->conv1_weight, workspace);

  /* Shortcut. */
  if (projection) {
    AclipConv2dShape sc = shortcut_shape (shape);
    memset (gradient_a, 0, sizeof (float) * map);
    aclip_batchnorm2d_backward (pool, gradient_a, grads->shortcut_bn_weight,
                                grads->shortcut_bn_bias, dsum, saved.shortcut_conv_out,
                                saved.shortcut_mean, saved.shortcut_invstd,
                                params->shortcut_bn_weight, B, OC, spatial, training);
    aclip_conv2d_backward (pool, &sc, dinput, grads->shortcut_weight, NULL, gradient_a, input,
                           params->shortcut_weight, workspace);
  } else if (dinput != NULL) {
    run_elementwise (pool, map, add_range, dinput, dsum, NULL);
  }
}
