/*
 * A strict checker of the Prometheus text exposition format 0.0.4, for the tests of the
 * metrics renderer: every line is parsed (HELP, TYPE, samples with labels and escapes,
 * values), TYPE comes before a family's samples and at most once, a family's samples are
 * contiguous, no series appears twice, the text ends with a newline.
 */
#ifndef SRM_TEST_PROM_CHECK_H
#define SRM_TEST_PROM_CHECK_H

#include <stddef.h>

/* 0 if text is valid; else -1 and a message naming the line in err. *ret_samples (may be
 * NULL) gets the number of samples. */
int prom_check(const char *text, size_t len, size_t *ret_samples, char *err, size_t errlen);

#endif
