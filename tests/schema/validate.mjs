// validate.mjs FILE... - parses each YAML manifest and validates it against
// the official schema of its kind: batch/v1 Job (kubernetes-models, from the
// Kubernetes OpenAPI) or argoproj.io/v1alpha1 Application / ApplicationSet
// (@kubernetes-models/argo-cd, from Argo CD's CRD openAPIV3Schema).
// Prints {"file": parsed-object} as JSON on success; exits 1 naming the
// file and the schema errors otherwise.  An unknown kind is an error.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { Application, ApplicationSet } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1';

const kinds = {
  'batch/v1 Job': Job,
  'argoproj.io/v1alpha1 Application': Application,
  'argoproj.io/v1alpha1 ApplicationSet': ApplicationSet,
};
const out = {};
let failed = false;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  if (docs.length !== 1 || docs[0].errors.length > 0) {
    console.error(`${file}: not exactly one valid YAML document`);
    failed = true;
    continue;
  }
  const obj = docs[0].toJS();
  const Model = kinds[`${obj?.apiVersion} ${obj?.kind}`];
  if (!Model) {
    console.error(`${file}: unknown kind ${obj?.apiVersion} ${obj?.kind}`);
    failed = true;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    console.error(`${file}: schema: ${e.message}`);
    failed = true;
    continue;
  }
  out[file] = obj;
}
process.stdout.write(JSON.stringify(out));
process.exit(failed ? 1 : 0);
