/**
 * The SPDY/3 header compression dictionary (SPDY Protocol draft 3, section 2.6.10.1).
 * Every SPDY/3 peer primes its zlib contexts with it; its Adler-32 (the DICTID in the
 * zlib header of the first header block, bytes `38 ea e3 c6 a7 c2`) is 0xe3c6a7c2,
 * which test/spdy-codec.test.ts checks.
 *
 * The spec lists it as bytes; its shape is a run of length-prefixed (32-bit big-endian)
 * words followed by a run of plain text, so it is built from those two parts here.
 */
const LENGTH_PREFIXED_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset',
  'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow', 'authorization',
  'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language',
  'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date',
  'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since',
  'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'location',
  'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent',
  'vary', 'via', 'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK', 'version',
  'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
];

const PLAIN_TAIL =
  '1001012012022052063003023033043053063074024054064074084094104114124134' +
  '14415416417502504505203 Non-Authoritative Information204 No Content301' +
  ' Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not ' +
  'Found500 Internal Server Error501 Not Implemented503 Service Unavailab' +
  'leJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, ' +
  'Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,imag' +
  'e/gif,application/xml,application/xhtml+xml,text/plain,text/javascript' +
  ',publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1' +
  ',utf-,*,enq=0.';

function build(): Buffer {
  const parts: Buffer[] = [];
  for (const word of LENGTH_PREFIXED_WORDS) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(word.length);
    parts.push(length, Buffer.from(word, 'latin1'));
  }
  parts.push(Buffer.from(PLAIN_TAIL, 'latin1'));
  return Buffer.concat(parts);
}

export const SPDY3_DICTIONARY: Buffer = build();
