/* The MPSC task queue (taskq.h): a mutex-guarded list of blocks, a wake flag, a
 * state. A lock-free list would save the mutex, but producers push whole blocks
 * (a thread's triggers of one tick), so the lock is taken once per block and is
 * never contended for long; the mutex also makes the close/wake handshake simple:
 * the wake runs under it, so once close has taken it the wake target may go. */
#include "taskq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

/* Pooled blocks a queue keeps at most: 1 MiB. */
#define POOL_MAX 16

_Static_assert(NP_TASKQ_CLOSED == -EPIPE, "NP_TASKQ_CLOSED is -EPIPE");
_Static_assert(sizeof(np_task) == 24, "np_task is 24 bytes");

/* Open: pushes are queued. Closed: the consumer went away; pushes are refused. */
typedef enum { TASKQ_OPEN, TASKQ_CLOSED } taskq_state;

struct np_taskq {
  pthread_mutex_t mu;
  /* Guarded by mu: */
  taskq_state state;
  np_task_block *head;
  np_task_block *tail;
  /* Written under mu, read without it by np_taskq_has_tasks (atomics). */
  int queued;
  /* gnet's wakeupCall: 1 while a wake is pending. Atomic: the consumer clears it
   * without the mutex. */
  int wake_call;
  int refs; /* atomic */
  /* Pooled blocks to reuse, guarded by mu. */
  np_task_block *pool;
  int pooled;
  np_taskq_wake_fn wake;
  void *wake_arg;
};

/* The header of a block about to carry `count` tasks and
 * data_len payload bytes, whether fresh from malloc or back from a pool. */
static np_task_block *block_init(np_task_block *b, np_taskq *sender, uint32_t count, size_t data_len, uint32_t pooled) {
  b->next = NULL;
  b->sender = sender;
  b->count = count;
  b->pooled = pooled;
  b->data_len = data_len;
  return b;
}

np_task_block *np_task_block_new(uint32_t count, size_t data_len) {
  size_t head = sizeof(np_task_block) + (size_t)count * sizeof(np_task);
  if (data_len > SIZE_MAX - head) return NULL;
  np_task_block *b = malloc(head + data_len);
  if (b == NULL) return NULL;
  return block_init(b, NULL, count, data_len, 0);
}

int np_task_block_fits_pool(uint32_t count, size_t data_len) {
  size_t head = sizeof(np_task_block) + (size_t)count * sizeof(np_task);
  return head <= NP_TASK_BLOCK_POOLED && data_len <= NP_TASK_BLOCK_POOLED - head;
}

np_task_block *np_task_block_from_pool(np_taskq *pool, uint32_t count, size_t data_len) {
  pthread_mutex_lock(&pool->mu);
  np_task_block *b = pool->pool;
  if (b != NULL) {
    pool->pool = b->next;
    pool->pooled--;
  }
  pthread_mutex_unlock(&pool->mu);
  if (b == NULL && (b = malloc(NP_TASK_BLOCK_POOLED)) == NULL) return NULL;
  np_taskq_retain(pool);
  return block_init(b, pool, count, data_len, 1);
}

unsigned char *np_task_block_data(np_task_block *block) {
  return (unsigned char *)&block->tasks[block->count];
}

size_t np_task_payload_start(size_t end) {
  return (end + (NP_TASK_ALIGN - 1)) & ~(size_t)(NP_TASK_ALIGN - 1);
}

void np_task_block_free(np_task_block *block) {
  if (block == NULL) return;
  np_taskq *home = block->sender;
  if (block->pooled && home != NULL) {
    pthread_mutex_lock(&home->mu);
    int kept = home->pooled < POOL_MAX;
    if (kept) {
      block->next = home->pool;
      home->pool = block;
      home->pooled++;
    }
    pthread_mutex_unlock(&home->mu);
    /* If this was the last reference, the pool (and the block) goes with the queue. */
    np_taskq_release(home);
    if (kept) return;
    free(block);
    return;
  }
  if (home != NULL) np_taskq_release(home);
  free(block);
}

void np_task_chain_free(np_task_block *chain) {
  while (chain != NULL) {
    np_task_block *next = chain->next;
    np_task_block_free(chain);
    chain = next;
  }
}

np_taskq *np_taskq_new(np_taskq_wake_fn wake, void *wake_arg) {
  np_taskq *q = calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  if (pthread_mutex_init(&q->mu, NULL) != 0) {
    free(q);
    return NULL;
  }
  q->state = TASKQ_OPEN;
  q->refs = 1;
  q->wake = wake;
  q->wake_arg = wake_arg;
  return q;
}

void np_taskq_retain(np_taskq *q) { __atomic_fetch_add(&q->refs, 1, __ATOMIC_RELAXED); }

void np_taskq_release(np_taskq *q) {
  if (__atomic_fetch_sub(&q->refs, 1, __ATOMIC_ACQ_REL) != 1) return;
  /* The last reference: nobody can push any more. Blocks left (only if the consumer
   * never closed it) go with it. */
  np_task_chain_free(q->head);
  while (q->pool != NULL) {
    np_task_block *b = q->pool;
    q->pool = b->next;
    free(b);
  }
  pthread_mutex_destroy(&q->mu);
  free(q);
}

int np_taskq_push(np_taskq *q, np_task_block *block) {
  int err = 0;
  block->next = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->state != TASKQ_OPEN) {
    pthread_mutex_unlock(&q->mu);
    return NP_TASKQ_CLOSED;
  }
  if (q->tail != NULL) q->tail->next = block;
  else q->head = block;
  q->tail = block;
  /* An empty block still counts, so that take() does not skip it. */
  __atomic_store_n(&q->queued, q->queued + (block->count > 0 ? (int)block->count : 1), __ATOMIC_SEQ_CST);
  int expected = 0;
  if (__atomic_compare_exchange_n(&q->wake_call, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    /* Under the mutex: close cannot finish (and the wake target go) meanwhile. */
    err = q->wake(q->wake_arg);
    if (err < 0) __atomic_store_n(&q->wake_call, 0, __ATOMIC_SEQ_CST);
  }
  pthread_mutex_unlock(&q->mu);
  return err;
}

static np_task_block *take_locked(np_taskq *q) {
  np_task_block *chain = q->head;
  q->head = q->tail = NULL;
  __atomic_store_n(&q->queued, 0, __ATOMIC_SEQ_CST);
  return chain;
}

np_task_block *np_taskq_take(np_taskq *q) {
  if (__atomic_load_n(&q->queued, __ATOMIC_SEQ_CST) == 0) return NULL;
  pthread_mutex_lock(&q->mu);
  np_task_block *chain = take_locked(q);
  pthread_mutex_unlock(&q->mu);
  return chain;
}

np_task_block *np_taskq_close(np_taskq *q) {
  pthread_mutex_lock(&q->mu);
  q->state = TASKQ_CLOSED;
  np_task_block *chain = take_locked(q);
  pthread_mutex_unlock(&q->mu);
  return chain;
}

int np_taskq_is_open(np_taskq *q) {
  pthread_mutex_lock(&q->mu);
  int open = q->state == TASKQ_OPEN;
  pthread_mutex_unlock(&q->mu);
  return open;
}

int np_taskq_has_tasks(np_taskq *q) { return __atomic_load_n(&q->queued, __ATOMIC_SEQ_CST) > 0; }

int np_taskq_queued(np_taskq *q) { return __atomic_load_n(&q->queued, __ATOMIC_SEQ_CST); }

int np_taskq_try_wake(np_taskq *q) {
  int expected = 0;
  return __atomic_compare_exchange_n(&q->wake_call, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void np_taskq_end_round(np_taskq *q) { __atomic_store_n(&q->wake_call, 0, __ATOMIC_SEQ_CST); }

void np_taskq_cancel_wake(np_taskq *q) { __atomic_store_n(&q->wake_call, 0, __ATOMIC_SEQ_CST); }
