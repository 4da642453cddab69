/*
 * role.c - role names, one table both ways (role.h).  Pure.
 */
#include "core/role.h"

#include <string.h>

#include "core/err.h"

static const char *const role_names[] = {
	[ROLE_ADMIN] = "admin",
	[ROLE_FINANCE] = "finance",
	[ROLE_MEMBER] = "member",
	[ROLE_SERVICE] = "service",
};

#define NROLES (sizeof(role_names) / sizeof(role_names[0]))

const char *role_name(enum role r)
{
	return (unsigned)r < NROLES ? role_names[r] : "unknown";
}

int role_parse(const char *s, enum role *out)
{
	for (size_t i = 0; s && i < NROLES; i++) {
		if (strcmp(s, role_names[i]) == 0) {
			*out = (enum role)i;
			return 0;
		}
	}
	return ERR_INVALID;
}
