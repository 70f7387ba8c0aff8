/*
 * curve.c - training curves (see curve.h).
 *
 * Why JSON and doubles: the values are the trainer's doubles, printed as
 * the shortest of %.15g/%.16g/%.17g that reads back to the same bits (not
 * cJSON's printer, which only checks closeness), so the file holds them
 * exactly and a reader gets the trainer's numbers; the file is small (7
 * numbers a point). The bytes are a
 * pure function of the points (no clock, no paths), so a replayed run writes
 * the same file and its digest compares.
 *
 * The dead fraction is not in lg_step_stats for every architecture (only
 * the AuxK ones count dead latents), so it is read from the trainer's state
 * (steps_since_fired) with AuxK's rule; reading the state every log_every
 * steps is a download of the seed's parameters and moments, which is why
 * curves are off unless a study asks.
 */
#include "engine/curve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "artifacts/json.h"
#include "engine/run.h"

static const char *const metric_names[LG_CURVE_NMETRICS] = {"loss", "mse", "l0", "dead_frac", "aux_loss", "lr"};

const char *lg_curve_metric_name(int i) { return i >= 0 && i < LG_CURVE_NMETRICS ? metric_names[i] : NULL; }

int lg_curve_metric_index(const char *name)
{
    int i;
    for (i = 0; name && i < LG_CURVE_NMETRICS; i++)
        if (!strcmp(metric_names[i], name))
            return i;
    return -1;
}

int lg_curve_due(long done, long steps, int log_every)
{
    return log_every > 0 && done > 0 && (done % log_every == 0 || done == steps);
}

static int push(lg_curve *c, const lg_curve_point *p)
{
    if (lg_grow(&c->pts, &c->cap, c->n + 1, sizeof *c->pts, 64) < 0)
        return LG_ENOMEM;
    c->pts[c->n++] = *p;
    return 0;
}

int lg_curve_add(lg_curve *c, const lg_step_stats *st, double dead_frac)
{
    lg_curve_point p;
    p.step = st->step;
    p.v[0] = st->loss;
    p.v[1] = st->mse;
    p.v[2] = st->l0;
    p.v[3] = dead_frac;
    p.v[4] = st->aux;
    p.v[5] = st->lr;
    return push(c, &p);
}

int lg_curve_dead_frac(lg_trainer *t, int s, double dead_after, int batch, double *out)
{
    lg_train_state st = {NULL, 0};
    double need = batch > 0 ? ceil(dead_after / batch) : 1.0;
    int i, err;
    *out = NAN;
    if (need < 1.0)
        need = 1.0;
    if ((err = lg_trainer_save_state_multi(t, s, &st)) < 0)
        return err;
    err = lg_error_set(LG_EINTERNAL, "trainer state has no steps_since_fired");
    for (i = 0; i < st.count; i++)
        if (!strcmp(st.arrays[i].name, "steps_since_fired")) {
            int64_t n = lg_named_array_numel(&st.arrays[i]), j, dead = 0;
            for (j = 0; j < n; j++)
                dead += st.arrays[i].data[j] >= need;
            *out = n > 0 ? (double)dead / (double)n : 0.0;
            lg_error_clear();
            err = 0;
            break;
        }
    lg_train_state_release(&st);
    return err;
}

int lg_curve_record(lg_curve *c, int n, lg_trainer *t, const lg_step_stats *st, long steps, int log_every,
                    double dead_after, int batch)
{
    int i, err;
    if (n < 1 || !lg_curve_due(st[0].step, steps, log_every))
        return 0;
    for (i = 0; i < n; i++) {
        double dead;
        if ((err = lg_curve_dead_frac(t, i, dead_after, batch, &dead)) < 0 || (err = lg_curve_add(&c[i], &st[i], dead)) < 0)
            return err;
    }
    return 0;
}

/* A double as the shortest of %.15g, %.16g, %.17g that strtod reads back
 * to the same bits (cJSON's printer only checks closeness). Integral values
 * below 2^53 print as integers. */
static int put_double(lg_buf *out, double v)
{
    char buf[40];
    int prec;
    if (!isfinite(v))
        return lg_error_set(LG_EINPUT, "curve: a value is not finite");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return lg_buf_printf(out, "%.0f", v == 0 ? 0.0 : v);
    for (prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return lg_buf_puts(out, buf);
}

/* A JSON string: '"' and '\' escaped, control bytes as \u00XX. */
static int put_string(lg_buf *out, const char *s)
{
    int err = lg_buf_puts(out, "\"");
    for (; err == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            err = lg_buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            err = lg_buf_printf(out, "\\u%04x", c);
        else
            err = lg_buf_put(out, s, 1);
    }
    return err < 0 ? err : lg_buf_puts(out, "\"");
}

int lg_curve_encode(const lg_curve *c, lg_buf *out)
{
    size_t i;
    int m, err;
    if ((err = lg_buf_printf(out, "{\"format\":\"%s\",\"condition\":", LG_CURVE_FORMAT)) < 0 ||
        (err = put_string(out, c->condition ? c->condition : "")) < 0 ||
        (err = lg_buf_printf(out, ",\"seed\":%llu,\"log_every\":%d,\"steps\":%ld", (unsigned long long)c->seed,
                             c->log_every, c->steps)) < 0)
        return err;
    for (m = -1; m < LG_CURVE_NMETRICS; m++) {
        if ((err = lg_buf_printf(out, ",\"%s\":[", m < 0 ? "step" : metric_names[m])) < 0)
            return err;
        for (i = 0; i < c->n; i++) {
            if (i && (err = lg_buf_puts(out, ",")) < 0)
                return err;
            if ((err = m < 0 ? lg_buf_printf(out, "%ld", c->pts[i].step) : put_double(out, c->pts[i].v[m])) < 0)
                return err;
        }
        if ((err = lg_buf_puts(out, "]")) < 0)
            return err;
    }
    return lg_buf_puts(out, "}\n");
}

int lg_curve_write(const lg_curve *c, const char *path)
{
    lg_buf b = LG_BUF_INIT;
    int err;
    if ((err = lg_curve_encode(c, &b)) == 0)
        err = lg_file_write_atomic(path, b.ptr, b.len);
    lg_buf_release(&b);
    return err;
}

void lg_curve_release(lg_curve *c)
{
    if (!c)
        return;
    lg_free(c->pts);
    lg_free(c->condition);
    memset(c, 0, sizeof *c);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-negative integer-valued number below 2^53 of object o. */
static int get_count(const char *label, const cJSON *o, const char *key, double max, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > max || v->valuedouble != floor(v->valuedouble))
        return lg_error_set(LG_EINPUT, "%s: %s: must be an integer in [0, %.0f]", label, key, max);
    *out = v->valuedouble;
    return 0;
}

int lg_curve_parse(const char *label, const char *text, size_t len, lg_curve *out)
{
    static const char *const keys[] = {"format", "condition", "seed", "log_every", "steps", "step",
                                       "loss", "mse", "l0", "dead_frac", "aux_loss", "lr"};
    cJSON *o = NULL;
    const cJSON *it, *cols[LG_CURVE_NMETRICS + 1];
    const char *fmt, *cond;
    double seed, every, steps;
    int n = -1, m, err;
    size_t k;

    memset(out, 0, sizeof *out);
    if (len > LG_CURVE_MAX_BYTES)
        return lg_error_set(LG_EINPUT, "%s: larger than %u bytes", label, LG_CURVE_MAX_BYTES);
    if ((err = lg_json_parse(label, text, len, &o)) < 0)
        return err;
    if (!cJSON_IsObject(o)) {
        err = lg_error_set(LG_EINPUT, "%s: not a JSON object", label);
        goto out;
    }
    cJSON_ArrayForEach(it, o) {
        for (k = 0; k < sizeof keys / sizeof keys[0] && strcmp(keys[k], it->string); k++)
            ;
        if (k == sizeof keys / sizeof keys[0]) {
            err = lg_error_set(LG_EINPUT, "%s: %s: unknown key", label, it->string);
            goto out;
        }
    }
    fmt = str_of(o, "format");
    cond = str_of(o, "condition");
    if (!fmt || strcmp(fmt, LG_CURVE_FORMAT) != 0) {
        err = lg_error_set(LG_EINPUT, "%s: format: must be \"%s\"", label, LG_CURVE_FORMAT);
        goto out;
    }
    if (!cond) {
        err = lg_error_set(LG_EINPUT, "%s: condition: must be a string", label);
        goto out;
    }
    if ((err = get_count(label, o, "seed", 9007199254740991.0, &seed)) < 0 ||
        (err = get_count(label, o, "log_every", 1 << 24, &every)) < 0 ||
        (err = get_count(label, o, "steps", 1 << 24, &steps)) < 0)
        goto out;
    if (every < 1 || steps < 1) {
        err = lg_error_set(LG_EINPUT, "%s: log_every and steps must be at least 1", label);
        goto out;
    }
    for (m = -1; m < LG_CURVE_NMETRICS; m++) {
        const char *name = m < 0 ? "step" : metric_names[m];
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
        if (!cJSON_IsArray(a) || (n >= 0 && cJSON_GetArraySize(a) != n)) {
            err = lg_error_set(LG_EINPUT, "%s: %s: must be an array as long as \"step\"", label, name);
            goto out;
        }
        n = cJSON_GetArraySize(a);
        cols[m + 1] = a;
    }
    out->log_every = (int)every;
    out->steps = (long)steps;
    out->seed = (uint64_t)seed;
    if (!(out->condition = lg_strdup(cond))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (k = 0; k < (size_t)n; k++) {
        lg_curve_point p;
        const cJSON *s = cJSON_GetArrayItem(cols[0], (int)k);
        if (!cJSON_IsNumber(s) || s->valuedouble != floor(s->valuedouble) || s->valuedouble < 1 ||
            s->valuedouble > steps || (k > 0 && (long)s->valuedouble <= out->pts[k - 1].step)) {
            err = lg_error_set(LG_EINPUT, "%s: step[%zu]: must be an integer in [1, steps], increasing", label, k);
            goto out;
        }
        p.step = (long)s->valuedouble;
        for (m = 0; m < LG_CURVE_NMETRICS; m++) {
            const cJSON *v = cJSON_GetArrayItem(cols[m + 1], (int)k);
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
                err = lg_error_set(LG_EINPUT, "%s: %s[%zu]: must be a finite number", label, metric_names[m], k);
                goto out;
            }
            p.v[m] = v->valuedouble;
        }
        if ((err = push(out, &p)) < 0)
            goto out;
    }
out:
    cJSON_Delete(o);
    if (err < 0)
        lg_curve_release(out);
    return err;
}

void lg_curve_file_name(const char *condition, uint64_t seed, char *buf, size_t n)
{
    char fid[160];
    lg_condition_file_id(condition, fid, sizeof fid);
    snprintf(buf, n, "cells/%s/seed-%llu.curve.json", fid, (unsigned long long)seed);
}
