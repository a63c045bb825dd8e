/* SPDX-License-Identifier: MIT */
/*
 * The C spec tests' expectations: a test returns at its first failed
 * expectation, whose line and reason are kept for the runner to print
 * ("FAIL NAME: reason"). Each test file is its own program, so this state
 * is per file.
 */
#ifndef BT_TEST_EXPECT_H
#define BT_TEST_EXPECT_H

#include <stdarg.h>
#include <stdio.h>

static char fail_msg[512];
static int failed_now;

/* Record why the current test failed (the first reason wins). */
static void fail_at(int line, const char *fmt, ...)
{
	va_list ap;
	int off;

	if (failed_now)
		return; /* keep the first reason */
	failed_now = 1;
	off = snprintf(fail_msg, sizeof(fail_msg), "line %d: ", line);
	va_start(ap, fmt);
	vsnprintf(fail_msg + off, sizeof(fail_msg) - (size_t)off, fmt, ap);
	va_end(ap);
}

/* Tests return at the first failed expectation. */
#define EXPECT(cond)                                         \
	do {                                                 \
		if (!(cond)) {                               \
			fail_at(__LINE__, "expected %s", #cond); \
			return;                              \
		}                                            \
	} while (0)

#define EXPECT_EQ(a, b)                                                     \
	do {                                                                \
		long long a_ = (long long)(a), b_ = (long long)(b);         \
		if (a_ != b_) {                                             \
			fail_at(__LINE__, "%s == %s, got %lld vs %lld", #a, \
				#b, a_, b_);                                \
			return;                                             \
		}                                                           \
	} while (0)

#endif /* BT_TEST_EXPECT_H */
