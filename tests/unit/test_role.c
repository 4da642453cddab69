/* test_role.c - role names both ways (src/core/role.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/role.h"

static void test_round_trip(void **state)
{
	const char *names[] = {"admin", "finance", "member", "service"};
	enum role r = ROLE_SERVICE;

	(void)state;
	for (int i = 0; i < 4; i++) {
		assert_string_equal(role_name((enum role)i), names[i]);
		assert_int_equal(role_parse(names[i], &r), 0);
		assert_int_equal(r, i);
	}
}

static void test_unknown(void **state)
{
	enum role r = ROLE_MEMBER;

	(void)state;
	assert_string_equal(role_name((enum role)4), "unknown");
	assert_string_equal(role_name((enum role)-1), "unknown");
	assert_int_equal(role_parse("Admin", &r), ERR_INVALID);
	assert_int_equal(role_parse("", &r), ERR_INVALID);
	assert_int_equal(role_parse("unknown", &r), ERR_INVALID);
	assert_int_equal(role_parse(NULL, &r), ERR_INVALID);
	assert_int_equal(r, ROLE_MEMBER); /* untouched on refusal */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
