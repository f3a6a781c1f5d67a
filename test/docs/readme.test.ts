/** The README's promises that code can check. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderFailureRepliesMarkdown } from '../../src/proxy/replies.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');

test('the failure table in the README is the one the code uses', () => {
  assert.ok(readme.includes(renderFailureRepliesMarkdown().trimEnd()), 'README table differs from renderFailureRepliesMarkdown(); paste the new one');
});

test('"Try it" has exactly the two set-up commands, and CI runs the same test command', () => {
  const tryIt = readme.slice(readme.indexOf('## Try it'), readme.indexOf('## Use it'));
  const commands = [...tryIt.matchAll(/^npm install && npm (run demo|test)\b/gm)].map((m) => m[1]);
  assert.deepEqual(commands, ['run demo', 'test']);
  assert.match(ci, /^npm test$/m);
});
