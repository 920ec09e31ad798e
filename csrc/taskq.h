/*
 * The queue behind trigger() from other threads: a multi-producer, single-consumer
 * mailbox of task blocks, with gnet's coalesced wake (its `wakeupCall` flag) and a
 * state that says whether anyone still takes from it.
 *
 * Plain C, no Node headers. One queue serves each direction of a remote trigger:
 *   - a poller's request queue: producer threads push the tasks they trigger, the
 *     poller's thread takes them in its chores round; the wake writes the poller's
 *     waker (eventfd, EVFILT_USER or pipe);
 *   - a caller thread's reply queue: poller threads push results, the caller's loop
 *     takes them; the wake is a uv_async_send.
 *
 * Producers hand over whole blocks (one flush of a thread's triggers, one chores
 * round's replies to one thread), so the mutex is taken once per block, not per task,
 * and the wake is written at most once per round however many producers push: the
 * first push that finds the flag clear sets it and wakes; the consumer clears it at
 * the end of its round and wakes itself again if work was left (gnet's Polling).
 *
 * Lifetime: the queue is reference-counted, because a producer may hold it after
 * its consumer went away (a worker terminated, a poller closed). Closing it hands
 * back what was queued, refuses later pushes (NP_TASKQ_CLOSED), and guarantees that
 * the wake function is never called again once np_taskq_close returns, so whatever
 * the wake touches (the poller's waker fd, a uv_async_t) may be closed right after.
 */
#ifndef NETPOLL_TASKQ_H
#define NETPOLL_TASKQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One task (or one reply): 24 bytes; its payload, if any, follows the block's task
 * array, each payload starting at the next multiple of 8 (NP_TASK_ALIGN) after the
 * previous one, so a reader walking the tasks in order finds them without offsets. */
typedef struct np_task {
  uint32_t id;       /* the caller's call id: the reply carries it back */
  uint16_t task;     /* requests: the index of the named task */
  uint8_t priority;  /* requests: 0 high, 1 low */
  uint8_t kind;      /* what the value is (the binding's VALUE_* codes) */
  uint32_t len;      /* payload bytes (0 for numbers and constants) */
  uint32_t flags;    /* requests: NP_TASK_NO_REPLY */
  double num;        /* the number, or the constant's code */
} np_task;

/* A request nobody waits for (RemotePoller#post): the consumer sends no reply, not even
 * when it closes before running the task. */
#define NP_TASK_NO_REPLY 1u

#define NP_TASK_ALIGN 8

typedef struct np_task_block {
  struct np_task_block *next;
  /* Requests: the queue replies go to, with one reference the block holds (released
   * by np_task_block_free). Replies: NULL. */
  struct np_taskq *sender;
  uint32_t count;      /* tasks in the block */
  uint32_t pooled;     /* 1: NP_TASK_BLOCK_POOLED bytes from the sender's pool */
  size_t data_len;
  np_task tasks[];     /* then the payload bytes */
} np_task_block;

/* A block for `count` tasks and `data_len` payload bytes (NULL when out of memory).
 * next and sender are NULL. */
np_task_block *np_task_block_new(uint32_t count, size_t data_len);
/* The first payload byte. */
unsigned char *np_task_block_data(np_task_block *block);
/* Where a payload of `len` bytes that follows one ending at `end` starts. */
size_t np_task_payload_start(size_t end);
/* The bytes a pooled block has (tasks and payload together). A producer's blocks go
 * back to the pool of its reply queue when the consumer frees them, instead of to
 * malloc: a block malloc'ed on one thread and freed on another is the pattern that
 * makes glibc trim and re-fault its pages on every round. */
#define NP_TASK_BLOCK_POOLED (64 * 1024)
/* Whether `count` tasks and `data_len` payload bytes fit a pooled block. */
int np_task_block_fits_pool(uint32_t count, size_t data_len);
/* A block from `pool`'s free list (or a new one) for what np_task_block_fits_pool
 * accepted; its sender is `pool`, with a reference. NULL when out of memory. */
np_task_block *np_task_block_from_pool(struct np_taskq *pool, uint32_t count, size_t data_len);
/* Frees the block (back to its sender's pool, if it came from one) and releases its sender. */
void np_task_block_free(np_task_block *block);
/* Frees a chain of blocks (next links). */
void np_task_chain_free(np_task_block *chain);

/* Wakes the consumer; 0 or a negative errno. Called with the queue's mutex held. */
typedef int (*np_taskq_wake_fn)(void *arg);

typedef struct np_taskq np_taskq;

/* What np_taskq_push returns once the queue is closed: the block was not queued. */
#define NP_TASKQ_CLOSED (-32) /* -EPIPE */

/* A new open queue with one reference, or NULL when out of memory. */
np_taskq *np_taskq_new(np_taskq_wake_fn wake, void *wake_arg);
void np_taskq_retain(np_taskq *q);
/* Drops a reference; the last one frees the queue and whatever it still holds. */
void np_taskq_release(np_taskq *q);

/* Appends a block (the queue owns it from now on) and wakes the consumer if no wake
 * is pending. Returns 0; the wake's negative errno (the block is queued all the same,
 * and the flag is left clear so that the next push tries again); or NP_TASKQ_CLOSED
 * (the caller keeps the block). */
int np_taskq_push(np_taskq *q, np_task_block *block);
/* Takes every queued block, oldest first (a chain through `next`), or NULL. */
np_task_block *np_taskq_take(np_taskq *q);
/* Closes the queue and returns what was queued (NULL if nothing). Idempotent. After
 * it returns, pushes fail and the wake function is never called again. */
np_task_block *np_taskq_close(np_taskq *q);
int np_taskq_is_open(np_taskq *q);
/* Whether tasks are queued (a snapshot: producers may add more at any time). */
int np_taskq_has_tasks(np_taskq *q);
/* How many tasks are queued (a snapshot, as has_tasks; an empty block counts one). */
int np_taskq_queued(np_taskq *q);

/* gnet's wakeupCall, for the consumer's side. try_wake sets the flag and returns 1 when
 * it was clear (the caller must then wake the consumer itself), 0 when a wake is
 * pending already. end_round clears it: call it once a round has run, then wake again
 * (try_wake) if work is left, as gnet's Polling does. */
int np_taskq_try_wake(np_taskq *q);
void np_taskq_end_round(np_taskq *q);
/* Clears the flag after a failed wake, so that the next trigger tries again. */
void np_taskq_cancel_wake(np_taskq *q);

#ifdef __cplusplus
}
#endif

#endif
