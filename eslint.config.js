// Lint configuration: typescript-eslint flat config with type-aware rules, plus the import
// boundaries between Meshwork's parts (lint/boundaries.js).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { boundariesPlugin } from './lint/boundaries.js';

export default tseslint.config(
  { ignores: ['node_modules/', 'bin/', 'charts/meshwork/', 'crds/', 'tools/', '.cache/', 'dist/', 'web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { meshwork: boundariesPlugin },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'meshwork/boundaries': 'error',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
