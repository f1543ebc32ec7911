/* Checks a flood's output: every line must carry the next number of
 * testee's `--lines N --size B` sequence (`%012d`, `x` filler, newline),
 * stored as MODE says:
 *   raw   the line as the program wrote it
 *   text  ward's text format: `<24-char timestamp> stdout <line>`
 *   json  ward's JSON format: `{..."line":"<line without newline>"}`
 *   stamped  a logger's timestamp, then the line as written: any prefix
 *         that starts with a digit (svlogd -tt, s6-log T, PM2's time)
 * FILES are read in order (oldest rotated file first). Prints one line:
 *   lines=… good=… malformed=… lost=… dup=…
 * where lost counts numbers of 0..N-1 never seen and dup numbers seen twice
 * or out of order.
 *
 *   checkseq MODE SIZE N FILE...
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum mode { RAW, TEXT, JSON, STAMPED };

static long long lines, good, malformed, lost, dups, next;

static int payload_ok(const char *p, size_t size, long long *num) {
    long long v = 0;
    for (int i = 0; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    for (size_t i = 12; i < size; i++)
        if (p[i] != 'x')
            return 0;
    *num = v;
    return 1;
}

static void check_line(enum mode mode, const char *l, size_t len, size_t size) {
    /* len includes the newline; size is the program's line size, newline
     * included. */
    const char *payload = NULL;
    size_t plen = size - 1;
    lines++;
    switch (mode) {
    case RAW:
        if (len == size)
            payload = l;
        break;
    case TEXT:
        if (len == size + 32 && l[4] == '-' && l[10] == 'T' && l[23] == 'Z' &&
            memcmp(l + 24, " stdout ", 8) == 0)
            payload = l + 32;
        break;
    case STAMPED:
        if (len > size && l[0] >= '0' && l[0] <= '9')
            payload = l + len - size;
        break;
    case JSON:
        if (len > size + 10 && l[0] == '{' && memcmp(l + len - 3, "\"}\n", 3) == 0) {
            const char *p = l + len - 3 - plen;
            if (memcmp(p - 8, "\"line\":\"", 8) == 0)
                payload = p;
        }
        break;
    }
    long long num;
    if (payload == NULL || !payload_ok(payload, plen, &num)) {
        malformed++;
        return;
    }
    good++;
    if (num == next) {
        next++;
    } else if (num > next) {
        lost += num - next;
        next = num + 1;
    } else {
        dups++;
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fputs("usage: checkseq raw|text|json|stamped SIZE N FILE...\n", stderr);
        return 2;
    }
    enum mode mode;
    if (strcmp(argv[1], "raw") == 0)
        mode = RAW;
    else if (strcmp(argv[1], "text") == 0)
        mode = TEXT;
    else if (strcmp(argv[1], "json") == 0)
        mode = JSON;
    else if (strcmp(argv[1], "stamped") == 0)
        mode = STAMPED;
    else {
        fprintf(stderr, "checkseq: unknown mode %s\n", argv[1]);
        return 2;
    }
    size_t size = (size_t)atol(argv[2]);
    long long n = atoll(argv[3]);
    if (size < 13) {
        fputs("checkseq: SIZE must be at least 13\n", stderr);
        return 2;
    }
    for (int f = 4; f < argc; f++) {
        int fd = open(argv[f], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            perror(argv[f]);
            return 1;
        }
        if (st.st_size == 0) {
            close(fd);
            continue;
        }
        const char *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        madvise((void *)data, (size_t)st.st_size, MADV_SEQUENTIAL);
        const char *p = data, *end = data + st.st_size;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (nl == NULL) {
                /* A last line without its newline. */
                lines++;
                malformed++;
                break;
            }
            check_line(mode, p, (size_t)(nl - p + 1), size);
            p = nl + 1;
        }
        munmap((void *)data, (size_t)st.st_size);
        close(fd);
    }
    if (next < n)
        lost += n - next;
    printf("lines=%lld good=%lld malformed=%lld lost=%lld dup=%lld\n", lines, good,
           malformed, lost, dups);
    return 0;
}
