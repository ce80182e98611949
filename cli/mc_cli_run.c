/* What convert needs for every layout (cmd_convert.c, cmd_export.c):
 * signals, clock, peak memory, writer options. */
#include "mc_cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mc_flash_write.h"
#include "mc_io.h"
#include "mc_plan.h"

/* ---- signals: remove the temporary file, then die of the signal ---- */

static void on_signal(int sig)
{
    mc_io_cleanup_signal_safe();
    signal(sig, SIG_DFL);
    raise(sig);
}

void mc_cli_install_signals(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    /* A file-size limit must give a clean EFBIG error, not a core dump. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &sa, NULL);
}

double mc_cli_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

unsigned long long mc_cli_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (unsigned long long)ru.ru_maxrss;
#else
    return (unsigned long long)ru.ru_maxrss * 1024ull;
#endif
}

static void progress_line(void *ctx, uint64_t done, uint64_t total)
{
    const mc_cli_progress *p = ctx;
    if (!p->on) return;
    double el = mc_cli_now_s() - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;
    char a[32], b[32];
    fprintf(stderr, "\rconverting %s / %s  %.1f MB/s  ETA %.0fs   ", mc_cli_bytes(done, a, sizeof a),
            mc_cli_bytes(total, b, sizeof b), rate / 1e6, eta);
    fflush(stderr);
}

void mc_cli_write_opts(struct mc_flash_write_opts *wo, int threads, int force, mc_cli_progress *pr)
{
    memset(wo, 0, sizeof *wo);
    wo->threads = threads;
    wo->force = force;
    wo->ops = mc_source_model_ops();
    wo->progress = pr ? progress_line : NULL;
    wo->progress_ctx = pr;
    const char *delay = getenv("MCONV_TEST_DELAY_US"); /* TEST ONLY: slow conversions for crash tests */
    if (delay && *delay) wo->test_delay_us = (unsigned)strtoul(delay, NULL, 10);
}
