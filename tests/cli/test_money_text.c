/*
 * test_money_text.c - the CLI's money formatters for tables
 * (cli_money_text in src/cli/cli.c): two decimals, rounded half-up from
 * micro-units by integer arithmetic, the currency after the number; what is
 * not a money string is shown as received.  cli_price_text, for a price per
 * GPU-hour, the same to at most four decimals.  Prints TAP.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int failures, count;

static void check_fmt(int price, const char *amount, const char *currency, const char *want)
{
	char buf[CLI_MONEY_LEN];
	const char *got = price ? cli_price_text(amount, currency, buf, sizeof buf) :
		cli_money_text(amount, currency, buf, sizeof buf);
	int ok = strcmp(got, want) == 0;

	count++;
	printf("%s %d - %s '%s' %s -> '%s'\n", ok ? "ok" : "not ok", count,
		price ? "price" : "money", amount ? amount : "(null)",
		currency ? currency : "(default)", want);
	if (!ok) {
		printf("# got '%s'\n", got);
		failures++;
	}
}

static void check_money(const char *amount, const char *currency, const char *want)
{
	check_fmt(0, amount, currency, want);
}

static void check_price(const char *amount, const char *currency, const char *want)
{
	check_fmt(1, amount, currency, want);
}

int main(void)
{
	/* The examples. */
	check_money("29999.694222", "USD", "29999.69 USD");
	check_money("64.4832", "USD", "64.48 USD");
	check_money("0.00", "USD", "0.00 USD");
	/* Padding and whole amounts. */
	check_money("0", "USD", "0.00 USD");
	check_money("12.5", "EUR", "12.50 EUR");
	check_money("30000", "USD", "30000.00 USD");
	/* Half-up at the third decimal, from micro-units, not banker's rounding. */
	check_money("0.125", "USD", "0.13 USD");
	check_money("0.115", "USD", "0.12 USD");
	check_money("0.004999", "USD", "0.00 USD");
	check_money("0.005", "USD", "0.01 USD");
	check_money("0.0344", "USD", "0.03 USD");
	check_money("137.5656", "USD", "137.57 USD");
	check_money("999999.995", "USD", "1000000.00 USD");
	/* Up to the API's largest amount, exact (a double would not be). */
	check_money("999999999999.994999", "USD", "999999999999.99 USD");
	check_money("999999999999.999999", "USD", "1000000000000.00 USD");
	check_money("1000000000000", "USD", "1000000000000.00 USD");
	/* Negative amounts round away from zero; no "-0.00". */
	check_money("-1.005", "USD", "-1.01 USD");
	check_money("-0.004", "USD", "0.00 USD");
	check_money("-12.5", "USD", "-12.50 USD");
	/* No currency given: USD, the API's only currency so far. */
	check_money("6.883333", NULL, "6.88 USD");
	/* Not money: shown as received (never silently altered), or "-". */
	check_money("abc", "USD", "abc USD");
	check_money("1.1234567", "USD", "1.1234567 USD");
	check_money("1000000000000.5", "USD", "1000000000000.5 USD");
	check_money("", "USD", "-");
	check_money(NULL, "USD", "-");
	/* Prices per GPU-hour: up to 4 decimals, trimmed to at least 2. */
	check_price("1.6688", "USD", "1.6688 USD");
	check_price("6.88", "USD", "6.88 USD");
	check_price("6.880000", "USD", "6.88 USD");
	check_price("7.912", "USD", "7.912 USD");
	check_price("3", "USD", "3.00 USD");
	check_price("0.123456", "USD", "0.1235 USD");
	check_price("0.123449", "USD", "0.1234 USD");
	check_price("9.99995", NULL, "10.00 USD");
	check_price("abc", "USD", "abc USD");
	check_price("", "USD", "-");
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
