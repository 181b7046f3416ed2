/* test_rsync_batch.c - unit tests for lib/dr/rsync_batch.c: which volumes share
 * one rsync run (same source and destination base, batch size, the argument
 * byte cap, volumes that cannot be batched run alone, failed ones not at
 * all), batch sizing, attributing a batch's itemized lines to a
 * volume's figures, and a volume's started/finished stamps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsync_batch.h"

static void test_base_of(void **state)
{
    (void)state;
    char *b = rb_base_of("/srv/p/ns-a-pv", "ns-a-pv");
    assert_string_equal(b, "/srv/p");
    free(b);
    b = rb_base_of("/ns-a-pv", "ns-a-pv");
    assert_string_equal(b, "/");
    free(b);
    b = rb_base_of("/srv/p/x/nested/vol", "nested/vol");
    assert_string_equal(b, "/srv/p/x");
    free(b);
    assert_null(rb_base_of("/srv/p/xns-a-pv", "ns-a-pv"));   /* not at a '/' */
    assert_null(rb_base_of("/srv/p/snap", "ns-a-pv"));
    assert_null(rb_base_of("/srv/p", ""));
}

static void test_batch_size(void **state)
{
    (void)state;
    assert_int_equal(rb_batch_size(1, 100, 4), 1);
    assert_int_equal(rb_batch_size(7, 100, 4), 7);
    assert_int_equal(rb_batch_size(0, 100, 4), 25);
    assert_int_equal(rb_batch_size(0, 1000, 4), RB_MAX_BATCH);
    assert_int_equal(rb_batch_size(0, 3, 8), 1);
}

static void test_plan(void **state)
{
    (void)state;
    rb_vol v[] = {
        { "/p/a", "/d/a", "a", true },
        { "/p/b", "/d/b", "b", true },
        { "/p/c", "/d/c", "c", false },            /* failed: not planned */
        { "/p/d/.snap", "/d/d", "d", true },        /* source is not base/rel: alone */
        { "/q/e", "/d/e", "e", true },              /* other source base */
        { "/p/f", "/d/f", "f", true },
        { "/p/g", "/d/g", "g", true },
        { "/q/h", "/d/h", "h", true },
    };
    rb_plan p;
    assert_int_equal(rb_plan_tasks(v, 8, 2, true, &p), 0);
    /* [a b] [d] [e h] [f g] in input order of their first volume */
    assert_int_equal(p.n, 4);
    assert_int_equal(p.tasks[0].n, 2);
    assert_int_equal(p.tasks[0].idx[0], 0);
    assert_int_equal(p.tasks[0].idx[1], 1);
    assert_string_equal(p.tasks[0].src_base, "/p");
    assert_string_equal(p.tasks[0].dest_base, "/d");
    assert_int_equal(p.tasks[1].n, 1);
    assert_int_equal(p.tasks[1].idx[0], 3);
    assert_null(p.tasks[1].src_base);
    assert_int_equal(p.tasks[2].n, 2);
    assert_int_equal(p.tasks[2].idx[0], 4);
    assert_int_equal(p.tasks[2].idx[1], 7);
    assert_string_equal(p.tasks[2].src_base, "/q");
    assert_int_equal(p.tasks[3].n, 2);
    assert_int_equal(p.tasks[3].idx[0], 5);
    assert_int_equal(p.tasks[3].idx[1], 6);
    rb_plan_free(&p);

    /* no batching: every runnable volume alone, the failed one not at all */
    assert_int_equal(rb_plan_tasks(v, 8, 4, false, &p), 0);
    assert_int_equal(p.n, 7);
    for (size_t i = 0; i < p.n; i++) {
        assert_int_equal(p.tasks[i].n, 1);
        assert_int_not_equal(p.tasks[i].idx[0], 2);
    }
    rb_plan_free(&p);
    assert_int_equal(rb_plan_tasks(v, 0, 4, true, &p), 0);
    assert_int_equal(p.n, 0);
    rb_plan_free(&p);
}

/* a batch never carries more than RB_MAX_BATCH_ARGS bytes of source arguments */
static void test_plan_arg_cap(void **state)
{
    (void)state;
    enum { N = 200 };
    static char src[N][1100], dest[N][1100], rel[N][1050];
    rb_vol v[N];
    for (int i = 0; i < N; i++) {
        snprintf(rel[i], sizeof rel[i], "%04d-%01000d", i, 0);
        size_t rl = strlen(rel[i]);
        memcpy(src[i], "/p/", 3);
        memcpy(src[i] + 3, rel[i], rl + 1);
        memcpy(dest[i], "/d/", 3);
        memcpy(dest[i] + 3, rel[i], rl + 1);
        v[i] = (rb_vol){ src[i], dest[i], rel[i], true };
    }
    rb_plan p;
    assert_int_equal(rb_plan_tasks(v, N, N, true, &p), 0);
    size_t total = 0;
    for (size_t t = 0; t < p.n; t++) {
        size_t bytes = 0;
        for (size_t k = 0; k < p.tasks[t].n; k++)
            bytes += strlen("/p") + strlen(rel[p.tasks[t].idx[k]]) + 8;
        assert_true(bytes <= RB_MAX_BATCH_ARGS);
        total += p.tasks[t].n;
    }
    assert_int_equal(total, N);
    assert_true(p.n >= 2);
    rb_plan_free(&p);
}

static void test_stats_attribution(void **state)
{
    (void)state;
    const char *lines[] = {
        "@>f+++++++++ 1000 4096 a/file1",
        "@*deleting   0 0 a/old",
        "@.d..t...... 0 4096 a/",
        "@<f.st...... 10 20 a/file2",
    };
    rc_stats st = { 0 };
    for (size_t i = 0; i < 4; i++) {
        rc_item it;
        assert_int_equal(rc_item_parse(lines[i], &it), 0);
        rb_stats_item(&st, &it);
    }
    assert_int_equal(st.items, 4);
    assert_int_equal(st.deletions, 1);
    assert_int_equal(st.files_transferred, 2);
    assert_int_equal(st.transferred_size, 4116);
    assert_int_equal(st.bytes_sent, 1010);
    rc_stats more = { .items = 1, .bytes_sent = 5, .have_stats = true };
    rb_stats_add(&st, &more);
    assert_int_equal(st.items, 5);
    assert_int_equal(st.bytes_sent, 1015);
    assert_true(st.have_stats);
}

/* started_at/finished_at of a volume: a batch stamps its members, a re-run
 * alone after the failed batch re-stamps (the start of the rsync that
 * completed), and finished is never before started. */
static void test_when(void **state)
{
    (void)state;
    rb_when w = { 0 };
    assert_int_equal(w.started, 0);                /* no rsync ran: nothing stamped */
    rb_when_start(&w, 1000);                       /* the batch's rsync spawned */
    rb_when_end(&w, 1010);                         /* ... and failed */
    assert_int_equal(w.started, 1000);
    assert_int_equal(w.finished, 1010);
    rb_when_start(&w, 1011);                       /* re-run alone */
    assert_int_equal(w.started, 1011);
    assert_int_equal(w.finished, 0);               /* the batch's end is not this run's */
    rb_when_end(&w, 1020);
    assert_int_equal(w.started, 1011);
    assert_int_equal(w.finished, 1020);
    rb_when_start(&w, 2000);                       /* wall clock stepped back meanwhile */
    rb_when_end(&w, 1990);
    assert_int_equal(w.finished, 2000);
    assert_true(w.started <= w.finished);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_of),
        cmocka_unit_test(test_batch_size),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_plan_arg_cap),
        cmocka_unit_test(test_stats_attribution),
        cmocka_unit_test(test_when),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
