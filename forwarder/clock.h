/* clock.h - the forwarder's clocks: wall time for event timestamps,
 * monotonic time for intervals and backoff, a sleep that resumes after
 * signals. */
#ifndef OCPVDR_CLOCK_H
#define OCPVDR_CLOCK_H

double fwd_now(void);          /* CLOCK_REALTIME seconds */
double fwd_mono(void);         /* CLOCK_MONOTONIC seconds */
void fwd_sleep(double seconds);

#endif
