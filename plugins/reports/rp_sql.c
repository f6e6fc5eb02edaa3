/*
 * rp_sql.c - Nova's reportingService statements, and their rows rendered as
 * node-pg would hand them to JSON.stringify.
 *
 * The statements are Nova's, clause for clause and in the same parameter
 * order: the same text plans the same way, which matters where Nova's SQL
 * leaves an order to the plan (the transaction summary's GROUP BY, ties in
 * ORDER BY). A filter is added exactly when Nova's `if (value)` is true
 * (JavaScript truthiness: "" and 0 add none, though both stay in the cache
 * key), and the user report's referral count numbers its parameters the
 * way Nova's does ($1 for endDate when there is no startDate).
 *
 * node-pg types a value by its column's type oid; the public pg API gives
 * text only, so the oids come from the catalog (rp_catalog_sql) read in the
 * same transaction: the columns of `transactions` in SELECT * order, and
 * the types of the campaign and merchant columns Nova's statements name.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp.h"

const char rp_catalog_sql[] =
    "SELECT c.relname::text, a.attname::text, "
    "(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::int8 "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE a.attrelid IN (to_regclass('transactions'), to_regclass('campaigns'), "
    "to_regclass('merchants')) AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY c.relname, a.attnum";

void rp_catalog_free(struct rp_catalog *cat)
{
    for (int i = 0; i < cat->n_tx_cols; i++)
        free((char *)cat->tx_cols[i].name);
    free(cat->tx_cols);
    *cat = (struct rp_catalog){0};
}

int rp_catalog_load(struct rp_catalog *cat, const struct nova_pg_api *pg, const nova_pg_result *res)
{
    rp_catalog_free(cat);
    /* node-pg's defaults for Nova's schema, should a column be missing */
    cat->campaign_id = cat->merchant_id = RP_K_INT;
    cat->start_date = cat->end_date = RP_K_DATE;
    cat->is_active = RP_K_BOOL;
    int n = pg->ntuples(res);
    cat->tx_cols = calloc((size_t)(n > 0 ? n : 1), sizeof *cat->tx_cols);
    if (cat->tx_cols == NULL)
        return -ENOMEM;
    for (int r = 0; r < n; r++) {
        const char *rel = pg->get_text(res, r, 0), *col = pg->get_text(res, r, 1);
        int64_t oid = 0;
        if (rel == NULL || col == NULL || pg->get_int64(res, r, 2, &oid) != 0)
            continue;
        enum rp_kind k = rp_kind_of_oid((uint32_t)oid);
        if (strcmp(rel, "transactions") == 0) {
            char *name = strdup(col);
            if (name == NULL)
                return -ENOMEM;
            cat->tx_cols[cat->n_tx_cols++] = (struct rp_col){name, k};
            if (strcmp(col, "tx_type") == 0)
                cat->tx_type = k;
            else if (strcmp(col, "amount") == 0)
                /* SUM(int) is int8 and SUM(numeric) numeric: strings in
                 * node-pg; only SUM of a float column is a number */
                cat->tx_amount_sum = k == RP_K_FLOAT ? RP_K_FLOAT : RP_K_TEXT;
        } else if (strcmp(rel, "campaigns") == 0) {
            if (strcmp(col, "id") == 0)
                cat->campaign_id = k;
            else if (strcmp(col, "name") == 0)
                cat->campaign_name = k;
            else if (strcmp(col, "reward_rate") == 0)
                cat->reward_rate = k;
            else if (strcmp(col, "start_date") == 0)
                cat->start_date = k;
            else if (strcmp(col, "end_date") == 0)
                cat->end_date = k;
            else if (strcmp(col, "is_active") == 0)
                cat->is_active = k;
        } else if (strcmp(rel, "merchants") == 0) {
            if (strcmp(col, "id") == 0)
                cat->merchant_id = k;
            else if (strcmp(col, "name") == 0)
                cat->merchant_name = k;
        }
    }
    return cat->n_tx_cols > 0 ? 0 : -ENOENT;
}

/* ---- Nova's statements ------------------------------------------------------------ */

struct where {
    struct nova_buf sql;
    int n;
    const char *values[RP_NPARAMS];
};

/* Nova's `if (v) { conditions.push(`<col> <op> $${i++}`); values.push(v); }` */
static void cond(struct where *w, const struct rp_params *p, int key, const char *lhs)
{
    const struct rp_param *q = &p->p[key];
    if (!q->given || q->is_null || !q->truthy)
        return;
    nova_buf_str(&w->sql, w->sql.len > 0 ? " AND " : "");
    nova_buf_printf(&w->sql, "%s $%d", lhs, w->n + 1);
    w->values[w->n++] = q->text;
}

/* Nova's startDate and endDate filters on col ("created_at", "c.created_at"). */
static void date_conds(struct where *w, const struct rp_params *p, const char *col)
{
    char lhs[32];
    snprintf(lhs, sizeof lhs, "%s >=", col);
    cond(w, p, RP_P_START, lhs);
    snprintf(lhs, sizeof lhs, "%s <=", col);
    cond(w, p, RP_P_END, lhs);
}

static void stmt_params(struct rp_stmt *s, const struct where *w)
{
    s->nparams = w->n;
    for (int i = 0; i < w->n; i++)
        s->params[i] = w->values[i];
}

static int stmt_set(struct rp_stmt *s, const struct where *w, const char *fmt_before,
                    const char *after)
{
    struct nova_buf b = {0};
    nova_buf_str(&b, fmt_before);
    if (w->sql.len > 0) {
        nova_buf_str(&b, " WHERE ");
        nova_buf_str(&b, w->sql.p);
    }
    nova_buf_str(&b, after);
    if ((s->sql = rp_buf_take(&b)) == NULL)
        return -ENOMEM;
    stmt_params(s, w);
    return 0;
}

static void cols(struct rp_stmt *s, int n, const struct rp_col *c)
{
    for (int i = 0; i < n; i++)
        s->own[i] = c[i];
    s->cols = s->own;
    s->ncols = n;
}

/* The plan's first statement, with the n columns of its result. */
static int first_stmt(struct rp_plan *plan, const struct where *w, const char *fmt_before,
                      const char *after, int n, const struct rp_col *c)
{
    int rc = stmt_set(&plan->stmt[0], w, fmt_before, after);
    cols(&plan->stmt[0], n, c);
    plan->nstmt = 1;
    return rc;
}

void rp_plan_free(struct rp_plan *plan)
{
    for (int i = 0; i < plan->nstmt; i++)
        free(plan->stmt[i].sql);
    free(plan->csv_cursor.sql);
    *plan = (struct rp_plan){0};
}

int rp_plan_build(struct rp_plan *plan, enum rp_type type, const struct rp_params *p,
                  const struct rp_catalog *cat)
{
    *plan = (struct rp_plan){.csv_from = 0};
    struct where w = {0};
    int rc = 0;
    switch (type) {
    case RP_USER: {
        nova_buf_str(&w.sql, "is_deleted = FALSE");
        date_conds(&w, p, "created_at");
        rc = first_stmt(plan, &w,
                        "SELECT COUNT(*) AS total_users, COUNT(*) FILTER (WHERE created_at >= "
                        "NOW() - INTERVAL '30 days') AS new_last_30d FROM users",
                        "", 2,
                        (struct rp_col[]){{"total_users", RP_K_TEXT}, {"new_last_30d", RP_K_TEXT}});
        if (rc != 0)
            break;
        /* Nova's second statement: its own placeholders, the same values */
        bool s = p->p[RP_P_START].truthy && !p->p[RP_P_START].is_null;
        bool e = p->p[RP_P_END].truthy && !p->p[RP_P_END].is_null;
        struct nova_buf b = {0};
        nova_buf_str(&b, "SELECT COUNT(*) AS total_referrals FROM users WHERE referred_by IS NOT "
                         "NULL");
        if (s)
            nova_buf_str(&b, " AND created_at >= $1");
        if (e)
            nova_buf_printf(&b, " AND created_at <= $%d", s ? 2 : 1);
        struct rp_stmt *r = &plan->stmt[1];
        if ((r->sql = rp_buf_take(&b)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        stmt_params(r, &w);
        cols(r, 1, (struct rp_col[]){{"total_referrals", RP_K_TEXT}});
        plan->nstmt = 2;
        break;
    }
    case RP_CAMPAIGN:
        cond(&w, p, RP_P_MERCHANT, "c.merchant_id =");
        date_conds(&w, p, "c.created_at");
        rc = first_stmt(plan, &w,
                        "SELECT c.id, c.name, c.reward_rate, c.start_date, c.end_date, "
                        "c.is_active, COUNT(t.id) AS transaction_count, "
                        "COALESCE(SUM(t.amount), 0) AS total_distributed FROM campaigns c "
                        "LEFT JOIN transactions t ON t.campaign_id = c.id AND "
                        "t.tx_type = 'distribution'",
                        " GROUP BY c.id ORDER BY c.created_at DESC", 8,
                        (struct rp_col[]){{"id", cat->campaign_id},
                                          {"name", cat->campaign_name},
                                          {"reward_rate", cat->reward_rate},
                                          {"start_date", cat->start_date},
                                          {"end_date", cat->end_date},
                                          {"is_active", cat->is_active},
                                          {"transaction_count", RP_K_TEXT},
                                          {"total_distributed", cat->tx_amount_sum}});
        break;
    case RP_TRANSACTION:
        cond(&w, p, RP_P_MERCHANT, "merchant_id =");
        date_conds(&w, p, "created_at");
        cond(&w, p, RP_P_TXTYPE, "tx_type =");
        rc = first_stmt(plan, &w,
                        "SELECT tx_type, COUNT(*) AS count, COALESCE(SUM(amount), 0) AS "
                        "total_amount FROM transactions",
                        " GROUP BY tx_type", 3,
                        (struct rp_col[]){{"tx_type", cat->tx_type},
                                          {"count", RP_K_TEXT},
                                          {"total_amount", cat->tx_amount_sum}});
        if (rc == 0)
            rc = stmt_set(&plan->stmt[1], &w, "SELECT * FROM transactions",
                          " ORDER BY created_at DESC LIMIT 500");
        plan->stmt[1].cols = cat->tx_cols;
        plan->stmt[1].ncols = cat->n_tx_cols;
        plan->nstmt = 2;
        /* the file holds every matching row, in Nova's order, read through
         * a cursor (rp_run.c) */
        if (rc == 0)
            rc = stmt_set(&plan->csv_cursor, &w,
                          "DECLARE nova_reports_csv NO SCROLL CURSOR FOR "
                          "SELECT * FROM transactions",
                          " ORDER BY created_at DESC");
        plan->csv_cursor.cols = cat->tx_cols;
        plan->csv_cursor.ncols = cat->n_tx_cols;
        plan->csv_from = -1;
        break;
    case RP_REVENUE:
        nova_buf_str(&w.sql, "tx_type IN ('distribution', 'redemption')");
        date_conds(&w, p, "t.created_at");
        rc = first_stmt(plan, &w,
                        "SELECT m.id AS merchant_id, m.name AS merchant_name, "
                        "COALESCE(SUM(t.amount) FILTER (WHERE t.tx_type = 'distribution'), 0) AS "
                        "total_distributed, "
                        "COALESCE(SUM(t.amount) FILTER (WHERE t.tx_type = 'redemption'), 0) AS "
                        "total_redeemed FROM transactions t JOIN merchants m ON t.merchant_id = "
                        "m.id",
                        " GROUP BY m.id, m.name ORDER BY total_distributed DESC", 4,
                        (struct rp_col[]){{"merchant_id", cat->merchant_id},
                                          {"merchant_name", cat->merchant_name},
                                          {"total_distributed", cat->tx_amount_sum},
                                          {"total_redeemed", cat->tx_amount_sum}});
        break;
    default:
        rc = -EINVAL;
    }
    nova_buf_free(&w.sql);
    if (rc != 0)
        rp_plan_free(plan);
    return rc;
}

/* ---- rendering ------------------------------------------------------------------------ */

void rp_rows_json(struct nova_buf *b, const struct nova_pg_api *pg, const nova_pg_result *res,
                  const struct rp_col *cols, int ncols)
{
    int n = pg->ntuples(res);
    for (int r = 0; r < n; r++) {
        nova_buf_str(b, r > 0 ? ",{" : "{");
        for (int c = 0; c < ncols; c++) {
            if (c > 0)
                nova_buf_add(b, ",", 1);
            rp_json_string(b, cols[c].name, strlen(cols[c].name));
            nova_buf_add(b, ":", 1);
            rp_value_json(b, cols[c].kind, pg->get_text(res, r, c));
        }
        nova_buf_add(b, "}", 1);
    }
}

void rp_csv_header(struct nova_buf *b, const struct rp_col *cols, int ncols)
{
    for (int c = 0; c < ncols; c++)
        rp_csv_field(b, cols[c].name, strlen(cols[c].name), c == 0);
    rp_csv_end_row(b);
}

void rp_row_csv(struct nova_buf *b, struct nova_buf *cell, const struct nova_pg_api *pg,
                const nova_pg_result *res, int row, const struct rp_col *cols, int ncols,
                bool first)
{
    for (int c = 0; c < ncols; c++) {
        nova_buf_reset(cell);
        rp_value_text(cell, cols[c].kind, pg->get_text(res, row, c));
        if (cell->oom) {
            b->oom = true;
            return;
        }
        rp_csv_field(b, cell->p != NULL ? cell->p : "", cell->len, first && c == 0);
    }
}

void rp_rows_csv(struct nova_buf *b, const struct nova_pg_api *pg, const nova_pg_result *res,
                 const struct rp_col *cols, int ncols)
{
    struct nova_buf cell = {0};
    int n = pg->ntuples(res);
    for (int r = 0; r < n; r++) {
        rp_row_csv(b, &cell, pg, res, r, cols, ncols, true);
        rp_csv_end_row(b);
    }
    nova_buf_free(&cell);
}

void rp_revenue_totals(const struct nova_pg_api *pg, const nova_pg_result *res, double *dist,
                       double *redeemed)
{
    /* Nova: rows.reduce((acc, r) => acc += parseFloat(r.total_...)), from 0 */
    double d = 0, x = 0;
    int n = pg->ntuples(res);
    for (int r = 0; r < n; r++) {
        const char *a = pg->get_text(res, r, 2), *b = pg->get_text(res, r, 3);
        d += a != NULL ? strtod(a, NULL) : (double)NAN;
        x += b != NULL ? strtod(b, NULL) : (double)NAN;
    }
    *dist = d;
    *redeemed = x;
}
