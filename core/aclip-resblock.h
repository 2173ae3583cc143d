/* aclip-resblock.h — the ResNet basic block, composed from the kernels of aclip-nn-conv.h.
 *
 *   main path: conv3×3 (stride s, pad 1) → BN → ReLU → conv3×3 (stride 1, pad 1) → BN
 *   shortcut:  the input itself, or conv1×1 (stride s) → BN when s ≠ 1 or IC ≠ OC
 *   output:    ReLU (main + shortcut)
 * Convolutions have no bias (BN follows each), as in torchvision's BasicBlock. The
 * conventions are those of the kernels: the forward writes its output and saves what the
 * backward needs in `activations`; the backward accumulates (+=) into every gradient.
 */
#pragma once

#include <glib.h>

#include "aclip-parallel.h"

G_BEGIN_DECLS

typedef struct
{
  int batch;        /* B */
  int in_channels;  /* IC */
  int out_channels; /* OC */
  int in_height;    /* H */
  int in_width;     /* W */
  int stride;       /* 1 or 2; OH = (H − 1) / stride + 1, OW likewise */
} AclipResBlockShape;

/* TRUE when the shortcut is a 1×1 convolution + BN (stride ≠ 1 or IC ≠ OC). */
gboolean aclip_resblock_has_projection (const AclipResBlockShape *shape);
int aclip_resblock_out_height (const AclipResBlockShape *shape);
int aclip_resblock_out_width (const AclipResBlockShape *shape);

/* The block's parameters, or their gradients (same shapes). The shortcut members are NULL
 * when the block has no projection. */
typedef struct
{
  float *conv1_weight;       /* [OC, IC, 3, 3] */
  float *bn1_weight;         /* [OC] γ */
  float *bn1_bias;           /* [OC] β */
  float *conv2_weight;       /* [OC, OC, 3, 3] */
  float *bn2_weight;         /* [OC] */
  float *bn2_bias;           /* [OC] */
  float *shortcut_weight;    /* [OC, IC, 1, 1] */
  float *shortcut_bn_weight; /* [OC] */
  float *shortcut_bn_bias;   /* [OC] */
} AclipResBlockParams;

/* Running statistics of the three batch normalisations, each [OC]; shortcut ones NULL when
 * the block has no projection. */
typedef struct
{
  float *bn1_mean, *bn1_var;
  float *bn2_mean, *bn2_var;
  float *shortcut_bn_mean, *shortcut_bn_var;
} AclipResBlockRunningStats;

/* Floats of `activations` the forward fills and the backward reads: the pre-BN convolution
 * outputs, the first ReLU's output and the batch statistics. */
gsize aclip_resblock_activations_size (const AclipResBlockShape *shape);
/* Floats of scratch the forward and backward need. */
gsize aclip_resblock_workspace_size (const AclipResBlockShape *shape);

/*   output:      [B, OC, OH, OW] (written)
 *   activations: [aclip_resblock_activations_size (shape)] (written)
 *   input:       [B, IC, H, W]
 *   params:      the block's weights
 *   running:     updated in training, read in evaluation (required then)
 *   eps, momentum, training: as aclip_batchnorm2d_forward
 *   workspace:   [aclip_resblock_workspace_size (shape)] scratch
 */
void aclip_resblock_forward (AclipThreadPool *pool, const AclipResBlockShape *shape, float *output,
                             float *activations, const float *input,
                             const AclipResBlockParams *params,
                             const AclipResBlockRunningStats *running, float eps, float momentum,
                             gboolean training, float *workspace);

/*   dinput:      [B, IC, H, W] (+=), or NULL
 *   grads:       the parameters' gradients (+=); every member of a used layer non-NULL
 *   doutput:     [B, OC, OH, OW]
 *   output:      [B, OC, OH, OW], the forward's output (its sign is the last ReLU's mask)
 *   activations: from the forward
 *   input:       [B, IC, H, W], the forward's input
 *   params:      the block's weights
 *   training:    as in the forward
 *   workspace:   [aclip_resblock_workspace_size (shape)] scratch
 */
void aclip_resblock_backward (AclipThreadPool *pool, const AclipResBlockShape *shape, float *dinput,
                              const AclipResBlockParams *grads, const float *doutput,
                              const float *output, const float *activations, const float *input,
                              const AclipResBlockParams *params, gboolean training,
                              float *workspace);

G_END_DECLS
