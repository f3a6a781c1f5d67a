/** Context aliases (src/dialer/aliases.ts) and the name-routing step (src/dialer/context-routing.ts). */
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aliasProblem, assignAliases, foldAlias, parseAliasOverride } from '../../src/dialer/aliases.js';
import { routeByAlias } from '../../src/dialer/context-routing.js';

describe('foldAlias', () => {
  test('EKS ARNs, GKE names and upper case fold to DNS labels', () => {
    assert.equal(foldAlias('arn:aws:eks:eu-west-1:123456789012:cluster/prod'), 'arn-aws-eks-eu-west-1-123456789012-cluster-prod');
    assert.equal(foldAlias('gke_my-project_europe-west1-b_staging'), 'gke-my-project-europe-west1-b-staging');
    assert.equal(foldAlias('Kind-Dev'), 'kind-dev');
    assert.equal(foldAlias('admin@prod.example.com'), 'admin-prod-example-com');
  });
  test('leading and trailing characters that fold to "-" are dropped; runs inside are kept', () => {
    assert.equal(foldAlias('_dev_'), 'dev');
    assert.equal(foldAlias('a__b'), 'a--b');
    assert.equal(foldAlias('日本'), '');
  });
});

describe('aliasProblem', () => {
  test('accepts DNS labels, refuses the rest with the reason', () => {
    assert.equal(aliasProblem('prod'), null);
    assert.equal(aliasProblem('a'.repeat(63)), null);
    assert.match(aliasProblem('a'.repeat(64)) ?? '', /64 characters long/);
    assert.match(aliasProblem('') ?? '', /empty/);
    assert.match(aliasProblem('Prod') ?? '', /not a DNS label/);
    assert.match(aliasProblem('-x') ?? '', /not a DNS label/);
    assert.match(aliasProblem('svc') ?? '', /reserved/);
    assert.match(aliasProblem('pod') ?? '', /reserved/);
  });
});

describe('parseAliasOverride', () => {
  test('NAME=CONTEXT, the context may contain "="', () => {
    assert.deepEqual(parseAliasOverride('prod=arn:aws:eks:x:1:cluster/prod'), { alias: 'prod', context: 'arn:aws:eks:x:1:cluster/prod' });
    assert.deepEqual(parseAliasOverride('a=b=c'), { alias: 'a', context: 'b=c' });
  });
  test('malformed or invalid names are CONFIG errors that show the flag', () => {
    assert.throws(() => parseAliasOverride('prod'), { code: 'CONFIG', message: /--alias "prod": expected NAME=CONTEXT/ });
    assert.throws(() => parseAliasOverride('=ctx'), { code: 'CONFIG' });
    assert.throws(() => parseAliasOverride('svc=ctx'), { code: 'CONFIG', message: /the alias "svc" is reserved/ });
    assert.throws(() => parseAliasOverride('Prod=ctx'), { code: 'CONFIG', message: /not a DNS label/ });
  });
});

describe('assignAliases', () => {
  test('folded names by default, overrides by hand, in order', () => {
    const m = assignAliases(['dev', 'gke_p_z_staging', 'arn:aws:eks:r:1:cluster/prod'], [{ alias: 'prod', context: 'arn:aws:eks:r:1:cluster/prod' }]);
    assert.deepEqual([...m], [
      ['dev', 'dev'],
      ['gke_p_z_staging', 'gke-p-z-staging'],
      ['arn:aws:eks:r:1:cluster/prod', 'prod'],
    ]);
  });
  test('a collision is a start-up error that names the --alias that fixes it', () => {
    assert.throws(() => assignAliases(['kind_dev', 'kind-dev']), {
      code: 'CONFIG',
      message: 'contexts "kind_dev" and "kind-dev" both get the alias "kind-dev": name one with --alias NAME=kind-dev',
    });
    // An override colliding with a folded name: rename the folded one.
    assert.throws(() => assignAliases(['dev', 'gke_x_dev'], [{ alias: 'dev', context: 'gke_x_dev' }]), {
      message: /both get the alias "dev": name one with --alias NAME=dev$/,
    });
    // The fix works.
    assert.equal(assignAliases(['kind_dev', 'kind-dev'], [{ alias: 'kd', context: 'kind_dev' }]).get('kind_dev'), 'kd');
  });
  test('a folded alias that is no label (reserved, empty, too long) says which --alias fixes it', () => {
    assert.throws(() => assignAliases(['svc', 'other']), { message: 'context "svc" gives the alias "svc", which is reserved ("svc" ends the cluster\'s own names, e.g. web.demo.svc): name it with --alias NAME=svc' });
    assert.throws(() => assignAliases(['日本', 'other']), { message: /context "日本" gives the alias "", which is empty: name it with --alias NAME=日本/ });
    assert.throws(() => assignAliases([`x${'a'.repeat(70)}`, 'other']), { message: /71 characters long/ });
  });
  test('a lone context whose name gives no usable alias still serves, without an alias', () => {
    assert.equal(assignAliases(['日本']).get('日本'), '');
  });
  test('--alias for a context that is not served, or two aliases for one context, are errors', () => {
    assert.throws(() => assignAliases(['a'], [{ alias: 'x', context: 'b' }]), { message: /context "b" is not served \(add --context b, or --all-contexts\)/ });
    assert.throws(() => assignAliases(['a'], [{ alias: 'x', context: 'a' }, { alias: 'y', context: 'a' }]), { message: /two aliases/ });
  });
});

describe('routeByAlias', () => {
  const aliases = new Set(['staging', 'demo', 'prod', 'local']);
  const route = (host: string): string | null => {
    const r = routeByAlias(host, { aliases, clusterDomain: 'cluster.local' });
    return r ? `${r.alias}|${r.name}` : null;
  };

  test('the four forms, and pod IPs, route to the alias with the alias removed', () => {
    assert.equal(route('web.shop.staging'), 'staging|web.shop');
    assert.equal(route('web.shop.svc.staging'), 'staging|web.shop.svc');
    assert.equal(route('db-0.db.shop.svc.staging'), 'staging|db-0.db.shop.svc');
    assert.equal(route('web-0.shop.staging'), 'staging|web-0.shop');
    assert.equal(route('10-244-0-10.shop.pod.staging'), 'staging|10-244-0-10.shop.pod');
    assert.equal(route('WEB.Shop.STAGING.'), 'staging|web.shop', 'case and a trailing dot do not matter');
  });

  test('two labels are svc.ns of the selected context, even when ns is also an alias', () => {
    assert.equal(route('web.staging'), null);
    assert.equal(route('staging'), null);
  });

  test('a namespace named like an alias before another alias: the last label decides', () => {
    assert.equal(route('web.demo.staging'), 'staging|web.demo');
    assert.equal(route('web.staging.demo'), 'demo|web.staging');
  });

  test('names under the cluster domain are never alias names, even if the domain ends in an alias', () => {
    assert.equal(route('web.shop.svc.cluster.local'), null);
    assert.equal(route('x.cluster.local'), null);
    // With alias `local`, a three-label name outside the domain does route.
    assert.equal(route('web.shop.local'), 'local|web.shop');
  });

  test('IP literals are the selected context\'s, also when something looks like an alias after them', () => {
    assert.equal(route('10.96.0.1'), null);
    assert.equal(route('[fd00::1]'), null);
    assert.equal(route('10.96.0.1.staging'), null);
  });

  test('a.b.c.d.ALIAS (no cluster form before the alias) and unknown last labels are not routed', () => {
    assert.equal(route('a.b.c.d.staging'), null);
    assert.equal(route('www.example.com'), null);
    assert.equal(route('web.shop.svc.other'), null);
  });

  test('pod.svc.ns three-label names whose namespace is an alias belong to that context (write pod.svc.ns.svc for the default)', () => {
    assert.equal(route('web-0.web.demo'), 'demo|web-0.web');
    assert.equal(route('web-0.web.demo.svc'), null);
  });
});
