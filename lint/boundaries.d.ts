// Types of lint/boundaries.js, for the test of the rule.
import type { ESLint } from 'eslint';

/** A product area and the areas it may import. */
export interface Area {
  name: string;
  dir: string;
  may: string[];
}
/** Product areas, most specific first. */
export declare const areas: Area[];
/** Whether a repository-relative path is test code. */
export declare function isTestCode(path: string): boolean;
/** The product area of a repository-relative path, or undefined for test code. */
export declare function areaOf(path: string): Area | undefined;
/** Undefined when `file` may import `specifier` (`typeOnly` for `import type`), else why not. */
export declare function checkImport(file: string, specifier: string, options?: { typeOnly?: boolean }): string | undefined;
/** The plugin carrying `meshwork/boundaries`. */
export declare const boundariesPlugin: ESLint.Plugin;
