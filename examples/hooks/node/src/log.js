export const log = (message) => process.stderr.write(`${message}\n`);
