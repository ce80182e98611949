/* bench_qerr_cost: what the quantization error measurement costs in a whole
 * conversion, as issue 14 states its target (under 10% more CPU).
 *
 *   bench_qerr_cost MCONV IN WORKDIR [PAIRS [THREADS]]
 *
 * Runs, after one warm-up of each (not counted), PAIRS pairs (default 41) of
 *
 *   A  MCONV convert IN WORKDIR/qerr-a.flash --threads T --force -q
 *   B  MCONV convert IN WORKDIR/qerr-b.flash --threads T --force -q --no-qerr
 *
 * A first in even pairs and B first in odd ones (so neither always runs
 * after the other), and takes each finished run's user and system seconds
 * from the operating system's accounting of its children (getrusage
 * RUSAGE_CHILDREN before and after the wait: POSIX, the same on Linux and
 * macOS). CPU is user + system. It prints the medians of A and B, the
 * median of the pairwise ratios A/B with a distribution-free 95% confidence
 * interval for that median (order statistics of the sorted ratios; the
 * binomial(PAIRS, 1/2) tail gives which ones), their min and max, and the
 * ratio of the totals. Each run's output file is removed by this program
 * before the run starts (outside the children's accounting), so every run
 * writes a new file as a first conversion does, instead of also paying
 * the kernel for freeing the previous output's pages when it renames over
 * it (about 5% of a q4km run's samples on /dev/shm, in both arms, which
 * made the ratio look smaller; before 2026-12-07 the runs replaced their
 * previous output). Every run must exit 0; one that does not stops the
 * benchmark (exit 1). The figures are only as steady as the machine: run
 * it on an otherwise idle one. */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct run_t {
    double user, sys;
} run_t;

static double tv_s(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

/* One run of argv writing to the file out_path (removed first); its user
 * and system seconds. 0, or -1 with a message. */
static int run_once(char **argv, const char *out_path, run_t *out)
{
    struct rusage r0, r1;
    pid_t pid;
    int st = 0;
    if (unlink(out_path) != 0 && errno != ENOENT) {
        fprintf(stderr, "bench_qerr_cost: cannot remove %s: %s\n", out_path, strerror(errno));
        return -1;
    }
    if (getrusage(RUSAGE_CHILDREN, &r0) != 0) return -1;
    int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "bench_qerr_cost: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "bench_qerr_cost: waiting for %s: %s\n", argv[0], strerror(errno));
            return -1;
        }
    }
    if (getrusage(RUSAGE_CHILDREN, &r1) != 0) return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_qerr_cost: %s %s exited with status %d\n", argv[0], argv[1],
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    out->user = tv_s(r1.ru_utime) - tv_s(r0.ru_utime);
    out->sys = tv_s(r1.ru_stime) - tv_s(r0.ru_stime);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The largest k (1-based) with P(Binomial(n, 1/2) <= k - 1) <= 0.025: then
 * [v(k), v(n + 1 - k)] of the sorted values holds the population median
 * with probability at least 95%, whatever the distribution. 0 when n is
 * too small for any such interval (n < 6). *cover: that probability. */
static int median_ci_rank(int n, double *cover)
{
    double cdf = 0.0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        double p = exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
        if (cdf + p > 0.025) break;
        cdf += p; /* P(X <= i) */
        k = i + 1;
    }
    *cover = 1.0 - 2.0 * cdf;
    return k;
}

enum { CPU, USER, SYS };

static double pick(run_t r, int what)
{
    return what == USER ? r.user : what == SYS ? r.sys : r.user + r.sys;
}

static void report(const char *name, int what, const run_t *a, const run_t *b, int n)
{
    double *ra = malloc((size_t)n * sizeof *ra), *rb = malloc((size_t)n * sizeof *rb),
           *q = malloc((size_t)n * sizeof *q);
    if (!ra || !rb || !q) {
        fprintf(stderr, "bench_qerr_cost: out of memory\n");
        exit(1);
    }
    double ta = 0, tb = 0;
    for (int i = 0; i < n; i++) {
        ra[i] = pick(a[i], what);
        rb[i] = pick(b[i], what);
        q[i] = ra[i] / rb[i];
        ta += ra[i];
        tb += rb[i];
    }
    double ma = median(ra, n), mb = median(rb, n), mq = median(q, n), cover = 0;
    int k = median_ci_rank(n, &cover);
    printf("%-5s s, median: measured %.3f, --no-qerr %.3f | pair ratio: median %.4f", name, ma, mb, mq);
    if (k > 0)
        printf(", %.1f%% interval %.4f-%.4f", 100.0 * cover, q[k - 1], q[n - k]);
    printf(", min-max %.3f-%.3f | ratio of totals %.4f\n", q[0], q[n - 1], ta / tb);
    free(ra);
    free(rb);
    free(q);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: bench_qerr_cost MCONV IN WORKDIR [PAIRS [THREADS]]\n");
        return 2;
    }
    const int pairs = argc > 4 ? atoi(argv[4]) : 41, threads = argc > 5 ? atoi(argv[5]) : 1;
    if (pairs < 1 || pairs > 10000 || threads < 1 || threads > 1024) {
        fprintf(stderr, "bench_qerr_cost: PAIRS must be 1..10000 and THREADS 1..1024\n");
        return 2;
    }
    char outa[4096], outb[4096], th[16];
    if (snprintf(outa, sizeof outa, "%s/qerr-a.flash", argv[3]) >= (int)sizeof outa ||
        snprintf(outb, sizeof outb, "%s/qerr-b.flash", argv[3]) >= (int)sizeof outb) {
        fprintf(stderr, "bench_qerr_cost: %s: path too long\n", argv[3]);
        return 2;
    }
    snprintf(th, sizeof th, "%d", threads);
    char *cmd_a[] = { argv[1], "convert", argv[2], outa, "--threads", th, "--force", "-q", NULL };
    char *cmd_b[] = { argv[1], "convert", argv[2], outb, "--threads", th, "--force", "-q", "--no-qerr", NULL };
    run_t *a = malloc((size_t)pairs * 2 * sizeof *a), *b = a ? a + pairs : NULL;
    if (!a) {
        fprintf(stderr, "bench_qerr_cost: out of memory\n");
        return 1;
    }
    printf("measured:  %s convert %s %s --threads %s --force -q\n", argv[1], argv[2], outa, th);
    printf("--no-qerr: %s convert %s %s --threads %s --force -q --no-qerr\n", argv[1], argv[2], outb, th);
    fflush(stdout);
    int rc = 1;
    run_t w;
    if (run_once(cmd_a, outa, &w) || run_once(cmd_b, outb, &w)) goto done; /* warm-up */
    for (int i = 0; i < pairs; i++) {
        if (i % 2 == 0 ? run_once(cmd_a, outa, &a[i]) || run_once(cmd_b, outb, &b[i])
                       : run_once(cmd_b, outb, &b[i]) || run_once(cmd_a, outa, &a[i]))
            goto done;
        if (b[i].user <= 0) {
            fprintf(stderr, "bench_qerr_cost: a --no-qerr run took no measurable time; give a larger input\n");
            goto done;
        }
    }
    printf("%d pairs, %d thread%s\n", pairs, threads, threads == 1 ? "" : "s");
    report("cpu", CPU, a, b, pairs);
    report("user", USER, a, b, pairs);
    int sys_ok = 1;
    for (int i = 0; i < pairs; i++) sys_ok &= b[i].sys > 0;
    if (sys_ok) report("sys", SYS, a, b, pairs);
    rc = 0;
done:
    free(a);
    return rc;
}
