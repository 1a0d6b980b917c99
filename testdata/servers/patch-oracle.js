// patch-oracle.js — apply scimsync's PATCH bodies to a resource with the npm scim-patch package
// (thomaspoignant/scim-patch, pinned in package.json), an implementation of RFC 7644 §3.5.2
// independent of both scimsync and SCIMMY. Used by engine/scim/patch_server_test.go.
//
// Adapted from the team harness (shared/harness/scim-patch-oracle.js): that one also ran
// SCIMMY's PatchOp in-process and compared the two; here SCIMMY is checked as the real server
// instead, and this script only applies scim-patch, with no expectation of its own.
//
// Usage: node patch-oracle.js < cases.json
//   cases.json = [{"name": "...", "resource": {...}, "bodies": [PatchOp body, ...]}, ...]
// The bodies of a case are validated (patchBodyValidation) and applied in order, as a client
// sends them one request after another. Output on stdout, one JSON array in input order:
//   [{"name": "...", "result": {...}} | {"name": "...", "error": "Name: message"}, ...]
// Exit code 0 unless the input cannot be read (a case's error is data, not a failure).
//
// Run it from a directory whose node_modules holds scim-patch (the test copies it next to the
// SCIM server's dependency cache, as start-scim.sh does for scim-server.js).
import { scimPatch, patchBodyValidation } from "scim-patch";

function apply(c) {
  let resource = JSON.parse(JSON.stringify(c.resource));
  try {
    for (const body of c.bodies) {
      patchBodyValidation(body);
      resource = scimPatch(resource, body.Operations, { mutateDocument: false, treatMissingAsAdd: true });
    }
    return { name: c.name, result: resource };
  } catch (e) {
    return { name: c.name, error: `${e.name}: ${e.message}` };
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (input += d)).on("end", () => {
  let cases;
  try {
    cases = JSON.parse(input);
  } catch (e) {
    console.error(`patch-oracle.js: input is not JSON: ${e.message}`);
    process.exit(2);
  }
  if (!Array.isArray(cases)) cases = [cases];
  process.stdout.write(JSON.stringify(cases.map(apply)) + "\n");
});
