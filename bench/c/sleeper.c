/* The idle workloads' program: sleeps until a signal ends it. Static and
 * tiny, so that a thousand of them cost the machine little and start fast:
 * the figures are then the supervisor's.
 *
 *   sleeper
 */
#include <unistd.h>

int main(void) {
    for (;;)
        pause();
}
