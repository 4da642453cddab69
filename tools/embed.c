/*
 * embed.c - build tool: writes a C file that holds data files as byte arrays.
 *
 * usage: embed OUT.c NAME1 FILE1 [NAME2 FILE2 ...]
 * For each pair it emits `const unsigned char NAME[]` (NUL-terminated, so text
 * can be used as a C string) and `const unsigned long NAME_len`.
 */
#include <stdio.h>
#include <stdlib.h>

static int emit(FILE *out, const char *name, const char *path)
{
	FILE *in = fopen(path, "rb");
	if (in == NULL) {
		perror(path);
		return -1;
	}
	unsigned long n = 0;
	int ch;
	if (fprintf(out, "const unsigned char %s[] = {", name) < 0)
		goto fail;
	while ((ch = fgetc(in)) != EOF) {
		const char *sep = n == 0 ? "\n" : (n % 24) ? "," : ",\n";
		if (fprintf(out, "%s%d", sep, ch) < 0)
			goto fail;
		n++;
	}
	if (ferror(in))
		goto fail;
	if (fprintf(out, "%s0};\nconst unsigned long %s_len = %lu;\n", n ? "," : "", name, n) < 0)
		goto fail;
	fclose(in);
	return 0;
fail:
	perror(path);
	fclose(in);
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc % 2 != 0) {
		fprintf(stderr, "usage: embed OUT.c NAME FILE [NAME FILE ...]\n");
		return 2;
	}
	FILE *out = fopen(argv[1], "w");
	if (out == NULL) {
		perror(argv[1]);
		return 1;
	}
	int rc = 0;
	for (int i = 2; i + 1 < argc && rc == 0; i += 2)
		rc = emit(out, argv[i], argv[i + 1]);
	if (fclose(out) != 0)
		rc = -1;
	return rc == 0 ? 0 : 1;
}
