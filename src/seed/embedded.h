/* embedded.h - data files compiled into the binary by tools/embed.c. */
#ifndef PLINTH_EMBEDDED_H
#define PLINTH_EMBEDDED_H

/* data/aws-gpu-prices.csv, NUL-terminated. */
extern const unsigned char catalog_csv[];
extern const unsigned long catalog_csv_len;
/* docs/openapi.json, NUL-terminated. */
extern const unsigned char openapi_json[];
extern const unsigned long openapi_json_len;

#endif
