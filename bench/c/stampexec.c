/* Appends the CLOCK_REALTIME time in ns and a newline to FILE, then execs
 * the rest of the command line: marks the moment a program really starts,
 * whoever started it (ward, supervisord, a shell).
 *
 *   stampexec FILE PROGRAM [ARGS...]
 */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc < 3) {
        fputs("usage: stampexec FILE PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    char line[32];
    int n = snprintf(line, sizeof line, "%lld\n",
                     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        perror("stampexec");
        return 3;
    }
    close(fd);
    execvp(argv[2], argv + 2);
    perror("stampexec: exec");
    return 127;
}
