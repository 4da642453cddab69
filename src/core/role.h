/*
 * role.h - the roles a token has (API.md "Roles") and their wire names.
 * Pure.
 */
#ifndef PLINTH_CORE_ROLE_H
#define PLINTH_CORE_ROLE_H

enum role {
	ROLE_ADMIN,
	ROLE_FINANCE,
	ROLE_MEMBER,
	ROLE_SERVICE,
};

/* The wire name ("admin", ...), or "unknown" for a value outside the enum. */
const char *role_name(enum role r);
int role_parse(const char *s, enum role *out); /* 0 or ERR_INVALID */

#endif
