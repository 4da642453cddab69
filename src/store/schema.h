/*
 * schema.h - the database schemas, one .sql file per version and backend in
 * src/store/schema/<backend>/vN.sql, embedded at build time (tools/embed.c).
 * Version N brings a database to N; a backend lists its files in order in
 * its driver (db.h: migrations).  Append only: a released file never changes.
 */
#ifndef PLINTH_STORE_SCHEMA_H
#define PLINTH_STORE_SCHEMA_H

extern const unsigned char schema_sqlite_v1[], schema_sqlite_v2[], schema_sqlite_v3[],
	schema_sqlite_v4[], schema_sqlite_v5[], schema_sqlite_v6[], schema_sqlite_v7[],
	schema_sqlite_v8[];
extern const unsigned char schema_postgres_v1[], schema_postgres_v2[], schema_postgres_v3[],
	schema_postgres_v4[], schema_postgres_v5[], schema_postgres_v6[],
	schema_postgres_v7[], schema_postgres_v8[];

/* A backend's files in order, as its driver's migrations array. */
#define SCHEMA_FILES(db)                                                                   \
	{                                                                                  \
		(const char *)schema_##db##_v1, (const char *)schema_##db##_v2,           \
		(const char *)schema_##db##_v3, (const char *)schema_##db##_v4,           \
		(const char *)schema_##db##_v5, (const char *)schema_##db##_v6,           \
		(const char *)schema_##db##_v7, (const char *)schema_##db##_v8,           \
	}

#endif
