// The layout rules of flashsale, checked by `npm run lint:deps` (part of `npm test`) over src, bench
// and test, type-only and dynamic imports included. Why dependency-cruiser: docs/decisions.md.
// test/architecture.test.ts proves each rule fires on a file that breaks it.

/**
 * Folders under src that are not business components. Every other folder under src is a component,
 * so a new component is covered without editing this file.
 */
const NOT_COMPONENTS = ['platform', 'cli', 'audit', 'ops', 'psp', 'sms-sim', 'web'];
const COMPONENT = `^src/(?!(?:${NOT_COMPONENTS.join('|')})/)([^/]+)/`;
/** Test code that lives beside the sources: suites, conformance suites, the simulator's test helpers. */
const TEST_CODE = ['\\.test\\.ts$', '/conformance\\.ts$', '^src/psp/testing\\.ts$'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'component-through-public-interface',
      comment: "A component imports another component only through its index.ts or contracts.ts.",
      severity: 'error',
      from: { path: COMPONENT },
      to: {
        path: COMPONENT,
        pathNot: ['^src/$1/', '^src/[^/]+/(?:index|contracts)\\.ts$'],
      },
    },
    {
      name: 'platform-knows-no-component',
      comment: 'src/platform is the ground the components stand on: it imports no component (nor the composition root or the CLI).',
      severity: 'error',
      from: { path: '^src/platform/' },
      to: { path: [COMPONENT, '^src/(?:app|seed)\\.ts$', '^src/(?:cli|ops|audit)/'] },
    },
    {
      name: 'src-not-to-bench',
      comment: 'The runtime never loads bench/ (load generation, charts, the fault drill): only src/cli may name it, and then only lazily (import()) or for types.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^bench/' },
    },
    {
      name: 'cli-loads-bench-lazily',
      comment: 'src/cli reaches bench/ through import() or `import type` only, so an API process never evaluates it.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^bench/', dynamic: false, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'runtime-not-to-test',
      comment: 'Code that runs in production imports nothing from test/.',
      severity: 'error',
      from: { path: '^src/', pathNot: TEST_CODE },
      to: { path: '^test/' },
    },
    {
      name: 'runtime-not-to-dev-dependency',
      comment: 'Code that runs in production imports no devDependency: a production image is installed with `npm ci --omit=dev`.',
      severity: 'error',
      from: { path: '^(?:src/|bin/)', pathNot: TEST_CODE },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-undeclared-package',
      comment: 'Every package imported is declared in package.json (not only installed as some other package\'s dependency).',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'no-circular',
      comment: 'No cycle of runtime imports (static or dynamic); a cycle of type-only imports is harmless.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import resolves to a file or a package: an unresolved one would slip past every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports are kept (and marked 'type-only'), so the rules see them too.
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.d.ts', '.js', '.cjs', '.mjs', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
