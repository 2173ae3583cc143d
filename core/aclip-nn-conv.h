/* aclip-nn-conv.h — convolutional kernels: 2-D convolution, batch and group normalisation,
 * max / average / global average pooling.
 *
 * Conventions (docs/kernels.md): images are [B, C, H, W] float arrays (PyTorch's NCHW);
 * convolution weights are [OC, IC, KH, KW]. Each forward writes its output and the state its
 * backward needs; each backward accumulates (+=) into every gradient it produces, and skips a
 * gradient whose pointer is NULL. Kernels never allocate: the convolution takes a workspace
 * of aclip_conv2d_workspace_size () floats. `pool` may be NULL (serial).
 *
 * Results do not depend on the pool's thread count: every parallel loop writes disjoint
 * outputs, and parameter gradients (normalisation weight and bias, convolution bias) are
 * reduced in a fixed order. Only OpenBLAS's own thread count can change the order of the
 * additions inside sgemm.
 */
#pragma once

#include <glib.h>

#include "aclip-parallel.h"

G_BEGIN_DECLS

/* ---- 2-D convolution (cross-correlation, as torch.nn.Conv2d, dilation 1, groups 1) ---- */

/* How the convolution is computed; all give the same result up to float rounding.
 * Winograd F(2×2, 3×3) does a 3×3 stride-1 convolution with 16 multiplications per 2×2
 * outputs instead of 36 (2.25× fewer flops), as 16 sgemms over transformed tiles; the
 * input and weight gradients use the same transform. */
typedef enum
{
  ACLIP_CONV_AUTO = 0, /* Winograd where it applies and pays, im2col elsewhere */
  ACLIP_CONV_IM2COL,   /* im2col + sgemm: any shape */
  ACLIP_CONV_WINOGRAD, /* 3×3 kernels, stride 1, padding ≤ 2, rows ≤ 1036 pixels only */
} AclipConvAlgorithm;

typedef struct
{
  int batch;         /* B */
  int in_channels;   /* IC */
  int in_height;     /* H */
  int in_width;      /* W */
  int out_channels;  /* OC */
  int kernel_height; /* KH */
  int kernel_width;  /* KW */
  int stride_height; /* ≥ 1 */
  int stride_width;  /* ≥ 1 */
  int pad_height;    /* zero padding on the top and on the bottom, ≥ 0 */
  int pad_width;     /* zero padding on the left and on the right, ≥ 0 */
  /* How many images share one sgemm (their im2col columns or Winograd tiles side by side).
   * 0 lets the kernel choose (enough images for a wide product); tests set 1 or B to
   * exercise both paths. */
  int images_per_gemm;
  AclipConvAlgorithm algorithm; /* 0 (ACLIP_CONV_AUTO) unless testing */
} AclipConv2dShape;

/* OH = (H + 2·pad_height − KH) / stride_height + 1, and OW likewise (floor division). */
int aclip_conv2d_out_height (const AclipConv2dShape *shape);
int aclip_conv2d_out_width (const AclipConv2dShape *shape);

/* Floats of workspace the forward and the backward need: for im2col, the im2col matrix
 * [IC·KH·KW, n·OH·OW] and a product matrix [OC, n·OH·OW] for n images per sgemm; for
 * Winograd, the transformed weights and tiles. */
gsize aclip_conv2d_workspace_size (const AclipConv2dShape *shape);

/* output[b, oc, oh, ow] = bias[oc]
 *   + Σ_{ic,kh,kw} weight[oc, ic, kh, kw] · input[b, ic, oh·sh − ph + kh, ow·sw − pw + kw]
 * with input taken as zero outside the image.
 *   output:    [B, OC, OH, OW] (written)
 *   input:     [B, IC, H, W]
 *   weight:    [OC, IC, KH, KW]
 *   bias:      [OC], or NULL for none
 *   workspace: [aclip_conv2d_workspace_size (shape)] scratch
 */
void aclip_conv2d_forward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *output,
                           const float *input, const float *weight, const float *bias,
                           float *workspace);

/*   dinput:    [B, IC, H, W] (+=), or NULL
 *   dweight:   [OC, IC, KH, KW] (+=), or NULL
 *   dbias:     [OC] (+=), or NULL
 *   doutput:   [B, OC, OH, OW]
 *   input:     [B, IC, H, W], the forward's input
 *   weight:    [OC, IC, KH, KW]
 *   workspace: [aclip_conv2d_workspace_size (shape)] scratch
 */
void aclip_conv2d_backward (AclipThreadPool *pool, const AclipConv2dShape *shape, float *dinput,
                            float *dweight, float *dbias, const float *doutput, const float *input,
                            const float *weight, float *workspace);

/* ---- Batch normalisation over (B, H, W) per channel, as torch.nn.BatchNorm2d ---- */

/* Training (`training` TRUE): normalises with the batch's mean and biased variance, saves the
 * mean and 1/√(var + eps), and, when running_mean / running_var are not NULL, updates them as
 * PyTorch does: running = (1 − momentum)·running + momentum·batch, with the unbiased variance
 * (× N/(N − 1), N = B·H·W) for running_var.
 * Evaluation (`training` FALSE): normalises with running_mean / running_var (required) and
 * leaves them unchanged; saved_mean / saved_invstd, when not NULL, receive the running mean
 * and 1/√(running_var + eps) so that the backward can run in evaluation mode too.
 *   output:        [B, C, H, W] (written)
 *   saved_mean:    [C] (written)
 *   saved_invstd:  [C] (written)
 *   running_mean:  [C] (updated in training), or NULL in training
 *   running_var:   [C] (updated in training), or NULL in training
 *   input:         [B, C, H, W]
 *   weight, bias:  [C] (γ, β), or NULL for γ = 1, β = 0 (affine = False)
 *   spatial:       H·W
 */
void aclip_batchnorm2d_forward (AclipThreadPool *pool, float *output, float *saved_mean,
                                float *saved_invstd, float *running_mean, float *running_var,
                                const float *input, const float *weight, const float *bias,
                                int batch, int channels, int spatial, float eps, float momentum,
                                gboolean training);

/* The backward of the forward above with the same `training`: in training the batch
 * statistics depend on the input, in evaluation they are constants.
 *   dinput:        [B, C, H, W] (+=), or NULL
 *   dweight:       [C] (+=), or NULL
 *   dbias:         [C] (+=), or NULL
 *   doutput:       [B, C, H, W]
 *   input:         [B, C, H, W], the forward's input
 *   saved_mean, saved_invstd: [C], from the forward
 *   weight:        [C] γ, or NULL for γ = 1
 */
void aclip_batchnorm2d_backward (AclipThreadPool *pool, float *dinput, float *dweight, float *dbias,
                                 const float *doutput, const float *input, const float *saved_mean,
                                 const float *saved_invstd, const float *weight, int batch,
                                 int channels, int spatial, gboolean training);

/* ---- Group normalisation, as torch.nn.GroupNorm ---- */

/* Each image's channels are split into `groups` consecutive groups of C/G channels (C must be
 * a multiple of G); each group is normalised over its (C/G)·H·W values with the biased
 * variance, then scaled and shifted per channel.
 *   output:        [B, C, H, W] (written)
 *   saved_mean:    [B, G] (written)
 *   saved_invstd:  [B, G] (written), 1/√(var + eps)
 *   input:         [B, C, H, W]
 *   weight, bias:  [C], or NULL for γ = 1, β = 0 (affine = False)
 *   spatial:       H·W
 */
void aclip_groupnorm_forward (AclipThreadPool *pool, float *output, float *saved_mean,
                              float *saved_invstd, const float *input, const float *weight,
                              const float *bias, int batch, int channels, int spatial, int groups,
                              float eps);

/*   dinput:        [B, C, H, W] (+=), or NULL
 *   dweight:       [C] (+=), or NULL
 *   dbias:         [C] (+=), or NULL
 *   doutput:       [B, C, H, W]
 *   input:         [B, C, H, W], the forward's input
 *   saved_mean, saved_invstd: [B, G], from the forward
 *   weight:        [C] γ, or NULL for γ = 1
 */
void aclip_groupnorm_backward (AclipThreadPool *pool, float *dinput, float *dweight, float *dbias,
                               const float *doutput, const float *input, const float *saved_mean,
                               const float *saved_invstd, const float *weight, int batch,
                               int channels, int spatial, int groups);

/* ---- Pooling (dilation 1, floor mode, as torch.nn.MaxPool2d / AvgPool2d) ---- */

typedef struct
{
  int batch;         /* B */
  int channels;      /* C */
  int in_height;     /* H */
  int in_width;      /* W */
  int kernel_height; /* KH */
  int kernel_width;  /* KW */
  int stride_height; /* ≥ 1 */
  int stride_width;  /* ≥ 1 */
  int pad_height;    /* ≤ KH / 2, as PyTorch requires */
  int pad_width;     /* ≤ KW / 2 */
} AclipPool2dShape;

/* OH = (H + 2·pad_height − KH) / stride_height + 1, and OW likewise (floor division). */
int aclip_pool2d_out_height (const AclipPool2dShape *shape);
int aclip_pool2d_out_width (const AclipPool2dShape *shape);

/* The maximum over each window; padding never wins (it counts as −∞). Ties go to the first
 * position in row-major order within the window and a NaN wins, as in PyTorch.
 *   output: [B, C, OH, OW] (written)
 *   argmax: [B, C, OH, OW] (written): index ih·W + iw of the maximum within its input plane
 *   input:  [B, C, H, W]
 */
void aclip_maxpool2d_forward (AclipThreadPool *pool, const AclipPool2dShape *shape, float *output,
                              gint32 *argmax, const float *input);

/*   dinput:  [B, C, H, W] (+=): each output's gradient goes to its arg-max
 *   doutput: [B, C, OH, OW]
 *   argmax:  [B, C, OH, OW], from the forward
 */
void aclip_maxpool2d_backward (AclipThreadPool *pool, const AclipPool2dShape *shape, float *dinput,
                               const float *doutput, const gint32 *argmax);

/* The mean over each window. With count_include_pad TRUE (PyTorch's default) the divisor is
 * always KH·KW, padded zeros included; with FALSE it is the number of real pixels in the
 * window.
 *   output: [B, C, OH, OW] (written)
 *   input:  [B, C, H, W]
 */
void aclip_avgpool2d_forward (AclipThreadPool *pool, const AclipPool2dShape *shape,
                              gboolean count_include_pad, float *output, const float *input);

/*   dinput:  [B, C, H, W] (+=)
 *   doutput: [B, C, OH, OW]
 */
void aclip_avgpool2d_backward (AclipThreadPool *pool, const AclipPool2dShape *shape,
                               gboolean count_include_pad, float *dinput, const float *doutput);

/* Mean over each channel's plane (adaptive average pooling to 1×1, flattened).
 *   output:  [B, C] (written)
 *   input:   [B, C, H, W]; spatial = H·W
 */
void aclip_global_avgpool_forward (AclipThreadPool *pool, float *output, const float *input,
                                   int batch, int channels, int spatial);

/*   dinput:  [B, C, H, W] (+=)
 *   doutput: [B, C]
 */
void aclip_global_avgpool_backward (AclipThreadPool *pool, float *dinput, const float *doutput,
                                    int batch, int channels, int spatial);

G_END_DECLS
