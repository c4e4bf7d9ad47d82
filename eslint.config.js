// Lint rules for the whole tree: TypeScript's recommended set, with `any` allowed only where a line says why.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'web/dist/', 'library/images/', 'web/src/api-types.generated.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      // tsc's noUnusedLocals/noUnusedParameters already fail the build; a second report adds nothing.
      '@typescript-eslint/no-unused-vars': 'off',
      // Where `any` is needed (untyped rows of a dynamic query, a library without types) the line says why.
      '@typescript-eslint/no-explicit-any': 'error',
      // Control characters are what the serial console and telnet parsing match on.
      'no-control-regex': 'off',
      // `cond ? a() : b()` and `x && f()` as statements are the house style for small branches.
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true, allowShortCircuit: true }],
    },
  },
  {
    // Tests poke at answers of any shape, and an applied migration's text may never change (a test checks it).
    files: ['test/**', 'src/store/migrations/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'warn' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
  },
);
