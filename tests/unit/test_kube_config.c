/* test_kube_config.c - src/controller/kube.c's configuration: kubeconfig
 * files (tokens, token files, CA and client certificates as files or base64
 * data, relative paths) and the in-cluster service account. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/kube.h"
#include "core/err.h"

static char dir[] = "/tmp/plinth-kubecfg-XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int load(const char *text, struct kube_config *c, char *detail)
{
	char path[512];

	write_file("config", text);
	snprintf(path, sizeof path, "%s/config", dir);
	memset(c, 0, sizeof *c);
	return kube_config_load_file(path, c, detail);
}

#define HEAD                                                     \
	"apiVersion: v1\nkind: Config\ncurrent-context: dev\n"     \
	"contexts:\n- name: other\n  context: {cluster: x, user: x}\n" \
	"- name: dev\n  context:\n    cluster: c1\n    user: u1\n    namespace: ml\n"

static void token_and_relative_ca_file(void **state)
{
	struct kube_config c;
	char detail[KUBE_DETAIL_LEN] = "", want[600];

	(void)state;
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n"
				   "    server: https://127.0.0.1:6443/\n"
				   "    certificate-authority: pki/ca.crt\n"
				   "users:\n- name: u1\n  user:\n    token: abc.def\n", &c, detail), 0);
	assert_string_equal(c.server, "https://127.0.0.1:6443");
	assert_string_equal(c.token, "abc.def");
	assert_string_equal(c.namespace, "ml");
	snprintf(want, sizeof want, "%s/pki/ca.crt", dir);
	assert_string_equal(c.ca_file, want);
	assert_null(c.ca_pem);
	assert_null(c.cert_file);
	kube_config_done(&c);
	kube_config_done(&c); /* safe twice */
}

static void data_fields_are_decoded(void **state)
{
	struct kube_config c;
	char detail[KUBE_DETAIL_LEN] = "";

	(void)state;
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n"
				   "    server: https://k8s.example:443\n"
				   "    certificate-authority-data: YWJj\n"
				   "users:\n- name: u1\n  user:\n"
				   "    client-certificate-data: YWI=\n"
				   "    client-key-data: YQ==\n", &c, detail), 0);
	assert_int_equal(c.ca_pem_len, 3);
	assert_memory_equal(c.ca_pem, "abc", 4);
	assert_int_equal(c.cert_pem_len, 2);
	assert_memory_equal(c.cert_pem, "ab", 3);
	assert_int_equal(c.key_pem_len, 1);
	assert_memory_equal(c.key_pem, "a", 2);
	assert_null(c.token);
	kube_config_done(&c);
}

static void client_certificate_files_and_token_file(void **state)
{
	struct kube_config c;
	char detail[KUBE_DETAIL_LEN] = "", want[600];

	(void)state;
	write_file("tok", "s3cret\n");
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n"
				   "    server: https://k8s.example\n"
				   "    certificate-authority: /etc/ca.pem\n"
				   "users:\n- name: u1\n  user:\n"
				   "    client-certificate: u.crt\n    client-key: /abs/u.key\n"
				   "    tokenFile: tok\n", &c, detail), 0);
	assert_string_equal(c.ca_file, "/etc/ca.pem");
	snprintf(want, sizeof want, "%s/u.crt", dir);
	assert_string_equal(c.cert_file, want);
	assert_string_equal(c.key_file, "/abs/u.key");
	assert_string_equal(c.token, "s3cret");
	kube_config_done(&c);
}

static void refused_configs(void **state)
{
	struct kube_config c;
	char detail[KUBE_DETAIL_LEN] = "";

	(void)state;
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n"
				   "    server: https://k\n    insecure-skip-tls-verify: true\n"
				   "users:\n- name: u1\n  user: {token: t}\n", &c, detail), ERR_INVALID);
	assert_non_null(strstr(detail, "insecure-skip-tls-verify"));
	assert_null(c.server);
	assert_int_equal(load("apiVersion: v1\nclusters: []\n", &c, detail), ERR_INVALID);
	assert_non_null(strstr(detail, "current-context"));
	assert_int_equal(load(HEAD "clusters:\n- name: other\n  cluster: {server: https://k}\n",
				 &c, detail), ERR_INVALID);
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster: {certificate-authority: x}\n",
				 &c, detail), ERR_INVALID);
	assert_non_null(strstr(detail, "no server"));
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster:\n    server: https://k\n"
				   "    certificate-authority-data: 'not base64!'\n", &c, detail),
		ERR_INVALID);
	assert_int_equal(load("key: [unclosed\n", &c, detail), ERR_INVALID);
	assert_non_null(strstr(detail, "not YAML"));
	assert_int_equal(kube_config_load_file("/nonexistent/kubeconfig", &c, detail), ERR_NOT_FOUND);
	/* A token file that is missing fails the load. */
	assert_int_equal(load(HEAD "clusters:\n- name: c1\n  cluster: {server: https://k}\n"
				   "users:\n- name: u1\n  user: {tokenFile: missing}\n", &c, detail),
		ERR_NOT_FOUND);
}

static void in_cluster(void **state)
{
	struct kube_config c = {0};
	char detail[KUBE_DETAIL_LEN] = "", want[600];

	(void)state;
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_config_in_cluster(dir, &c, detail), ERR_NOT_FOUND);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	write_file("token", "eyJhbGciOi.sa\n");
	/* No ca.crt yet. */
	assert_int_equal(kube_config_in_cluster(dir, &c, detail), ERR_NOT_FOUND);
	write_file("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	assert_int_equal(kube_config_in_cluster(dir, &c, detail), 0);
	assert_string_equal(c.server, "https://10.96.0.1:443");
	assert_string_equal(c.token, "eyJhbGciOi.sa");
	snprintf(want, sizeof want, "%s/ca.crt", dir);
	assert_string_equal(c.ca_file, want);
	kube_config_done(&c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kube_config_in_cluster(dir, &c, detail), 0);
	assert_string_equal(c.server, "https://[fd00::1]:443");
	kube_config_done(&c);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	static const char *const files[] = {"config", "tok", "token", "ca.crt"};
	char path[512];

	(void)state;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_and_relative_ca_file),
		cmocka_unit_test(data_fields_are_decoded),
		cmocka_unit_test(client_certificate_files_and_token_file),
		cmocka_unit_test(refused_configs),
		cmocka_unit_test(in_cluster),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
