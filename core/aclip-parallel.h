/* aclip-parallel.h — the project's own parallel loops, and the OpenBLAS thread count.
 *
 * A pool is an object the caller owns and passes to kernels (NULL runs serially); there is no
 * global pool. The OpenBLAS thread count is the one piece of process-wide state the project
 * sets. Never call BLAS from inside a parallel loop: matrix products run between loops, on
 * OpenBLAS's own threads, so no more threads are busy than cores.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _AclipThreadPool AclipThreadPool;

/* n_threads ≤ 0 means one per online core. The calling thread is one of the n_threads: a
 * pool of 1 starts no thread. */
AclipThreadPool *aclip_thread_pool_new (int n_threads);
void aclip_thread_pool_free (AclipThreadPool *pool);
int aclip_thread_pool_n_threads (const AclipThreadPool *pool); /* 1 for NULL */

/* Body of a parallel loop: handles items [begin, end); `worker` in [0, n_threads) identifies
 * the thread, e.g. to pick a per-thread scratch buffer. */
typedef void (*AclipParallelFunc) (gint64 begin, gint64 end, int worker, gpointer data);

/* Splits [0, n) into contiguous chunks of at least `grain` items over the pool's threads and
 * returns when all are done. Which items each worker gets is deterministic for given n, grain
 * and thread count. */
void aclip_parallel_for (AclipThreadPool *pool, gint64 n, gint64 grain, AclipParallelFunc func,
                         gpointer data);

/* Sets OpenBLAS's thread count (≤ 0: one per core); the thread-count option of the trainer
 * calls this and sizes its pool the same way. */
void aclip_set_blas_threads (int n_threads);
int aclip_online_cores (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AclipThreadPool, aclip_thread_pool_free)

G_END_DECLS
