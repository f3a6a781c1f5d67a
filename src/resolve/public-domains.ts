/**
 * Top-level domains of the public internet that real clusters also use as
 * namespace names (`dev`, `app`, `io`, `cloud`, `com` all occur). For such a
 * namespace `*.NS` must not be sent to the cluster wholesale (the PAC file
 * lists its services and pods by name instead), or `go.dev` would stop
 * working for a browser. A fixed list of the common generic and country
 * TLDs (IANA root zone, https://data.iana.org/TLD/tlds-alpha-by-domain.txt):
 * a namespace missing here still gets the exact x.NS rule in the resolver.
 */
const PUBLIC_TLDS = new Set(
  (
    'com net org edu gov mil int info biz name pro mobi app dev io ai co me tv cc ws cloud online site tech store shop ' +
    'blog page web xyz top club live news media link click digital network systems software solutions services ' +
    'email cloud host space website fun art design studio agency global world today one new run build tools ' +
    'us uk de fr nl be ch at se no dk fi es it pt pl cz sk hu ro bg gr ie ca mx br ar cl pe au nz jp cn kr in sg hk tw ' +
    'ru ua tr il za ng ke eg ae sa id my th vn ph is lt lv ee si hr rs ba eu asia'
  ).split(' '),
);

/** Whether a namespace name is also a public top-level domain. */
export function isPublicTld(namespace: string): boolean {
  return PUBLIC_TLDS.has(namespace.toLowerCase());
}
