#!/usr/bin/env bash
# tests/deploy/test_terraform.sh - the OpenTofu code of deploy/terraform is
# formatted, valid where its providers exist here, lint-clean and passes
# checkov (suite deploy-iac).
#
# Tools: OpenTofu, tflint, the hashicorp/kubernetes and hashicorp/helm
# providers (built from the Go module proxy) and checkov (PyPI), all from
# tools/iac-tools.sh's cache outside the repository. The providers are
# installed only from a filesystem mirror: the CLI configuration names no
# other source, so nothing is fetched from a registry.
#
#   1. `tofu fmt -check -recursive` over deploy/terraform (and a badly
#      formatted copy must fail it);
#   2. `tofu init` from the mirror + `tofu validate` of deploy/terraform/bootstrap
#      (Argo CD + the app of apps: kubernetes and helm providers), and a copy
#      with a misspelt argument must fail validate;
#   3. tflint (its built-in terraform ruleset, "recommended" preset, no AWS
#      plugin) over every module and root; a copy with an undeclared-type,
#      unused variable must fail it;
#   4. checkov over the whole of deploy/terraform: zero failed checks, every
#      skip written as `#checkov:skip=ID:reason` with a reason; a copy of the
#      artifact bucket without its public access block must fail it;
#   5. the GPU node groups of envs/*/terraform.tfvars label their nodes with
#      the nvidia.com/gpu.product src/core/gpuproduct.c gives their type.
# The AWS provider is not built here (docs/deploy.md, "Tests"), so the AWS
# modules are checked by 1, 3 and 4 but not by `tofu validate`.
# Prints TAP.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
n=0
failed=0
ok() { # ok CONDITION-STATUS DESCRIPTION [DETAIL-FILE]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
		[ -z "${3:-}" ] || sed -e 's/^/# /' "$3" | head -n 40
	fi
}
bail() {
	echo "Bail out! $*"
	exit 1
}

env_out=$(tools/iac-tools.sh) || bail "tools/iac-tools.sh failed"
eval "$env_out"
for v in PLINTH_TOFU PLINTH_TFLINT PLINTH_TOFU_MIRROR PLINTH_CHECKOV; do
	[ -n "${!v:-}" ] || bail "tools/iac-tools.sh did not set $v"
done
tofu=$PLINTH_TOFU

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
# The tests work on a copy of deploy/ (init writes .terraform and a lock file).
cp -r deploy "$tmp/deploy"
tf=$tmp/deploy/terraform

# A CLI configuration that installs providers from the mirror and nowhere else.
cat >"$tmp/tofurc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$PLINTH_TOFU_MIRROR"
    include = ["registry.opentofu.org/hashicorp/*"]
  }
}
EOF
export TF_CLI_CONFIG_FILE=$tmp/tofurc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
unset TF_PLUGIN_CACHE_DIR TF_DATA_DIR
echo "# $("$tofu" version | head -n 1); $("$PLINTH_TFLINT" --version | head -n 1); checkov $("$PLINTH_CHECKOV" --version)"

# --- 1. fmt -------------------------------------------------------------------
"$tofu" fmt -check -recursive -diff "$root/deploy/terraform" >"$out" 2>&1
ok $? "tofu fmt -check -recursive deploy/terraform" "$out"
mkdir "$tmp/badfmt"
printf 'variable "x" {\ntype = string\n    description="x"\n}\n' >"$tmp/badfmt/main.tf"
"$tofu" fmt -check "$tmp/badfmt" >"$out" 2>&1
[ $? -ne 0 ]
ok $? "tofu fmt -check refuses a badly formatted file"

# --- 2. init from the mirror + validate (bootstrap) ----------------------------
validate() { # validate DIR: init from the mirror, then validate; output in $out
	(cd "$1" && "$tofu" init -backend=false -input=false -no-color >"$out" 2>&1 &&
		"$tofu" validate -no-color >>"$out" 2>&1)
}
validate "$tf/bootstrap"
ok $? "deploy/terraform/bootstrap: tofu init from the filesystem mirror + tofu validate" "$out"
grep -q 'hashicorp/kubernetes' "$tf/bootstrap/.terraform.lock.hcl" 2>/dev/null &&
	grep -q 'hashicorp/helm' "$tf/bootstrap/.terraform.lock.hcl"
ok $? "the kubernetes and helm providers came from the mirror (lock file)" "$out"
cp -r "$tf/bootstrap" "$tmp/badboot"
rm -rf "$tmp/badboot/.terraform"
sed -i 's/^  timeout    = 900/  timeuot    = 900/' "$tmp/badboot/main.tf"
grep -q timeuot "$tmp/badboot/main.tf" || bail "could not plant the misspelt argument"
# keep the relative paths to deploy/argocd valid
mv "$tmp/badboot" "$tf/badboot"
validate "$tf/badboot"
[ $? -ne 0 ] && grep -q 'timeuot' "$out"
ok $? "tofu validate refuses a misspelt helm_release argument (timeuot)" "$out"
rm -rf "$tf/badboot"

# --- 3. tflint ---------------------------------------------------------------------
cat >"$tmp/tflint.hcl" <<'EOF'
plugin "terraform" {
  enabled = true
  preset  = "recommended"
}
rule "terraform_documented_variables" {
  enabled = true
}
rule "terraform_documented_outputs" {
  enabled = true
}
rule "terraform_naming_convention" {
  enabled = true
}
EOF
tflint_dirs=$(cd "$root/deploy/terraform" && find . -name '*.tf' -printf '%h\n' | sort -u)
tflint_status=0
: >"$tmp/tflint.out"
for d in $tflint_dirs; do
	if ! (cd "$tf/$d" && "$PLINTH_TFLINT" --config "$tmp/tflint.hcl" --format compact) >>"$tmp/tflint.out" 2>&1; then
		echo "in $d:" >>"$tmp/tflint.out"
		tflint_status=1
	fi
done
ok $tflint_status "tflint (terraform ruleset, recommended) on $(echo "$tflint_dirs" | wc -l) modules and roots" "$tmp/tflint.out"
mkdir "$tmp/badlint"
printf 'variable "unused" {\n  default = 1\n}\n' >"$tmp/badlint/main.tf"
(cd "$tmp/badlint" && "$PLINTH_TFLINT" --config "$tmp/tflint.hcl" --format compact) >"$out" 2>&1
[ $? -ne 0 ] && grep -q terraform_unused_declarations "$out"
ok $? "tflint refuses an unused, untyped variable" "$out"

# --- 4. checkov -------------------------------------------------------------------
"$PLINTH_CHECKOV" -d "$root/deploy/terraform" --framework terraform --compact --quiet --skip-download \
	-o json >"$tmp/checkov.json" 2>"$tmp/checkov.err"
python3 - "$tmp/checkov.json" >"$out" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d = d if isinstance(d, list) else [d]
s = {"passed": 0, "failed": 0, "skipped": 0}
for r in d:
    for k in s:
        s[k] += r.get("summary", {}).get(k, 0)
    for c in r.get("results", {}).get("failed_checks", []):
        print(f"FAILED {c['check_id']} {c['resource']} {c['file_path']}")
print(f"passed {s['passed']} failed {s['failed']} skipped {s['skipped']}")
sys.exit(0 if s["failed"] == 0 and s["passed"] > 100 else 1)
EOF
ok $? "checkov: no failed check over deploy/terraform ($(tail -n 1 "$out"))" "$out"
grep -rhn 'checkov:skip' "$root/deploy/terraform" >"$tmp/skips"
bad_skips=$(grep -cvE '#checkov:skip=CKV2?_AWS_[0-9]+:.{30,}' "$tmp/skips")
[ "$bad_skips" -eq 0 ] && [ -s "$tmp/skips" ]
ok $? "every checkov skip names its check and gives a reason ($(wc -l <"$tmp/skips") skips)" "$tmp/skips"
mkdir -p "$tmp/badckv"
cp "$root/deploy/terraform/modules/artifacts/"*.tf "$tmp/badckv/"
python3 - "$tmp/badckv/main.tf" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s2 = re.sub(r'resource "aws_s3_bucket_public_access_block" "this" \{.*?\n\}\n', "", s, flags=re.S)
s2 = s2.replace("  depends_on = [aws_s3_bucket_public_access_block.this]\n", "")
assert s2 != s
open(p, "w").write(s2)
EOF
"$PLINTH_CHECKOV" -d "$tmp/badckv" --framework terraform --compact --quiet --skip-download >"$out" 2>&1
[ $? -ne 0 ] && grep -q 'CKV2_AWS_6' "$out"
ok $? "checkov fails a bucket without its public access block (CKV2_AWS_6)" "$out"

# --- 5. GPU node labels match Plinth's GPU table --------------------------------
# Each GPU node group is keyed by a Plinth gpu_type and labels its nodes with
# nvidia.com/gpu.product; the admission webhook and the Jobs select on that
# label, so it must be the product src/core/gpuproduct.c maps the type to.
python3 - "$root" >"$out" 2>&1 <<'EOF'
import glob, os, re, sys
root = sys.argv[1]
table = dict(re.findall(r'\{"([a-z0-9-]+)", "([^"]+)"\}', open(os.path.join(root, "src/core/gpuproduct.c")).read()))
assert table, "no GPU table in src/core/gpuproduct.c"
groups = 0
bad = []
for f in sorted(glob.glob(os.path.join(root, "deploy/terraform/envs/*/terraform.tfvars"))):
    for key, body in re.findall(r'"([a-z0-9-]+)"\s*=\s*\{([^{}]*gpu_product[^{}]*)\}', open(f).read()):
        groups += 1
        product = re.search(r'gpu_product\s*=\s*"([^"]+)"', body).group(1)
        if table.get(key) != product:
            bad.append(f"{os.path.relpath(f, root)}: {key} labels {product}, Plinth maps it to {table.get(key)}")
print("\n".join(bad) or f"{groups} GPU node groups match")
sys.exit(1 if bad or groups == 0 else 0)
EOF
ok $? "every GPU node group's nvidia.com/gpu.product is the one Plinth's GPU table gives its type ($(tail -n 1 "$out"))" "$out"

echo "1..$n"
[ "$failed" -eq 0 ]
