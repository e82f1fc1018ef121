// Prints the closing line of a test run, "N passed, N failed, N skipped", from vitest's JSON report.
import { readFileSync } from 'node:fs';

interface VitestJsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
}

const file = process.argv[2];
if (!file) {
  console.error('usage: summarize.ts <vitest-json-report>');
  process.exit(2);
}
let report: VitestJsonReport;
try {
  report = JSON.parse(readFileSync(file, 'utf8')) as VitestJsonReport;
} catch (err) {
  console.error(`No test report at ${file}: ${(err as Error).message}`);
  process.exit(1);
}
// A file that failed to load counts as a failure even though none of its tests ran.
const failed = report.numFailedTests + (report.numFailedTestSuites > 0 && report.numFailedTests === 0 ? report.numFailedTestSuites : 0);
console.log(`${report.numPassedTests} passed, ${failed} failed, ${report.numPendingTests + report.numTodoTests} skipped`);
