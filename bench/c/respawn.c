/* Baseline for the crash loop: the cheapest possible supervisor. Runs
 * PROGRAM again as soon as it exits (fork, exec, waitpid) for SECONDS, with
 * the child's stdout and stderr on pipes that are drained, as a supervisor's
 * would be. Prints the number of runs.
 *
 *   respawn SECONDS PROGRAM [ARGS...]
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs("usage: respawn SECONDS PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    double end = now() + atof(argv[1]);
    long runs = 0;
    while (now() < end) {
        int out[2];
        if (pipe(out) != 0) {
            perror("pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            dup2(out[1], 1);
            dup2(out[1], 2);
            close(out[0]);
            close(out[1]);
            execvp(argv[2], argv + 2);
            _exit(127);
        }
        close(out[1]);
        char buf[4096];
        while (read(out[0], buf, sizeof buf) > 0) {
        }
        close(out[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0) {
        }
        runs++;
    }
    printf("%ld\n", runs);
    return 0;
}
