/* Crash-loop child: appends "<start_ns> <end_ns>\n" (CLOCK_MONOTONIC) to
 * FILE and exits with CODE. One write with O_APPEND, so concurrent or
 * successive runs never interleave. Static, no stdio: as little start-up
 * cost as a real program can have, so the measured gap is the
 * supervisor's, not the child's.
 *
 *   stamp FILE [CODE]
 *
 * With $STAMP_FILE set, that is FILE, CODE is 1 and the arguments are
 * ignored: runit and s6 run a service's ./run without arguments of ours
 * (s6 passes the service's name), so ./run can be a symlink to this
 * program and no shell start-up sits in the measured gap.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static char *put(char *p, long long v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

int main(int argc, char **argv) {
    long long start = now_ns();
    const char *file = getenv("STAMP_FILE");
    int code = 1;
    if (file == NULL) {
        if (argc < 2)
            _exit(2);
        file = argv[1];
        code = argc > 2 ? atoi(argv[2]) : 1;
    }
    int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        _exit(3);
    char line[64];
    char *p = put(line, start);
    *p++ = ' ';
    long long end = now_ns();
    p = put(p, end);
    *p++ = '\n';
    if (write(fd, line, (size_t)(p - line)) != p - line)
        _exit(4);
    _exit(code);
}
