/* The threads of one forward call: a barrier between steps that notices when the team
 * cannot keep pace, and a bench where the threads it leaves behind wait to be called back.
 *
 * OpenMP's barrier assumes every thread has a core. When another process (or the host of
 * a virtual machine) takes one, the descheduled thread turns each step's barrier into a
 * scheduler round trip (milliseconds: a 100-step call went from 5 ms to 600 ms). Here a
 * thread that waits much longer than its own step took marks the team slow; the thread
 * that completes the barrier publishes that as `solo`, which every thread reads on
 * release, so all agree at the same step: thread 0 goes on alone, without barriers, and
 * the others sit on the bench.
 *
 * Going solo for the rest of the call made a passing hiccup cost half the speed of
 * everything after it: LSTM(512) on 64 x 200 at 2 threads took 118 ms, and 172-196 ms
 * (median) with another process busy for 3 ms in every 200. So the bench stays ready:
 * once thread 0 has been alone for `regroup_after` seconds and sees every benched thread
 * running (their pulses move), it calls them back at the next step (that call: 118-128
 * ms). A regroup that fails (the other process still there) costs a wait at a barrier
 * until the scheduler returns the core, up to ~25 ms here, so after one the next try comes
 * LSTMC_REGROUP_GROWTH times later: a core taken for good costs one or two such waits
 * per call, not one per step.
 *
 * The barrier is thread 0's: the others publish the step they finished on a line of their
 * own and wait for thread 0 to publish it, thread 0 waits for all of them. A counter every
 * thread adds to would be shorter to write, but the add is a locked instruction, which
 * waits until every earlier store of its thread has reached memory, and those include the
 * trace's streamed rows (lstm_c/_recurrence.h): each step's barrier waited for its trace
 * (LSTM(128) on one sequence at 2 threads: trace / fast 1.22-1.28, 1.11-1.18 with plain
 * stores; 256 x LSTM(64): 1.43 -> 1.30). A plain store waits for nothing.
 *
 * Waiting (at the barrier or on the bench) spins briefly, then yields the core.
 * Every step's units are computed the same way whoever computes them, so the results
 * are the same bits however often the team splits and regroups. */
#ifndef LSTMC_TEAM_H
#define LSTMC_TEAM_H

#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define LSTMC_PATIENCE 50e-6          /* the least a waiting thread waits before it calls the team slow */
#define LSTMC_REGROUP_FIRST 1e-3      /* alone at least this long before the first regroup */
#define LSTMC_REGROUP_GROWTH 16       /* after a regroup that did not pay */
#define LSTMC_REGROUP_AFTER_MAX 1.0   /* the growth stops here */

/* A thread's seat, a cache line that only its thread writes: the last step it finished
 * (the barrier), and its pulse, which moves while it waits on the bench. */
typedef struct {
    ptrdiff_t step;
    int beat;
} __attribute__((aligned(64))) lstmc_seat;
enum { LSTMC_SEAT_BYTES = sizeof(lstmc_seat) };

typedef struct {
    /* the barrier (its own cache line: thread 0 writes it at every step) */
    ptrdiff_t step __attribute__((aligned(64)));  /* the last step every thread finished */
    int n;                 /* threads taking part */
    int slow;              /* someone waited too long */
    int solo;              /* published by thread 0 with `step`: it goes on alone */
    double patience;       /* seconds; < 0: any wait is too long (tests force fall-backs so) */
    /* the bench */
    int full __attribute__((aligned(64)));  /* threads OpenMP gave the call */
    int benched;           /* threads waiting to be called back */
    int epoch;             /* thread 0 bumps it to call the bench back, or to dismiss it */
    int done;              /* the call is over: the bench leaves */
    ptrdiff_t resume_step, resume_kb0, resume_kb1;  /* where the called-back threads resume */
    void *resume_h;        /* ... and which of the two h buffers holds the current h */
    lstmc_seat *seats;     /* one per thread */
    /* thread 0's own */
    double regroup_first;  /* seconds alone before the first try after a new hiccup */
    double solo_since, regroup_after, regrouped_at;
    int fallbacks, regroups;
    void *final_h;         /* which of the two h buffers holds h when the call ends */
} lstmc_team;

static inline double lstmc_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static inline void lstmc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

/* `seats`: n of them, on cache lines (the caller's memory: a call never fails here). */
static inline void lstmc_team_init(lstmc_team *team, int n, lstmc_seat *seats, double patience,
                                   double regroup_first) {
    memset(team, 0, sizeof(*team));
    memset(seats, 0, (size_t)n * sizeof(*seats));  /* steps count from 1: none finished */
    team->n = team->full = n;
    team->seats = seats;
    team->patience = patience;
    team->regroup_first = team->regroup_after = regroup_first;
}

/* Wait until *published >= step; a wait longer than `patience` seconds (any wait, when
 * it is negative) marks the team slow. */
static void lstmc_team_wait(lstmc_team *team, const ptrdiff_t *published, ptrdiff_t step,
                            double patience) {
    double started;
    long spins = 0;
    if (__atomic_load_n(published, __ATOMIC_ACQUIRE) >= step) return;
    started = lstmc_seconds();
    if (patience < 0) __atomic_store_n(&team->slow, 1, __ATOMIC_RELAXED);
    while (__atomic_load_n(published, __ATOMIC_ACQUIRE) < step) {
        if (++spins < 2000) {
            lstmc_cpu_relax();
            continue;
        }
        if (!__atomic_load_n(&team->slow, __ATOMIC_RELAXED) && lstmc_seconds() - started > patience)
            __atomic_store_n(&team->slow, 1, __ATOMIC_RELAXED);
        sched_yield();
    }
}

/* Thread p has finished `step` (counted from 1): wait for the whole team; returns whether
 * the team goes solo from here on. `step_seconds` is how long this thread's share of the
 * step took. Steps only grow, also across a fall-back and a regroup, so a seat's value
 * from an earlier step never passes for this one. The release and acquire order each
 * thread's h before the step it publishes, and thread 0's publication after everyone's. */
static int lstmc_team_barrier(lstmc_team *team, int p, ptrdiff_t step, double step_seconds) {
    /* Patience: twice this thread's own step, and never less than team->patience. */
    const double patience = 2.0 * step_seconds + team->patience;
    int q;
    if (p != 0) {
        __atomic_store_n(&team->seats[p].step, step, __ATOMIC_RELEASE);
        lstmc_team_wait(team, &team->step, step, patience);
    } else {
        const int n = __atomic_load_n(&team->n, __ATOMIC_RELAXED);
        for (q = 1; q < n; q++) lstmc_team_wait(team, &team->seats[q].step, step, patience);
        if (__atomic_load_n(&team->slow, __ATOMIC_RELAXED))
            __atomic_store_n(&team->solo, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&team->step, step, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&team->solo, __ATOMIC_RELAXED);
}

/* Thread p (not 0) after the team went solo: wait until thread 0 calls the bench back
 * (returns the step to resume at) or the call is over (returns -1). The epoch is read
 * before the thread counts itself benched, and thread 0 calls back only a full bench, so
 * no call-back can pass unseen. */
static ptrdiff_t lstmc_team_bench(lstmc_team *team, int p) {
    const int epoch = __atomic_load_n(&team->epoch, __ATOMIC_ACQUIRE);
    long spins = 0;
    int i;
    __atomic_add_fetch(&team->benched, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&team->done, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&team->epoch, __ATOMIC_ACQUIRE) == epoch) {
        __atomic_add_fetch(&team->seats[p].beat, 1, __ATOMIC_RELAXED);
        for (i = 0; i < 32; i++) lstmc_cpu_relax();
        if (++spins > 64) sched_yield();
    }
    return __atomic_load_n(&team->done, __ATOMIC_ACQUIRE) ? -1 : team->resume_step;
}

/* Thread 0, at the step where the team went solo, having waited `waited` seconds at that
 * barrier for the thread that was away. If the team had regrouped and its time together
 * since did not pay for that wait (at twice the speed it gains half of it), the other
 * process is still there: wait LSTMC_REGROUP_GROWTH times longer before the next try.
 * Otherwise this is a new hiccup: try again after `regroup_first` or, if longer, as long
 * as it has lasted so far. */
static inline void lstmc_team_fell_back(lstmc_team *team, double waited) {
    const double now = lstmc_seconds();
    if (team->regroups > 0 && now - team->regrouped_at - waited < 2 * waited) {
        team->regroup_after *= LSTMC_REGROUP_GROWTH;
        if (team->regroup_after > LSTMC_REGROUP_AFTER_MAX) team->regroup_after = LSTMC_REGROUP_AFTER_MAX;
    } else {
        team->regroup_after = waited > team->regroup_first ? waited : team->regroup_first;
    }
    team->solo_since = now;
    team->fallbacks++;
}

/* Thread 0, alone, after a step: whether to call the bench back now: it has been alone
 * long enough, every other thread is on the bench, and each is running right now (its
 * pulse moves within LSTMC_PULSE_WAIT). A thread whose core another process holds would
 * answer only when the scheduler gives it back, with thread 0 waiting at the next
 * barrier all that time; when one is not running, thread 0 looks again only after
 * another `regroup_after`. */
#define LSTMC_PULSE_WAIT 10e-6
static int lstmc_team_may_regroup(lstmc_team *team) {
    const double now = lstmc_seconds();
    int q;
    if (now - team->solo_since < team->regroup_after ||
        __atomic_load_n(&team->benched, __ATOMIC_ACQUIRE) != team->full - 1)
        return 0;
    for (q = 1; q < team->full; q++) {
        const int beat = __atomic_load_n(&team->seats[q].beat, __ATOMIC_RELAXED);
        while (__atomic_load_n(&team->seats[q].beat, __ATOMIC_RELAXED) == beat) {
            if (lstmc_seconds() - now > LSTMC_PULSE_WAIT) {
                team->solo_since = now;
                return 0;
            }
            lstmc_cpu_relax();
        }
    }
    return 1;
}

/* Thread 0: the team resumes at `step`, with the current h in `h` and the input projected
 * for steps [kb0, kb1). Everything thread 0 wrote before is published by the release. */
static inline void lstmc_team_regroup(lstmc_team *team, ptrdiff_t step, void *h, ptrdiff_t kb0,
                                      ptrdiff_t kb1) {
    team->n = team->full;
    team->slow = team->solo = team->benched = 0;
    team->resume_step = step;
    team->resume_kb0 = kb0;
    team->resume_kb1 = kb1;
    team->resume_h = h;
    team->regrouped_at = lstmc_seconds();
    team->regroups++;
    __atomic_add_fetch(&team->epoch, 1, __ATOMIC_RELEASE);
}

/* Thread 0, at the end of a call it finished alone: the bench leaves. */
static inline void lstmc_team_dismiss(lstmc_team *team) {
    __atomic_store_n(&team->done, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&team->epoch, 1, __ATOMIC_RELEASE);
}

#endif /* LSTMC_TEAM_H */
