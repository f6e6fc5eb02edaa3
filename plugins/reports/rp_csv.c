/*
 * rp_csv.c - RFC 4180 fields: the report files are read by spreadsheets and
 * by Python's csv module, so a field is quoted exactly when it must be
 * (it holds a comma, a double quote, CR or LF), quotes inside are doubled,
 * rows end with CRLF and the bytes are the database's UTF-8, unchanged.
 */
#include <string.h>

#include "rp.h"

void rp_csv_field(struct nova_buf *b, const char *s, size_t n, bool first)
{
    if (!first)
        nova_buf_add(b, ",", 1);
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        nova_buf_add(b, s, n);
        return;
    }
    nova_buf_add(b, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"')
            continue;
        nova_buf_add(b, s + from, i + 1 - from); /* through the quote */
        nova_buf_add(b, "\"", 1);                /* and its double */
        from = i + 1;
    }
    nova_buf_add(b, s + from, n - from);
    nova_buf_add(b, "\"", 1);
}

void rp_csv_end_row(struct nova_buf *b)
{
    nova_buf_add(b, "\r\n", 2);
}
