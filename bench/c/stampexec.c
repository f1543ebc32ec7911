/* Appends the CLOCK_REALTIME time in ns and a newline to FILE, then execs
 * the rest of the command line: marks the moment a program really starts,
 * whoever started it (ward, supervisord, PM2, runit, s6, a shell).
 *
 *   stampexec FILE PROGRAM [ARGS...]
 *
 * With $STAMP_FILE and $STAMP_EXEC set, those are FILE and PROGRAM (run
 * without arguments) and the arguments are ignored: runit and s6 run a
 * service's ./run without arguments of ours (s6 passes the service's
 * name), so ./run can be a symlink to this program and no shell start-up
 * is counted against them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *file;
    char **exec_argv;
    char *env_argv[2] = {NULL, NULL};
    file = getenv("STAMP_FILE");
    env_argv[0] = getenv("STAMP_EXEC");
    if (file != NULL && env_argv[0] != NULL) {
        exec_argv = env_argv;
    } else if (argc >= 3) {
        file = argv[1];
        exec_argv = argv + 2;
    } else {
        fputs("usage: stampexec FILE PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    char line[32];
    int n = snprintf(line, sizeof line, "%lld\n",
                     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        perror("stampexec");
        return 3;
    }
    close(fd);
    execvp(exec_argv[0], exec_argv);
    perror("stampexec: exec");
    return 127;
}
